"""The process-wide request to stop every release: Ctrl-C, SIGTERM or interpreter shutdown.

Set once, never cleared. The scheduler's sleeps wake on it, and the adapters then keep their
retries short: the engine kills a provider about 5 s after its SIGINT, and returning traffic to
the primary must fit in that.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

# How long a call may keep retrying once the process is stopping.
STOPPING_BUDGET_SECONDS = 1.5
# How long a release's clean-up may take once the process is stopping: the engine sends SIGKILL
# about 5 s after its SIGINT.
STOPPING_CLEANUP_SECONDS = 3.5


class _Stop:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


STOP = _Stop()


def stop_all(reason: str) -> None:
    """Asks every release of this process to abort: traffic to the primary, record interrupted."""
    STOP.request(reason)


def stopping() -> str | None:
    """Why the process is stopping its releases, or None."""
    return STOP.reason if STOP.event.is_set() else None


_HOOKS = threading.Lock()
_INSTALLED: list[bool] = []


def stop_on_shutdown() -> None:
    """Makes the end of this process stop its releases first (idempotent).

    The Python dynamic-provider server's main thread waits on an event: the engine's SIGINT
    (a second Ctrl-C) raises KeyboardInterrupt there, the server stops and the interpreter
    shuts down, which runs threading's exit hooks before it waits for the worker threads that
    still run releases. Registered there, `stop_all` wakes them to route traffic back to the
    primary and record the interruption. Only the main thread may install signal handlers, so
    SIGINT and SIGTERM handlers are added when this runs there (a CLI, a test), not in the
    provider server, whose SIGTERM therefore ends the process at once, like SIGKILL.
    """
    with _HOOKS:
        if _INSTALLED:
            return
        _INSTALLED.append(True)
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(lambda: stop_all("the process is shutting down"))
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _stop_then_default)


def _stop_then_default(signum: int, frame: FrameType | None) -> None:
    """The first signal stops the releases; the next one acts as it would have."""
    stop_all(signal.Signals(signum).name)
    signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
