"""The Prometheus adapter against a real Prometheus, and against a stub for errors and auth."""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from http_stub import Reply, Stub
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from components.adapters.endpoints import Endpoints
from components.adapters.prometheus import (
    MetricResult,
    MetricSamples,
    PrometheusClient,
    PrometheusError,
)
from components.adapters.retry import Backoff, RetryCounter
from components.rehearse.testbed._loop import free_port
from components.rehearse.testbed.prometheus import PrometheusServer
from components.spec import Credentials, Metric, MetricQuery, MetricTemplate, ThresholdRange
from components.spec.judge import JudgeMetric, SampleQueries, SampleWindow
from components.spec.queries import QueryContext

TOKEN = "s3cr3t-token-value"
PASSWORD = "hunter2-password"
ONE = json.dumps(
    {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "1"]}]}}
)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    """A real Prometheus scraping a local exporter whose gauge reads 42, and whose per-workload
    gauge reads 42 for the canary `podinfo` and 40 for `podinfo-primary`."""
    registry = CollectorRegistry()
    Gauge("adapter_test_value", "A value the test controls.", registry=registry).set(42)
    sides = Gauge("adapter_test_side", "A value per workload.", ["workload"], registry=registry)
    sides.labels("podinfo").set(42)
    sides.labels("podinfo-primary").set(40)
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    with PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="500ms") as running:
        deadline = time.monotonic() + 20
        while not running.query("adapter_test_value") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # so that a window of the last second lies after the first scrape
        yield running
    server.shutdown()


@pytest.fixture
def real(prometheus: PrometheusServer, endpoints: Endpoints) -> PrometheusClient:
    """A client whose default address is the real Prometheus."""
    return PrometheusClient(endpoints, prometheus.url)


def metric_query(
    query: str,
    bounds: ThresholdRange | None = None,
    template: MetricTemplate | None = None,
    name: str = "request-success-rate",
) -> MetricQuery:
    return MetricQuery(Metric(name=name, threshold_range=bounds, query=query), query, template)


def template(address: str, **extra: Any) -> MetricTemplate:
    credentials = extra.pop("credentials", None)
    provider = {"type": "prometheus", "address": address, **extra}
    return MetricTemplate.model_validate(
        {
            "metadata": {"name": "custom", "namespace": "team"},
            "spec": {"provider": provider, "query": "vector(1)"},
            "credentials": credentials,
        }
    )


def client(endpoints: Endpoints, address: str, **options: Any) -> PrometheusClient:
    """A client that gives up on a failing server quickly (the tests' servers stay failing)."""
    return PrometheusClient(endpoints, address, **{"backoff": Backoff(budget=0.3), **options})


@pytest.mark.testbed
@pytest.mark.parametrize(
    ("query", "bounds", "value", "passed"),
    [
        ("vector(99.5)", ThresholdRange(min=99), 99.5, True),
        ("vector(99)", ThresholdRange(min=99), 99.0, True),  # inclusive min
        ("vector(500)", ThresholdRange(max=500), 500.0, True),  # inclusive max
        ("vector(42)", ThresholdRange(min=99), 42.0, False),
        ("vector(501)", ThresholdRange(min=1, max=500), 501.0, False),
        ("scalar(vector(3))", ThresholdRange(max=5), 3.0, True),
        ("adapter_test_value", ThresholdRange(min=40, max=45), 42.0, True),
    ],
)
def test_bounds_are_inclusive_on_real_prometheus(
    real: PrometheusClient,
    query: str,
    bounds: ThresholdRange,
    value: float,
    passed: bool,
) -> None:
    result = real.evaluate(metric_query(query, bounds))

    assert (result.value, result.passed) == (value, passed)
    assert result.query == query
    assert result.bounds == bounds.describe()
    if passed:
        assert result.reason is None
    else:
        breach = f"< {bounds.min:g}" if bounds.min is not None and value < bounds.min else None
        breach = breach or f"> {bounds.max:g}"
        assert result.reason == f"request-success-rate {value:g} {breach}"


@pytest.mark.testbed
@pytest.mark.parametrize("query", ["no_such_series_anywhere", "vector(NaN)"])
def test_no_data_and_nan_fail_as_no_values_found(real: PrometheusClient, query: str) -> None:
    result = real.evaluate(metric_query(query, ThresholdRange(min=99)))

    assert not result.passed
    assert result.value is None
    assert result.reason == (
        "no values found for request-success-rate (is the canary receiving traffic?)"
    )


@pytest.mark.testbed
def test_metric_without_bounds_passes_with_any_value(real: PrometheusClient) -> None:
    result = real.evaluate(metric_query("vector(-3)", name="custom"))

    assert result == MetricResult("custom", -3.0, "any value", True, None, "vector(-3)")


@pytest.mark.testbed
def test_matrix_and_bad_promql_are_errors(
    prometheus: PrometheusServer, endpoints: Endpoints
) -> None:
    prom = client(endpoints, prometheus.url)

    with pytest.raises(PrometheusError, match="result type matrix is not supported"):
        prom.query(prometheus.url, "up[1m]")
    result = prom.evaluate(metric_query("sum(", ThresholdRange(min=1)))
    assert not result.passed
    assert result.reason is not None
    assert result.reason.startswith(f"prometheus at {prometheus.url}: answered 400: bad_data:")


@pytest.mark.testbed
def test_check_available(prometheus: PrometheusServer, endpoints: Endpoints) -> None:
    client(endpoints, prometheus.url).check_available()

    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusError) as raised:
        client(endpoints, closed).check_available()
    assert str(raised.value).startswith(f"Prometheus at {closed} is unreachable: ConnectError")


def test_template_address_wins_and_keeps_its_path_prefix(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=ONE)
    prom = client(endpoints, "http://127.0.0.1:1")

    result = prom.evaluate(metric_query("up", template=template(f"{stub.url}/prom/")))

    assert result.passed
    assert stub.seen[0].method == "GET"
    assert stub.seen[0].path == "/prom/api/v1/query?query=up"


def test_http_error_is_a_failed_check_with_status_and_excerpt(
    stub: Stub, endpoints: Endpoints
) -> None:
    stub.default = Reply(503, "service unavailable " * 100)

    result = client(endpoints, stub.url).evaluate(metric_query("up"))

    assert not result.passed
    assert result.reason is not None
    assert result.reason.startswith(f"prometheus at {stub.url}: answered 503: service unavailable")
    assert len(result.reason) < 400


def test_timeout_and_refused_connection_are_failed_checks(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=ONE, delay=1.0)

    slow = client(endpoints, stub.url, timeout=0.2).evaluate(metric_query("up"))
    closed = f"http://127.0.0.1:{free_port()}"
    refused = client(endpoints, closed).evaluate(metric_query("up"))

    assert slow.reason == f"prometheus at {stub.url}: timed out after 0.2s"
    assert refused.reason is not None
    assert refused.reason.startswith(f"prometheus at {closed}: ConnectError")


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({"token": TOKEN}, f"Bearer {TOKEN}"),
        (
            {"username": "reader", "password": PASSWORD},
            "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode(),
        ),
    ],
)
def test_credentials_are_sent_and_never_shown(
    stub: Stub, endpoints: Endpoints, credentials: dict[str, str], expected: str
) -> None:
    stub.default = Reply(503, "down")
    chosen = template(
        stub.url,
        headers={"X-Scope-OrgID": ["tenant-a", "tenant-b"]},
        credentials=Credentials.model_validate(credentials),
    )

    result = client(endpoints, "http://unused:9090").evaluate(metric_query("up", template=chosen))

    sent = stub.seen[0].headers
    assert sent["authorization"] == expected
    assert sent["x-scope-orgid"] == "tenant-a, tenant-b"
    shown = f"{result!r} {result.reason} {chosen!r}"
    assert TOKEN not in shown
    assert PASSWORD not in shown


def test_secret_ref_is_read_from_the_templates_namespace(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=ONE)
    reads: list[tuple[str, str]] = []

    def secrets(namespace: str, name: str) -> dict[str, str]:
        reads.append((namespace, name))
        return {"token": TOKEN}

    chosen = template(stub.url, secretRef={"name": "prom-auth"})
    result = client(endpoints, stub.url, secrets=secrets).evaluate(
        metric_query("up", template=chosen)
    )

    assert result.passed
    assert reads == [("team", "prom-auth")]
    assert stub.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("secrets", "reason"),
    [
        (None, "cannot read Secret team/prom-auth: no secret reader"),
        (
            lambda namespace, name: {"user": "x"},
            "Secret prom-auth of template custom has neither token nor username and password",
        ),
    ],
)
def test_unusable_secret_ref_is_a_failed_check(
    stub: Stub, endpoints: Endpoints, secrets: Any, reason: str
) -> None:
    chosen = template(stub.url, secretRef={"name": "prom-auth"})

    result = client(endpoints, stub.url, secrets=secrets).evaluate(
        metric_query("up", template=chosen)
    )

    assert (result.passed, result.reason) == (False, reason)
    assert stub.seen == []


def test_address_credentials_stay_out_of_reasons(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(500, "boom")
    address = stub.url.replace("http://", f"http://reader:{PASSWORD}@")

    result = client(endpoints, address).evaluate(metric_query("up"))

    assert result.reason == f"prometheus at {stub.url}: answered 500: boom"


def test_answers_that_are_not_prometheus_json_are_errors(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(200, "<html>login</html>", content_type="text/html")

    with pytest.raises(PrometheusError, match=re.escape(f"prometheus at {stub.url}: Expecting")):
        client(endpoints, stub.url).query(stub.url, "up")


def test_check_available_wants_vector_one_to_be_one(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=ONE.replace('"1"]', '"2"]'))

    with pytest.raises(PrometheusError, match=r"answered vector\(1\) with 2\.0, not 1$"):
        client(endpoints, stub.url).check_available()


def test_insecure_skip_verify_is_honoured_per_template(
    tls_stub: Stub, endpoints: Endpoints
) -> None:
    tls_stub.default = Reply(body=ONE)
    prom = client(endpoints, "http://unused:9090")

    verified = prom.evaluate(metric_query("vector(1)", template=template(tls_stub.url)))
    assert not verified.passed
    assert "CERTIFICATE_VERIFY_FAILED" in (verified.reason or "")

    trusting = template(tls_stub.url, insecureSkipVerify=True)
    result = prom.evaluate(metric_query("vector(1)", template=trusting))
    assert (result.passed, result.value) == (True, 1.0)


def test_a_busy_prometheus_is_asked_again_within_the_budget(
    stub: Stub, endpoints: Endpoints
) -> None:
    stub.queued = [Reply(503, "busy"), Reply(429, "slow down", headers=(("Retry-After", "1"),))]
    stub.default = Reply(body=ONE)
    retries = RetryCounter()
    prom = client(endpoints, stub.url, backoff=Backoff(budget=5.0, base=0.01), retries=retries)
    started = time.monotonic()
    result = prom.evaluate(metric_query("up"))
    assert (result.passed, result.value) == (True, 1.0)
    assert retries.take() == 2
    assert len(stub.seen) == 3
    assert time.monotonic() - started >= 1.0  # the Retry-After was honoured


def test_a_query_error_is_not_retried(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(
        422, json.dumps({"status": "error", "errorType": "bad_data", "error": "x"})
    )
    retries = RetryCounter()
    result = client(endpoints, stub.url, backoff=Backoff(budget=5.0), retries=retries).evaluate(
        metric_query("up")
    )
    assert not result.passed
    assert (retries.take(), len(stub.seen)) == (0, 1)


# --- Range queries: the judge's samples -------------------------------------------------------


def recent(step: float, count: int) -> SampleWindow:
    return SampleWindow(time.time(), step, count)


def matrix(*series: list[list[Any]]) -> str:
    result = [{"metric": {}, "values": values} for values in series]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})


def is_nan(values: list[float]) -> list[bool]:
    return [math.isnan(value) for value in values]


@pytest.mark.testbed
def test_range_query_gives_one_sample_per_step_on_real_prometheus(real: PrometheusClient) -> None:
    values = real.query_range(real.default_address, "adapter_test_value", recent(0.25, 4))
    assert values == [42.0] * 4


@pytest.mark.testbed
def test_samples_of_the_canary_and_its_primary_on_real_prometheus(real: PrometheusClient) -> None:
    metric = JudgeMetric(name="side", query='adapter_test_side{workload="{{ target }}"}')
    context = QueryContext("podinfo", "default", "podinfo", "podinfo", "250ms", {})

    samples = real.samples("side", metric.sample_queries(context), recent(0.25, 4))

    assert samples == MetricSamples("side", (42.0,) * 4, (40.0,) * 4)


@pytest.mark.testbed
@pytest.mark.parametrize("query", ["no_such_series_anywhere", "vector(NaN)"])
def test_an_empty_result_and_nan_are_nan_samples_on_real_prometheus(
    real: PrometheusClient, query: str
) -> None:
    values = real.query_range(real.default_address, query, recent(0.5, 3))
    assert is_nan(values) == [True] * 3


@pytest.mark.testbed
def test_times_without_a_value_are_nan_on_real_prometheus(real: PrometheusClient) -> None:
    even = float(math.floor(time.time() / 2) * 2)
    window = SampleWindow(even, 0.5, 4)  # at even - 1.5, - 1, - 0.5 and even itself
    present = "vector(1) and on() (vector(time() % 2) >= 1)"  # in odd seconds only

    values = real.query_range(real.default_address, present, window)

    assert is_nan(values) == [True, False, False, True]
    assert values[1:3] == [1.0, 1.0]


@pytest.mark.testbed
def test_several_series_and_bad_promql_are_errors_on_real_prometheus(
    prometheus: PrometheusServer, endpoints: Endpoints
) -> None:
    prom = client(endpoints, prometheus.url)
    two = 'vector(1) or label_replace(vector(2), "side", "b", "", "")'
    with pytest.raises(PrometheusError, match="returned 2 series; a judge query must return one"):
        prom.query_range(prometheus.url, two, recent(0.5, 2))
    with pytest.raises(PrometheusError, match="answered 400: bad_data"):
        prom.query_range(prometheus.url, "sum(", recent(0.5, 2))


def test_range_query_asks_for_the_windows_times(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=matrix([]))
    window = SampleWindow(1_700_000_010.0, 0.5, 5)

    client(endpoints, stub.url).query_range(stub.url, "up", window)

    (seen,) = stub.seen
    assert seen.path == (
        "/api/v1/query_range?query=up&start=1700000008.000&end=1700000010.000&step=0.5"
    )


def test_stub_samples_are_placed_at_their_times_and_nan_fills_the_gaps(
    stub: Stub, endpoints: Endpoints
) -> None:
    stub.default = Reply(body=matrix([[997, "1"], [999, "NaN"], [1000, "+Inf"]]))

    values = client(endpoints, stub.url).query_range(stub.url, "up", SampleWindow(1000.0, 1.0, 4))

    assert values[0] == 1.0
    assert is_nan(values[1:3]) == [True, True]
    assert values[3] == math.inf


def test_stub_empty_result_is_all_nan(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=json.dumps(json.loads(matrix())))  # no series at all
    values = client(endpoints, stub.url).query_range(stub.url, "up", SampleWindow(10.0, 1.0, 3))
    assert is_nan(values) == [True] * 3


def test_an_instant_answer_to_a_range_query_is_an_error(stub: Stub, endpoints: Endpoints) -> None:
    stub.default = Reply(body=ONE)
    with pytest.raises(PrometheusError, match="result type vector is not a range query's matrix"):
        client(endpoints, stub.url).query_range(stub.url, "up", SampleWindow(10.0, 1.0, 3))


def test_a_server_problem_is_the_samples_error_not_an_exception(
    stub: Stub, endpoints: Endpoints
) -> None:
    stub.default = Reply(503, "busy")
    retries = RetryCounter()
    prom = client(endpoints, stub.url, backoff=Backoff(budget=0.3, base=0.01), retries=retries)

    samples = prom.samples("m", SampleQueries("up", "up"), SampleWindow(10.0, 1.0, 3))

    assert samples == MetricSamples("m", (), (), f"prometheus at {stub.url}: answered 503: busy")
    assert retries.take() >= 1  # asked again while busy, as instant queries are
