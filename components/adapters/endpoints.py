"""Reaches in-cluster URLs from outside the cluster through the API server's service proxy.

A release runs on a laptop or a CI runner, where `http://prometheus.istio-system:9090` does not
resolve. Such URLs are rewritten to `/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/...`
and sent with the cluster's credentials; any other URL goes direct.

`HttpClients` owns the connection pools and is shared by every release of a process;
`Endpoints` is one release's view of them (its namespace resolves one-label hosts).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..spec.hosts import service_of_host
from .base import Closing
from .retry import TRANSIENT_STATUS, Backoff, retry_after, retrying, transport_transient

# The one-off look-up of whether a host is a Service rides out a busy API server too.
LOOKUP_BACKOFF = Backoff(budget=10.0)

Transports = Callable[[bool], httpx.BaseTransport]
"""verify -> the transport of the direct requests (the httpx default when not given)."""


def _transient(error: Exception) -> tuple[bool, float | None]:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in TRANSIENT_STATUS, retry_after(error.response)
    return transport_transient(error), None


@dataclass(frozen=True)
class ServiceAddress:
    namespace: str
    name: str
    port: int
    scheme: str

    def proxy_path(self, path: str, query: str) -> str:
        prefix = "https:" if self.scheme == "https" else ""
        tail = path.lstrip("/")
        target = f"/api/v1/namespaces/{self.namespace}/services/{prefix}{self.name}:{self.port}"
        return f"{target}/proxy/{tail}" + (f"?{query}" if query else "")


def service_address(url: str, default_namespace: str) -> ServiceAddress | None:
    """The Service a URL names, if its host has the shape of in-cluster DNS; None otherwise."""
    parsed = httpx.URL(url)
    if parsed.host == "localhost":
        return None
    found = service_of_host(parsed.host, default_namespace)
    if found is None:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return ServiceAddress(found[1], found[0], port, parsed.scheme)


class HttpClients(Closing):
    """The HTTP connection pools of a process: direct (verified and not) and the API server's.

    Shared by every release, so a hundred releases hold a handful of pools, not a hundred. A
    two-label host such as `flagger-loadtester.default` could also be a public name, so whether
    it is a Service is looked up once and remembered; a 404 means the URL is public.

    `transports` replaces how direct requests travel (the rehearsal answers them locally).
    """

    def __init__(
        self,
        api: Callable[[], httpx.Client] | None = None,
        timeout: float = 10.0,
        transports: Transports | None = None,
    ) -> None:
        self._api_factory = api
        self._timeout = timeout
        self._transports = transports
        self._lock = threading.Lock()
        self._api: httpx.Client | None = None
        self._direct: httpx.Client | None = None
        self._unverified: httpx.Client | None = None
        self._known: dict[ServiceAddress, bool] = {}

    def close(self) -> None:
        with self._lock:
            for client in (self._direct, self._unverified, self._api):
                if client is not None:
                    client.close()
            self._api = self._direct = self._unverified = None

    @property
    def proxies(self) -> bool:
        """Whether in-cluster URLs can go through an API server at all."""
        return self._api_factory is not None

    def direct(self, verify: bool) -> httpx.Client:
        with self._lock:
            if verify:
                if self._direct is None:
                    self._direct = self._client(verify)
                return self._direct
            if self._unverified is None:
                self._unverified = self._client(verify)
            return self._unverified

    def _client(self, verify: bool) -> httpx.Client:
        if self._transports is None:
            return httpx.Client(timeout=self._timeout, verify=verify)
        return httpx.Client(timeout=self._timeout, transport=self._transports(verify))

    def api(self) -> httpx.Client:
        with self._lock:
            if self._api is None:
                assert self._api_factory is not None
                self._api = self._api_factory()
            return self._api

    def is_service(self, address: ServiceAddress) -> bool:
        with self._lock:
            known = self._known.get(address)
        if known is None:
            path = f"/api/v1/namespaces/{address.namespace}/services/{address.name}"

            def look_up() -> httpx.Response:
                response = self.api().get(path)
                if response.status_code != 404:
                    response.raise_for_status()
                return response

            response = retrying(look_up, _transient, backoff=LOOKUP_BACKOFF)
            known = response.status_code != 404
            with self._lock:
                self._known[address] = known
        return known


class Endpoints:
    """Sends one release's requests direct, or through the service proxy for cluster Services."""

    def __init__(self, clients: HttpClients, default_namespace: str = "default") -> None:
        self._clients = clients
        self._namespace = default_namespace

    def request(
        self, method: str, url: str, *, verify: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """`verify=False` (a webhook's `disableTLS`, a provider's `insecureSkipVerify`) skips
        certificate checks on a direct request; a proxied one is verified by the API server."""
        address = self._in_cluster(url)
        if address is None:
            return self._clients.direct(verify).request(method, url, **kwargs)
        parsed = httpx.URL(url)
        path = address.proxy_path(parsed.path, parsed.query.decode())
        return self._clients.api().request(method, path, **kwargs)

    def describe(self, url: str) -> str:
        """How a URL is reached, for progress lines and error messages (never credentials)."""
        address = self._in_cluster(url)
        return f"{url} via the API server's service proxy" if address else url

    def _in_cluster(self, url: str) -> ServiceAddress | None:
        if not self._clients.proxies:
            return None
        address = service_address(url, self._namespace)
        if address is None or not self._clients.is_service(address):
            return None
        return address
