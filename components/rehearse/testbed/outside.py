"""The rehearsal's way out, closed: every direct request to an address outside the bed is
answered by the bed's own receiver instead, and remembered.

A release sends in-cluster URLs through the API server's service proxy (the bed's emulator),
and everything else direct: a Slack hook, an alert provider's address, a Service the bed does
not have. In a rehearsal those direct requests travel through `LocalOnly.transport`, which
passes the ones for the bed's own servers (and for addresses the user asked for, such as
`--pushgateway`) and sends every other one to the bed's receiver, recording what it would have
called. No product code knows: the scheduler's HTTP pools are merely built with this transport.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

ORIGINAL_URL_HEADER = "X-Rehearsal-Would-Call"


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: httpx.URL | str) -> Origin:
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return cls(parsed.scheme, parsed.host.lower(), port)


def shown(url: httpx.URL | str) -> str:
    """`https://hooks.slack.com/...`: a hook's path is its credential, so only the origin is
    shown, with `/...` when there is more."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    more = "/..." if parsed.raw_path not in (b"", b"/") else "/"
    return f"{parsed.scheme}://{parsed.host}{port}{more}"


class LocalOnly:
    """The transports of one rehearsal's direct requests, and what they kept from the world.

    `local` are the bed's own servers' URLs, `allowed` the addresses the user named; a request
    for any other origin goes to `receiver` (path and query kept, the original URL in the
    `X-Rehearsal-Would-Call` header) and `on_answered(shown_url)` is called the first time
    each shown URL is answered so.
    """

    def __init__(
        self,
        receiver: str,
        *,
        local: Iterable[str] = (),
        allowed: Iterable[str] = (),
        on_answered: Callable[[str], None] | None = None,
    ) -> None:
        self._receiver = httpx.URL(receiver)
        self._passing = {Origin.of(url) for url in (receiver, *local, *allowed)}
        self._on_answered = on_answered
        self._lock = threading.Lock()
        self._answered: Counter[str] = Counter()

    @property
    def answered(self) -> dict[str, int]:
        """Each shown URL that was answered locally, and how many times."""
        with self._lock:
            return dict(self._answered)

    def transport(self, verify: bool) -> httpx.BaseTransport:
        """The transport of a direct client (`verify` for the requests that pass)."""
        return _Transport(self, httpx.HTTPTransport(verify=verify))

    def _route(self, request: httpx.Request) -> httpx.Request:
        if Origin.of(request.url) in self._passing:
            return request
        label = shown(request.url)
        with self._lock:
            first = label not in self._answered
            self._answered[label] += 1
        if first and self._on_answered is not None:
            self._on_answered(label)
        url = self._receiver.copy_with(
            raw_path=request.url.raw_path, fragment=None
        )  # raw_path carries the query
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        headers[ORIGINAL_URL_HEADER] = label
        return httpx.Request(
            request.method,
            url,
            headers=headers,
            content=request.read(),
            extensions=request.extensions,
        )


class _Transport(httpx.BaseTransport):
    def __init__(self, owner: LocalOnly, inner: httpx.HTTPTransport) -> None:
        self._owner = owner
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(self._owner._route(request))

    def close(self) -> None:
        self._inner.close()
