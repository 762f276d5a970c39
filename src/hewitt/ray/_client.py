"""Deploying hewitt on a Ray cluster, and using it from a driver or a task."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from typing import Any

import ray

from hewitt import ActorAddress, ActorRef, NodeId
from hewitt.cluster import LeastLoaded, Pinned, Placement, RoundRobinPlacement
from hewitt.node import Node

from ._coordinator import COORDINATOR_NAME, HOST_PREFIX, Coordinator
from ._host import NodeHost
from ._member import MEMBERS, RayMember, default_name

__all__ = [
    "LeastLoaded",
    "OnResource",
    "Pinned",
    "PortableRef",
    "RayClient",
    "RoundRobinPlacement",
    "connect",
    "shutdown",
    "start",
]


class OnResource:
    """The least loaded host whose Ray node has ``amount`` of ``resource``
    (``OnResource("GPU")``, ``OnResource("memory", 2**30)``)."""

    def __init__(self, resource: str, amount: float = 1.0) -> None:
        self.resource = resource
        self.amount = amount
        self.client: RayClient | None = None

    async def choose(self, members: Sequence[NodeId], node: Node) -> NodeId:
        assert self.client is not None
        hosts = self.client.member.hosts
        fit = [
            host_node
            for host_node, _, resources in hosts.values()
            if resources.get(self.resource, 0.0) >= self.amount and host_node in members
        ]
        if not fit:
            raise LookupError(
                f"no hewitt host is on a Ray node with {self.amount:g} {self.resource}"
            )
        return await LeastLoaded().choose(fit, node)


class RayClient:
    """An ActorSystem in this process that is a node of the hewitt cluster on
    Ray: spawn on the hosts, tell and ask any ref (``client.system``)."""

    def __init__(self, member: RayMember) -> None:
        self.member = member
        self.system = member.system
        self.node = member.node
        self._round_robin = RoundRobinPlacement()

    @property
    def hosts(self) -> list[NodeId]:
        """The hewitt nodes of the hosts up, as the coordinator last said."""
        return sorted((node for node, _, _ in self.member.hosts.values()), key=str)

    def wait_for_hosts(self, count: int, timeout: float = 60.0) -> list[NodeId]:
        return self.member.wait_for_hosts(count, timeout)

    async def spawn_async(
        self,
        actor: type[Any] | str,
        *args: Any,
        placement: Placement | OnResource | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef[Any]:
        """Spawn on a host chosen by ``placement`` (default: round robin),
        from this client's loop."""
        members = self.hosts
        if not members:
            raise LookupError("no hewitt host is up on the Ray cluster")
        policy = placement or self._round_robin
        if isinstance(policy, OnResource):
            policy.client = self
        target = await policy.choose(members, self.node)
        return await self.node.spawn(target, actor, *args, name=name, **kwargs)

    def spawn(
        self,
        actor: type[Any] | str,
        *args: Any,
        placement: Placement | OnResource | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef[Any]:
        """:meth:`spawn_async` from synchronous code (a driver, a Ray task)."""
        return self.member.run(
            self.spawn_async(actor, *args, placement=placement, name=name, **kwargs)
        )

    def resolve(self, address: ActorAddress) -> ActorRef[Any]:
        return self.system.resolve(address)

    def close(self) -> None:
        self.member.close()


class PortableRef:
    """A hewitt ref that plain Ray code can hold: it pickles as its address
    (between Ray's own, trusted processes) and becomes a ref again in the
    process that uses it, through that process's client (made on first use)."""

    def __init__(self, ref: ActorRef[Any], namespace: str = "hewitt") -> None:
        self.address = ref.address
        self.namespace = namespace
        self._ref: ActorRef[Any] | None = ref

    @property
    def ref(self) -> ActorRef[Any]:
        if self._ref is None:
            self._ref = _process_client(self.namespace).resolve(self.address)
        return self._ref

    def tell(self, message: Any) -> None:
        self.ref.tell(message)

    def ask(self, message: Any, timeout: float | None = 30.0) -> Any:
        return self.ref.ask_blocking(message, timeout=timeout)

    def __reduce__(self) -> Any:
        return (_restore, (self.address, self.namespace))


def _restore(address: ActorAddress, namespace: str) -> PortableRef:
    portable = PortableRef.__new__(PortableRef)
    portable.address = address
    portable.namespace = namespace
    portable._ref = None
    return portable


_clients: dict[str, RayClient] = {}


def process_client(namespace: str = "hewitt") -> RayClient:
    """This process's client of ``namespace`` (made on first use): what a
    PortableRef resolves through in a Ray task or actor."""
    return _process_client(namespace)


def _process_client(namespace: str) -> RayClient:
    client = _clients.get(namespace)
    if client is None:
        client = _clients[namespace] = connect(namespace=namespace)
    return client


def connect(
    *, namespace: str = "hewitt", name: str | None = None, address: str | None = None
) -> RayClient:
    """A client of the hewitt cluster deployed on Ray (see :func:`start`),
    from a driver or from any Ray task or actor; ``ray.init`` is called
    (with ``address``, default "auto") unless Ray is initialized already."""
    if not ray.is_initialized():
        ray.init(address=address or "auto", namespace=namespace, log_to_driver=False)
    return RayClient(RayMember(name or default_name("client"), namespace))


def start(
    hosts: int | None = None,
    *,
    namespace: str = "hewitt",
    cluster: str = "hewitt",
    secret: str | None = None,
    setup: str | None = None,
    down_after: float = 5.0,
    timeout: float = 120.0,
) -> RayClient:
    """Deploy hewitt on the Ray cluster this driver is connected to (``ray.init``
    first): the detached coordinator and ``hosts`` NodeHosts (default: one per
    CPU of the cluster), spread over the Ray nodes; returns a client once all
    hosts have joined. Idempotent per namespace (existing actors are reused)."""
    if not ray.is_initialized():
        ray.init(address="auto", namespace=namespace, log_to_driver=False)
    # Minted here, not in the coordinator: Ray restarts it with these same
    # arguments, and a restarted coordinator must hand out the same secret.
    secret = secret or secrets.token_hex(32)
    coordinator = Coordinator.options(  # type: ignore[attr-defined]
        name=COORDINATOR_NAME, namespace=namespace, lifetime="detached", get_if_exists=True
    ).remote(cluster, secret, namespace, setup)
    ray.get(coordinator.settings.remote(), timeout=timeout)
    count = hosts if hosts is not None else int(ray.cluster_resources().get("CPU", 1))
    handles = [
        NodeHost.options(  # type: ignore[attr-defined]
            name=f"{HOST_PREFIX}{index}",
            namespace=namespace,
            lifetime="detached",
            get_if_exists=True,
            scheduling_strategy="SPREAD",
        ).remote(f"{HOST_PREFIX}{index}", namespace, setup, down_after)
        for index in range(count)
    ]
    ray.get([handle.ping.remote() for handle in handles], timeout=timeout)
    client = connect(namespace=namespace)
    client.wait_for_hosts(count, timeout)
    return client


def host_handles(namespace: str = "hewitt") -> list[Any]:
    """The NodeHost actors of ``namespace`` (to kill one in a test, say)."""
    names = sorted(
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry.get("namespace") == namespace and entry["name"].startswith(HOST_PREFIX)
    )
    return [ray.get_actor(name, namespace=namespace) for name in names]


def shutdown(namespace: str = "hewitt") -> None:
    """Kill the coordinator and every NodeHost of ``namespace`` (no restart)."""
    _clients.clear()
    for member in list(MEMBERS):
        if member.namespace == namespace:
            member.close()
    for handle in host_handles(namespace):
        ray.kill(handle, no_restart=True)
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(COORDINATOR_NAME, namespace=namespace), no_restart=True)
