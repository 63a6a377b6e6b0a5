"""`python -m observability.dashboards`: rewrites the Grafana dashboards in dashboards/.

`istio-canary.json` has the panels of Flagger's "Istio Canary" dashboard: request volume,
success rate and latency of the primary against the canary. `canary-release.json` shows what
that dashboard lacks: the release itself, from the pushed `flagger_*` and `pulumi_canary_*`
series. Both share the template variables of Flagger's dashboard (namespace, primary,
canary), so a choice means the same workloads in each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common as options
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline
from grafana_foundation_sdk.builders import timeseries as graph
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from components.adapters import pushgateway as pushed

HERE = Path(__file__).resolve().parent
DIRECTORY = HERE / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRID_WIDTH = 24
QUANTILES = (0.50, 0.90, 0.99)

Panel = stat.Panel | graph.Panel | statetimeline.Panel


def workload(variable: str) -> str:
    """The selector of Flagger's Istio panels: what `variable`'s workload receives."""
    return (
        f'reporter="destination",destination_workload_namespace=~"$namespace",'
        f'destination_workload=~"${variable}"'
    )


RELEASE = 'namespace=~"$namespace",name=~"$canary"'
CHECKED = f'{RELEASE},metric=~"$metric"'


def query(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


def quantiles(bucket_series: str, selector: str, scale: str = "") -> list[prometheus.Dataquery]:
    """P50, P90 and P99 of a histogram over Grafana's rate interval."""
    return [
        query(
            f"histogram_quantile({q:.2f}, sum by (le) "
            f"(rate({bucket_series}{{{selector}}}[$__rate_interval]))){scale}",
            f"P{round(q * 100)}",
            chr(ord("A") + index),
        )
        for index, q in enumerate(QUANTILES)
    ]


def variables(*extra: Builder[model.VariableModel]) -> list[Builder[model.VariableModel]]:
    """Flagger's three variables, from the Istio series: a workload list to pick both from."""
    workloads = 'label_values(istio_requests_total{destination_workload_namespace=~"$namespace"}'
    chosen = [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        _query_variable(
            "namespace",
            "Namespace",
            "label_values(istio_requests_total, destination_workload_namespace)",
        ),
        _query_variable("primary", "Primary", f"{workloads}, destination_workload)"),
        _query_variable("canary", "Canary", f"{workloads}, destination_workload)"),
    ]
    return [*chosen, *extra]


def _query_variable(name: str, label: str, definition: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(definition)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def _stat(title: str, description: str, *targets: prometheus.Dataquery) -> stat.Panel:
    panel = stat.Panel().title(title).description(description).datasource(DATASOURCE)
    for target in targets:
        panel = panel.with_target(target)
    return panel.graph_mode(common.BigValueGraphMode.AREA).reduce_options(
        options.ReduceDataOptions().calcs(["lastNotNull"])
    )


def _graph(title: str, description: str, targets: Iterable[prometheus.Dataquery]) -> graph.Panel:
    panel = graph.Panel().title(title).description(description).datasource(DATASOURCE)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def _thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value, color) for value, color in steps])
    )


def _texts(texts: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value mappings: value -> (text, colour)."""
    options = {
        value: model.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(texts.items())
    }
    return [model.ValueMap(options)]


def layout(rows: Sequence[Sequence[tuple[Panel, int, int]]]) -> list[Panel]:
    """Places (panel, width, height) left to right, row under row."""
    placed = []
    y = 0
    for row in rows:
        x = 0
        for panel, width, height in row:
            assert x + width <= GRID_WIDTH, "a row is wider than the grid"
            placed.append(panel.grid_pos(model.GridPos(h=height, w=width, x=x, y=y)))
            x += width
        y += max(height for _, _, height in row)
    return placed


def istio_canary() -> dashboard.Dashboard:
    """Flagger's Istio panels: the primary on the left, the canary on the right."""
    volume: list[tuple[Panel, int, int]] = []
    durations: list[tuple[Panel, int, int]] = []
    for side, variable in (("Primary", "primary"), ("Canary", "canary")):
        selector = workload(variable)
        requests = f"istio_requests_total{{{selector}}}"
        ok = f'istio_requests_total{{{selector},response_code!~"5.*"}}'
        volume += [
            (
                _stat(
                    f"{side}: Incoming Request Volume",
                    f"Requests per second the {variable} workload receives.",
                    query(f"round(sum(rate({requests}[$__rate_interval])), 0.001)"),
                ).unit("reqps"),
                6,
                4,
            ),
            (
                _stat(
                    f"{side}: Incoming Success Rate",
                    f"Share of the {variable}'s requests answered without a 5xx.",
                    query(
                        f"sum(rate({ok}[$__rate_interval])) / "
                        f"sum(rate({requests}[$__rate_interval]))"
                    ),
                )
                .unit("percentunit")
                .thresholds(_thresholds((None, "red"), (0.95, "orange"), (0.99, "green"))),
                6,
                4,
            ),
        ]
        durations.append(
            (
                _graph(
                    f"{side}: Request Duration",
                    f"Latency quantiles of the {variable}'s requests.",
                    quantiles("istio_request_duration_milliseconds_bucket", selector, " / 1000"),
                ).unit("s"),
                12,
                8,
            )
        )
    board = _board("pulumi-canary-istio", "Istio Canary", variables())
    for panel in layout([volume, durations]):
        board = board.with_panel(panel)
    return board


def canary_release() -> dashboard.Dashboard:
    """The release: its status, traffic weight, checks, outcomes and analysis time."""
    metric = (
        dashboard.QueryVariable("metric")
        .label("Metric")
        .datasource(DATASOURCE)
        .query(f"label_values({pushed.CHECK_PASSED}{{{RELEASE}}}, metric)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
    )
    status = _stat(
        "Status",
        "Flagger's last canary status: running, successful or failed.",
        query(f"{pushed.STATUS}{{{RELEASE}}}"),
    ).mappings(
        _texts({"0": ("Running", "blue"), "1": ("Successful", "green"), "2": ("Failed", "red")})
    )
    failed_checks = _stat(
        "Failed checks",
        "Checks the release in progress has failed; at the threshold it rolls back.",
        query(f"{pushed.FAILED_CHECKS}{{{RELEASE}}}"),
    )
    to_deadline = (
        _stat(
            "Time to deadline",
            "Time left before the release in progress must end; below zero it is stuck "
            "(the canary_release_stuck alert).",
            query(f"{pushed.DEADLINE}{{{RELEASE}}} - time()"),
        )
        .unit("s")
        .no_value("no release in progress")
        .thresholds(_thresholds((None, "red"), (0, "green")))
    )
    pushed_at = _stat(
        "Last push",
        "When the release's process last pushed its metrics (the Pushgateway's own series).",
        query(f'push_time_seconds{{{RELEASE},job="{pushed.JOB}"}} * 1000'),
    ).unit("dateTimeFromNow")
    weight = (
        _graph(
            "Traffic weight",
            "The virtual service's destination weights: the canary's share over the release.",
            [query(f'{pushed.WEIGHT}{{namespace=~"$namespace",workload=~"$primary|$canary"}}')],
        )
        .unit("percent")
        .min(0)
        .max(100)
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
    )
    against_threshold = (
        _graph(
            "$metric against its threshold",
            "The metric's last value at each check, with the bounds it must keep.",
            [
                query(f"{pushed.METRIC_ANALYSIS}{{{CHECKED}}}", "{{metric}}"),
                query(f"{pushed.THRESHOLD}{{{CHECKED}}}", "{{bound}}", "B"),
            ],
        )
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
        .repeat("metric")
        .repeat_direction("h")
    )
    checks = (
        statetimeline.Panel()
        .title("Checks: pass or fail")
        .description("Whether each metric passed its check, over the release.")
        .datasource(DATASOURCE)
        .with_target(query(f"{pushed.CHECK_PASSED}{{{RELEASE}}}", "{{metric}}"))
        .mappings(_texts({"1": ("pass", "green"), "0": ("fail", "red")}))
    )
    successes = f"{pushed.SUCCESSES}{{{RELEASE}}}"
    failures = f"{pushed.FAILURES}{{{RELEASE}}}"
    promoted = _stat(
        "Promoted",
        "Releases promoted in the time range.",
        query(f"sum(increase({successes}[$__range]))"),
    ).thresholds(_thresholds((None, "green")))
    rolled_back = _stat(
        "Rolled back",
        "Releases rolled back in the time range.",
        query(f"sum(increase({failures}[$__range]))"),
    ).thresholds(_thresholds((None, "green"), (1, "red")))
    outcomes = _graph(
        "Releases by outcome",
        "Promotions and rollbacks so far, per deployment strategy.",
        [
            query(
                f"sum by (deployment_strategy, analysis_status) ({successes})",
                "promoted: {{deployment_strategy}} ({{analysis_status}})",
            ),
            query(
                f"sum by (deployment_strategy, analysis_status) ({failures})",
                "rolled back: {{deployment_strategy}} ({{analysis_status}})",
                "B",
            ),
        ],
    ).line_interpolation(common.LineInterpolation.STEP_AFTER)
    duration = pushed.DURATION
    tick_time = _graph(
        "Analysis tick duration",
        "Time one analysis tick takes (Flagger's flagger_canary_duration_seconds).",
        [
            *quantiles(f"{duration}_bucket", RELEASE),
            query(
                f"sum(rate({duration}_sum{{{RELEASE}}}[$__rate_interval])) / "
                f"sum(rate({duration}_count{{{RELEASE}}}[$__rate_interval]))",
                "mean",
                "D",
            ),
        ],
    ).unit("s")
    board = _board("pulumi-canary-release", "Canary Release", variables(metric))
    for panel in layout(
        [
            [(status, 6, 4), (failed_checks, 6, 4), (to_deadline, 6, 4), (pushed_at, 6, 4)],
            [(weight, 24, 8)],
            [(against_threshold, 12, 8)],
            [(checks, 24, 6)],
            [(promoted, 6, 4), (rolled_back, 6, 4), (outcomes, 12, 8)],
            [(tick_time, 24, 8)],
        ]
    ):
        board = board.with_panel(panel)
    return board


def _board(
    uid: str, title: str, chosen: Sequence[Builder[model.VariableModel]]
) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["flagger", "istio", "canary", "pulumi-canary"])
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("browser")
    )
    for variable in chosen:
        board = board.with_variable(variable)
    return board


DASHBOARDS = {"istio-canary": istio_canary, "canary-release": canary_release}


def render(name: str) -> str:
    """A dashboard's JSON, as committed: sorted keys, so regenerating gives no diff."""
    built = DASHBOARDS[name]().build()
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def path(name: str) -> Path:
    return DIRECTORY / f"{name}.json"


if __name__ == "__main__":
    DIRECTORY.mkdir(exist_ok=True)
    for dashboard_name in DASHBOARDS:
        path(dashboard_name).write_text(render(dashboard_name))
