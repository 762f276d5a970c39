"""Node: an ActorSystem reachable from other processes and machines.

``await Node.start(system, ...)`` binds a listening socket, gives the
system its network identity (host, port and the incarnation minted when the
system was made), starts the node service (``/system/node``) and becomes the
system's remote provider: from then on a ref to an actor on another node
resolves to that node's :class:`~hewitt.node._link.RemoteLink`, which dials
it, authenticates, and carries the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl as ssl_module
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from hewitt import (
    ActorRef,
    ActorSystem,
    CodecError,
    NodeId,
    NodeUnreachable,
    SupervisorStrategy,
)
from hewitt._runtime._ref import DEFAULT_TIMEOUT, Timeout

from ._config import NodeConfig
from ._events import PeerDown, PeerSuspect, PeerUp
from ._faults import FaultInjector
from ._handshake import Greeting, HandshakeRefused, NonceLog, accept, dial
from ._link import Connection, LinkState, RemoteLink
from ._remote_child import strategy_spec
from ._service import (
    SERVICE_TYPES,
    Identify,
    Identity,
    Load,
    LoadQuery,
    NodeService,
    RemoteSpawnError,
    Spawned,
    SpawnRequest,
    import_path,
)
from ._wire import wire_node

logger = logging.getLogger("hewitt.node")

#: the default timeout of a remote spawn (s): it may import modules over there
SPAWN_TIMEOUT = 30.0

#: how many down (quarantined) links a node keeps
QUARANTINE_KEPT = 10_000


_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Node:
    """The transport of one ActorSystem. Make it with :meth:`start`."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        cluster: str,
        secret: bytes,
        config: NodeConfig,
        ssl_server: ssl_module.SSLContext | None,
        ssl_client: ssl_module.SSLContext | None,
    ) -> None:
        self.system = system
        self.cluster = cluster
        self.config = config
        self._secret = secret
        self._ssl_server = ssl_server
        self._ssl_client = ssl_client
        #: the links not down
        self._links: dict[NodeId, RemoteLink] = {}
        #: the links down (quarantined), the latest QUARANTINE_KEPT of them; an
        #: older one resolved again dials, and the node there refuses it as gone
        self._down: OrderedDict[NodeId, RemoteLink] = OrderedDict()
        self._links_lock = threading.Lock()
        #: reader tasks of connections that said goodbye, until their peers close them
        self._leaving: list[asyncio.Task[None]] = []
        self._nonces = NonceLog()
        self._server: asyncio.Server | None = None
        self._service: ActorRef[Any] | None = None
        self._closing = False
        self._tick: asyncio.TimerHandle | None = None
        self._waiters: dict[NodeId, list[asyncio.Future[None]]] = {}
        self.faults = FaultInjector(self)
        #: handshakes refused so far, by code (wrong secret: ``auth``, ...)
        self.refusals: dict[str, int] = {}

    @classmethod
    async def start(
        cls,
        system: ActorSystem,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cluster: str = "hewitt",
        secret: bytes | str | None = None,
        config: NodeConfig | None = None,
        ssl_server: ssl_module.SSLContext | None = None,
        ssl_client: ssl_module.SSLContext | None = None,
        advertise_host: str | None = None,
    ) -> Node:
        """Make ``system`` (started, with no actors sent anywhere yet) a node
        listening on ``host:port`` (port 0: any free one).

        Every node of a cluster shares ``cluster`` and ``secret``. Without a
        secret a node listens on a loopback address only (ValueError
        otherwise). ``ssl_server``/``ssl_client`` run the links over TLS
        (mutual certificates: give the server context ``verify_mode =
        CERT_REQUIRED``); the secret's handshake still runs inside.
        ``advertise_host`` is the address other nodes reach this one at, part
        of its identity (required when ``host`` is a wildcard like 0.0.0.0).
        """
        if not system.is_running:
            raise RuntimeError(f"actor system {system.name!r} is not running")
        if secret is None and not _is_loopback(host):
            raise ValueError(
                f"a node without a cluster secret listens on loopback only, not on {host!r}"
            )
        if host in _WILDCARDS and advertise_host is None:
            raise ValueError(
                f"a node listening on {host!r} (every interface) must be told the address "
                "other nodes reach it at: advertise_host=..."
            )
        if isinstance(secret, str):
            secret = secret.encode()
        node = cls(
            system,
            cluster=cluster,
            secret=secret or b"",
            config=config or NodeConfig(),
            ssl_server=ssl_server,
            ssl_client=ssl_client,
        )
        await node._listen(host, port, advertise_host or host)
        return node

    async def _listen(self, host: str, port: int, advertised: str) -> None:
        system = self.system
        self._server = await asyncio.start_server(
            self._accepted, host, port, ssl=self._ssl_server, limit=1 << 20
        )
        bound = self._server.sockets[0].getsockname()[1]
        system.node = NodeId(system.name, advertised, bound, system.node.incarnation)
        system.codec.register(*SERVICE_TYPES)
        self._service = system.spawn_system_actor(NodeService, self, name="node")
        system.use_remote(self)
        system.extensions[Node] = self
        self._schedule_tick()
        logger.info("node %s listening", system.node)

    # ------------------------------------------------------------------
    # Identity and links

    @property
    def node_id(self) -> NodeId:
        """This node's identity (system name, host, port, incarnation)."""
        return self.system.node

    @property
    def links(self) -> dict[NodeId, LinkState]:
        """Every link this node has had, and its state (DOWN ones stay: quarantined)."""
        states = {node: link.state for node, link in self._down.items()}
        states.update((node, link.state) for node, link in self._links.items())
        return states

    def link(self, node: NodeId) -> RemoteLink | None:
        """The link to ``node``, if this node has one (down ones included)."""
        return self._links.get(node) or self._down.get(node)

    def recipient_for(self, node: NodeId) -> RemoteLink | None:
        """The remote provider hook: the link to ``node``, made (and dialled)
        on first use. None for a node without a network address."""
        link = self._links.get(node) or self._down.get(node)
        if link is not None:
            return link
        if not node.host or node.port <= 0:
            return None
        with self._links_lock:
            link = self._links.get(node) or self._down.get(node)
            if link is None:
                link = self._links[node] = RemoteLink(self, node)
                if self._closing:
                    link.down("this node stopped")
                else:
                    self.system._call_on_loop(self._redial, link)
        return link

    def clock(self) -> float:
        return self.system._loop.time()

    def _link_changed(self, link: RemoteLink, previous: LinkState) -> None:
        state = link.state
        stream = self.system.event_stream
        if state == LinkState.UP:
            logger.info("node %s: link to %s up", self.system.node, link.node)
            stream.publish(PeerUp(link.node))
            for waiter in self._waiters.pop(link.node, ()):
                if not waiter.done():
                    waiter.set_result(None)
        elif state == LinkState.SUSPECT:
            logger.warning("node %s: %s is suspect", self.system.node, link.node)
            stream.publish(PeerSuspect(link.node))
        elif state == LinkState.DOWN:
            with self._links_lock:
                self._links.pop(link.node, None)
                self._down[link.node] = link
                while len(self._down) > QUARANTINE_KEPT:
                    self._down.popitem(last=False)
            logger.warning("node %s: %s is down: %s", self.system.node, link.node, link.down_reason)
            stream.publish(PeerDown(link.node, link.down_reason or "down"))
            error = link._error()
            for waiter in self._waiters.pop(link.node, ()):
                if not waiter.done():
                    waiter.set_exception(error)

    async def wait_up(self, node: NodeId, timeout: float | None = None) -> None:
        """Wait until the link to ``node`` is up (NodeDown if it goes down)."""
        link = self.recipient_for(node)
        if link is None:
            raise NodeUnreachable(str(node), "it has no network address")
        if link.state == LinkState.UP:
            return
        if link.state == LinkState.DOWN:
            raise link._error()
        waiter = self.system._loop.create_future()
        self._waiters.setdefault(node, []).append(waiter)
        await asyncio.wait_for(
            waiter, timeout if timeout is not None else self.config.down_after * 2
        )

    # ------------------------------------------------------------------
    # Dialling

    def _redial(self, link: RemoteLink) -> None:
        if (
            self._closing
            or link.state == LinkState.DOWN
            or link.connection is not None
            or (link.dialing is not None and not link.dialing.done())
        ):
            return
        link.dialing = self.system._loop.create_task(self._dial(link))

    async def _dial(self, link: RemoteLink) -> None:
        node = link.node
        backoff = self.config.reconnect_min
        while not self._closing and link.state != LinkState.DOWN and link.connection is None:
            if self.faults.blocks(node.system):
                link.suspect()  # partitioned: the link waits for its down timeout
            else:
                try:
                    await self._dial_once(link)
                except HandshakeRefused as refused:
                    self._count(refused.code)
                    if refused.code in ("gone", "quarantined"):
                        link.down(f"{refused.reason}")
                        return
                    if refused.code in ("auth", "version", "cluster", "protocol"):
                        logger.error("node %s: %s", self.system.node, refused)
                        link.down(str(refused))
                        return
                    # simultaneous or stopping: the other connection (or none) wins; retry later
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    logger.debug("node %s: dialling %s failed: %r", self.system.node, node, exc)
                    link.suspect()  # unreachable for now: asks to it fail at once
            if link.connection is not None:
                return
            await asyncio.sleep(backoff)  # a retry's back-off, not a wait for an event
            backoff = min(backoff * 2, self.config.reconnect_max)

    async def _open(
        self, expected: NodeId, timeout: float | None, probe: bool = False
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Greeting]:
        """A connection to ``expected``'s address, past the handshake (as the
        dialer); the connection is aborted if the handshake fails."""
        config = self.config
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                expected.host, expected.port, ssl=self._ssl_client, limit=1 << 20
            ),
            timeout or config.connect_timeout,
        )
        try:
            greeting = await asyncio.wait_for(
                dial(
                    reader,
                    writer,
                    secret=self._secret,
                    cluster=self.cluster,
                    local=self.system.node,
                    expected=expected,
                    nonces=self._nonces,
                    service_uid=self._service_uid(),
                    probe=probe,
                ),
                timeout or config.handshake_timeout,
            )
        except BaseException:
            writer.transport.abort()
            raise
        return reader, writer, greeting

    async def _dial_once(self, link: RemoteLink) -> None:
        node = link.node
        reader, writer, greeting = await self._open(node, None)
        if greeting.peer != node or link.state == LinkState.DOWN or self._closing:
            writer.transport.abort()
            return
        link.attach(Connection(reader, writer, dialed=True), greeting.service_uid)

    def _service_uid(self) -> int:
        return self._service.uid if self._service is not None else 0

    def _count(self, code: str) -> None:
        self.refusals[code] = self.refusals.get(code, 0) + 1

    async def connect(self, host: str, port: int, timeout: float | None = None) -> NodeId:
        """Reach the node listening at ``host:port`` (whichever incarnation it
        is) and return its identity, once the link to it is up. Idempotent,
        and safe when both nodes connect to each other at once: it learns the
        identity with a probe handshake, then uses the link's own dialling."""
        _, writer, greeting = await self._open(NodeId("", host, port, 0), timeout, probe=True)
        writer.close()
        self._retire_older(greeting.peer)
        await self.wait_up(greeting.peer, timeout)
        return greeting.peer

    # ------------------------------------------------------------------
    # Accepting

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        try:
            greeting = await asyncio.wait_for(
                accept(
                    reader,
                    writer,
                    secret=self._secret,
                    cluster=self.cluster,
                    local=self.system.node,
                    nonces=self._nonces,
                    service_uid=self._service_uid(),
                    admit=self._admit,
                ),
                self.config.handshake_timeout,
            )
        except HandshakeRefused as refused:
            self._count(refused.code)
            if refused.code != "simultaneous":
                logger.warning("node %s: refused a connection: %s", self.system.node, refused)
            writer.close()
            return
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self._count("protocol")
            logger.warning("node %s: handshake with %s failed: %r", self.system.node, address, exc)
            writer.transport.abort()
            return
        if greeting.probe:
            writer.close()  # the dialer only wanted to know who listens here
            return
        link = self.recipient_for(greeting.peer)
        if link is None or link.state == LinkState.DOWN:
            writer.transport.abort()
            return
        if link.dialing is not None:
            link.dialing.cancel()
        link.attach(Connection(reader, writer, dialed=False), greeting.service_uid)

    def _admit(self, peer: NodeId, expected: NodeId, probe: bool) -> tuple[str, str] | None:
        """Whether to take a connection from ``peer`` (authenticated), which
        expects to reach ``expected``: None, or why not."""
        local = self.system.node
        if self._closing:
            return ("stopping", f"{local} is stopping")
        if self.faults.blocks(peer.system):
            return ("stopping", "partitioned (fault injection)")
        refusal = self._admit_link(peer, expected, local, probe)
        if refusal is None:
            self._retire_older(peer)
        return refusal

    def _admit_link(
        self, peer: NodeId, expected: NodeId, local: NodeId, probe: bool
    ) -> tuple[str, str] | None:
        if expected.system and (
            expected.system != local.system
            or (expected.incarnation and expected.incarnation != local.incarnation)
        ):
            return ("gone", f"{expected} is not here any more: this is {local}")
        if not peer.host or peer.port <= 0:
            return ("protocol", "a peer must give the address it listens on")
        link = self.link(peer)
        if link is None:
            return None
        if link.state == LinkState.DOWN:
            return ("quarantined", f"{peer} was declared down ({link.down_reason})")
        return None if probe else self._tie_break(link, peer, local)

    def _tie_break(self, link: RemoteLink, peer: NodeId, local: NodeId) -> tuple[str, str] | None:
        if link.state == LinkState.UP:
            return ("simultaneous", "already connected")
        dialing = link.dialing is not None and not link.dialing.done()
        if dialing and wire_node(peer) > wire_node(local):
            # Both ends dialled: the connection dialled by the smaller node is kept.
            return ("simultaneous", "both dialled; the other connection is used")
        return None

    def _retire_older(self, peer: NodeId) -> None:
        """``peer`` is a new incarnation: any other incarnation at its address is down."""
        for node, link in list(self._links.items()):
            if (
                node != peer
                and (node.system, node.host, node.port) == (peer.system, peer.host, peer.port)
                and link.state != LinkState.DOWN
            ):
                link.down(f"restarted as a new incarnation ({peer.incarnation:x})")

    # ------------------------------------------------------------------
    # Heartbeats, suspicion, the down timeout

    def _schedule_tick(self) -> None:
        self._tick = self.system._loop.call_later(self.config.heartbeat_interval, self._on_tick)

    def _on_tick(self) -> None:
        if self._closing:
            return
        try:
            self._check_links()
        except Exception:  # never let one bad link stop the heartbeats of all
            logger.exception("node %s: checking its links failed", self.system.node)
        finally:
            self._schedule_tick()

    def _check_links(self) -> None:
        now = self.clock()
        config = self.config
        for link in list(self._links.values()):
            if link.state == LinkState.DOWN:
                continue
            if link.connection is not None:
                link.heartbeat()
                if link.heard:
                    link.heard = False
                    link.detector.heartbeat(now)  # bytes arrived: alive, whatever they were
                if link.detector.phi(now) > config.phi_threshold:
                    link.suspect()
                elif link.state == LinkState.SUSPECT:
                    link.recovered()
            if link.state != LinkState.UP and now - link.since > config.down_after:
                link.down(f"unreachable for more than {config.down_after:g} s")
            elif link.connection is None:
                self._redial(link)
        self._leaving = [task for task in self._leaving if not task.done()]

    # ------------------------------------------------------------------
    # Remote spawn and lookup

    async def _service_of(self, node: NodeId, timeout: float | None) -> ActorRef[Any]:
        await self.wait_up(node, timeout)
        link = self._links[node]
        return ActorRef(link, "/system/node", link.service_uid)

    async def spawn(
        self,
        node: NodeId,
        actor: type[Any] | str,
        *args: Any,
        name: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        parent: ActorRef[Any] | None = None,
        strategy: SupervisorStrategy | None = None,
        **kwargs: Any,
    ) -> ActorRef[Any]:
        """Start an actor under ``/user`` on ``node`` and return its ref.

        With ``parent`` (an actor here, usually ``self.context.self``), the
        child is supervised over there with ``strategy`` (default: one for
        one) on the parent's behalf, and it stops when the parent stops or
        its node goes down (see :mod:`hewitt.node._remote_child`); watch it
        to learn when it stops for good.

        ``actor`` is an Actor subclass (sent as its import path, which must
        import on that node) or the path itself (``"package.module:Class"``);
        the arguments cross through the codec (registered types and
        scalars). Raises CodecError here for an argument that cannot cross,
        RemoteSpawnError with the other node's reason for an unknown class,
        arguments that do not decode there, a taken name or a failing
        constructor, and NodeUnreachable/NodeDown if the node cannot be reached.
        The default ``timeout`` is 30 s (``SPAWN_TIMEOUT``): the first spawn of a
        class imports its module over there.
        """
        path = import_path(actor)
        codec = self.system.codec
        packed_args = [codec.pack(arg) for arg in args]
        packed_kwargs = {key: codec.pack(value) for key, value in kwargs.items()}
        if timeout is DEFAULT_TIMEOUT:
            timeout = SPAWN_TIMEOUT  # the class is imported over there, maybe for the first time
        packed_parent = codec.pack(parent) if parent is not None else None
        spec = strategy_spec(strategy or SupervisorStrategy()) if parent is not None else None
        seconds = timeout if isinstance(timeout, (int, float)) else None
        service = await self._service_of(node, seconds)
        request = SpawnRequest(path, packed_args, packed_kwargs, name, packed_parent, spec)
        answer = await service.ask(request, timeout=timeout)
        if isinstance(answer, Spawned):
            return ActorRef(self._links[node], answer.path, answer.uid)
        raise RemoteSpawnError(str(node), path, getattr(answer, "reason", repr(answer)))

    async def lookup(
        self, node: NodeId, path: str, timeout: Timeout = DEFAULT_TIMEOUT
    ) -> ActorRef[Any] | None:
        """The ref of the live actor at ``path`` on ``node``, or None."""
        seconds = timeout if isinstance(timeout, (int, float)) else None
        service = await self._service_of(node, seconds)
        answer = await service.ask(Identify(path), timeout=timeout)
        if not isinstance(answer, Identity):
            raise CodecError(f"unexpected answer from {node}: {answer!r}")
        if not answer.uid:
            return None
        return ActorRef(self._links[node], answer.path, answer.uid)

    async def load(self, node: NodeId, timeout: Timeout = DEFAULT_TIMEOUT) -> Load:
        """How many actors ``node`` has alive and ready to run (for placement)."""
        seconds = timeout if isinstance(timeout, (int, float)) else None
        service = await self._service_of(node, seconds)
        answer = await service.ask(LoadQuery(), timeout=timeout)
        if not isinstance(answer, Load):
            raise CodecError(f"unexpected answer from {node}: {answer!r}")
        return answer

    # ------------------------------------------------------------------
    # Stopping

    async def stop(self) -> None:
        """Stop listening, say goodbye to every peer (after what is queued
        for it), and take every link down. Idempotent; the system's shutdown
        does it too."""
        self._closed("this node stopped")
        service = self._service
        if service is not None and self.system.is_running:
            service.stop()
            with contextlib.suppress(Exception):
                await self.system.wait_all_terminated([service], 5.0)
        leaving, self._leaving = self._leaving, []
        if leaving:  # until each peer has read our goodbye and closed its end
            await asyncio.wait(leaving, timeout=self.config.handshake_timeout)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)

    def _closed(self, why: str) -> None:
        if self._closing:
            return
        self._closing = True
        if self._tick is not None:
            self._tick.cancel()
        if self._server is not None:
            self._server.close()
        for link in list(self._links.values()):
            if link.state != LinkState.DOWN:
                connection = link.connection
                link.leave(why)
                if connection is not None and connection.reading is not None:
                    self._leaving.append(connection.reading)
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._waiters.clear()
        logger.info("node %s stopped: %s", self.system.node, why)

    def __iter__(self) -> Iterator[RemoteLink]:
        return iter([*self._down.values(), *self._links.values()])
