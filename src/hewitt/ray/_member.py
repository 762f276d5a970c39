"""A hewitt node in a Ray process (a NodeHost, or a client in a driver or a
task): its ActorSystem on a thread of its own, its Node on the Ray node's IP
address, and a follower of the coordinator's membership."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import ray

from hewitt import ActorRef, ActorSystem, NodeId
from hewitt.cluster import MembershipAgent, View, register_types
from hewitt.cluster._setup import run_setup
from hewitt.node import Node, NodeConfig

from ._coordinator import COORDINATOR_NAME

logger = logging.getLogger("hewitt.ray")
T = TypeVar("T")


#: how long one long poll of the coordinator's view waits (s)
_POLL = 2.0

#: the members of this process (closed by hewitt.ray.shutdown)
MEMBERS: set[RayMember] = set()


def coordinator_handle(namespace: str) -> Any:
    return ray.get_actor(COORDINATOR_NAME, namespace=namespace)


class RayMember:
    """What every hewitt node on Ray has: system, node, membership."""

    def __init__(
        self,
        name: str,
        namespace: str,
        *,
        setup: str | None = None,
        config: NodeConfig | None = None,
    ) -> None:
        self.namespace = namespace
        coordinator = coordinator_handle(namespace)
        cluster, secret, cluster_setup = ray.get(coordinator.settings.remote(), timeout=60)
        setup = setup if setup is not None else cluster_setup
        self.system = ActorSystem.start_in_thread(name)
        self._teardown: Any = None
        try:
            register_types(self.system)
            if setup:
                self._teardown = self.run(run_setup(setup, self.system))
            host = ray.util.get_node_ip_address()
            self.node: Node = self.run(
                Node.start(self.system, host=host, cluster=cluster, secret=secret, config=config)
            )
            self.agent: ActorRef[Any] = self.system.spawn_system_actor(
                MembershipAgent, self.node, None, "ray", name="membership-agent"
            )
        except BaseException:
            self.system.shutdown_blocking()
            raise
        #: the coordinator's latest view: host name -> (node, ray node id, resources)
        self.hosts: dict[str, tuple[NodeId, str, dict[str, float]]] = {}
        self.epoch = -1
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._follower = threading.Thread(
            target=self._follow, name=f"hewitt-ray-follower-{name}", daemon=True
        )
        self._follower.start()
        MEMBERS.add(self)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = 120) -> T:
        """Run ``coroutine`` on the system's loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.system._loop)
        return future.result(timeout)

    @property
    def node_id(self) -> NodeId:
        return self.node.node_id

    def _follow(self) -> None:
        """Long-poll the coordinator; tell the agent each new view. While the
        coordinator is down (restarting), keep the last view and retry."""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                view = ray.get(
                    coordinator_handle(self.namespace).view.remote(self.epoch, _POLL), timeout=30
                )
            except BaseException as exc:  # the coordinator is restarting, or Ray going away
                if self._stopping.is_set() or not ray.is_initialized():
                    return
                logger.debug("membership: the coordinator did not answer: %r", exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            self._apply(view)

    def _apply(self, view: dict[str, Any]) -> None:
        hosts = {
            name: (NodeId(*node), ray_node_id, resources)
            for name, (node, ray_node_id, resources) in view["hosts"].items()
        }
        down = [NodeId(*node) for node in view["down"]]
        with self._changed:
            self.epoch = view["epoch"]
            self.hosts = hosts
            self._changed.notify_all()
        up = [node for node, _, _ in hosts.values()]
        # A host's name is its identity on Ray: another incarnation of it is
        # a restart, so the old one is down, whatever the view says of it.
        current = {node.system: node for node in up}
        stale = [
            known.node
            for known in list(self.node)
            if current.get(known.node.system, known.node) != known.node
        ]
        down.extend(stale)
        if stale and self.system.is_running:
            with contextlib.suppress(Exception):
                self.system._call_on_loop(self._retire, stale)
        if self.system.is_running:
            with contextlib.suppress(Exception):  # shutting down
                self.agent.tell(View(view["epoch"], up, down))

    def _retire(self, nodes: list[NodeId]) -> None:
        for node in nodes:
            link = self.node.link(node)
            if link is not None:
                link.down("restarted as a new incarnation (the coordinator's view)")

    def wait_for_hosts(self, count: int, timeout: float = 60.0) -> list[NodeId]:
        """Block until at least ``count`` hosts are members; their nodes."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.hosts) >= count, timeout):
                raise TimeoutError(f"{len(self.hosts)} of {count} hewitt hosts after {timeout} s")
            return [node for node, _, _ in self.hosts.values()]

    def close(self) -> None:
        """Stop following, then stop the node and the system. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        MEMBERS.discard(self)
        # Ray ends the whole process when a thread calls into it after
        # ray.shutdown(): the follower must be done before anyone shuts Ray down.
        if threading.current_thread() is not self._follower:
            self._follower.join(_POLL + 5)
        with contextlib.suppress(Exception):
            self.run(self.node.stop(), timeout=30)
        self.system.shutdown_blocking()
        if self._teardown is not None:
            from hewitt.cluster._setup import finish

            asyncio.run(finish(self._teardown))


def default_name(kind: str) -> str:
    return f"{kind}-{os.getpid()}"
