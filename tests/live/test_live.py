"""The example stack (`__main__.py`) released by the real `pulumi up`, on a real cluster.

The issue's scenario, end to end, through `pulumi.automation`:

1. `up` with podinfo 6.3.0 creates everything (the first release is promoted without analysis);
2. `up` with 6.3.1 runs the analysis and promotes: `podinfo-primary` runs 6.3.1, the
   VirtualService `podinfo` sends 100% to `podinfo-primary`, the canary is scaled to 0;
3. `up` with an image that never becomes ready fails with "rolled back", and the primary still
   runs 6.3.1;
4. the same `up` again fails fast with "already failed";

then `destroy`, whatever happened. And what the real engine does that its stand-ins only
imitate (issue 12), each case on a stack of its own, created with 6.3.0 first:

- `preview` of 6.3.1 shows the Rollout updating, prints the change review, and changes nothing
  on the cluster (images, replicas and route weights as they were);
- a Rollout lost from state (removed from an exported state, which is imported back) is
  created again by the next `up` of 6.3.1, which analyses the image instead of promoting it;
- the gate given its own kubeconfig for the same cluster holds to it (the uids the stack's
  provider saw match) and releases; given a context of another cluster
  (`CANARY_LIVE_OTHER_CONTEXT`, else that case skips), it refuses before it changes anything.

Requirements, none of which this repository's CI has, so the module skips without them:

- the `pulumi` CLI on PATH (the Automation API drives it; the pip package is only the SDK);
- a kubeconfig (`KUBECONFIG`, else `~/.kube/config`) whose current context is a cluster with
  Istio (sidecar injection enabled in `default`, the Canary's namespace), Istio's Prometheus
  addon at `http://prometheus.istio-system:9090` (the spec's default metrics server) and the
  flagger-loadtester at `http://flagger-loadtester.default/` (the Canary's load-test webhook);
- `CANARY_LIVE=1`: an explicit opt-in, because the test creates and deletes `podinfo*` objects
  in the `default` namespace of whatever the current context is.

`kubectl` on PATH for the case with the gate's own kubeconfig (it writes the current context's
credentials out, `kubectl config view --raw --minify --flatten`), and
`CANARY_LIVE_OTHER_CONTEXT`, a context of the same kubeconfig that reaches another cluster, for
the wrong-cluster case; each skips without its own.

docs/live-kind-istio.md sets all of this up on kind. Run with
`CANARY_LIVE=1 venv/bin/pytest -m live tests/live` (add `-s` to follow `pulumi up` as it runs).
The stack's state goes to a file backend in a temporary directory; only the stack settings file
`Pulumi.<stack>.yaml` is written in the project root, and removed at the end.

Timing: the Canary analyses every minute in 5 steps, so step 2 takes about 6 minutes; step 3 is
bounded by the `deadlineSeconds` stack config set below (about 5 minutes). The re-creation and
own-kubeconfig cases analyse one release each (about 6 minutes); the preview and wrong-cluster
cases take little more than their first `up`. Set
`CANARY_LIVE_INTERVAL` (e.g. `30s`) to shorten the analysis interval, if Prometheus scrapes
often enough for `rate()` over that window (Istio's addon scrapes every 15 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lightkube
import pytest
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Service
from pulumi import automation as auto

from components.adapters.kube import KubeAccess

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
PRIMARY = "podinfo-primary"
CANARY = "podinfo"
VIRTUAL_SERVICE = "podinfo"
IMAGE_FIRST = "ghcr.io/stefanprodan/podinfo:6.3.0"
IMAGE_GOOD = "ghcr.io/stefanprodan/podinfo:6.3.1"
# A release that must fail. podinfo's `--random-error` flag (or PODINFO_RANDOM_ERROR) would make
# the canary answer 5xx, but the example stack can only change the image (config `image`), not
# the pod's args or env. So the failing release is an image that does not exist: the canary never
# becomes ready, and the release rolls back at its deadline.
IMAGE_BAD = "ghcr.io/stefanprodan/podinfo:does-not-exist"
# Bounds the failing release (the gate's `deadlineSeconds`); without it, an unready canary rolls
# back after the Canary's progress deadline (600 s). Set only for steps 3 and 4, so the healthy
# release of step 2 runs with the default deadline (worst-case analysis plus progress deadline).
FAILING_DEADLINE_SECONDS = 300
INTERVAL = os.environ.get("CANARY_LIVE_INTERVAL", "1m")
# 1: up to 10 min (pod pulls and sidecars); 2: ~6 min; 3: ~5 min; 4: ~1 min; destroy: ~3 min.
TIMEOUT_SECONDS = 60 * 60

# A context of the current kubeconfig that reaches another cluster than the current one.
OTHER_CONTEXT = os.environ.get("CANARY_LIVE_OTHER_CONTEXT")
# The change review of 6.3.0 -> 6.3.1, and the first check line of its analysis.
REVIEW = f"podinfo: {IMAGE_FIRST} -> 6.3.1; canary 10% -> 50% in 5 steps every "
FIRST_CHECK = "podinfo: 10% success-rate "

VirtualService = create_namespaced_resource(
    "networking.istio.io", "v1", "VirtualService", "virtualservices"
)


def _kubeconfig_available() -> bool:
    """Where the Kubernetes provider, the gate and kubectl all look, in the same order.

    A set KUBECONFIG is used alone (no fallback to ~/.kube/config), as client-go does.
    """
    listed = [path for path in os.environ.get("KUBECONFIG", "").split(os.pathsep) if path]
    if listed:
        return any(Path(path).is_file() for path in listed)
    return (Path.home() / ".kube" / "config").is_file()


def _missing_requirements() -> list[str]:
    missing = []
    if os.environ.get("CANARY_LIVE") != "1":
        missing.append(
            "CANARY_LIVE=1 is not set (an explicit opt-in: the test creates and deletes podinfo "
            "objects in the 'default' namespace of the current kubeconfig context, so it never "
            "runs against a production context by accident)"
        )
    if shutil.which("pulumi") is None:
        missing.append("the pulumi CLI is not on PATH")
    if not _kubeconfig_available():
        missing.append("no kubeconfig (KUBECONFIG unset or missing, and no ~/.kube/config)")
    return missing


MISSING = _missing_requirements()

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(MISSING),
        reason="live test against a real cluster with Istio and Prometheus "
        "(see docs/live-kind-istio.md): " + "; ".join(MISSING),
    ),
    pytest.mark.timeout(TIMEOUT_SECONDS),
]


# -- the cluster, read with lightkube ---------------------------------------------------------


@pytest.fixture(scope="module")
def kube() -> Iterator[lightkube.Client]:
    """The cluster the stack deploys to: the same credentials the gate resolves."""
    client = KubeAccess(timeout_seconds=30.0).client()
    try:
        yield client
    finally:
        client.close()


def _deployment(kube: lightkube.Client, name: str) -> Deployment:
    return kube.get(Deployment, name, namespace=NAMESPACE)


def _image(kube: lightkube.Client, name: str) -> str | None:
    spec = _deployment(kube, name).spec
    assert spec is not None and spec.template.spec is not None, f"Deployment {name} has no spec"
    return spec.template.spec.containers[0].image


def _replicas(kube: lightkube.Client, name: str) -> int | None:
    spec = _deployment(kube, name).spec
    assert spec is not None, f"Deployment {name} has no spec"
    return spec.replicas


def _weights(kube: lightkube.Client) -> dict[str, int]:
    """Weight per destination service (short name) over the VirtualService's HTTP routes."""
    service: Mapping[str, Any] = kube.get(VirtualService, VIRTUAL_SERVICE, namespace=NAMESPACE)
    weights: dict[str, int] = {}
    for route in (service.get("spec") or {}).get("http") or []:
        destinations = route.get("route") or []
        for destination in destinations:
            host = str(destination["destination"]["host"]).split(".")[0]
            # A lone destination without a weight gets all the traffic.
            default = 100 if len(destinations) == 1 else 0
            weights[host] = weights.get(host, 0) + int(destination.get("weight", default))
    return weights


def _assert_at_rest_on(kube: lightkube.Client, image: str) -> None:
    """The primary serves `image` and takes all the traffic; the canary is scaled to zero."""
    assert _image(kube, PRIMARY) == image
    primary = _deployment(kube, PRIMARY)
    assert primary.status is not None and (primary.status.availableReplicas or 0) >= 1, (
        f"{PRIMARY} has no available replica: {primary.status}"
    )
    weights = _weights(kube)
    assert weights.get(PRIMARY) == 100, f"VirtualService {VIRTUAL_SERVICE} routes {weights}"
    assert all(weight == 0 for host, weight in weights.items() if host != PRIMARY), weights
    assert _replicas(kube, CANARY) == 0


def _at_rest(kube: lightkube.Client) -> tuple[str | None, str | None, int | None, dict[str, int]]:
    """What a release changes: both images, the canary's replicas, the route weights."""
    return _image(kube, PRIMARY), _image(kube, CANARY), _replicas(kube, CANARY), _weights(kube)


def _check_cluster(kube: lightkube.Client) -> None:
    """Fails early, with the recipe's step, when the cluster lacks what the release needs."""
    problems = []
    for namespace, name, fix in (
        ("istio-system", "prometheus", "apply Istio's samples/addons/prometheus.yaml"),
        (NAMESPACE, "flagger-loadtester", "install the flagger-loadtester in 'default'"),
    ):
        try:
            kube.get(Service, name, namespace=namespace)
        except lightkube.ApiError as error:
            problems.append(f"Service {namespace}/{name}: {error.status.message} ({fix})")
    metadata = kube.get(Namespace, NAMESPACE).metadata
    labels = (metadata.labels if metadata else None) or {}
    if labels.get("istio-injection") != "enabled" and "istio.io/rev" not in labels:
        problems.append(f"namespace {NAMESPACE} has no istio-injection=enabled label")
    try:
        list(kube.list(VirtualService, namespace=NAMESPACE))
    except lightkube.ApiError as error:
        problems.append(f"no VirtualService API (is Istio installed?): {error.status.message}")
    for name in (CANARY, PRIMARY):
        try:
            kube.get(Deployment, name, namespace=NAMESPACE)
        except lightkube.ApiError as error:
            if error.status.code != 404:
                raise
        else:
            problems.append(f"Deployment {NAMESPACE}/{name} already exists; remove it first")
    if problems:
        pytest.fail(
            "the cluster is not ready for the live test (docs/live-kind-istio.md):\n- "
            + "\n- ".join(problems)
        )


# -- the stack, driven with the Automation API ---------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[auto.Stack]:
    """A fresh stack of the project, state in a file backend under tmp_path; destroyed after."""
    backend = tmp_path / "state"
    backend.mkdir()
    stack_name = f"live-{uuid.uuid4().hex[:8]}"
    workspace = auto.LocalWorkspaceOptions(
        env_vars={
            "PULUMI_BACKEND_URL": backend.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "canary-live-test",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }
    )
    created = auto.create_or_select_stack(
        stack_name=stack_name, work_dir=str(PROJECT_ROOT), opts=workspace
    )
    try:
        yield created
    finally:
        try:
            created.destroy(color="never", on_output=print)
        finally:
            # `stack rm` also deletes Pulumi.<stack>.yaml from the project root.
            created.workspace.remove_stack(stack_name, force=True)
            (PROJECT_ROOT / f"Pulumi.{stack_name}.yaml").unlink(missing_ok=True)


def _set(stack: auto.Stack, **config: str) -> None:
    for key, value in config.items():
        stack.set_config(key, auto.ConfigValue(value=value))


def _up(stack: auto.Stack) -> auto.UpResult:
    return stack.up(color="never", on_output=print)


def _failed_up(stack: auto.Stack) -> str:
    with pytest.raises(auto.CommandError) as failure:
        _up(stack)
    return str(failure.value)


def test_release_promotes_then_rolls_back_then_fails_fast(
    stack: auto.Stack, kube: lightkube.Client
) -> None:
    _check_cluster(kube)

    # 1. The first release creates everything and is promoted without analysis.
    _set(stack, image=IMAGE_FIRST, interval=INTERVAL)
    first = _up(stack)
    assert first.summary.result == "succeeded"
    assert first.outputs["primary"].value == PRIMARY
    _assert_at_rest_on(kube, IMAGE_FIRST)

    # 2. A new image is analysed step by step on the canary, then promoted.
    _set(stack, image=IMAGE_GOOD)
    second = _up(stack)
    assert second.summary.result == "succeeded"
    _assert_at_rest_on(kube, IMAGE_GOOD)

    # 3. An image that never becomes ready: `pulumi up` fails, the primary is untouched.
    _set(stack, image=IMAGE_BAD, deadlineSeconds=str(FAILING_DEADLINE_SECONDS))
    failed = _failed_up(stack)
    assert "rolled back" in failed, failed
    _assert_at_rest_on(kube, IMAGE_GOOD)
    assert _image(kube, CANARY) == IMAGE_BAD  # the canary holds the rejected template, at zero

    # 4. The same `up` again does not analyse the known-bad template a second time.
    started = time.monotonic()
    again = _failed_up(stack)
    elapsed = time.monotonic() - started
    assert "already failed" in again, again
    # Far below step 3's deadline: no analysis ran (the rest is the CLI and plugin start-up).
    assert elapsed < FAILING_DEADLINE_SECONDS / 2, f"took {elapsed:.0f}s"
    _assert_at_rest_on(kube, IMAGE_GOOD)


def _first_release(stack: auto.Stack, kube: lightkube.Client) -> None:
    """Every case below starts here: 6.3.0 created and promoted without analysis."""
    _check_cluster(kube)
    _set(stack, image=IMAGE_FIRST, interval=INTERVAL)
    assert _up(stack).summary.result == "succeeded"
    _assert_at_rest_on(kube, IMAGE_FIRST)


def _ops_into(ops: dict[str, str]) -> Callable[[auto.EngineEvent], None]:
    """An `on_event` that keeps each resource's step, by the resource's name."""

    def record(event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            metadata = event.resource_pre_event.metadata
            ops[metadata.urn.rsplit("::", 1)[-1]] = str(metadata.op.value)

    return record


def test_preview_reviews_the_release_and_changes_nothing(
    stack: auto.Stack, kube: lightkube.Client
) -> None:
    _first_release(stack, kube)
    before = _at_rest(kube)
    _set(stack, image=IMAGE_GOOD)
    ops: dict[str, str] = {}
    preview = stack.preview(color="never", on_output=print, on_event=_ops_into(ops))
    assert ops.get("podinfo-rollout") == "update", ops
    # Declared from the Rollout's promoted_template, unknown until the analysis passed.
    assert ops.get(PRIMARY) == "update", ops
    assert REVIEW in preview.stdout, preview.stdout
    assert _at_rest(kube) == before


def _forget(stack: auto.Stack, name: str) -> None:
    """Removes the resource named `name` from the stack's state, and every reference to it,
    as a state that lost it would be: `pulumi state delete` refuses a resource with
    dependents, or takes them with it (`--target-dependents`)."""
    exported = stack.export_stack()
    deployment = dict(exported.deployment or {})
    resources = deployment["resources"]
    (urn,) = [r["urn"] for r in resources if r["urn"].endswith(f"::{name}")]
    kept = []
    for resource in resources:
        if resource["urn"] == urn:
            continue
        depends = resource.get("propertyDependencies") or {}
        kept.append(
            {
                **resource,
                "dependencies": [d for d in resource.get("dependencies") or [] if d != urn],
                "propertyDependencies": {
                    key: [d for d in urns if d != urn] for key, urns in depends.items()
                },
            }
        )
    stack.import_stack(
        auto.Deployment(version=exported.version, deployment={**deployment, "resources": kept})
    )


def test_a_rollout_lost_from_state_analyses_the_next_image(
    stack: auto.Stack, kube: lightkube.Client
) -> None:
    _first_release(stack, kube)
    _forget(stack, "podinfo-rollout")
    _set(stack, image=IMAGE_GOOD)
    recreated = _up(stack)
    assert recreated.summary.result == "succeeded"
    assert f"{PRIMARY} already runs another template" in recreated.stdout, recreated.stdout
    assert FIRST_CHECK in recreated.stdout, recreated.stdout
    _assert_at_rest_on(kube, IMAGE_GOOD)


def _current_context_kubeconfig() -> str:
    """The current context's credentials as one self-contained kubeconfig text."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: it writes the current context's kubeconfig out")
    return subprocess.run(
        ["kubectl", "config", "view", "--raw", "--minify", "--flatten"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_the_gate_with_its_own_kubeconfig_for_the_same_cluster_releases(
    stack: auto.Stack, kube: lightkube.Client
) -> None:
    kubeconfig = _current_context_kubeconfig()
    _first_release(stack, kube)
    stack.set_config("kubeconfig", auto.ConfigValue(value=kubeconfig, secret=True))
    _set(stack, image=IMAGE_GOOD)
    released = _up(stack)
    assert released.summary.result == "succeeded"
    assert FIRST_CHECK in released.stdout, released.stdout
    _assert_at_rest_on(kube, IMAGE_GOOD)


@pytest.mark.skipif(
    not OTHER_CONTEXT,
    reason="CANARY_LIVE_OTHER_CONTEXT is not set: it names a context of the current kubeconfig "
    "that reaches another cluster, on which the gate must refuse to move traffic",
)
def test_the_gate_refuses_a_cluster_the_stack_did_not_declare_the_release_on(
    stack: auto.Stack, kube: lightkube.Client
) -> None:
    _first_release(stack, kube)
    before = _at_rest(kube)
    _set(stack, image=IMAGE_GOOD, context=str(OTHER_CONTEXT))
    refused = _failed_up(stack)
    assert "the stack's Kubernetes provider declared it with uid" in refused, refused
    assert "GateOptions.kubeconfig and context" in refused, refused
    # The ReleaseGuard refused first, so the canary never took the new image. The failed step
    # kept the state from before, without the context, so `destroy` reaches this cluster.
    assert _at_rest(kube) == before
