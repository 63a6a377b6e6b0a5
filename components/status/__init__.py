"""A live view of one release: `python -m components.status NAME [--watch]`.

It reads what the cluster holds (the release record, the VirtualService, the Deployments) and
never writes, so it shows a `pulumi up` running on any other machine. `view` turns a snapshot
into rows, `source` reads snapshots through the adapters, `_run` is the command line.
"""

from ._run import main

__all__ = ["main"]
