"""The progress lines of releases, as `pulumi up` shows a dynamic provider's stdout."""

from __future__ import annotations

import sys
import threading

_OUTPUT_LOCK = threading.Lock()


def print_progress(line: str) -> None:
    """Pulumi (3.146+) forwards a dynamic provider's stdout line by line to `pulumi up`.

    One write per line, under a lock: `print` writes the text and the newline separately, so
    releases running on the provider's other threads could splice their lines together.
    """
    with _OUTPUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
