"""The canary-safety policy pack: `pulumi preview --policy-pack policies`.

Constructing `PolicyPack` starts the analyzer and blocks, so nothing else lives here. Pulumi runs
this directory with `runpy.run_path`; the path entries make the policies and the component's
own spec rules (durations, hosts) importable, also for `python policies`.
"""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from canary_policies import POLICIES  # noqa: E402 (after the path entries)

PolicyPack(
    name="canary-safety",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Keeps Flagger-style canary releases on Kubernetes and Istio safe.",
)
