"""A dynamic provider whose Update holds its server thread until told, as a Rollout's Update
holds one for a whole analysis, and whose calls say when they ran.

Its own small module: the dynamic server unpickles it by reference, so it must import from the
project root under this name, and cheaply (no test bed behind it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pulumi.dynamic as dyn

# How often a held Update looks for the file that lets it return.
POLL_SECONDS = 0.01


class HoldingProvider(dyn.ResourceProvider):
    """Inputs: `name`, and `release`, a path: an Update returns once that file exists.

    Prints `NAME: checked` when its Check runs, `NAME: holding` when its Update starts and
    `NAME: update returns` just before it returns: the server's output is in the order the
    server ran them, whatever the client saw.
    """

    @staticmethod
    def say(line: str) -> None:
        """One write per line: `print` writes the newline apart, and the server's threads print
        concurrently, so their lines could run into each other."""
        sys.stdout.write(line + "\n")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        self.say(f"{news['name']}: checked")
        return dyn.CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        return dyn.DiffResult(changes=True, replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult(str(props["name"]), props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        self.say(f"{news['name']}: holding")
        release = Path(news["release"])
        while not release.exists():
            time.sleep(POLL_SECONDS)
        self.say(f"{news['name']}: update returns")
        return dyn.UpdateResult(news)
