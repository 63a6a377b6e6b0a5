"""Faults the Kubernetes API emulator can inject into the requests a release sends it.

What a real API server (or what stands between it and the client) does on a bad day: a 500 or
a 429 with Retry-After, a 409 nobody asked for, a connection dropped before an answer, an
answer that arrives after the client gave up (the write did land), and, for kill sweeps, a
callback run before or after a request is served (such as SIGKILL of the process that sent it).

Only requests from clients that are not the test bed's own (the mesh simulator, the engine
stand-in) are eligible: they identify themselves with a `testbed` User-Agent.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

TESTBED_AGENT = "testbed"
"""The User-Agent prefix of the bed's own clients, which faults never touch."""


class FaultKind(StrEnum):
    STATUS = "status"  # answer `status` (with Retry-After for 429) without serving the request
    DROP = "drop"  # close the connection without an answer, the request not served
    LATE = "late"  # serve the request, then answer after `delay` seconds
    CALL = "call"  # run `callback` before or after serving, then answer normally


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    callback: Callable[[], None] | None = None
    after: bool = True
    """For CALL: run the callback once the request is served (True) or before it (False)."""
    methods: frozenset[str] | None = None
    """The verbs a random fault may hit (a 409 answers writes only); None for any."""


@dataclass(frozen=True)
class Request:
    """What a rule may look at: the verb, the path, the query (e.g. the field manager) and
    the body, so a rule can wait for a particular write."""

    method: str
    path: str
    query: dict[str, str]
    agent: str
    body: bytes = b""


@dataclass
class Rule:
    """Injects `fault` into the `nth` request matching `matches` (1-based), `times` times."""

    matches: Callable[[Request], bool]
    fault: Fault
    nth: int = 1
    times: int = 1
    seen: int = 0
    fired: int = 0


@dataclass
class FaultPlan:
    """Targeted rules first; then, with a fixed seed, `share` of the eligible requests get
    one of `random_faults` (chosen uniformly). Every injection is logged."""

    rules: list[Rule] = field(default_factory=list)
    share: float = 0.0
    random_faults: tuple[Fault, ...] = ()
    seed: int = 0
    eligible: Callable[[Request], bool] = lambda request: True
    log: list[tuple[Request, Fault]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self, request: Request) -> Fault | None:
        if request.agent.startswith(TESTBED_AGENT):
            return None
        with self._lock:
            for rule in self.rules:
                if rule.fired < rule.times and rule.matches(request):
                    rule.seen += 1
                    if rule.seen >= rule.nth:
                        rule.fired += 1
                        self.log.append((request, rule.fault))
                        return rule.fault
            chosen = self.share and self.random_faults and self.eligible(request)
            if chosen and self._random.random() < self.share:
                fault = self._random.choice(self.random_faults)
                if fault.methods is None or request.method in fault.methods:
                    self.log.append((request, fault))
                    return fault
        return None

    def injected(self, kind: FaultKind | None = None) -> int:
        with self._lock:
            return sum(1 for _, fault in self.log if kind is None or fault.kind is kind)
