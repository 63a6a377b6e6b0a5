"""Flagger's Prometheus provider: one instant query per metric, judged against its bounds,
and range queries for the statistical judge's samples.

A metric check never raises for a Prometheus problem: a busy or unreachable server is asked
again for a few seconds, then an HTTP error, a timeout or an unreachable server becomes a
failed `MetricResult` with the reason, because Flagger counts all of these as one failed check
rather than aborting the release.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from ..spec import MetricQuery, MetricTemplate
from ..spec.judge import SampleQueries, SampleWindow
from .endpoints import Endpoints
from .retry import (
    TRANSIENT_STATUS,
    Backoff,
    RetryCounter,
    retry_after,
    retrying,
    transport_transient,
)
from .webhooks import excerpt, transport_failure

AVAILABILITY_QUERY = "vector(1)"
# A query keeps retrying a busy or unreachable Prometheus this long, well within a check.
QUERY_BACKOFF = Backoff(budget=10.0, base=0.25, cap=2.0)
# A critical watch's query gives up after a few seconds, as "no answer": the next scrape asks
# again, and a Prometheus that stays down fails the normal checks.
WATCH_BACKOFF = Backoff(budget=3.0, base=0.25, cap=1.0)

T = TypeVar("T")

SecretReader = Callable[[str, str], Mapping[str, str]]
"""(namespace, name) -> the data of a Kubernetes Secret, decoded."""


class PrometheusError(RuntimeError):
    """Prometheus gave no usable value; the message says why, without credentials.

    `problem` is the message without the address, for callers that name the server themselves.
    """

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message


@dataclass(frozen=True)
class MetricSamples:
    """A judge metric's samples, one per time of the check's window (NaN: none there), for
    the canary and the primary; `error` says why there are none (a server problem)."""

    name: str
    canary: tuple[float, ...]
    primary: tuple[float, ...]
    error: str | None = None


@dataclass(frozen=True)
class MetricResult:
    """One metric check; `reason` says why it failed and is None when it passed."""

    name: str
    value: float | None
    bounds: str
    passed: bool
    reason: str | None
    query: str


class _QueryError(Exception):
    """Why a query has no value, before the address is added."""


class _Busy(Exception):
    """An answer worth asking again for (429, 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _transient(error: Exception) -> tuple[bool, float | None]:
    if isinstance(error, _Busy):
        return True, retry_after(error.response)
    return transport_transient(error), None


class _BearerAuth(httpx.Auth):
    """A token sent as `Authorization: Bearer`; the repr hides it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class PrometheusClient:
    """Runs one release's metric queries against the template's Prometheus or its default one.

    Requests go through `Endpoints`, so `http://prometheus.istio-system:9090` works from
    outside the cluster. Credentials are applied per request; through the API server's
    service proxy the proxy's own authentication takes precedence, so authenticated
    Prometheus servers must be reachable directly. `namespace` is where a template's
    `secretRef` is read when the template names none.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        default_address: str,
        *,
        namespace: str = "default",
        timeout: float = 5.0,
        secrets: SecretReader | None = None,
        backoff: Backoff = QUERY_BACKOFF,
        retries: RetryCounter | None = None,
    ) -> None:
        self._endpoints = endpoints
        self.default_address = default_address
        self.namespace = namespace
        self.timeout = timeout
        self._secrets = secrets
        self.backoff = backoff
        self.retries = retries or RetryCounter()

    def query(
        self,
        address: str,
        promql: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        verify: bool = True,
    ) -> float | None:
        """The query's single value; None when there is no sample or it is NaN.

        Raises PrometheusError for HTTP errors, timeouts, connection errors, a matrix
        result and anything that is not a Prometheus answer.
        """
        return self._get(
            address, "query", {"query": promql}, _value, headers=headers, auth=auth, verify=verify
        )

    def query_range(
        self,
        address: str,
        promql: str,
        window: SampleWindow,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        verify: bool = True,
    ) -> list[float]:
        """One value per time of `window`, NaN where the query had none (Prometheus leaves
        those times out), so the judge's NaN strategy decides about missing samples.

        Raises PrometheusError as `query` does, and when the query returns several series.
        """
        params = {
            "query": promql,
            "start": f"{window.start:.3f}",
            "end": f"{window.end:.3f}",
            "step": f"{window.step:g}",
        }

        def parse(body: Any) -> list[float]:
            return _range_values(body, window)

        return self._get(
            address, "query_range", params, parse, headers=headers, auth=auth, verify=verify
        )

    def samples(self, name: str, queries: SampleQueries, window: SampleWindow) -> MetricSamples:
        """A judge metric's samples from the canary's metrics server; a server problem is the
        result's `error`, never raised: it fails the check, as it does a threshold's."""
        try:
            canary = self.query_range(self.default_address, queries.canary, window)
            primary = self.query_range(self.default_address, queries.primary, window)
        except PrometheusError as error:
            return MetricSamples(name, (), (), str(error))
        return MetricSamples(name, tuple(canary), tuple(primary))

    def evaluate(self, metric_query: MetricQuery) -> MetricResult:
        """Checks one metric; a metric without bounds passes whenever it has a value."""
        metric = metric_query.metric
        bounds = metric.bounds
        shown_bounds = bounds.describe() if bounds else "any value"

        def result(value: float | None, reason: str | None) -> MetricResult:
            return MetricResult(
                metric.name, value, shown_bounds, reason is None, reason, metric_query.query
            )

        template = metric_query.template
        try:
            headers, auth = self._access(template)
            verify = template is None or not template.spec.provider.insecure_skip_verify
            value = self.query(self._address(template), metric_query.query, headers, auth, verify)
        except PrometheusError as error:
            return result(None, str(error))
        return result(value, metric.failure(value))

    def check_available(self, address: str | None = None) -> None:
        """Flagger's start-up probe: `vector(1)` must answer 1, else a clear early error."""
        target = address or self.default_address
        try:
            value = self.query(target, AVAILABILITY_QUERY)
        except PrometheusError as error:
            raise PrometheusError(
                f"Prometheus at {self._describe(target)} is unreachable: {error.problem}"
            ) from None
        if value != 1:
            raise PrometheusError(
                f"Prometheus at {self._describe(target)} answered {AVAILABILITY_QUERY} "
                f"with {value}, not 1"
            )

    def _get(
        self,
        address: str,
        api: str,
        params: Mapping[str, str],
        parse: Callable[[Any], T],
        *,
        headers: Mapping[str, str] | None,
        auth: httpx.Auth | None,
        verify: bool,
    ) -> T:
        """GET `/api/v1/<api>` and the answer parsed; PrometheusError naming the server
        (without credentials) when there is no usable answer."""
        options: dict[str, Any] = {"params": dict(params), "timeout": self.timeout}
        if headers:
            options["headers"] = dict(headers)
        if auth is not None:  # auth=None would also drop the API client's own credentials
            options["auth"] = auth
        try:
            return parse(self._answer(f"{address.rstrip('/')}/api/v1/{api}", options, verify))
        except (_QueryError, ValueError, KeyError, IndexError, TypeError) as failure:
            problem = str(failure)
            raise PrometheusError(
                f"prometheus at {self._describe(address)}: {problem}", problem
            ) from None

    def _answer(self, url: str, options: Mapping[str, Any], verify: bool) -> Any:
        """The answer's JSON, asked again while the server is busy or unreachable."""

        def attempt() -> httpx.Response:
            response = self._endpoints.request("GET", url, verify=verify, **options)
            if response.status_code in TRANSIENT_STATUS:
                raise _Busy(response)
            return response

        try:
            response = retrying(attempt, _transient, backoff=self.backoff, counter=self.retries)
        except _Busy as busy:
            response = busy.response
        except httpx.HTTPError as error:
            raise _QueryError(transport_failure(error, self.timeout)) from None
        if response.status_code >= 400:
            raise _QueryError(f"answered {response.status_code}: {_error_text(response)}")
        return response.json()

    def _address(self, template: MetricTemplate | None) -> str:
        if template is not None and template.spec.provider.address:
            return template.spec.provider.address
        return self.default_address

    def _access(self, template: MetricTemplate | None) -> tuple[dict[str, str], httpx.Auth | None]:
        """The template's headers (repeated values joined, as HTTP allows) and credentials.

        Credentials given in Python win over `secretRef`, which is read from the template's
        namespace with Flagger's keys: `token`, or `username` and `password`.
        """
        if template is None:
            return {}, None
        provider = template.spec.provider
        headers = {key: ", ".join(values) for key, values in (provider.headers or {}).items()}
        if template.credentials is not None:
            credentials = template.credentials
            token = credentials.token.get_secret_value() if credentials.token else None
            username = credentials.username.get_secret_value() if credentials.username else None
            password = credentials.password.get_secret_value() if credentials.password else None
            return headers, _auth(token, username, password)
        if provider.secret_ref is None:
            return headers, None
        namespace = template.metadata.namespace or self.namespace
        data = self._read_secret(namespace, provider.secret_ref.name)
        auth = _auth(data.get("token"), data.get("username"), data.get("password"))
        if auth is None:
            raise PrometheusError(
                f"Secret {provider.secret_ref.name} of template {template.name} has neither "
                "token nor username and password"
            )
        return headers, auth

    def _read_secret(self, namespace: str, name: str) -> Mapping[str, str]:
        if self._secrets is None:
            raise PrometheusError(f"cannot read Secret {namespace}/{name}: no secret reader")
        try:
            return self._secrets(namespace, name)
        except Exception as error:  # any reader failure is a failed check, not a crash
            raise PrometheusError(f"cannot read Secret {namespace}/{name}: {error}") from None

    def _describe(self, address: str) -> str:
        """The address without any user:password part, and how it is reached."""
        parsed = httpx.URL(address)
        return self._endpoints.describe(str(parsed.copy_with(username=None, password=None)))


def _auth(token: str | None, username: str | None, password: str | None) -> httpx.Auth | None:
    """Bearer for a token, basic for username and password, as Flagger's provider."""
    if token:
        return _BearerAuth(token)
    if username and password:
        return httpx.BasicAuth(username, password)
    return None


def _value(body: Any) -> float | None:
    """The last sample of a vector or the scalar; None for no sample or NaN."""
    data = _success(body)
    kind = data["resultType"]
    if kind == "scalar":
        samples = [data["result"]]
    elif kind == "vector":
        samples = [series["value"] for series in data["result"]]
    else:
        raise ValueError(f"result type {kind} is not supported; the query must return one value")
    if not samples:
        return None
    value = float(samples[-1][1])
    return None if math.isnan(value) else value


def _range_values(body: Any, window: SampleWindow) -> list[float]:
    """The one series of a matrix, placed at its window's times; NaN for the times it lacks."""
    data = _success(body)
    if data["resultType"] != "matrix":
        raise ValueError(f"result type {data['resultType']} is not a range query's matrix")
    series = data["result"]
    if len(series) > 1:
        raise ValueError(
            f"the query returned {len(series)} series; a judge query must return one "
            "(aggregate it, e.g. with sum)"
        )
    values = [math.nan] * window.count
    for time, value in series[0]["values"] if series else []:
        index = round((float(time) - window.start) / window.step)
        if 0 <= index < window.count:
            values[index] = float(value)
    return values


def _success(body: Any) -> Any:
    """The `data` of a successful answer."""
    if body.get("status") != "success":
        raise ValueError(f"query failed: {body.get('error', 'no error given')}")
    return body["data"]


def _error_text(response: httpx.Response) -> str:
    """Prometheus's own `errorType: error` when the body is its JSON, else the body."""
    try:
        body = response.json()
        return excerpt(f"{body['errorType']}: {body['error']}")
    except (ValueError, KeyError, TypeError):
        return excerpt(response.text) or "(empty body)"
