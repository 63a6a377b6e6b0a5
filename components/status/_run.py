"""`python -m components.status NAME`: one release as the cluster holds it, from any machine.

A terminal gets a live table (rich); piped output gets plain lines, one snapshot each time
something changed. The exit statuses are in `view` and the README.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, TextIO

import lightkube
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..adapters.cluster import ClusterError
from ..adapters.kube import Connections, KubeAccess
from ..adapters.manifests import read_release
from ..spec import ReleaseSpec, SpecError
from .source import Source
from .view import (
    EXIT_INVALID,
    EXIT_SUCCEEDED,
    EXIT_UNREACHABLE,
    Row,
    Snapshot,
    Tone,
    exit_status,
    plain_lines,
    rows,
)

EXIT_STOPPED = 130
"""Ctrl-C stopped the watch (the release itself goes on)."""
DEFAULT_INTERVAL_SECONDS = 2.0
# Kubernetes object names (RFC 1123 subdomains) and namespaces (RFC 1123 labels).
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_TONE_STYLES = {Tone.PLAIN: "", Tone.GOOD: "green", Tone.WARN: "yellow", Tone.BAD: "bold red"}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        release = _release(args)
        access = _access(args)
        namespace = _namespace(args, release, access)
    except (SpecError, OSError, yaml.YAMLError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    console = Console()
    try:
        with Connections(access) as connections:
            source = Source(connections, args.name, namespace, release)
            if not args.watch:
                _show_once(source.read(), console)
                return EXIT_SUCCEEDED
            if console.is_terminal:
                with LiveDisplay(console) as display:
                    return watch(source.read, display, args.interval)
            return watch(source.read, PlainDisplay(sys.stdout, sys.stderr), args.interval)
    except (ClusterError, lightkube.ConfigError) as error:
        # Both carry plain messages only: never a request, so never a credential.
        print(f"error: cannot read {args.name} in {namespace}: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_STOPPED


class Display(Protocol):
    """Where a watch shows its snapshots: the live table, or plain lines."""

    def show(self, snapshot: Snapshot) -> None: ...

    def problem(self, message: str) -> None:
        """A read failed; the last snapshot shown stays, and the watch tries again."""


def watch(
    read: Callable[[], Snapshot],
    display: Display,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Shows snapshots every `interval` seconds until the release ends; returns its exit status.

    A failed first read raises (the cluster is unreachable); a later one is shown and retried,
    so a blip of the API server does not end a watch of a long release.
    """
    snapshot = read()
    display.show(snapshot)
    while (status := exit_status(snapshot)) is None:
        sleep(interval)
        try:
            snapshot = read()
        except ClusterError as error:
            display.problem(f"cannot read the cluster: {error}; retrying every {interval:g}s")
            continue
        display.show(snapshot)
    return status


class PlainDisplay:
    """Plain lines for logs and pipes: a snapshot each time something changed, no codes."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out, self._err = out, err
        self._shown: Snapshot | None = None
        self._problem: str | None = None

    def show(self, snapshot: Snapshot) -> None:
        state = _state(snapshot)
        if self._shown is not None and state == _state(self._shown):
            return
        separator = "\n" if self._shown is not None else ""
        self._out.write(separator + "\n".join(plain_lines(rows(snapshot))) + "\n")
        self._out.flush()
        self._shown, self._problem = snapshot, None

    def problem(self, message: str) -> None:
        if message != self._problem:
            self._err.write(f"error: {message}\n")
            self._err.flush()
            self._problem = message


def _state(snapshot: Snapshot) -> tuple[object, ...]:
    """What counts as a change: everything read, not the time of reading."""
    return (
        snapshot.record,
        snapshot.routes,
        snapshot.canary,
        snapshot.primary,
        snapshot.interrupted,
    )


class LiveDisplay:
    """The table redrawn in place, as `kubectl argo rollouts get rollout --watch` does."""

    def __init__(self, console: Console) -> None:
        self._live = Live(
            console=console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False
        )
        self._rows: list[Row] = []

    def __enter__(self) -> LiveDisplay:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()

    def show(self, snapshot: Snapshot) -> None:
        self._rows = rows(snapshot)
        self._live.update(table(self._rows), refresh=True)

    def problem(self, message: str) -> None:
        self._live.update(table([*self._rows, Row("Error", message, Tone.BAD)]), refresh=True)


def table(shown: list[Row]) -> Table:
    """The rows as a two-column grid; values are Text, so nothing read is taken as markup."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for row in shown:
        grid.add_row(
            f"{row.label}:" if row.label else "", Text(row.value, style=_TONE_STYLES[row.tone])
        )
    return grid


def _show_once(snapshot: Snapshot, console: Console) -> None:
    if console.is_terminal:
        console.print(table(rows(snapshot)))
    else:
        print("\n".join(plain_lines(rows(snapshot))), flush=True)


# -- input --------------------------------------------------------------------------------------


def _release(args: argparse.Namespace) -> ReleaseSpec | None:
    """The user's spec, when given: the plan needs it."""
    if args.deployment and not args.canary:
        raise ValueError("--deployment: needs --canary")
    if not args.canary:
        if args.metric_template or args.alert_provider:
            raise ValueError("--metric-template and --alert-provider: need --canary")
        return None
    if not args.deployment:
        raise ValueError("--canary: needs --deployment too (the release spec is both)")
    release = read_release(
        canary=args.canary,
        deployment=args.deployment,
        metric_templates=args.metric_template,
        alert_providers=args.alert_provider,
    )
    if release.name != args.name:
        raise ValueError(f"NAME {args.name}: the Canary in --canary is named {release.name}")
    return release


def _access(args: argparse.Namespace) -> KubeAccess:
    """The gate's order: --kubeconfig, else KUBECONFIG or ~/.kube/config, else in-cluster;
    loaded now, so bad credentials options are invalid input, not an unreachable cluster."""
    if args.kubeconfig and not Path(args.kubeconfig).is_file():
        raise ValueError(f"--kubeconfig {args.kubeconfig}: no such file")
    access = KubeAccess(kubeconfig_file=args.kubeconfig, context=args.context)
    try:
        access.config()
    except lightkube.ConfigError as error:
        given = " ".join(
            f"{option} {value}"
            for option, value in (("--kubeconfig", args.kubeconfig), ("--context", args.context))
            if value
        )
        raise ValueError(f"{given}: {error}" if given else str(error)) from None
    return access


def _namespace(args: argparse.Namespace, release: ReleaseSpec | None, access: KubeAccess) -> str:
    """--namespace, else the Canary's, else the kubeconfig context's (as kubectl defaults)."""
    if release is not None:
        if args.namespace and args.namespace != release.namespace:
            raise ValueError(
                f"--namespace {args.namespace}: the Canary in --canary is in {release.namespace}"
            )
        return release.namespace
    return str(args.namespace) if args.namespace else access.namespace()


def _object_name(text: str) -> str:
    if len(text) > 253 or not _SUBDOMAIN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be a Kubernetes object name: lower-case letters, digits, '-' and '.' "
            f"(got {text!r})"
        )
    return text


def _namespace_name(text: str) -> str:
    if len(text) > 63 or not _LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be a namespace name: lower-case letters, digits and '-' (got {text!r})"
        )
    return text


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds (got {text})")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.status",
        description=(
            "Show one canary release as the cluster holds it: its release record, the "
            "VirtualService's weights and the Deployments. It only reads, so it works from any "
            "machine while pulumi up runs elsewhere."
        ),
        epilog="Exit status: 0 shown, or with --watch promoted (Succeeded) or idle; 1 failed; "
        "2 invalid input; 3 interrupted (Interrupted, or its run stopped heartbeating); "
        "4 cluster unreachable; 130 watch stopped by Ctrl-C.",
    )
    parser.add_argument("name", metavar="NAME", type=_object_name, help="the Canary's name")
    parser.add_argument(
        "--namespace",
        "-n",
        type=_namespace_name,
        metavar="NS",
        help="default: the Canary's (--canary), else the kubeconfig context's, else default",
    )
    parser.add_argument("--watch", "-w", action="store_true", help="refresh until the release ends")
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"between refreshes with --watch (default {DEFAULT_INTERVAL_SECONDS:g})",
    )
    parser.add_argument(
        "--canary", metavar="FILE", help="the Flagger Canary, to show the plan and its steps"
    )
    parser.add_argument("--deployment", metavar="FILE", help="the Canary's target Deployment")
    parser.add_argument(
        "--metric-template",
        action="append",
        default=[],
        metavar="FILE",
        help="a MetricTemplate the Canary refers to (repeat for several)",
    )
    parser.add_argument(
        "--alert-provider",
        action="append",
        default=[],
        metavar="FILE",
        help="an AlertProvider the Canary refers to (repeat for several)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="default: KUBECONFIG or ~/.kube/config, then in-cluster credentials",
    )
    parser.add_argument(
        "--context", metavar="CTX", help="a kubeconfig context other than the current one"
    )
    return parser
