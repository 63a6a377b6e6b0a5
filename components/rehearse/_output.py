"""What a rehearsal says before and after the release: the header and the summary.

Pure functions of the release, its plan and the report (as its JSON document, so the HTML
page and the terminal show the same rows); the table is drawn with rich on a terminal and as
plain aligned text otherwise.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.table import Table as RichTable

from ..analysis import ReleasePlan, images_of
from ..analysis.review import gate_summary
from ..spec import REQUEST_DURATION, ReleaseSpec, format_seconds
from ..spec.hosts import is_in_cluster
from .testbed.mesh import Fault
from .testbed.outside import shown
from .testbed.receivers import BLOCKING_TYPES, LoadTest, parse_hey

if TYPE_CHECKING:
    from ._run import Rehearsal

STATUS_WORDS = {0: "progressing", 1: "promoted or at rest", 2: "failed"}


def images(release: ReleaseSpec) -> list[str]:
    containers = release.deployment["spec"]["template"]["spec"].get("containers") or []
    return [str(container.get("image", "")) for container in containers]


# -- before -------------------------------------------------------------------------------------


def header(
    release: ReleaseSpec,
    plan: ReleasePlan,
    revision: str,
    fault: Fault,
    pushgateway: str | None,
) -> list[str]:
    """What is rehearsed, how, gated on what, with which faults: said before the bed starts."""
    template = release.deployment["spec"]["template"]
    worst = format_seconds(plan.worst_case_seconds)
    lines = [
        f"rehearsing {release.name}.{release.namespace}: {images_of(template)}, "
        f"revision {revision}",
        f"  plan:    {plan.describe()}",
        f"           rollback after {plan.threshold} failed checks; at most ~{worst}",
        f"  gates:   {gate_summary(release.spec.analysis)}",
    ]
    for hook in release.spec.analysis.webhooks:
        lines += _hook_lines(hook.name, str(hook.hook_type), hook.url, hook.metadata or {})
    for alert in release.spec.analysis.alerts:
        provider = release.alert_provider(alert.provider_ref.name, alert.provider_ref.namespace)
        kind = provider.spec.type if provider else "?"
        lines.append(
            f"  alert:   {alert.name} ({alert.severity or 'info'}) via {alert.provider_ref.name} "
            f"({kind}): delivered to the bed's receiver"
        )
    lines.append(
        f"  faults:  the canary answers {fault.error_rate:.0%} of requests with 5xx, "
        f"p99 latency {fault.latency_ms:g} ms"
    )
    target = pushgateway or "the bed's Pushgateway (scraped by its Prometheus)"
    lines.append(f"  metrics: Flagger's pushed to {target}")
    return lines


def _hook_lines(name: str, hook_type: str, url: str, metadata: Mapping[str, Any]) -> list[str]:
    first = f"  hook:    {name} ({hook_type}) {_shown_url(url)}"
    command = metadata.get("cmd")
    if not command:
        return [first]
    run = parse_hey(str(command))
    kind = str(metadata.get("type") or "cmd")
    lines = [first, f"           {kind}: {command}"]
    if run is not None:
        lines.append(
            f"           not run: {run.rps:g} req/s to {run.host} for "
            f"{format_seconds(run.seconds)} in the simulated mesh"
        )
    else:
        answer = "200" if kind in BLOCKING_TYPES else "202"
        lines.append(f"           recorded, not run; answered {answer}")
    return lines


def load_test_line(test: LoadTest) -> str | None:
    """`loadtester: hey not run; 20 req/s to podinfo-canary.default for 1m in the mesh`,
    `loadtester (bash): recorded, not run: ...` for other commands; None for a hey whose
    traffic still runs (flagger-loadtester runs a queued command once)."""
    if test.run is None:
        return f"loadtester ({test.type}): recorded, not run: {test.command}"
    if not test.sent:
        return None
    return (
        f"loadtester: hey not run; {test.run.rps:g} req/s to {test.run.host} for "
        f"{format_seconds(test.run.seconds)} in the mesh"
    )


def _shown_url(url: str) -> str:
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return url
    if host and not is_in_cluster(host) and host not in ("localhost", "127.0.0.1"):
        return f"{shown(url)} (outside the bed: answered locally)"
    return url


# -- after --------------------------------------------------------------------------------------


def outcome_words(report: Mapping[str, Any]) -> str:
    """`promoted after 5 checks in 14 s` or `rolled back: <reason>`."""
    if report["outcome"] == "promoted":
        checks = len(report["checks"])
        noun = "check" if checks == 1 else "checks"
        return f"promoted after {checks} {noun} in {report['duration_s']:.0f} s"
    return f"rolled back: {report['reason']}"


@dataclass
class Table:
    """The summary table: one row per metric check."""

    columns: list[str]
    rows: list[list[str]]
    failed: list[list[bool]] = field(default_factory=list)
    """Per cell, whether it shows a failure (drawn red on a terminal)."""


def check_table(report: Mapping[str, Any]) -> Table:
    """Each check: its step, time since start, weight, each metric against its bounds, verdict."""
    names: list[str] = []
    for check in report["checks"]:
        names += [name for name in check["metrics"] if name not in names]
    canary = report["strategy"] == "canary"
    columns = ["step", "time", "weight" if canary else "routing"]
    for name in names:
        columns.append(f"{name} {_bounds(name, report)}".strip())
    columns.append("verdict")
    table = Table(columns, [])
    steps = len(report["plan"]["steps"]) if report.get("plan") else 0
    for check in report["checks"]:
        place = f"{check['weight']}%" if canary else check["routing"]
        row = [
            str(check["step"]) if canary else f"{check['step']}/{steps}",
            f"+{check['since_start_s']:.1f} s",
            place,
        ]
        failed = [False, False, False]
        for name in names:
            metric = check["metrics"].get(name)
            if metric is None:
                row.append("-")
                failed.append(False)
                continue
            value = metric["value"]
            shown = "no data" if value is None else f"{value:.4g}"
            row.append(shown if metric["passed"] else f"{shown} FAIL")
            failed.append(not metric["passed"])
        row.append("pass" if check["passed"] else "FAIL")
        failed.append(not check["passed"])
        table.rows.append(row)
        table.failed.append(failed)
    return table


def _bounds(name: str, report: Mapping[str, Any]) -> str:
    for check in report["checks"]:
        metric = check["metrics"].get(name)
        if metric is not None:
            unit = "ms" if name == REQUEST_DURATION else ""
            parts = []
            if metric["min"] is not None:
                parts.append(f">= {metric['min']:g}{unit}")
            if metric["max"] is not None:
                parts.append(f"<= {metric['max']:g}{unit}")
            return f"({' and '.join(parts)})" if parts else "(any)"
    return ""


def plain_table(table: Table) -> list[str]:
    widths = [
        max(len(cell) for cell in column) for column in zip(table.columns, *table.rows, strict=True)
    ]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (table.columns, *table.rows)
    ]


def rich_table(table: Table, title: str) -> list[str]:
    drawn = RichTable(title=title, title_justify="left")
    for index, column in enumerate(table.columns):
        drawn.add_column(column, justify="left" if index in (2,) else "right")
    for row, failed in zip(table.rows, table.failed, strict=True):
        drawn.add_row(
            *(f"[red]{cell}[/red]" if bad else cell for cell, bad in zip(row, failed, strict=True))
        )
    buffer = io.StringIO()
    width = shutil.get_terminal_size((100, 24)).columns
    Console(file=buffer, force_terminal=True, width=width).print(drawn)
    return buffer.getvalue().rstrip("\n").split("\n")


def summary(
    release: ReleaseSpec,
    rehearsal: Rehearsal,
    written: Sequence[str],
    *,
    terminal: bool,
) -> list[str]:
    """The end: the checks' table, the outcome in words, what the bed saw, where the report
    went, and the tutorial's queries when the release pushed to the bed's Pushgateway."""
    report = rehearsal.report.to_json()
    table = check_table(report)
    title = f"{release.name}.{release.namespace}: {report['plan']['description']}"
    lines = [""]
    if not table.rows:
        lines.append(f"{title}: no metric check ran")
    elif terminal:
        lines += rich_table(table, title)
    else:
        lines += [title, *plain_table(table)]
    lines.append(outcome_words(report))
    if report["cleanup"]:
        lines.append(f"left to clean up: {report['cleanup']}")
    lines += _webhook_lines(report)
    lines += _load_test_lines(rehearsal, release)
    for url, calls in rehearsal.answered_locally.items():
        times = "once" if calls == 1 else f"{calls} times"
        lines.append(f"answered locally, never called: {url} ({times})")
    lines += _alert_lines(rehearsal)
    if written:
        lines.append("report written to " + ", ".join(written))
    if rehearsal.queries:
        lines.append("the tutorial's queries, answered by the bed's Prometheus:")
        width = max(len(query.query) for query in rehearsal.queries)
        lines += [f"  {query.query.ljust(width)}  {query.answer}" for query in rehearsal.queries]
    elif rehearsal.pushgateway:
        lines.append(f"Flagger's metrics were pushed to {rehearsal.pushgateway}")
    return lines


def _webhook_lines(report: Mapping[str, Any]) -> list[str]:
    calls: dict[tuple[str, str], list[str]] = {}
    for call in report["webhooks"]:
        status = "no answer" if call["status"] is None else str(call["status"])
        calls.setdefault((call["name"], call["type"]), []).append(status)
    lines = []
    for (name, hook_type), statuses in calls.items():
        counted = ", ".join(
            f"{statuses.count(status)} x {status}" for status in dict.fromkeys(statuses)
        )
        lines.append(f"webhook {name} ({hook_type}): {counted}")
    return lines


def _load_test_lines(rehearsal: Rehearsal, release: ReleaseSpec) -> list[str]:
    lines = []
    for command in dict.fromkeys(test["command"] for test in rehearsal.load_tests):
        asked = [test for test in rehearsal.load_tests if test["command"] == command]
        times = "once" if len(asked) == 1 else f"{len(asked)} times"
        lines.append(f"loadtester asked {times} ({asked[0]['type']}), not run: {command}")
    delivered = {name: n for name, n in rehearsal.load_test_requests.items() if n}
    if delivered:
        counted = ", ".join(f"{n} to {name}" for name, n in delivered.items())
        lines.append(f"load-test traffic the mesh delivered: {counted}")
    return lines


def _alert_lines(rehearsal: Rehearsal) -> list[str]:
    sent = [alert for alert in rehearsal.alerts if alert.providers]
    if not sent:
        return []
    severities: dict[str, int] = {}
    for alert in sent:
        severities[alert.severity] = severities.get(alert.severity, 0) + 1
    counted = ", ".join(f"{severity} {n}" for severity, n in severities.items())
    failed = sum(1 for alert in sent if alert.warnings)
    undelivered = f", {failed} not delivered" if failed else ""
    return [
        f"alerts: {len(sent)} sent ({counted}){undelivered}; "
        f"the bed's receiver got {rehearsal.alerts_received}"
    ]


# -- the tutorial's queries -------------------------------------------------------------------


@dataclass
class QueryAnswer:
    """One of the tutorial's queries and its answer in words."""

    query: str
    answer: str
    values: dict[str, float] = field(default_factory=dict)


def tutorial_queries(target: str) -> list[str]:
    """`flagger_canary_status{name="podinfo"}`, its weight and its duration histogram."""
    selector = f'{{name="{target}"}}'
    return [
        f"flagger_canary_status{selector}",
        f"flagger_canary_weight{selector}",
        f"flagger_canary_duration_seconds{selector}",
    ]


def answer(query: str, series: Mapping[str, Sequence[Mapping[str, Any]]]) -> QueryAnswer:
    """`series` holds each PromQL asked for `query` (the histogram: its `_count` and `_sum`)
    and the series it returned."""
    values: dict[str, float] = {}
    if query.startswith("flagger_canary_duration_seconds"):
        for suffix in ("_count", "_sum"):
            for found in series.get(suffix, ()):
                values[suffix] = float(found["value"][1])
        if not values:
            return QueryAnswer(query, "no series", values)
        count, total = values.get("_count", 0.0), values.get("_sum", 0.0)
        return QueryAnswer(
            query,
            f"a histogram: _count {count:g}, _sum {total:.3g} s (one per analysis tick)",
            values,
        )
    found_series = series.get("", ())
    if query.startswith("flagger_canary_weight"):
        for found in found_series:
            values[str(found["metric"].get("workload", "?"))] = float(found["value"][1])
        text = ", ".join(f"{workload} {value:g}" for workload, value in sorted(values.items()))
        return QueryAnswer(query, text or "no series", values)
    for found in found_series:
        values["status"] = float(found["value"][1])
    if "status" not in values:
        return QueryAnswer(query, "no series", values)
    status = int(values["status"])
    return QueryAnswer(query, f"{status} ({STATUS_WORDS.get(status, '?')})", values)
