"""Reaches in-cluster URLs from outside the cluster through the API server's service proxy.

A release runs on a laptop or a CI runner, where `http://prometheus.istio-system:9090` does not
resolve. Such URLs are rewritten to `/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/...`
and sent with the cluster's credentials; any other URL goes direct.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

_CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")


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
    host = parsed.host
    if not host or host.replace(".", "").isdigit() or host == "localhost":
        return None
    for suffix in _CLUSTER_SUFFIXES:
        if host.endswith(suffix):
            host = host.removesuffix(suffix)
            break
    labels = host.split(".")
    if len(labels) > 2:
        return None
    namespace = labels[1] if len(labels) == 2 else default_namespace
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return ServiceAddress(namespace, labels[0], port, parsed.scheme)


class Endpoints:
    """Sends requests direct, or through the service proxy when the host is a cluster Service.

    A two-label host such as `flagger-loadtester.default` could also be a public name, so the
    Service is looked up once; a 404 means the URL is public and goes direct.
    """

    def __init__(
        self,
        api: Callable[[], httpx.Client] | None = None,
        default_namespace: str = "default",
        timeout: float = 10.0,
    ) -> None:
        self._api_factory = api
        self._api: httpx.Client | None = None
        self._timeout = timeout
        self._direct = httpx.Client(timeout=timeout)
        self._unverified: httpx.Client | None = None
        self._namespace = default_namespace
        self._known: dict[ServiceAddress, bool] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Endpoints:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for client in (self._direct, self._unverified, self._api):
            if client is not None:
                client.close()

    def request(
        self, method: str, url: str, *, verify: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """`verify=False` (a webhook's `disableTLS`, a provider's `insecureSkipVerify`) skips
        certificate checks on a direct request; a proxied one is verified by the API server."""
        address = self._in_cluster(url)
        if address is None:
            return self._direct_client(verify).request(method, url, **kwargs)
        parsed = httpx.URL(url)
        path = address.proxy_path(parsed.path, parsed.query.decode())
        return self._api_client().request(method, path, **kwargs)

    def describe(self, url: str) -> str:
        """How a URL is reached, for progress lines and error messages (never credentials)."""
        address = self._in_cluster(url)
        return f"{url} via the API server's service proxy" if address else url

    def _in_cluster(self, url: str) -> ServiceAddress | None:
        if self._api_factory is None:
            return None
        address = service_address(url, self._namespace)
        if address is None:
            return None
        with self._lock:
            if address not in self._known:
                self._known[address] = self._service_exists(address)
        return address if self._known[address] else None

    def _service_exists(self, address: ServiceAddress) -> bool:
        path = f"/api/v1/namespaces/{address.namespace}/services/{address.name}"
        response = self._api_client().get(path)
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def _direct_client(self, verify: bool) -> httpx.Client:
        if verify:
            return self._direct
        if self._unverified is None:
            self._unverified = httpx.Client(timeout=self._timeout, verify=False)
        return self._unverified

    def _api_client(self) -> httpx.Client:
        if self._api is None:
            assert self._api_factory is not None
            self._api = self._api_factory()
        return self._api
