"""Cluster credentials, found the way kubectl finds them, and the clients built from them."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import lightkube
import yaml
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig, SingleConfig

from .base import Closing
from .endpoints import Endpoints, HttpClients, Transports

_SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class KubeAccess:
    """Plain data only, so a dynamic provider holding it pickles by value and prints nothing.

    Order of precedence: an explicit kubeconfig (its text, from a secret input, or a file named
    on a command line), then the KUBECONFIG file or ~/.kube/config with an optional context,
    then in-cluster credentials.
    """

    kubeconfig: str | None = None
    context: str | None = None
    timeout_seconds: float = 10.0
    kubeconfig_file: str | None = None
    """Read as kubectl reads `--kubeconfig`: relative paths in it resolve from its folder."""

    def __repr__(self) -> str:
        shown = "<explicit kubeconfig>" if self.kubeconfig or self.kubeconfig_file else "<ambient>"
        return f"KubeAccess({shown}, context={self.context!r})"

    def config(self) -> SingleConfig:
        try:
            config = self._kubeconfig().get(context_name=self.context)
        except (AttributeError, KeyError, TypeError):
            # lightkube reads the document as it finds it; its errors name no file or field.
            raise lightkube.ConfigError(
                "the kubeconfig is not one: it needs clusters, contexts and users"
            ) from None
        if config is None:
            raise lightkube.ConfigError(f"kubeconfig has no context {self.context!r}")
        return config

    def _kubeconfig(self) -> KubeConfig:
        if self.kubeconfig:
            try:
                loaded = yaml.safe_load(self.kubeconfig)
            except yaml.YAMLError:
                # The parser's message quotes the offending line: a key or a token, perhaps.
                raise lightkube.ConfigError("the kubeconfig given is not valid YAML") from None
            return KubeConfig.from_dict(loaded)
        if self.kubeconfig_file:
            return _from_file(self.kubeconfig_file)
        listed = [path for path in os.environ.get("KUBECONFIG", "").split(os.pathsep) if path]
        for path in listed or [str(Path.home() / ".kube" / "config")]:
            if Path(path).exists():
                return _from_file(path)
        if _SERVICE_ACCOUNT.exists():
            return KubeConfig.from_service_account()
        raise lightkube.ConfigError(
            "no cluster credentials: pass a kubeconfig, set KUBECONFIG, or run in a cluster"
        )

    def client(self) -> lightkube.Client:
        return lightkube.Client(
            config=self.config(), timeout=httpx.Timeout(self.timeout_seconds), field_manager=None
        )

    def http(self, timeout: float | None = None) -> httpx.Client:
        """An httpx client against the API server with the same auth, for the service proxy."""
        params = client_adapter.ConnectionParams(
            timeout=httpx.Timeout(timeout or self.timeout_seconds)
        )
        return client_adapter.Client(self.config(), params)

    def namespace(self) -> str:
        return self.config().namespace or "default"

    def server(self) -> str:
        """The API server's URL, for messages (a kubeconfig's server carries no credential)."""
        try:
            return str(self.config().cluster.server)
        except (lightkube.ConfigError, AttributeError):
            return "the cluster of the gate's credentials"


def _from_file(path: str) -> KubeConfig:
    try:
        return KubeConfig.from_file(path)
    except yaml.YAMLError:
        # As for kubeconfig text: the parser's message may quote a token.
        raise lightkube.ConfigError(f"kubeconfig {path} is not valid YAML") from None


class Connections(Closing):
    """Every client of one cluster's credentials, shared by all the releases that use them.

    Built lazily (a preview never connects) and thread-safe: the releases of a group run on a
    few worker threads over one lightkube client and one set of HTTP pools. `transports`
    replaces how the requests sent direct (not to the API server) travel.
    """

    def __init__(self, access: KubeAccess, *, transports: Transports | None = None) -> None:
        self.access = access
        self._lock = threading.Lock()
        self._kube: lightkube.Client | None = None
        self.http = HttpClients(access.http, timeout=access.timeout_seconds, transports=transports)
        # Event receivers that gave no answer, shared by the releases using these clients.
        self.silent_receivers: set[str] = set()

    @property
    def kube(self) -> lightkube.Client:
        with self._lock:
            if self._kube is None:
                self._kube = self.access.client()
            return self._kube

    def endpoints(self, namespace: str) -> Endpoints:
        """A release's view of the HTTP pools: one-label hosts resolve in `namespace`."""
        return Endpoints(self.http, namespace)

    def close(self) -> None:
        with self._lock:
            if self._kube is not None:
                self._kube.close()
                self._kube = None
        self.http.close()


class ConnectionPool(Closing):
    """One `Connections` per set of credentials, for releases run together: a wave of a group
    holds one lightkube client and one set of HTTP pools per cluster, whatever its size."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_access: dict[KubeAccess, Connections] = {}

    def of(self, access: KubeAccess) -> Connections:
        with self._lock:
            if access not in self._by_access:
                self._by_access[access] = Connections(access)
            return self._by_access[access]

    def close(self) -> None:
        with self._lock:
            pooled, self._by_access = list(self._by_access.values()), {}
        for connections in pooled:
            connections.close()
