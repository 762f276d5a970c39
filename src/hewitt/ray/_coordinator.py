"""The coordinator: a detached Ray actor that holds the membership and the
placement table of the hewitt nodes hosted on a Ray cluster.

It is the seed of hewitt.cluster in Ray form: every change increments an
epoch, and nodes learn the whole view by long-polling :meth:`view`. It
fences a host that stops answering its pings with ``ray.kill`` (Ray then
restarts it: a new process, so a new hewitt incarnation). It is restartable
(``max_restarts=-1``): a new coordinator rebuilds its table from the live
NodeHosts, which it finds by their names; meanwhile the nodes go on
messaging one another over hewitt's own links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import ray

logger = logging.getLogger("hewitt.ray")

COORDINATOR_NAME = "hewitt-coordinator"
HOST_PREFIX = "hewitt-host-"

#: A node as plain data: (system, host, port, incarnation).
WireNode = tuple[str, str, int, int]


@dataclass
class HostEntry:
    name: str
    node: WireNode
    ray_node_id: str
    resources: dict[str, float]
    failed_pings: int = 0
    registered: float = field(default_factory=time.monotonic)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Coordinator:
    """The detached coordinator of the hewitt nodes on a Ray cluster: the
    membership (epochs, long-polled by ``view``), the placement table, health
    pings that fence a silent host with ``ray.kill``; rebuilt from the hosts
    after a restart."""

    def __init__(
        self,
        cluster: str,
        secret: str | None,
        namespace: str,
        setup: str | None = None,
        ping_interval: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.setup = setup
        self.secret = secret or secrets.token_hex(32)  # start() always gives one
        self.namespace = namespace
        self.ping_interval = ping_interval
        # Epochs go on from where a previous coordinator left them (a restart
        # starts from the clock, in ms), so members never take a new view for an old one.
        self.epoch = time.time_ns() // 1_000_000
        self.hosts: dict[str, HostEntry] = {}
        self.down: list[WireNode] = []
        self._changed: asyncio.Event | None = None
        self._rebuild: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def _ready(self) -> None:
        """After a (re)start: rebuild the table from the NodeHosts alive, once;
        concurrent calls wait for it (no partial view is handed out)."""
        if self._rebuild is None:
            self._rebuild = asyncio.get_running_loop().create_task(self._rebuild_table())
        await asyncio.shield(self._rebuild)

    async def _rebuild_table(self) -> None:
        await self._discover()
        if self._pinger is None:
            self._pinger = asyncio.get_running_loop().create_task(self._ping_hosts())

    async def _discover(self) -> None:
        """Add the named NodeHosts that are not in the table (a host that did
        not answer during a rebuild is found by a later round)."""
        names = [
            entry["name"]
            for entry in ray.util.list_named_actors(all_namespaces=True)
            if entry.get("namespace") == self.namespace
            and entry["name"].startswith(HOST_PREFIX)
            and entry["name"] not in self.hosts
        ]
        for name in names:
            try:
                handle = ray.get_actor(name, namespace=self.namespace)
                described: Any = await asyncio.wait_for(handle.describe.remote(), 10)
            except Exception:  # gone or restarting: it registers itself, or a later round finds it
                continue
            if described is not None:
                self._add(*described)

    def _add(
        self, name: str, node: WireNode, ray_node_id: str, resources: dict[str, float]
    ) -> None:
        old = self.hosts.get(name)
        if old is not None and old.node == tuple(node):
            return
        if old is not None:
            self.down.append(old.node)  # the host restarted: its old incarnation is down
            del self.down[:-10_000]
        self.hosts[name] = HostEntry(name, tuple(node), ray_node_id, dict(resources))  # type: ignore[arg-type]
        self._bump()

    def _bump(self) -> None:
        self.epoch += 1
        event = self._event()
        event.set()
        self._changed = asyncio.Event()

    async def settings(self) -> tuple[str, str, str | None]:
        """The cluster's name, secret and setup hook (Ray's own trust covers
        who may ask: any Ray process can run any code anyway)."""
        return self.cluster, self.secret, self.setup

    async def register(
        self, name: str, node: WireNode, ray_node_id: str, resources: dict[str, float]
    ) -> int:
        await self._ready()
        self._add(name, node, ray_node_id, resources)
        return self.epoch

    async def declare_down(self, node: WireNode) -> int:
        """A member saw ``node`` go down for good (its link says so)."""
        await self._ready()
        for name, entry in list(self.hosts.items()):
            if entry.node == tuple(node):
                del self.hosts[name]
                self.down.append(entry.node)
                self._bump()
        return self.epoch

    async def view(self, since: int = -1, timeout: float = 30.0) -> dict[str, Any]:
        """The membership once its epoch is past ``since`` (or after ``timeout``)."""
        await self._ready()
        if since > self.epoch:
            # A member saw a later epoch than this coordinator's (a restart on a
            # clock behind the last one's): go on from there, never backwards.
            self.epoch = since
            self._bump()
        if self.epoch <= since:
            event = self._event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        return {
            "epoch": self.epoch,
            "hosts": {
                name: (entry.node, entry.ray_node_id, entry.resources)
                for name, entry in self.hosts.items()
            },
            "down": list(self.down[-1000:]),
        }

    async def _ping_hosts(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)  # the health check's period
            await self._discover()
            for name, entry in list(self.hosts.items()):
                try:
                    handle = ray.get_actor(name, namespace=self.namespace)
                    described: Any = await asyncio.wait_for(handle.describe.remote(), 5)
                except Exception:
                    described = None
                if described is not None and tuple(described[1]) == entry.node:
                    entry.failed_pings = 0
                    continue
                if described is not None:  # restarted, and not registered yet
                    self._add(*described)
                    continue
                entry.failed_pings += 1
                if entry.failed_pings >= 3 and self.hosts.get(name) is entry:
                    del self.hosts[name]
                    self.down.append(entry.node)
                    self._bump()
                    logger.warning("hewitt host %s stopped answering: fenced", name)
                    with contextlib.suppress(Exception):
                        ray.kill(ray.get_actor(name, namespace=self.namespace), no_restart=False)
