"""Carries out releases: the engine's decisions, through the adapters, on a clock."""

from ..adapters.stop import stop_all, stopping
from .clock import SYSTEM_CLOCK, Clock, SystemClock
from .driver import CleanupIncomplete, Scheduler
from .progress import print_progress
from .report import CheckEntry, ReleaseReport

__all__ = [
    "SYSTEM_CLOCK",
    "CheckEntry",
    "CleanupIncomplete",
    "Clock",
    "ReleaseReport",
    "Scheduler",
    "SystemClock",
    "print_progress",
    "stop_all",
    "stopping",
]
