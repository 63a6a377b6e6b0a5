"""The command's invalid input: exit status 2 and a message naming the option, before any
request reaches a cluster."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from components.status import main
from components.status.view import EXIT_INVALID
from tests.conftest import EXAMPLES, load_yaml

CANARY = str(EXAMPLES / "canary.yaml")
DEPLOYMENT = str(EXAMPLES / "deployment.yaml")


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    """Credentials for a server nobody listens on: nothing here may get as far as using them."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "here",
        "clusters": [{"name": "here", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "here", "context": {"cluster": "here", "user": "me"}}],
        "users": [{"name": "me", "user": {"token": "s3cret-token"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The error, on stderr only; one line unless the spec has several problems to list."""
    assert main(argv) == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "s3cret-token" not in captured.err
    return captured.err.rstrip("\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--deployment", DEPLOYMENT], "error: --deployment: needs --canary"),
        (
            ["--canary", CANARY],
            "error: --canary: needs --deployment too (the release spec is both)",
        ),
        (
            ["--metric-template", CANARY],
            "error: --metric-template and --alert-provider: need --canary",
        ),
        (
            ["--canary", CANARY, "--deployment", DEPLOYMENT, "--namespace", "prod"],
            "error: --namespace prod: the Canary in --canary is in default",
        ),
        (
            ["--context", "prod"],
            "error: --kubeconfig {kubeconfig} --context prod: Context 'prod' not found",
        ),
    ],
    ids=["deployment-alone", "canary-alone", "template-alone", "namespace", "context"],
)
def test_inconsistent_options_are_named(
    argv: list[str], message: str, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = refused(["podinfo", "--kubeconfig", kubeconfig, *argv], capsys)
    assert shown == message.format(kubeconfig=kubeconfig)


def test_a_canary_of_another_name_is_refused(
    kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["other", "--kubeconfig", kubeconfig, "--canary", CANARY, "--deployment", DEPLOYMENT]
    assert refused(argv, capsys) == "error: NAME other: the Canary in --canary is named podinfo"


def test_a_bad_field_of_the_canary_is_named_with_its_path(
    kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"]["stepWeight"] = 150
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(canary))
    argv = ["podinfo", "--kubeconfig", kubeconfig, "--canary", str(path)]
    assert refused([*argv, "--deployment", DEPLOYMENT], capsys) == (
        "error: invalid Canary:\n"
        "  - spec.analysis.stepWeight: Input should be less than or equal to 100 (got 150)"
    )


def test_a_missing_kubeconfig_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert refused(["podinfo", "--kubeconfig", str(missing)], capsys) == (
        f"error: --kubeconfig {missing}: no such file"
    )


def test_no_credentials_at_all_says_where_they_are_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert refused(["podinfo"], capsys) == (
        "error: no cluster credentials: pass a kubeconfig, set KUBECONFIG, or run in a cluster"
    )


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["Pod_Info"], "argument NAME: must be a Kubernetes object name"),
        (["podinfo", "--namespace", "a.b"], "argument --namespace/-n: must be a namespace name"),
        (["podinfo", "--interval", "0"], "argument --interval: must be more than 0 seconds"),
        (["podinfo", "--interval", "soon"], "argument --interval: must be a number of seconds"),
    ],
)
def test_malformed_arguments_exit_2_naming_the_argument(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_INVALID
    assert named in capsys.readouterr().err
