"""Clusters of nodes: membership held by a seed node, a supervised cluster of
processes on one machine, and placement.

    async with hewitt.cluster.local(n=2, setup="myapp:setup") as cluster:
        ref = await cluster.spawn(Worker)          # on a worker, round robin
        await ref.ask(Job(...))

See docs/cluster.md.
"""

from ._local import LocalCluster, WorkerProcess, local
from ._membership import (
    Down,
    GetView,
    Join,
    MemberDown,
    MembershipAgent,
    MembershipService,
    MemberUp,
    View,
    register_types,
)
from ._placement import LeastLoaded, Pinned, Placement, RoundRobinPlacement

__all__ = [
    "Down",
    "GetView",
    "Join",
    "LeastLoaded",
    "LocalCluster",
    "MemberDown",
    "MemberUp",
    "MembershipAgent",
    "MembershipService",
    "Pinned",
    "Placement",
    "RoundRobinPlacement",
    "View",
    "WorkerProcess",
    "local",
    "register_types",
]
