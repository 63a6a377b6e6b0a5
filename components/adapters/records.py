"""The release record: what one run tells the next, kept on the cluster.

A ConfigMap `<canary>-canary-release` holds one JSON document, typed here as `ReleaseRecord`,
and `RecordStore` is its only reader and writer. Its resourceVersion is the lock between runs:
a save answered 409 means another run wrote the record since this one read it, and that run's
traffic is not this one's to move.

The record is the intent; the cluster is the truth. Every run compares the two before it moves
anything (see `Scheduler.settle`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from ..errors import TemporaryError
from .cluster import MANAGED_BY, ClusterError
from .ports import ConfigMaps

RECORD_KEY = "release.json"
LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}
# The record is a ConfigMap read on every tick: its history stays a few KiB at most.
HISTORY_LINES = 20
HISTORY_LINE_CHARS = 160
# The record's JSON spells these fields in camelCase, as Kubernetes objects do.
_CAMEL_KEYS = {
    "failed_checks": "failedChecks",
    "last_check": "lastCheck",
    "interval_seconds": "intervalSeconds",
}


class RecordPhase(StrEnum):
    """The engine's phases, plus Interrupted: stopped by something that was not the canary."""

    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INTERRUPTED = "Interrupted"


IN_FLIGHT = frozenset(
    {
        RecordPhase.WAITING,
        RecordPhase.PROGRESSING,
        RecordPhase.WAITING_PROMOTION,
        RecordPhase.PROMOTING,
    }
)


class ReleaseConflict(TemporaryError):
    """Another run holds the release record: this run must not drive the canary."""


@dataclass(frozen=True)
class Owner:
    """Who drives a release, so the next run can tell a dead owner from a live one."""

    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid())

    def is_dead(self) -> bool:
        """True only when the owner ran on this host and its process is gone: Ctrl-C, a kill."""
        if self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class CheckValue:
    """One metric at the last check: its value (None: the query returned no data), the bounds
    it was judged by (`ThresholdRange.describe()`, "" for none) and the verdict."""

    value: float | None
    bounds: str
    passed: bool


@dataclass(frozen=True)
class HistoryEntry:
    """One line of what the release did, at a Unix time."""

    at: float
    text: str


@dataclass(frozen=True)
class ReleaseRecord:
    """One release of one pod-template revision, as far as the cluster confirmed it.

    `weight` is the canary weight last confirmed on the cluster and `settled` says whether the
    cluster is confirmed at the rest the phase implies (all traffic on the primary, the canary at
    zero); a run that dies between the two leaves `settled` false for the next run to finish.
    """

    revision: str
    phase: RecordPhase
    step: int = -1
    weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    reason: str | None = None
    settled: bool = False
    promotion: str | None = None
    cookie: str | None = None
    """The sticky-session cookie value the last run gave canary users, to expire it later."""
    gate: str | None = None
    """The id of the Rollout that owns the record: a deleted Rollout leaves another's alone."""
    heartbeat: float = 0.0
    owner: Owner | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """Cumulative metric state across releases (counters, histograms), opaque here."""
    # What `python -m components.status` shows from any machine; optional, as older runs
    # wrote none of them.
    last_check: Mapping[str, CheckValue] = field(default_factory=dict)
    """The last metric check, by metric name."""
    threshold: int | None = None
    """The failed checks that roll the release back (the plan's threshold)."""
    deadline: float | None = None
    """The Unix time past which the release rolls back."""
    interval_seconds: float | None = None
    """The analysis interval the run uses, overrides included: the stale window's base."""
    history: tuple[HistoryEntry, ...] = ()
    """The last `HISTORY_LINES` events, oldest first."""

    @property
    def in_flight(self) -> bool:
        return self.phase in IN_FLIGHT

    def abandoned(self, now: float, stale_after: float) -> bool:
        """Whether the run that wrote the record stopped: its heartbeat is `stale_after` old,
        or its process is known dead."""
        return now - self.heartbeat >= stale_after or (
            self.owner is not None and self.owner.is_dead()
        )

    def with_event(self, at: float, text: str) -> ReleaseRecord:
        """The record with one more history line, cut to size, and the oldest ones dropped."""
        if len(text) > HISTORY_LINE_CHARS:
            text = text[: HISTORY_LINE_CHARS - 1] + "\u2026"
        history = (*self.history, HistoryEntry(at, text))[-HISTORY_LINES:]
        return replace(self, history=history)

    def failed_verdict(self, revision: str) -> bool:
        """Whether `revision` is known to fail its analysis: a verdict, not an interruption."""
        return self.phase is RecordPhase.FAILED and self.revision == revision

    def to_json(self) -> str:
        data = asdict(self)
        data["phase"] = str(self.phase)
        for name, key in _CAMEL_KEYS.items():
            data[key] = data.pop(name)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReleaseRecord:
        """Tolerant of records written by older versions (missing keys, `retryable`)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        phase = RecordPhase(str(data.get("phase") or RecordPhase.SUCCEEDED))
        if phase is RecordPhase.FAILED and data.get("retryable"):
            phase = RecordPhase.INTERRUPTED
        owner = data.get("owner")
        return cls(
            revision=str(data.get("revision") or ""),
            phase=phase,
            step=int(data.get("step", -1)),
            weight=int(data.get("weight") or 0),
            failed_checks=int(data.get("failedChecks") or 0),
            iterations=int(data.get("iterations") or 0),
            reason=data.get("reason"),
            settled=bool(data.get("settled", phase not in IN_FLIGHT)),
            promotion=data.get("promotion"),
            cookie=data.get("cookie"),
            gate=data.get("gate"),
            heartbeat=float(data.get("heartbeat") or 0.0),
            owner=Owner(str(owner["host"]), int(owner["pid"]))
            if isinstance(owner, dict) and "host" in owner and "pid" in owner
            else None,
            metrics=data.get("metrics") or {},
            last_check={
                str(name): CheckValue(
                    _optional(float, value.get("value")),
                    str(value.get("bounds") or ""),
                    bool(value.get("passed")),
                )
                for name, value in _mapping(data.get("lastCheck")).items()
                if isinstance(value, dict)
            },
            threshold=_optional(int, data.get("threshold")),
            deadline=_optional(float, data.get("deadline")),
            interval_seconds=_optional(float, data.get("intervalSeconds")),
            history=tuple(
                HistoryEntry(float(entry.get("at") or 0.0), str(entry.get("text") or ""))
                for entry in data.get("history") or []
                if isinstance(entry, dict)
            ),
        )


N = TypeVar("N", int, float)


def _optional(kind: Callable[[Any], N], value: Any) -> N | None:
    return None if value is None else kind(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


class RecordStore:
    """The only reader and writer of one canary's release record.

    It keeps the resourceVersion of its last read or write: every save passes it, so the record
    is a lock, and a run that lost it raises `ReleaseConflict` before it moves any traffic.
    """

    def __init__(
        self,
        maps: ConfigMaps,
        canary: str,
        namespace: str,
        clock: Callable[[], float],
    ) -> None:
        self._maps = maps
        self.canary = canary
        self.namespace = namespace
        self._clock = clock
        self._version: str | None = None
        self._read = False

    @property
    def name(self) -> str:
        return f"{self.canary}-canary-release"

    def load(self) -> ReleaseRecord | None:
        """The record as stored now, remembering its version for the next save."""
        stored = self._maps.read_config_map(self.name)
        self._read = True
        if stored is None:
            self._version = None
            return None
        self._version = stored.version
        try:
            return ReleaseRecord.from_json(stored.data.get(RECORD_KEY, ""))
        except (ValueError, KeyError, TypeError):
            raise ClusterError(
                "decode", "ConfigMap", self.namespace, self.name, f"{RECORD_KEY} is not a record"
            ) from None

    def claim(self, stale_after: float) -> ReleaseRecord | None:
        """Reads the record for a run that is about to drive the release.

        A release in flight whose owner is alive (heartbeat fresher than `stale_after`, process
        not known dead) belongs to another run: ReleaseConflict, before anything moves.
        """
        record = self.load()
        if record is None or not record.in_flight:
            return record
        now = self._clock()
        if not record.abandoned(now, stale_after):
            age = now - record.heartbeat
            raise ReleaseConflict(
                f"another release of {self.canary} is running (heartbeat {age:.0f}s ago, "
                f"owner {record.owner or 'unknown'}); it counts as interrupted once its "
                f"heartbeat is {stale_after:.0f}s old"
            )
        return record

    def save(self, record: ReleaseRecord) -> ReleaseRecord:
        """Writes `record` over the version last read or written, stamped with this process
        and the time; ReleaseConflict when another run wrote it in between."""
        if not self._read:
            self.load()
        stamped = replace(record, heartbeat=self._clock(), owner=Owner.this_process())
        try:
            self._version = self._maps.write_config_map(
                self.name, {RECORD_KEY: stamped.to_json()}, self._version, LABELS
            )
        except ClusterError as error:
            if error.code not in (404, 409):
                raise
            raise ReleaseConflict(
                f"another release of {self.canary} is running: {self._lost_lock(error)}"
            ) from None
        return stamped

    def delete(self) -> None:
        self._maps.delete_config_map(self.name)
        self._version = None

    def _lost_lock(self, error: ClusterError) -> str:
        where = f"{self.namespace}/{self.name}"
        if error.verb == "create":
            return f"its record {where} already exists"
        if error.code == 404:
            return f"its record {where} was deleted"
        return f"its record {where} changed since this run read it"
