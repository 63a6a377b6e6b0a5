"""The engine's step generator, as far as a benchmark needs it: one thread that registers
resources one after another and calls each one's Check inline on the dynamic server, waiting
for the answer before the next registration (`deployment_executor.go` -> `GenerateSteps`).

While the server's four worker threads are all held by long Updates, each Check waits for one
to end, and so does every registration after it; `CheckTimes` shows how long each waited.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pulumi.dynamic.dynamic import serialize_provider

from components.provider.rollout import FinaliserProvider
from tests.provider.dynamic_server import DynamicServer

# A resource whose Check does no work of its own: what it measures is the wait for a thread.
CHEAP = {"__provider": serialize_provider(FinaliserProvider())}
OTHER_URN = "urn:pulumi:dev::bench::pulumi-python:dynamic/canary:RolloutFinaliser::other"


@dataclass
class CheckTimes:
    """Seconds each inline Check took, in registration order."""

    seconds: list[float] = field(default_factory=list)


class InlineChecks:
    """Registers a resource every `every` seconds until `stop()`, its Check inline."""

    def __init__(self, server: DynamicServer, every: float = 0.25) -> None:
        self.server = server
        self.every = every
        self.times = CheckTimes()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="step-generator", daemon=True)

    def __enter__(self) -> CheckTimes:
        self._thread.start()
        return self.times

    def __exit__(self, *exc_info: Any) -> None:
        self._stopped.set()
        self._thread.join(timeout=300)

    def _run(self) -> None:
        index = 0
        while not self._stopped.is_set():
            urn = f"{OTHER_URN}-{index}"
            sent = time.monotonic()
            self.server.check(urn, {}, CHEAP)
            self.times.seconds.append(time.monotonic() - sent)
            index += 1
            self._stopped.wait(self.every)
