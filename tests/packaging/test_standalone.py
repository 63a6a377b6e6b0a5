"""The project stands alone: a copy with nothing beside it passes its schema tests, and a user
who installs the package into their own virtualenv can unit-test a stack that contains it.

Slow (a copy of the repository, a fresh virtualenv from the package index), so marked `slow`;
CI runs them with everything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

USER_TEST = '''
"""A user's own unit test of a stack holding the component, under Pulumi's echo mocks."""

import pulumi
import yaml

from pulumi_canary import CanaryDeployment


class Echo(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}, []


pulumi.runtime.set_mocks(Echo(), preview=False)


@pulumi.runtime.test
def test_the_stack_declares_the_primary():
    podinfo = CanaryDeployment.from_flagger(
        "podinfo",
        canary=yaml.safe_load(open("canary.yaml")),
        deployment=yaml.safe_load(open("deployment.yaml")),
    )
    assert podinfo.release.primary == "podinfo-primary"
    return podinfo.primary_deployment.metadata.apply(
        lambda metadata: print("declared", metadata["name"])
    )
'''

PICKLE = """
import base64, sys
from pulumi.dynamic.dynamic import serialize_provider
from pulumi_canary.provider.rollout import RolloutProvider
sys.stdout.write(serialize_provider(RolloutProvider()))
"""

UNPICKLE = """
import base64, sys, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
print(type(provider).__module__, type(provider).__name__)
"""


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [name for name in listed if name and (ROOT / name).is_file()]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        args,
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**environment, **env},
        timeout=900,
    )


def copy_of_the_repository(folder: Path) -> Path:
    """What `git clone` would give (the tracked files and the new ones not ignored), and
    nothing of what sits beside the repository or is ignored in it."""
    for name in tracked_files():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    return folder


def test_a_copy_with_nothing_beside_it_passes_its_schema_tests(tmp_path: Path) -> None:
    alone = copy_of_the_repository(tmp_path / "clone")
    assert [path.name for path in tmp_path.iterdir()] == ["clone"]
    result = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/spec",
            "tests/routing",
        ],
        alone,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def test_every_package_is_in_the_distribution() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(("pulumi_canary", *init.parent.relative_to(ROOT / "components").parts))
        for init in (ROOT / "components").rglob("__init__.py")
    }
    assert listed == found


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the runtime requirements, pytest and this package, nothing else."""
    folder = tmp_path_factory.mktemp("user")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pytest_pin = next(
        line
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("pytest==")
    )
    source = copy_of_the_repository(folder / "source")  # building writes into the source
    install = run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(source / "requirements.txt"), pytest_pin, str(source)],
        folder,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def test_a_user_can_unit_test_a_stack_with_the_component(user_venv: Path, tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    for name in ("canary.yaml", "deployment.yaml"):
        (stack / name).write_text((ROOT / "examples" / "podinfo" / name).read_text())
    # The user's own `components/` package must not get in the way.
    (stack / "components").mkdir()
    (stack / "components" / "__init__.py").write_text("OURS = True\n")
    (stack / "test_stack.py").write_text(textwrap.dedent(USER_TEST))
    result = run([str(user_venv), "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"], stack)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    assert "declared podinfo-primary" in result.stdout


def test_a_provider_pickled_by_an_installed_stack_unpickles_in_a_fresh_process(
    user_venv: Path, tmp_path: Path
) -> None:
    pickled = run([str(user_venv), "-c", PICKLE], tmp_path)
    assert pickled.returncode == 0, pickled.stderr
    unpickled = subprocess.run(
        [str(user_venv), "-c", UNPICKLE],
        check=False,
        cwd=tmp_path,
        input=pickled.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unpickled.returncode == 0, unpickled.stderr
    assert unpickled.stdout.split() == ["pulumi_canary.provider.rollout", "RolloutProvider"]


def test_the_rehearsal_says_which_extra_it_needs(user_venv: Path, tmp_path: Path) -> None:
    result = run([str(user_venv), "-m", "pulumi_canary.rehearse", "--help"], tmp_path)
    assert result.returncode != 0
    assert "pip install 'pulumi-canary[rehearse]'" in result.stderr
