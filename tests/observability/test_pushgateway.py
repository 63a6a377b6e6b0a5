"""The Pushgateway client against the real Pushgateway, and against ones that fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.adapters.endpoints import Endpoints, HttpClients
from components.adapters.pushgateway import MetricCheck, Pushgateway, ReleaseMetrics
from components.analysis import Phase
from components.rehearse.testbed import PushgatewayServer
from components.rehearse.testbed._loop import free_port
from components.spec import Strategy


def snapshot(target: str = "podinfo", **changes: Any) -> ReleaseMetrics:
    fields: dict[str, Any] = {
        "target": target,
        "namespace": "test",
        "strategy": Strategy.CANARY,
        "phase": Phase.PROGRESSING,
        "canary_weight": 10,
        "primary_weight": 90,
        "checks": {"request-success-rate": MetricCheck(99.9, True, min=99)},
        "deadline": 1_800_000_000.0,
    }
    return ReleaseMetrics(**(fields | changes))


def series(text: str, family: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of one family in the Pushgateway's /metrics, keyed by all their labels."""
    return {
        frozenset(sample.labels.items()): sample.value
        for parsed in text_string_to_metric_families(text)
        if parsed.name == family
        for sample in parsed.samples
    }


def grouped(target: str, **extra: str) -> frozenset[tuple[str, str]]:
    """The labels a pushed canary series has once the Pushgateway adds its grouping key."""
    return frozenset(
        {
            "job": "pulumi-canary",
            "instance": "",
            "namespace": "test",
            "name": target,
            **extra,
        }.items()
    )


@pytest.fixture(scope="module")
def gateway_server() -> Iterator[PushgatewayServer]:
    with PushgatewayServer() as running:
        yield running


@pytest.fixture
def gateway(gateway_server: PushgatewayServer) -> Iterator[Pushgateway]:
    with HttpClients() as clients:
        endpoints = Endpoints(clients)
        yield Pushgateway(endpoints.request, gateway_server.url)


@pytest.mark.testbed
def test_a_push_is_visible_at_metrics_with_the_grouping_key(
    gateway: Pushgateway, gateway_server: PushgatewayServer
) -> None:
    assert gateway.push(snapshot(canaries_in_namespace=2)) is None
    text = gateway_server.metrics()
    assert series(text, "flagger_canary_status") == {grouped("podinfo"): 0}
    assert series(text, "flagger_canary_weight") == {
        grouped("podinfo", workload="podinfo-primary"): 90,
        grouped("podinfo", workload="podinfo"): 10,
    }
    total = {"job": "pulumi-canary", "instance": "", "namespace": "test"}
    assert series(text, "flagger_canary_total") == {frozenset(total.items()): 2}
    pushed_at = series(text, "push_time_seconds")
    assert pushed_at[grouped("podinfo")] > 0  # what the Pushgateway adds itself
    assert series(text, "push_failure_time_seconds")[grouped("podinfo")] == 0


@pytest.mark.testbed
def test_a_new_push_replaces_the_canarys_series_and_leaves_other_canaries(
    gateway: Pushgateway, gateway_server: PushgatewayServer
) -> None:
    assert gateway.push(snapshot("other", canary_weight=30, primary_weight=70)) is None
    assert gateway.push(snapshot()) is None
    assert (
        gateway.push(
            snapshot(
                phase=Phase.FAILED,
                canary_weight=0,
                primary_weight=100,
                checks={"request-duration": MetricCheck(812.0, False, max=500)},
                deadline=None,
            )
        )
        is None
    )
    text = gateway_server.metrics()
    assert series(text, "flagger_canary_status") == {grouped("podinfo"): 2, grouped("other"): 0}
    analysis = series(text, "flagger_canary_metric_analysis")
    assert {dict(key)["metric"] for key in analysis if dict(key)["name"] == "podinfo"} == {
        "request-duration"
    }
    weights = series(text, "flagger_canary_weight")
    assert weights[grouped("podinfo", workload="podinfo")] == 0
    assert weights[grouped("other", workload="other")] == 30
    deadlines = series(text, "pulumi_canary_release_deadline_timestamp_seconds")
    assert set(deadlines) == {grouped("other")}


@pytest.mark.testbed
def test_forget_deletes_the_canarys_group(
    gateway: Pushgateway, gateway_server: PushgatewayServer
) -> None:
    assert gateway.push(snapshot("leaving")) is None
    assert grouped("leaving") in series(gateway_server.metrics(), "flagger_canary_status")
    assert gateway.forget("leaving", "test") is None
    assert grouped("leaving") not in series(gateway_server.metrics(), "flagger_canary_status")


@contextmanager
def answering(status: int, delay: float = 0.0) -> Iterator[str]:
    """A server that waits `delay` seconds, then answers every request with `status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            time.sleep(delay)
            body = b"pushed metrics are invalid"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_closed_port_gives_one_warning_without_credentials() -> None:
    address = f"http://pusher:s3cr3t-password@127.0.0.1:{free_port()}"
    with HttpClients() as clients:
        endpoints = Endpoints(clients)
        warning = Pushgateway(endpoints.request, address).push(snapshot())
    port = address.rsplit(":", 1)[1]
    assert warning == f"pushgateway at http://127.0.0.1:{port}: not pushed (ConnectError)"


def test_a_server_slower_than_the_timeout_gives_one_warning() -> None:
    with answering(200, delay=3.0) as address, HttpClients() as clients:
        endpoints = Endpoints(clients)
        warning = Pushgateway(endpoints.request, address, timeout=0.3).push(snapshot())
    assert warning == f"pushgateway at {address}: not pushed (timed out after 0.3s)"


def test_an_error_answer_gives_one_warning_with_the_reason() -> None:
    with answering(400) as address, HttpClients() as clients:
        endpoints = Endpoints(clients)
        warning = Pushgateway(endpoints.request, address).push(snapshot())
    assert warning == (
        f"pushgateway at {address}: not pushed (answered 400: pushed metrics are invalid)"
    )


def test_no_failure_of_the_transport_escapes() -> None:
    def broken(method: str, url: str, **options: Any) -> Any:
        raise RuntimeError(f"cannot reach {url}")  # any error, quoting the URL

    warning = Pushgateway(broken, "http://pushgateway.monitoring:9091").forget("podinfo", "test")
    assert warning == (
        "pushgateway at http://pushgateway.monitoring:9091: not deleted (RuntimeError)"
    )


def test_a_missing_pushgateway_binary_is_explained() -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install -y prometheus-pushgateway"):
        PushgatewayServer(binary="/nonexistent/prometheus-pushgateway")
