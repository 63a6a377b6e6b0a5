"""`python -m components.migrate`: the file it writes, the steps it prints, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.migrate import declared_objects, exists_under_flagger, import_file, main
from components.migrate._run import _parser
from tests.conftest import ROOT, corpus_bundle, tutorial_bundle
from tests.migrate.manifests import bundle_argv, write_manifests
from tests.spec.bad_inputs import BAD_INPUTS, BadInput


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_writes_the_import_file_and_prints_the_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tutorial_bundle("tutorial-metrics")
    out = tmp_path / "import.json"
    argv = [*bundle_argv(bundle, tmp_path), "--name", "podinfo", "--out", str(out)]
    code, printed, errors = run(argv, capsys)
    assert (code, errors) == (0, "")
    declared = declared_objects("podinfo", bundle.release())
    expected = import_file("podinfo", declared, {o.name: exists_under_flagger(o) for o in declared})
    assert json.loads(out.read_text()) == expected
    steps = [
        "kubectl -n default delete canary podinfo --cascade=orphan",
        f"pulumi import --file {out} --generate-code=false --protect=false",
        "PULUMI_K8S_UPSERT_EXISTING_OBJECTS=true pulumi preview --diff",
        "PULUMI_K8S_UPSERT_EXISTING_OBJECTS=true pulumi up",
    ]
    positions = [printed.index(step) for step in steps]
    assert positions == sorted(positions), printed
    assert "podinfo-error-rate-metric-template (new)" in printed
    assert "revertOnDeletion" not in printed  # the tutorial's Canary does not set it


def test_revert_on_deletion_is_turned_off_before_the_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs = tutorial_bundle("tutorial-canary").kwargs()
    kwargs["canary"]["spec"]["revertOnDeletion"] = True
    argv = [*write_manifests(kwargs, tmp_path), "--name", "podinfo", "--out", str(tmp_path / "f")]
    code, printed, _ = run(argv, capsys)
    assert code == 0
    patch = printed.index(""""spec":{"revertOnDeletion":false}""")
    assert patch < printed.index("delete canary podinfo --cascade=orphan")


def test_an_explicit_provider_needs_stack_and_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*bundle_argv(tutorial_bundle("tutorial-canary"), tmp_path), "--name", "podinfo"]
    out = tmp_path / "import.json"
    code, _, errors = run([*argv, "--provider", "prod", "--stack", "dev"], capsys)
    assert code == 2
    assert "--provider prod: needs --project" in errors
    code, printed, _ = run(
        [*argv, "--out", str(out), "--provider", "prod", "--stack", "dev", "--project", "web"],
        capsys,
    )
    assert code == 0
    urn = "urn:pulumi:dev::web::pulumi:providers:kubernetes::prod"
    assert json.loads(out.read_text())["nameTable"] == {"prod": urn}
    assert f"pulumi up --target {urn}" in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stack", "dev"], "--stack and --project only build the URN of --provider"),
        (["--kubeconfig", "kubeconfig"], "only apply with --from-cluster"),
        (["--provider", "podinfo-primary", "--stack", "s", "--project", "p"], "also the name"),
        (["--from-cluster", "--kubeconfig", "missing"], "--kubeconfig missing: No such file"),
    ],
)
def test_options_that_do_not_fit_are_refused(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*bundle_argv(tutorial_bundle("tutorial-canary"), tmp_path), "--name", "podinfo"]
    code, _, errors = run([*argv, *extra, "--out", str(tmp_path / "f")], capsys)
    assert code == 2
    assert message in errors


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--canary {path}: No such file or directory"),
        ("spec: [unclosed", "--canary {path}: not valid YAML"),
        ("- a list", "--canary {path}: expected one YAML mapping"),
    ],
    ids=["missing", "bad-yaml", "not-a-mapping"],
)
def test_unreadable_manifests_are_named(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = bundle_argv(tutorial_bundle("tutorial-canary"), tmp_path)
    path = tmp_path / "canary.yaml"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    code, printed, errors = run([*argv, "--name", "podinfo", "--out", str(tmp_path / "f")], capsys)
    assert (code, printed) == (2, "")
    assert message.format(path=path) in errors
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda bad: bad.id)
def test_an_invalid_canary_is_refused_naming_the_field(
    bad: BadInput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*write_manifests(bad.kwargs(), tmp_path), "--name", "podinfo"]
    code, printed, errors = run([*argv, "--out", str(tmp_path / "f")], capsys)
    assert (code, printed) == (2, "")
    bad.check(errors)


def test_a_deployment_that_is_not_the_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs = corpus_bundle("autoscaler").kwargs()
    kwargs["autoscaler"] = None  # autoscalerRef names an HPA that is not passed in
    code, _, errors = run([*write_manifests(kwargs, tmp_path), "--name", "x"], capsys)
    assert code == 2
    assert "spec.autoscalerRef: names HPA 'scaled-hpa': pass its manifest" in errors


def test_help_describes_every_option() -> None:
    parser = _parser()
    text = parser.format_help()
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text
        assert action.help, action.option_strings
    assert "Exit status: 0 when the file was written" in text


def test_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "components.migrate", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--from-cluster" in result.stdout
