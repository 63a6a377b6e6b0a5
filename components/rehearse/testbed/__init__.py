"""Local test bed: a Kubernetes API emulator, a mesh simulator, Prometheus, a Pushgateway
and receivers.

`TestBed` wires them the way a cluster would look to a release: the in-cluster
addresses of Prometheus, the Pushgateway and the loadtester resolve through the API
server's service proxy, and the mesh's Istio metrics and the pushed release metrics are
scraped by a real Prometheus. The loadtester's `hey` commands become mesh traffic, and
`local_only()` gives the transports that keep every other request on the machine.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

try:
    import kmock  # noqa: F401 (the test bed's emulator; only the `rehearse` extra installs it)
except ImportError as missing:
    raise ImportError(
        "the rehearsal's test bed needs its extra: pip install 'pulumi-canary[rehearse]'"
    ) from missing

from .kube import KubeApiEmulator, KubeEmulator
from .mesh import LOAD_TEST, Fault, MeshSimulator, RequestClass
from .outside import LocalOnly
from .prometheus import PrometheusServer
from .pushgateway import PushgatewayServer
from .receivers import AlertReceiver, LoadTest, LoadTester, Received

if TYPE_CHECKING:
    from ...spec import ReleaseSpec

__all__ = [
    "LOAD_TEST",
    "AlertReceiver",
    "Fault",
    "KubeApiEmulator",
    "KubeEmulator",
    "LoadTest",
    "LoadTester",
    "LocalOnly",
    "MeshSimulator",
    "PrometheusServer",
    "PushgatewayServer",
    "Received",
    "RequestClass",
    "TestBed",
]


def _service(name: str, namespace: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port}]},
    }


class TestBed:
    """Everything a release needs, on loopback; entered in dependency order, left in reverse."""

    __test__ = False  # not a pytest test class despite the name

    PUSHGATEWAY_ADDRESS = "http://prometheus-pushgateway.monitoring:9091"

    def __init__(
        self,
        *,
        namespace: str = "default",
        faults: Mapping[str, Fault] | None = None,
        crashloop_images: Iterable[str] = (),
        request_mix: Iterable[RequestClass] = (RequestClass(),),
        direct_rps: Mapping[str, float] | None = None,
        rps: float = 1200.0,
        scrape_interval: str = "500ms",
        token: str = "testbed-token",
    ) -> None:
        self.namespace = namespace
        self._dir = Path(tempfile.mkdtemp(prefix="testbed-"))
        self.kube = KubeEmulator(token=token)
        self._mesh_args: dict[str, Any] = {
            "token": token,
            "rps": rps,
            "request_mix": tuple(request_mix),
            "faults": dict(faults or {}),
            "crashloop_images": tuple(crashloop_images),
            "direct_rps": dict(direct_rps or {}),
        }
        self._scrape_interval = scrape_interval
        self.loadtester = LoadTester()
        self.alerts = AlertReceiver()
        self._mesh: MeshSimulator | None = None
        self._prometheus: PrometheusServer | None = None
        self._pushgateway: PushgatewayServer | None = None
        self._stack = contextlib.ExitStack()
        self.kubeconfig = self._dir / "kubeconfig"

    @property
    def mesh(self) -> MeshSimulator:
        """The running mesh simulator."""
        if self._mesh is None:
            raise RuntimeError("the test bed is not running")
        return self._mesh

    @property
    def prometheus(self) -> PrometheusServer:
        """The running Prometheus."""
        if self._prometheus is None:
            raise RuntimeError("the test bed is not running")
        return self._prometheus

    @property
    def pushgateway(self) -> PushgatewayServer:
        """The running Pushgateway, in the cluster at `PUSHGATEWAY_ADDRESS`."""
        if self._pushgateway is None:
            raise RuntimeError("the test bed is not running")
        return self._pushgateway

    def canary_weight(self, release: ReleaseSpec) -> int:
        """The share of the apex's traffic the VirtualService routes to the canary Service now,
        as the emulator holds it: for tests and benchmarks that watch a release from outside."""
        path = (
            f"/apis/networking.istio.io/v1/namespaces/{release.namespace}"
            f"/virtualservices/{release.service}"
        )
        virtual_service = self.kube.get(path) or {}
        return sum(
            int(destination.get("weight", 0))
            for route in (virtual_service.get("spec") or {}).get("http") or []
            for destination in route.get("route") or []
            if destination["destination"]["host"].split(".")[0] == release.canary_service
        )

    def __enter__(self) -> TestBed:
        stack = self._stack
        try:
            stack.callback(shutil.rmtree, self._dir, ignore_errors=True)
            kube = stack.enter_context(self.kube)
            self._mesh = stack.enter_context(
                MeshSimulator(kube.url, self.namespace, **self._mesh_args)
            )
            self._pushgateway = stack.enter_context(PushgatewayServer())
            self._prometheus = stack.enter_context(
                PrometheusServer(
                    [self._mesh.metrics_target],
                    scrape_interval=self._scrape_interval,
                    evaluation_interval=self._scrape_interval,
                    pushgateways=[self._pushgateway.target],
                )
            )
            self.loadtester.traffic = self._mesh.add_source
            stack.enter_context(self.loadtester)
            stack.enter_context(self.alerts)
            self._register_cluster_services()
            kube.write_kubeconfig(self.kubeconfig, namespace=self.namespace)
        except BaseException:
            stack.close()
            raise
        return self

    def local_only(
        self,
        *,
        allowed: Iterable[str] = (),
        on_answered: Callable[[str], None] | None = None,
    ) -> LocalOnly:
        """Transports for a release's direct requests that reach the bed's servers and the
        `allowed` URLs only; every other address is answered by the bed's alert receiver."""
        local = [
            self.kube.url,
            self.prometheus.url,
            self.pushgateway.url,
            self.loadtester.url,
            f"http://{self.mesh.metrics_target}",
        ]
        return LocalOnly(self.alerts.url, local=local, allowed=allowed, on_answered=on_answered)

    def _register_cluster_services(self) -> None:
        kube = self.kube
        for namespace in {"istio-system", "monitoring", self.namespace} - {"default"}:
            kube.apply_object(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        kube.apply_object(_service("prometheus", "istio-system", 9090))
        kube.apply_object(_service("flagger-loadtester", "default", 80))
        kube.apply_object(_service("prometheus-pushgateway", "monitoring", 9091))
        kube.register_service_proxy("istio-system", "prometheus", 9090, self.prometheus.url)
        kube.register_service_proxy(
            "monitoring", "prometheus-pushgateway", 9091, self.pushgateway.url
        )
        kube.register_service_proxy("default", "flagger-loadtester", 80, self.loadtester.url)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
        self._mesh = None
        self._prometheus = None
        self._pushgateway = None
