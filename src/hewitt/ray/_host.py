"""NodeHost: the Ray actor that hosts one hewitt node (one per core).

``num_cpus=1`` and ``max_restarts=-1``: Ray places it and restarts it when
its process dies. A restart keeps the Ray actor's id but runs ``__init__``
in a new process, which makes a new ActorSystem: a new hewitt incarnation,
which registers with the coordinator again (old refs to the old one are
dead letters; the coordinator declares it down).
"""

from __future__ import annotations

from typing import Any

import ray

from hewitt.node import NodeConfig

from ._coordinator import WireNode
from ._member import RayMember, coordinator_handle


@ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)
class NodeHost:
    """Hosts one hewitt node in a Ray actor (one per core); a Ray restart is a
    new hewitt incarnation, which registers with the coordinator again."""

    def __init__(self, name: str, namespace: str, setup: str | None, down_after: float) -> None:
        self.name = name
        self.member = RayMember(
            name, namespace, setup=setup, config=NodeConfig(down_after=down_after)
        )
        self.ray_node_id = ray.get_runtime_context().get_node_id()
        resources = {
            key: value for key, value in ray.get_runtime_context().get_assigned_resources().items()
        }
        node = self.member.node_id
        ray.get(
            coordinator_handle(namespace).register.remote(
                name,
                (node.system, node.host, node.port, node.incarnation),
                self.ray_node_id,
                _node_resources(self.ray_node_id) | resources,
            ),
            timeout=60,
        )

    def describe(self) -> tuple[str, WireNode, str, dict[str, float]]:
        node = self.member.node_id
        return (
            self.name,
            (node.system, node.host, node.port, node.incarnation),
            self.ray_node_id,
            _node_resources(self.ray_node_id),
        )

    def ping(self) -> bool:
        return True

    def load(self) -> int:
        return self.member.system.statistics().live_actors

    def stop(self) -> None:
        self.member.close()


def _node_resources(ray_node_id: str) -> dict[str, Any]:
    for entry in ray.nodes():
        if entry.get("NodeID") == ray_node_id:
            return {
                k: float(v)
                for k, v in entry.get("Resources", {}).items()
                if isinstance(v, (int, float))
            }
    return {}
