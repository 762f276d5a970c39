"""BytesNetwork: actor systems in one process that reach each other only by bytes.

A test double of a transport, for the kernel's seams: every message and
control message between two systems is encoded by the sender's kernel codec,
carried as ``bytes``, decoded by the receiver's codec and delivered there by
address. Nothing else crosses (no shared object), so what works here works
over a real transport, except that a real one can also be slow or lose a
connection (``disconnect`` simulates the latter).
"""

from __future__ import annotations

from collections import deque
from threading import get_ident
from typing import Any

from hewitt import (
    ActorRef,
    ActorSystem,
    ActorSystemStopped,
    CodecError,
    NodeId,
    NodeUnreachable,
)
from hewitt._runtime._asks import Promise
from hewitt._runtime._codec import ControlFrame
from hewitt._runtime._control import (
    ControlMessage,
    DeathNotice,
    ExitNotice,
    Link,
    Unlink,
    Unwatch,
    Watch,
)
from hewitt._runtime._envelope import Item, split
from hewitt._runtime._sysstate import TERMINATED


class BytesNetwork:
    """Connects the systems that join it. Frames between two systems keep
    their order (one FIFO wire per direction).

    ``frames`` and ``bytes`` count what was carried; ``disconnect(a, b)`` cuts
    the wire between two systems: messages to the other side become dead
    letters, asks fail at once, and every watch across the cut answers with
    ``Terminated(ref, NodeUnreachable)`` on both sides.
    """

    def __init__(self) -> None:
        self._members: dict[NodeId, ActorSystem] = {}
        self._links: dict[tuple[NodeId, NodeId], _Link] = {}
        self._cut: set[frozenset[NodeId]] = set()
        self.frames = 0
        self.bytes = 0

    def join(self, system: ActorSystem) -> None:
        """Make ``system`` reachable from, and able to reach, the other members."""
        self._members[system.node] = system
        system.use_remote(_Provider(self, system))

    def disconnect(self, a: ActorSystem, b: ActorSystem) -> None:
        """Cut the wire between ``a`` and ``b`` (both directions)."""
        self._cut.add(frozenset((a.node, b.node)))
        for local, remote in ((a, b), (b, a)):
            link = self._links.get((local.node, remote.node))
            if link is not None:
                link.lost()

    def connected(self, a: NodeId, b: NodeId) -> bool:
        member = self._members.get(b)
        return (
            member is not None
            and member._state != TERMINATED  # a peer that has shut down is gone
            and frozenset((a, b)) not in self._cut
        )

    def link(self, local: ActorSystem, node: NodeId) -> _Link | None:
        if node not in self._members:
            return None
        key = (local.node, node)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = _Link(self, local, node)
        return link

    def _carry(self, source: ActorSystem, node: NodeId, data: bytes) -> None:
        target = self._members[node]
        self.frames += 1
        self.bytes += len(data)
        wire = self.link(target, source.node)
        assert wire is not None
        wire.arrive(data)


class _Provider:
    __slots__ = ("_network", "_system")

    def __init__(self, network: BytesNetwork, system: ActorSystem) -> None:
        self._network = network
        self._system = system

    def recipient_for(self, node: NodeId) -> _Link | None:
        return self._network.link(self._system, node)


class _Link:
    """The recipient, in ``system``, of the refs of actors on ``node``; also
    the receiving end of the wire from ``node`` to ``system``."""

    __slots__ = (
        "_asks",
        "_inbound",
        "_links",
        "_network",
        "_node",
        "_scheduled",
        "_watches",
        "system",
    )

    def __init__(self, network: BytesNetwork, system: ActorSystem, node: NodeId) -> None:
        self._network = network
        self.system = system
        self._node = node
        #: remote watchee -> the local watchers of it (answered if the link is lost)
        self._watches: dict[ActorRef[Any], set[ActorRef[Any]]] = {}
        #: remote actor -> the local actors linked with it (they get its exit if lost)
        self._links: dict[ActorRef[Any], set[ActorRef[Any]]] = {}
        #: asks sent over this link and not answered yet (they fail if it is lost)
        self._asks: set[Any] = set()
        self._inbound: deque[bytes] = deque()
        self._scheduled = False

    @property
    def node(self) -> NodeId:
        return self._node

    @property
    def alive(self) -> bool:
        return self._network.connected(self.system.node, self._node)

    def _unreachable(self) -> NodeUnreachable:
        return NodeUnreachable(str(self._node), "the link is down")

    # Outbound: this system's refs to actors on the other node.

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        if not self.alive:
            message, sender = split(item)
            self.system._dead_letter(message, sender, ref, str(self._unreachable()))
            return
        data = self.system.codec.encode_message(ref, item)  # CodecError reaches the sender
        sender = split(item)[1]
        if isinstance(sender, Promise):
            if len(self._asks) > 1024:
                self._asks = {ask for ask in self._asks if not ask.done}
            self._asks.add(sender)
        self._network._carry(self.system, self._node, data)

    deliver_ask = deliver

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        if isinstance(message, Watch):
            if not self.alive:
                watcher = message.watcher
                watcher._recipient.deliver_system(watcher, DeathNotice(ref, self._unreachable()))
                return
            self._watches.setdefault(ref, set()).add(message.watcher)
        elif isinstance(message, Unwatch):
            watchers = self._watches.get(ref)
            if watchers is not None:
                watchers.discard(message.watcher)
                if not watchers:
                    del self._watches[ref]
        elif isinstance(message, Link):
            if not self.alive:
                other = message.other
                other._recipient.deliver_system(other, ExitNotice(ref, self._unreachable()))
                return
            self._links.setdefault(ref, set()).add(message.other)
        elif isinstance(message, Unlink):
            others = self._links.get(ref)
            if others is not None:
                others.discard(message.other)
        if not self.alive:
            return
        self._network._carry(
            self.system, self._node, self.system.codec.encode_control(ref, message)
        )

    def lost(self) -> None:
        """The wire is cut: every watch across it is answered as a death, every
        link as an abnormal exit (Erlang's noconnection), every ask waiting for
        an answer from there fails."""
        watches, self._watches = self._watches, {}
        links, self._links = self._links, {}
        asks, self._asks = self._asks, set()
        error = self._unreachable()

        def answer() -> None:
            for watchee, watchers in watches.items():
                for watcher in watchers:
                    watcher._recipient.deliver_system(watcher, DeathNotice(watchee, error))
            for remote, others in links.items():
                for other in others:
                    other._recipient.deliver_system(other, ExitNotice(remote, error))
            for ask in asks:
                if not ask.done:
                    ask.fail(error)

        self._on_loop(answer)

    # Inbound: frames from the other node, delivered in order on this loop.

    def arrive(self, data: bytes) -> None:
        self._inbound.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._on_loop(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        inbound = self._inbound
        codec = self.system.codec
        peer = str(self._node)
        for _ in range(len(inbound)):
            data = inbound.popleft()
            if not self._network.connected(self.system.node, self._node):
                continue  # cut while in flight: lost, as on a real network
            try:
                frame = codec.decode(data, peer)
            except CodecError:
                continue  # a real transport closes the connection here
            if isinstance(frame, ControlFrame):
                if frame.kind == "death":
                    self._forget_watch(frame.ref)
                elif frame.kind == "link" and frame.ref is not None:
                    # A remote actor links with one of ours: ours gets its exit if lost.
                    local = codec.resolve(frame.to)
                    self._links.setdefault(codec.resolve(frame.ref), set()).add(local)
            codec.deliver(frame, peer)

    def _forget_watch(self, wire_ref: Any) -> None:
        if wire_ref is None:
            return
        watchee = self.system.codec.resolve(wire_ref)
        self._watches.pop(watchee, None)

    def _on_loop(self, fn: Any) -> None:
        system = self.system
        if get_ident() == system._loop_thread_id:
            system._loop.call_soon(fn)
            return
        try:
            system._loop.call_soon_threadsafe(fn)
        except RuntimeError:
            raise ActorSystemStopped(f"actor system {system.name!r} has shut down") from None
