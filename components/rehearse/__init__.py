"""Releases rehearsed on a local test bed: `python -m components.rehearse`.

Needs the `rehearse` extra (`pip install 'pulumi-canary[rehearse]'`): the test bed runs a
Kubernetes API emulator, a simulated mesh and a real Prometheus, none of which `pulumi up` needs.
"""

from ._run import Rehearsal, declare_at_rest, main, rehearse, run_rehearsal

__all__ = ["Rehearsal", "declare_at_rest", "main", "rehearse", "run_rehearsal"]
