"""PromQL for each metric: Flagger's built-in Istio queries and MetricTemplate rendering."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import promql_parser

from .canary import REQUEST_DURATION, REQUEST_SUCCESS_RATE

# Verbatim semantics of Flagger's pkg/metrics/observers/istio.go.
BUILTIN_QUERIES = {
    REQUEST_SUCCESS_RATE: """
sum(rate(istio_requests_total{reporter="destination",
  destination_workload_namespace="{{ namespace }}",
  destination_workload=~"{{ target }}", response_code!~"5.*"}[{{ interval }}]))
/
sum(rate(istio_requests_total{reporter="destination",
  destination_workload_namespace="{{ namespace }}",
  destination_workload=~"{{ target }}"}[{{ interval }}]))
* 100
""",
    REQUEST_DURATION: """
histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{
  reporter="destination", destination_workload_namespace="{{ namespace }}",
  destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))
""",
}

_PLACEHOLDER = re.compile(r"\{\{\s*\.?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\s*\}\}")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class QueryContext:
    """The names Flagger's templates may use: `{{ namespace }}`, `{{ variables.x }}`..."""

    name: str
    namespace: str
    target: str
    service: str
    interval: str
    variables: Mapping[str, str]

    def lookup(self, key: str) -> str:
        if key.startswith("variables."):
            variable = key.removeprefix("variables.")
            if variable not in self.variables:
                known = ", ".join(sorted(self.variables)) or "none"
                raise KeyError(f"templateVariables has no {variable!r} (defined: {known})")
            return self.variables[variable]
        scalars = {
            "name": self.name,
            "namespace": self.namespace,
            "target": self.target,
            "service": self.service,
            "interval": self.interval,
        }
        if key not in scalars:
            raise KeyError(f"unknown template name {{{{ {key} }}}} (use {', '.join(scalars)})")
        return scalars[key]


def render(template: str, context: QueryContext) -> str:
    """Fills the placeholders and folds whitespace, as Flagger does before sending a query."""
    rendered = _PLACEHOLDER.sub(lambda match: context.lookup(match.group(1)), template)
    return _WHITESPACE.sub(" ", rendered).strip()


def check_syntax(query: str) -> None:
    """Raises ValueError with the parser's reason, so a typo fails at preview, not mid-release."""
    try:
        promql_parser.parse(query)
    except Exception as error:
        raise ValueError(f"PromQL does not parse: {error}") from None
