"""The rehearsal as a picture: the canary weight over time, each metric against its threshold,
every decision marked; as a PNG, or a self-contained HTML page with the summary tables.

Drawn from the report document alone (the JSON file's content), with matplotlib's object API
(no pyplot, no global state, no display). The HTML page embeds the PNG as base64 and its own
style: it loads nothing, from anywhere.
"""

from __future__ import annotations

import base64
import html as markup
import io
from collections.abc import Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..spec import REQUEST_DURATION
from ._output import check_table, outcome_words

_SEVERITY_COLOURS = {"info": "#4c72b0", "warn": "#dd8452", "error": "#c44e52"}
_PASS, _FAIL = "#55a868", "#c44e52"
_SHORT = (
    ("New revision", "start"),
    ("Halt advancement", "halt"),
    ("Copying the canary", "promote"),
    ("Canary failed", "roll back"),
    ("Mirroring", "mirror"),
)


def figure(document: Mapping[str, Any]) -> Figure:
    """One panel for the canary's weight and one per metric, on one time axis (seconds since
    the analysis started); vertical lines are the engine's decisions, coloured by severity."""
    checks = document["checks"]
    names: list[str] = []
    for check in checks:
        names += [name for name in check["metrics"] if name not in names]
    panels = 1 + len(names)
    fig = Figure(figsize=(10, 2.4 + 2.1 * len(names)), dpi=100, layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    end = max(
        [document["duration_s"]]
        + [entry["since_start_s"] for entry in (*document["decisions"], *checks)]
    )
    _weight_panel(axes[0], document, end)
    for ax, name in zip(axes[1:], names, strict=True):
        _metric_panel(ax, name, checks)
    for ax in axes:
        for decision in document["decisions"]:
            colour = _SEVERITY_COLOURS.get(decision["severity"], "#888888")
            ax.axvline(decision["since_start_s"], color=colour, alpha=0.35, linewidth=1)
        ax.grid(alpha=0.25)
        ax.set_xlim(0, max(end * 1.03, 1.0))
    axes[-1].set_xlabel("seconds since the analysis started")
    name = f"{document['name']}.{document['namespace']}"
    fig.suptitle(f"{name}: {outcome_words(document)}", fontsize=11, wrap=True)
    return fig


def _weight_panel(ax: Axes, document: Mapping[str, Any], end: float) -> None:
    times, weights = [0.0], [0]
    for decision in document["decisions"]:
        times.append(decision["since_start_s"])
        weights.append(decision["weight"])
    times.append(end)
    weights.append(weights[-1])
    label = {
        "canary": "canary weight (%)",
        "ab": "canary weight of matched traffic (%)",
        "bluegreen": "canary weight (%), tested directly",
    }.get(document["strategy"], "canary weight (%)")
    ax.step(times, weights, where="post", color="#4c72b0", linewidth=2, label=label)
    ax.set_ylim(-5, 110)
    ax.set_ylabel("weight %")
    ax.legend(loc="center left", fontsize=8)
    for decision in document["decisions"]:
        short = _short(decision["message"])
        if short is None:
            continue
        ax.annotate(
            short,
            (decision["since_start_s"], 104),
            xytext=(2, 0),
            textcoords="offset points",
            rotation=90,
            fontsize=7,
            ha="left",
            va="top",
            color=_SEVERITY_COLOURS.get(decision["severity"], "#444444"),
        )


def _short(message: str) -> str | None:
    for prefix, short in _SHORT:
        if message.startswith(prefix):
            return short
    return None


def _metric_panel(ax: Axes, name: str, checks: list[Mapping[str, Any]]) -> None:
    points = [(c["since_start_s"], c["metrics"][name]) for c in checks if name in c["metrics"]]
    measured = [(t, m) for t, m in points if m["value"] is not None]
    values = [m["value"] for _, m in measured]
    bounds = points[0][1] if points else {"min": None, "max": None}
    low, high = bounds["min"], bounds["max"]
    span = [*values, *(b for b in (low, high) if b is not None)] or [0.0, 1.0]
    bottom, top = min(span), max(span)
    pad = (top - bottom) * 0.15 or max(abs(top) * 0.05, 1.0)
    bottom, top = bottom - pad, top + pad
    ax.set_ylim(bottom, top)
    if low is not None:
        ax.axhline(low, color=_FAIL, linestyle="--", linewidth=1, label=f"min {low:g}")
        ax.axhspan(bottom, low, color=_FAIL, alpha=0.08)
    if high is not None:
        ax.axhline(high, color=_FAIL, linestyle="--", linewidth=1, label=f"max {high:g}")
        ax.axhspan(high, top, color=_FAIL, alpha=0.08)
    if measured:
        ax.plot([t for t, _ in measured], values, color="#333333", linewidth=1, alpha=0.6)
        ax.scatter(
            [t for t, _ in measured],
            values,
            c=[_PASS if m["passed"] else _FAIL for _, m in measured],
            zorder=3,
            s=30,
        )
    for time, metric in points:
        if metric["value"] is None:
            ax.scatter([time], [bottom + pad / 2], marker="x", color=_FAIL, zorder=3)
            ax.annotate("no data", (time, bottom + pad / 2), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set_ylabel(f"{name} (ms)" if name == REQUEST_DURATION else name, fontsize=8)
    ax.legend(loc="best", fontsize=8)


def png(document: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    figure(document).savefig(buffer, format="png")
    return buffer.getvalue()


def html(document: Mapping[str, Any]) -> str:
    """A page that stands alone: the picture (embedded PNG), the summary table, then the
    decisions, webhook calls and what the test bed saw."""
    image = base64.b64encode(png(document)).decode()
    name = f"{document['name']}.{document['namespace']}"
    rehearsal = document.get("rehearsal") or {}
    table = check_table(document)
    facts = [
        ("images", ", ".join(rehearsal.get("images") or [])),
        ("revision", document["revision"]),
        ("plan", document["plan"]["description"] if document.get("plan") else ""),
        ("outcome", outcome_words(document)),
    ]
    fault = rehearsal.get("fault")
    if fault:
        facts.append(
            (
                "faults",
                f"canary 5xx {fault['error_rate']:.0%}, p99 latency {fault['latency_ms']:g} ms",
            )
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Rehearsal of {_e(name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Rehearsal of {_e(name)}</h1>",
        _definitions(facts),
        f'<img alt="canary weight and metrics over time" src="data:image/png;base64,{image}">',
        "<h2>Checks</h2>",
        _table(table.columns, table.rows, table.failed),
        "<h2>Decisions</h2>",
        _table(
            ["time", "severity", "weight", "message"],
            [
                [f"+{d['since_start_s']:.1f} s", d["severity"], f"{d['weight']}%", d["message"]]
                for d in document["decisions"]
            ],
        ),
        "<h2>Webhooks</h2>",
        _table(
            ["time", "hook", "type", "status", "ms", "attempts", "reason"],
            [
                [
                    f"+{w['since_start_s']:.1f} s",
                    w["name"],
                    w["type"],
                    "no answer" if w["status"] is None else str(w["status"]),
                    f"{w['elapsed_s'] * 1000:.0f}",
                    str(w["attempts"]),
                    w["reason"] or "",
                ]
                for w in document["webhooks"]
            ],
        ),
        *_bed_sections(rehearsal),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _bed_sections(rehearsal: Mapping[str, Any]) -> list[str]:
    sections = []
    tests = rehearsal.get("load_tests") or []
    if tests:
        sections += [
            "<h2>Load tests (recorded, never run)</h2>",
            _table(
                ["type", "command", "simulated traffic"],
                [
                    [
                        test["type"],
                        test["command"],
                        (
                            f"{test['traffic']['rps']:g} req/s to {test['traffic']['host']} "
                            f"for {test['traffic']['seconds']:g} s"
                        )
                        if test["traffic"]
                        else "",
                    ]
                    for test in tests
                ],
            ),
        ]
    answered = rehearsal.get("answered_locally") or []
    if answered:
        sections += [
            "<h2>Answered locally (nothing left the machine)</h2>",
            _table(
                ["would have called", "calls"],
                [[entry["url"], str(entry["calls"])] for entry in answered],
            ),
        ]
    alerts = [alert for alert in rehearsal.get("alerts") or [] if alert["providers"]]
    if alerts:
        sections += [
            "<h2>Alerts</h2>",
            _table(
                ["severity", "providers", "text", "delivered"],
                [
                    [
                        alert["severity"],
                        ", ".join(alert["providers"]),
                        alert["text"],
                        "; ".join(alert["warnings"]) or "yes",
                    ]
                    for alert in alerts
                ],
            ),
        ]
    queries = rehearsal.get("queries") or []
    if queries:
        sections += [
            "<h2>The tutorial's queries (the bed's Prometheus)</h2>",
            _table(["query", "answer"], [[q["query"], q["answer"]] for q in queries]),
        ]
    return sections


def _e(text: object) -> str:
    return markup.escape(str(text))


def _definitions(facts: list[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{_e(term)}</dt><dd>{_e(value)}</dd>" for term, value in facts)
    return f"<dl>{rows}</dl>"


def _table(
    columns: list[str], rows: list[list[str]], failed: list[list[bool]] | None = None
) -> str:
    head = "".join(f"<th>{_e(column)}</th>" for column in columns)
    body = []
    for index, row in enumerate(rows):
        marks = failed[index] if failed else [False] * len(row)
        cells = "".join(
            f'<td class="fail">{_e(cell)}</td>' if bad else f"<td>{_e(cell)}</td>"
            for cell, bad in zip(row, marks, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 72em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.fail { color: #b00020; font-weight: 600; }
td:first-child { white-space: nowrap; }
""".strip()
