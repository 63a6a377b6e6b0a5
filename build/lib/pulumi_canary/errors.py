"""One error tree for everything this package raises, split by what a rerun can do about it.

Like kopf's PermanentError and TemporaryError: a `PermanentError` will happen again on the next
`pulumi up` unless the input changes (a bad field, a canary that failed its analysis); a
`TemporaryError` is not the canary's fault (an API outage, another run holding the release, an
interruption), so the next run analyses the same template again instead of failing fast.

Every message stands on its own and never carries a credential: the Pulumi engine shows the
last line of a provider's traceback, and nothing masks it.
"""

from __future__ import annotations


class CanaryError(Exception):
    """The base of every error of this package."""


class PermanentError(CanaryError):
    """Retrying without a change cannot help."""


class TemporaryError(CanaryError):
    """The next run may succeed with the same inputs."""


class ReleaseFailed(PermanentError):
    """The canary failed its analysis, now or in a recorded run: a verdict, kept until the pod
    template changes or `retryFailed` asks for another analysis."""


class ReleaseInterrupted(TemporaryError):
    """The release was stopped from outside (Ctrl-C, SIGTERM, interpreter shutdown) and its
    traffic returned to the primary; the next run starts it over."""
