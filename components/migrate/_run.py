"""`python -m components.migrate`: the command line. See docs/migrating-from-flagger.md."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightkube
import yaml

from ..adapters.kube import KubeAccess
from ..routing import CONFIGS_ANNOTATION
from ..routing.children import ChildNames
from ..spec import ReleaseSpec, SpecError
from ._live import LiveReadError, LiveState, at_rest, read_live
from ._objects import Adoption, DeclaredObject, declared_objects, exists_under_flagger, import_file

EXIT_INVALID = 2
EXIT_CLUSTER = 1
DOC = "docs/migrating-from-flagger.md"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        release = _load(args)
        provider = _provider(args)
        access = _access(args)
        out = Path(args.out)
        if out.is_dir():
            raise ValueError(f"--out {out}: is a directory")
    except (SpecError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    declared = declared_objects(args.name, release)
    if provider is not None and provider[0] in {args.name, *(item.name for item in declared)}:
        print(f"error: --provider {provider[0]}: also the name of a resource", file=sys.stderr)
        return EXIT_INVALID
    states: list[LiveState] | None = None
    if access is not None:
        try:
            states = read_live(declared, access)
        except (LiveReadError, lightkube.ConfigError) as error:
            print(f"error: cannot read the cluster: {error}", file=sys.stderr)
            return EXIT_CLUSTER
        existing = {state.declared.name: state.exists for state in states}
    else:
        existing = {item.name: exists_under_flagger(item) for item in declared}
    document = import_file(args.name, declared, existing, provider=provider)
    try:
        out.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as error:
        print(f"error: --out {out}: {error.strerror}", file=sys.stderr)
        return EXIT_INVALID
    if states is not None:
        print(_report(states, release))
    print(_steps(args, release, declared, existing, provider))
    return 0


def _report(states: Sequence[LiveState], release: ReleaseSpec) -> str:
    """Per object: how it joins the stack, and the fields the first `pulumi up` would change."""
    lines = ["In the cluster:"]
    warnings = at_rest(states, release)
    for state in states:
        item = state.declared
        lines.append(f"  {item.name}: {item.kind} {item.id}: {_joins(item, state.exists)}")
        changes = state.changes(release)
        lines.extend(f"      changes {change}" for change in changes)
        primary = item.kind == "Deployment" and item.k8s_name == release.primary
        template = [change for change in changes if change.startswith("spec.template")]
        checksum = [change for change in template if CONFIGS_ANNOTATION in change]
        if primary and len(template) > len(checksum):
            warnings.append(
                f"{item.k8s_name} runs another pod template than --deployment declares: the "
                "first `pulumi up` rolls it to the declared one without analysis; to keep what "
                "serves, declare the template it runs"
            )
        elif primary and checksum:
            warnings.append(
                f"the first `pulumi up` restarts the pods of {item.k8s_name} once, in a rolling "
                f"update: its pod template gains the annotation {CONFIGS_ANNOTATION}, which "
                "rolls it whenever a release promotes its configs"
            )
        warnings.extend(
            f"{item.kind} {item.k8s_name} is still owned by Canary {owner}: delete the Canary "
            "with --cascade=orphan (step 2) before importing"
            for owner in state.owners()
        )
    lines.extend(f"warning: {warning}" for warning in warnings)
    return "\n".join(lines) + "\n"


def _joins(item: DeclaredObject, exists: bool) -> str:
    return {
        Adoption.IMPORT: "exists, imported",
        Adoption.UPSERT: "exists, taken over by the first `pulumi up` (upsert)",
        Adoption.CREATE: "missing, created by the first `pulumi up`",
    }[item.adoption(exists)]


def _steps(
    args: argparse.Namespace,
    release: ReleaseSpec,
    declared: Sequence[DeclaredObject],
    existing: Mapping[str, bool],
    provider: tuple[str, str] | None,
) -> str:
    ns, canary = release.namespace, release.name
    kubectl = f"kubectl -n {ns}"
    upsert = "PULUMI_K8S_UPSERT_EXISTING_OBJECTS=true"
    joining = {
        adoption: [item.name for item in declared if item.adoption(existing[item.name]) is adoption]
        for adoption in Adoption
    }
    names = ChildNames(args.name)
    expected = [
        ("~ update", joining[Adoption.IMPORT], "imported"),
        ("+ create", joining[Adoption.UPSERT], "they exist: taken over"),
        ("+ create", joining[Adoption.CREATE], "new"),
        ("+ create", [names.guard, names.rollout, names.finaliser], "the release gate"),
    ]
    text = [
        f"Wrote {args.out}: {len(joining[Adoption.IMPORT])} objects to import into "
        f"CanaryDeployment {args.name!r} (Canary {ns}/{canary}).",
        "",
        f"Then, in this order (why, and what each step changes: {DOC}):",
        "",
        f"1. Check that the canary is at rest: `{kubectl} get canary {canary}` shows",
        "   Succeeded or Initialized. And check that the pod template of --deployment is the one",
        f"   {release.primary} runs (--from-cluster compares them): the first `pulumi up`",
        "   promotes that template without analysis, as Flagger initialises.",
        "2. Stop Flagger reconciling this canary, keeping every object it created:",
    ]
    if release.spec.revert_on_deletion:
        text.append(
            f"     {kubectl} patch canary {canary} --type=merge "
            """-p '{"spec":{"revertOnDeletion":false}}'"""
        )
    text += [
        f"     {kubectl} get canary {canary} -o jsonpath='{{.metadata.finalizers}}'  # empty",
        f"     {kubectl} delete canary {canary} --cascade=orphan",
        "   Without --cascade=orphan, Kubernetes deletes what the Canary owns: the primary,",
        "   the Services, the DestinationRules and the VirtualService.",
        f"3. Import, the program declaring CanaryDeployment {args.name!r} from these manifests:",
    ]
    if provider is not None:
        text.append(f"     pulumi up --target {shlex.quote(provider[1])}  # the provider first")
    text += [
        f"     pulumi import --file {shlex.quote(args.out)} --generate-code=false --protect=false",
        "4. Preview; the variable lets the first `pulumi up` take over the existing Services:",
        f"     {upsert} pulumi preview --diff",
        "   Expect:",
        *(
            textwrap.fill(
                f"{change}  {', '.join(chosen)} ({why})",
                width=96,
                break_on_hyphens=False,
                initial_indent="     ",
                subsequent_indent=" " * 15,
            )
            for change, chosen, why in expected
            if chosen
        ),
        "   and no replace or delete: a replace means a live object differs in a field that",
        "   cannot change in place. Stop, and compare with --from-cluster.",
        f"5. Adopt:\n     {upsert} pulumi up",
        "   Later runs need no variable: the Services are in the stack by then.",
    ]
    return "\n".join(text) + "\n"


def _load(args: argparse.Namespace) -> ReleaseSpec:
    return ReleaseSpec.parse(
        canary=_manifest("--canary", args.canary),
        deployment=_manifest("--deployment", args.deployment),
        metric_templates=[_manifest("--metric-template", path) for path in args.metric_template],
        alert_providers=[_manifest("--alert-provider", path) for path in args.alert_provider],
        autoscaler=_manifest("--hpa", args.hpa) if args.hpa else None,
        configs=[_manifest("--config", path) for path in args.config],
    )


def _manifest(option: str, path: str) -> dict[str, Any]:
    """One YAML mapping; errors name the option and the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ValueError(f"{option} {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{option} {path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{option} {path}: expected one YAML mapping (a manifest)")
    return data


def _provider(args: argparse.Namespace) -> tuple[str, str] | None:
    """The explicit provider's name and URN (a top-level `k8s.Provider` of the stack)."""
    if args.provider is None:
        if args.stack or args.project:
            raise ValueError("--stack and --project only build the URN of --provider: pass it")
        return None
    missing = [
        flag for flag, value in (("--stack", args.stack), ("--project", args.project)) if not value
    ]
    if missing:
        raise ValueError(f"--provider {args.provider}: needs {' and '.join(missing)} for its URN")
    urn = f"urn:pulumi:{args.stack}::{args.project}::pulumi:providers:kubernetes::{args.provider}"
    return args.provider, urn


def _access(args: argparse.Namespace) -> KubeAccess | None:
    """The cluster credentials for --from-cluster, found the way kubectl finds them."""
    if not args.from_cluster:
        if args.kubeconfig or args.context:
            raise ValueError("--kubeconfig and --context only apply with --from-cluster")
        return None
    kubeconfig = None
    if args.kubeconfig:
        try:
            kubeconfig = Path(args.kubeconfig).read_text()
        except OSError as error:
            raise ValueError(f"--kubeconfig {args.kubeconfig}: {error.strerror}") from None
    return KubeAccess(kubeconfig=kubeconfig, context=args.context)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.migrate",
        description=(
            "Adopt a Flagger canary's existing objects into a Pulumi stack that declares them "
            "with CanaryDeployment: writes the `pulumi import --file` document and prints the "
            f"steps around it ({DOC})."
        ),
        epilog="Exit status: 0 when the file was written, 1 when --from-cluster cannot read "
        "the cluster, 2 on invalid input.",
    )
    parser.add_argument("--canary", required=True, metavar="FILE", help="the Flagger Canary")
    parser.add_argument(
        "--deployment",
        required=True,
        metavar="FILE",
        help="the Canary's target Deployment, with the pod template the primary runs",
    )
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
        help="an AlertProvider the Canary's alerts refer to (repeat for several)",
    )
    parser.add_argument("--hpa", metavar="FILE", help="the HPA the Canary's autoscalerRef names")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="a ConfigMap or Secret the program passes in configs (repeat for several): it and "
        "the -primary copy Flagger made of it are imported",
    )
    parser.add_argument(
        "--name",
        required=True,
        help="the CanaryDeployment's name in the Pulumi program (its first argument)",
    )
    parser.add_argument(
        "--out",
        default="pulumi-import.json",
        metavar="FILE",
        help="where to write the import file (default pulumi-import.json)",
    )
    parser.add_argument(
        "--provider",
        metavar="NAME",
        help="the name of the explicit k8s.Provider the program gives the component "
        "(default: the default provider)",
    )
    parser.add_argument("--stack", help="the stack's name, for the --provider URN")
    parser.add_argument("--project", help="the project's name, for the --provider URN")
    parser.add_argument(
        "--from-cluster",
        action="store_true",
        help="read the live objects: import only those that exist, and list what the first "
        "`pulumi up` would change",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="with --from-cluster: the kubeconfig (default KUBECONFIG, ~/.kube/config, in-cluster)",
    )
    parser.add_argument("--context", help="with --from-cluster: the kubeconfig context")
    return parser
