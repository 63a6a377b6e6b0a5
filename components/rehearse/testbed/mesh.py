"""A mesh simulator: plays the kubelet and the Envoy sidecars for one namespace.

It reads Deployments, Services, VirtualServices, ConfigMaps and Secrets from
the API, marks Deployments ready (or crash-looping), gives their pods the
environment a kubelet would, and turns simulated requests into Istio's
standard destination-reported metrics, exported for Prometheus. No real
requests are made: per tick it computes how many requests each route would
carry.
"""

from __future__ import annotations

import base64
import contextlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client import Counter as MetricCounter

from .faults import TESTBED_AGENT

ISTIO_BUCKETS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
    30000, 60000, 300000, 600000, 1800000, 3600000,
)  # fmt: skip

_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_app",
    "destination_version",
    "request_protocol",
    "response_code",
    "response_flags",
    "connection_security_policy",
)


@dataclass(frozen=True)
class RequestClass:
    """A slice of the request mix: headers it carries and its share of the traffic."""

    name: str = "default"
    headers: Mapping[str, str] = field(default_factory=dict)
    share: float = 1.0
    path: str = "/"
    source_workload: str = "ingress"


LOAD_TEST = RequestClass("load-test", source_workload="flagger-loadtester")
"""What a load test sends: no headers, from the loadtester's workload."""


@dataclass(frozen=True)
class TimedSource:
    """Traffic sent to `host` at `rps` until `until` (monotonic seconds), such as a load test."""

    host: str
    rps: float
    until: float
    request_class: RequestClass = LOAD_TEST


@dataclass(frozen=True)
class Fault:
    """What a workload (or image) does to requests: 5xx fraction, p99 latency, no sidecar."""

    error_rate: float = 0.0
    latency_ms: float = 20.0
    no_telemetry: bool = False


@dataclass
class _Workload:
    name: str
    labels: dict[str, str]
    image: str
    ready: bool
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class _View:
    """What the simulator last read from the API."""

    workloads: dict[str, _Workload] = field(default_factory=dict)
    services: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> selector
    virtual_services: list[dict[str, Any]] = field(default_factory=list)


class MeshSimulator:
    """Kubelet plus Envoy for `namespace`, polling the API and exporting Istio metrics.

    `faults` is keyed by Deployment name, container image, or `NAME=VALUE` of an
    environment variable its pods started with (what a canary's config says: a
    ConfigMap or Secret read through `env` or `envFrom`); `crashloop_images`
    never become ready. `direct_rps` sends traffic straight to a host (for
    example `podinfo-canary` in blue/green tests) besides the apex hosts, for as
    long as the simulator runs; `add_source` does so for a while (a load test).
    """

    def __init__(
        self,
        api_url: str,
        namespace: str = "default",
        *,
        token: str | None = None,
        rps: float = 1200.0,
        request_mix: Iterable[RequestClass] = (RequestClass(),),
        faults: Mapping[str, Fault] | None = None,
        crashloop_images: Iterable[str] = (),
        direct_rps: Mapping[str, float] | None = None,
        tick: float = 0.05,
        poll_interval: float = 0.2,
        seed: int | None = None,
    ) -> None:
        self.namespace = namespace
        self.rps = rps
        self.request_mix = list(request_mix)
        self.direct_rps = dict(direct_rps or {})
        self.tick = tick
        self.poll_interval = poll_interval
        self._faults = dict(faults or {})
        self._crashloop = set(crashloop_images)
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._routed: Counter[tuple[str, str]] = Counter()
        self._mirrored: Counter[tuple[str, str]] = Counter()
        self._unrouted: Counter[str] = Counter()
        self._sources: list[TimedSource] = []
        self._pending_since: dict[tuple[str, int], float] = {}
        # By Deployment and generation: pods read their environment when they start.
        self._started_with: dict[tuple[str, int], dict[str, str]] = {}
        self._view = _View()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["User-Agent"] = f"{TESTBED_AGENT}-mesh"
        self._api = httpx.Client(base_url=api_url, headers=headers, timeout=5)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._metrics_server: Any = None
        self.registry = CollectorRegistry()
        self._requests = MetricCounter(
            "istio_requests_total", "Requests", _LABELS, registry=self.registry
        )
        self._durations = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration",
            _LABELS,
            buckets=ISTIO_BUCKETS,
            registry=self.registry,
        )
        self.metrics_port = 0

    # -- control -----------------------------------------------------------------------------

    @property
    def metrics_target(self) -> str:
        """The `host:port` Prometheus scrapes."""
        return f"127.0.0.1:{self.metrics_port}"

    def start(self) -> None:
        """Serve metrics and start polling and generating traffic."""
        server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self._metrics_server = server
        self.metrics_port = server.server_port
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mesh-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the simulation and the metrics endpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        self._api.close()

    def __enter__(self) -> MeshSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_fault(self, key: str, fault: Fault | None) -> None:
        """Change (or with None, clear) the fault of a workload name or image at runtime."""
        with self._lock:
            if fault is None:
                self._faults.pop(key, None)
            else:
                self._faults[key] = fault

    def reseed(self, seed: int) -> None:
        """Restart the noise of counts, routes, errors and latencies from `seed`, so several
        rehearsals on one bed each draw their own (the scheduling of ticks still varies)."""
        with self._lock:
            self._random = random.Random(seed)

    def set_crashloop(self, image: str, crashing: bool = True) -> None:
        """Make pods with `image` crash-loop (or recover)."""
        with self._lock:
            if crashing:
                self._crashloop.add(image)
            else:
                self._crashloop.discard(image)

    def add_source(
        self, host: str, rps: float, seconds: float, request_class: RequestClass = LOAD_TEST
    ) -> TimedSource:
        """Sends `rps` requests a second to `host` (a Service, in-namespace or
        `<svc>.<ns>`) for `seconds`, routed as the mesh routes any request to it."""
        source = TimedSource(host, rps, time.monotonic() + seconds, request_class)
        with self._lock:
            self._sources.append(source)
        return source

    def active_sources(self) -> list[TimedSource]:
        """The timed sources still sending."""
        now = time.monotonic()
        with self._lock:
            return [source for source in self._sources if source.until > now]

    def environment(self, workload: str) -> dict[str, str]:
        """The environment the pods of Deployment `workload` started with, as last seen."""
        with self._lock:
            found = self._view.workloads.get(workload)
            return dict(found.environment) if found else {}

    def routed(self, workload: str, request_class: str | None = None) -> int:
        """Requests routed to `workload` (mirrored copies excluded)."""
        with self._lock:
            return sum(
                n
                for (w, c), n in self._routed.items()
                if w == workload and request_class in (None, c)
            )

    def mirrored(self, workload: str) -> int:
        """Mirrored copies that reached `workload`."""
        with self._lock:
            return sum(n for (w, _), n in self._mirrored.items() if w == workload)

    def unrouted(self, host: str | None = None) -> int:
        """Requests with no matching route or no healthy upstream."""
        with self._lock:
            return sum(n for h, n in self._unrouted.items() if host in (None, h))

    def reset_counts(self) -> None:
        """Forget the routing record (Prometheus counters keep counting)."""
        with self._lock:
            self._routed.clear()
            self._mirrored.clear()
            self._unrouted.clear()

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        last_tick = last_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_poll >= self.poll_interval:
                with contextlib.suppress(httpx.HTTPError):  # keep the last view meanwhile
                    self._poll()
                last_poll = now
            if last_tick:
                self._generate(min(now - last_tick, 1.0))
            last_tick = now
            self._stop.wait(self.tick)

    def _poll(self) -> None:
        ns = self.namespace
        deployments = self._items(f"/apis/apps/v1/namespaces/{ns}/deployments")
        services = self._items(f"/api/v1/namespaces/{ns}/services")
        vss = self._items(f"/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices")
        configs = {
            (item["kind"], item["metadata"]["name"]): _values(item)
            for path in (f"/api/v1/namespaces/{ns}/configmaps", f"/api/v1/namespaces/{ns}/secrets")
            for item in self._items(path)
        }
        view = _View(virtual_services=vss)
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector") or {}
            view.services[svc["metadata"]["name"]] = dict(selector)
        for deployment in deployments:
            workload = self._kubelet(deployment)
            workload.environment = self._start_environment(deployment, configs)
            view.workloads[workload.name] = workload
        with self._lock:
            self._view = view

    def _items(self, path: str) -> list[dict[str, Any]]:
        response = self._api.get(path)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def _kubelet(self, deployment: dict[str, Any]) -> _Workload:
        """Write the status a kubelet and the deployment controller would produce."""
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        template = spec.get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or [{}]
        image = str(containers[0].get("image", ""))
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        replicas = int(spec.get("replicas", 1))
        generation = int(meta.get("generation", 1))
        with self._lock:
            crashing = image in self._crashloop and replicas > 0
        key = (meta["name"], generation)
        first_seen = self._pending_since.setdefault(key, time.monotonic())
        ready = 0 if crashing else replicas
        deadline = float(spec.get("progressDeadlineSeconds", 600))
        if not crashing:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                "ReplicaSet has successfully progressed.",
            )
        elif time.monotonic() - first_seen > deadline:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                "ReplicaSet has timed out progressing.",
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", "ReplicaSet is progressing.")
        available = (
            ("False", "MinimumReplicasUnavailable")
            if crashing
            else ("True", "MinimumReplicasAvailable")
        )
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **({"unavailableReplicas": replicas} if crashing else {}),
            "conditions": [
                {"type": "Available", "status": available[0], "reason": available[1],
                 "message": "Deployment availability."},
                {"type": "Progressing", "status": progressing[0], "reason": progressing[1],
                 "message": progressing[2]},
            ],
        }  # fmt: skip
        if _without_times(deployment.get("status")) != status:
            self._write_status(deployment, status)
        return _Workload(meta["name"], labels, image, ready > 0)

    def _start_environment(
        self, deployment: dict[str, Any], configs: Mapping[tuple[str, str], dict[str, str]]
    ) -> dict[str, str]:
        """The first container's environment, read once per generation as pods read theirs when
        they start: a later change of a ConfigMap reaches only pods started after it. Read again
        while a config it names is missing, as the kubelet retries a pod it cannot start."""
        key = (deployment["metadata"]["name"], int(deployment["metadata"].get("generation", 1)))
        if key in self._started_with:
            return self._started_with[key]
        containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        container = (containers.get("containers") or [{}])[0]
        environment, complete = _environment(container, configs)
        if complete:
            self._started_with[key] = environment
        return environment

    def _write_status(self, deployment: dict[str, Any], status: dict[str, Any]) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for condition in status["conditions"]:
            condition["lastUpdateTime"] = condition["lastTransitionTime"] = now
        name = deployment["metadata"]["name"]
        self._api.patch(
            f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
            params={"fieldManager": "kubelet"},
        )

    # -- traffic -----------------------------------------------------------------------------

    def _generate(self, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            view = self._view
            faults = dict(self._faults)
            self._sources = [source for source in self._sources if source.until > now]
            sources = list(self._sources)
        total_share = sum(c.share for c in self.request_mix) or 1.0
        sends: list[tuple[str, RequestClass, int]] = []
        for vs in view.virtual_services:
            hosts = (vs.get("spec") or {}).get("hosts") or []
            apex = next((h for h in hosts if _short(h, self.namespace) in view.services), None)
            if apex is None:
                continue
            for request_class in self.request_mix:
                rate = self.rps * request_class.share / total_share
                sends.append((apex, request_class, self._count(rate * seconds)))
        for host, rate in self.direct_rps.items():
            for request_class in self.request_mix:
                share = request_class.share / total_share
                sends.append((host, request_class, self._count(rate * share * seconds)))
        for source in sources:  # still sending at the end of this tick
            sends.append((source.host, source.request_class, self._count(source.rps * seconds)))
        for host, request_class, count in sends:
            if count:
                self._route(view, faults, host, request_class, count)

    def _count(self, expected: float) -> int:
        """A noisy count around `expected` (never negative)."""
        return max(0, round(self._random.gauss(expected, max(expected, 1.0) ** 0.5)))

    def _route(
        self,
        view: _View,
        faults: dict[str, Fault],
        host: str,
        request_class: RequestClass,
        count: int,
    ) -> None:
        service = _short(host, self.namespace)
        vs = next(
            (
                v
                for v in view.virtual_services
                if any(_short(h, self.namespace) == service for h in v["spec"].get("hosts", []))
            ),
            None,
        )
        if vs is None:  # no VirtualService: plain Kubernetes service routing
            self._deliver(view, faults, service, request_class, count, mirrored=False)
            return
        route = next(
            (r for r in vs["spec"].get("http") or [] if _route_matches(r, request_class)), None
        )
        if route is None:
            with self._lock:
                self._unrouted[service] += count
            return
        destinations = route.get("route") or []
        # Istio sends a sole destination everything, whatever its weight (Flagger writes the
        # A/B default route's with the primary's weight, 0 during the test).
        weights = (
            [1.0] if len(destinations) == 1 else [float(d.get("weight", 0)) for d in destinations]
        )
        if sum(weights) <= 0:
            with self._lock:
                self._unrouted[service] += count
            return
        picks = Counter(self._random.choices(range(len(destinations)), weights, k=count))
        for index, n in picks.items():
            target = _short(destinations[index]["destination"]["host"], self.namespace)
            self._deliver(view, faults, target, request_class, n, mirrored=False)
        mirror = route.get("mirror")
        if mirror:
            percent = float((route.get("mirrorPercentage") or {}).get("value", 100.0))
            copies = sum(self._random.random() * 100 < percent for _ in range(count))
            target = _short(mirror["host"], self.namespace)
            self._deliver(view, faults, target, request_class, copies, mirrored=True)

    def _deliver(
        self,
        view: _View,
        faults: dict[str, Fault],
        service: str,
        request_class: RequestClass,
        count: int,
        *,
        mirrored: bool,
    ) -> None:
        selector = view.services.get(service)
        workload = next(
            (
                w
                for w in view.workloads.values()
                if selector and all(w.labels.get(k) == v for k, v in selector.items())
            ),
            None,
        )
        if workload is None or not workload.ready or count == 0:
            if not mirrored:  # Envoy answers 503 "no healthy upstream" from the source side
                with self._lock:
                    self._unrouted[service] += count
            return
        with self._lock:
            (self._mirrored if mirrored else self._routed)[workload.name, request_class.name] += (
                count
            )
        fault = _fault_of(workload, faults)
        if fault.no_telemetry:
            return
        errors = sum(self._random.random() < fault.error_rate for _ in range(count))
        base = {
            "reporter": "destination",
            "source_workload": request_class.source_workload,
            "source_workload_namespace": self.namespace,
            "destination_workload": workload.name,
            "destination_workload_namespace": self.namespace,
            "destination_service": f"{service}.{self.namespace}.svc.cluster.local",
            "destination_service_name": service,
            "destination_service_namespace": self.namespace,
            "destination_app": workload.labels.get("app", workload.name),
            "destination_version": workload.labels.get("version", "unknown"),
            "request_protocol": "http",
            "response_flags": "-",
            "connection_security_policy": "mutual_tls",
        }
        for code, n in (("500", errors), ("200", count - errors)):
            if n == 0:
                continue
            labels = {**base, "response_code": code}
            self._requests.labels(**labels).inc(n)
            histogram = self._durations.labels(**labels)
            for _ in range(n):
                # Uniform on [0.2, 1.0] x target keeps the p99 within 1% of the target.
                histogram.observe(fault.latency_ms * self._random.uniform(0.2, 1.0))


def _fault_of(workload: _Workload, faults: Mapping[str, Fault]) -> Fault:
    """By Deployment name, else image, else `NAME=VALUE` of the pods' environment."""
    keys = [workload.name, workload.image, *(f"{k}={v}" for k, v in workload.environment.items())]
    return next((faults[key] for key in keys if key in faults), Fault())


def _values(config: dict[str, Any]) -> dict[str, str]:
    """A ConfigMap's data, or a Secret's decoded."""
    data = config.get("data") or {}
    if config["kind"] == "Secret":
        return {key: base64.b64decode(value).decode() for key, value in data.items()}
    return dict(data)


def _environment(
    container: Mapping[str, Any], configs: Mapping[tuple[str, str], dict[str, str]]
) -> tuple[dict[str, str], bool]:
    """What the kubelet gives a container: `envFrom` first (with its prefix), then `env`, which
    wins; and whether every ConfigMap, Secret and key it names was there."""
    environment: dict[str, str] = {}
    complete = True
    for source in container.get("envFrom") or []:
        for field_name, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(field_name)
            if ref is None:
                continue
            values = configs.get((kind, ref.get("name")))
            complete = complete and (values is not None or bool(ref.get("optional")))
            prefix = source.get("prefix") or ""
            environment.update({prefix + k: v for k, v in (values or {}).items()})
    for variable in container.get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
            continue
        source = variable.get("valueFrom") or {}
        for field_name, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = source.get(field_name)
            if ref is None:
                continue
            value = (configs.get((kind, ref.get("name"))) or {}).get(ref.get("key"))
            complete = complete and (value is not None or bool(ref.get("optional")))
            if value is not None:
                environment[variable["name"]] = value
    return environment, complete


def _short(host: str, namespace: str) -> str:
    """`podinfo.default.svc.cluster.local` and `podinfo.default` are `podinfo` in-namespace."""
    for suffix in (f".{namespace}.svc.cluster.local", f".{namespace}.svc", f".{namespace}"):
        if host.endswith(suffix):
            return host.removesuffix(suffix)
    return host


def _route_matches(route: dict[str, Any], request_class: RequestClass) -> bool:
    """Istio semantics: no match list matches all; any one entry of the list suffices."""
    matches = route.get("match") or []
    return not matches or any(_match_entry(m, request_class) for m in matches)


def _match_entry(entry: dict[str, Any], request_class: RequestClass) -> bool:
    headers = {k.lower(): v for k, v in request_class.headers.items()}
    for name, condition in (entry.get("headers") or {}).items():
        value = headers.get(name.lower())
        if value is None or not _string_matches(condition, value):
            return False
    for name, condition in (entry.get("withoutHeaders") or {}).items():
        value = headers.get(name.lower())
        if value is not None and _string_matches(condition, value):
            return False
    uri = entry.get("uri")
    return uri is None or _string_matches(uri, request_class.path)


def _string_matches(condition: dict[str, str], value: str) -> bool:
    if "exact" in condition:
        return value == condition["exact"]
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    if "regex" in condition:
        return re.fullmatch(condition["regex"], value) is not None  # RE2 matches whole values
    return True


def _without_times(status: Any) -> Any:
    """The status minus condition timestamps, to skip writes that change nothing."""
    if not isinstance(status, dict):
        return status
    conditions = [
        {k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
        for c in status.get("conditions") or []
    ]
    return {**status, "conditions": conditions}
