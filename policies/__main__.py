"""The canary-safety policy pack: `pulumi preview --policy-pack policies`.

Constructing `PolicyPack` starts the analyzer and blocks, so nothing else lives here. Pulumi runs
this directory with `runpy.run_path`; the explicit path entry also covers `python policies`.
"""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

sys.path.insert(0, str(Path(__file__).resolve().parent))

from canary_policies import POLICIES

PolicyPack(
    name="canary-safety",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Keeps Flagger-style canary releases on Kubernetes and Istio safe.",
)
