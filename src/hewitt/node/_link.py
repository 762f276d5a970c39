"""A link: this node's view of one incarnation of another node.

The link is the recipient of every ref to an actor on that node, and it owns
the link's state machine (the only place its state changes)::

    CONNECTING --attach--> UP --lost / phi high--> SUSPECT --attach / heartbeats--> UP
        |                   |                         |
        +-------------------+----> DOWN <-------------+  (down timeout, goodbye,
                                                          new incarnation, refusal)

CONNECTING and SUSPECT queue messages (bounded), and SUSPECT fails new asks
at once. DOWN is final: that incarnation is quarantined, queued and later
messages are dead letters, pending asks fail with NodeDown, and every watch
and link across it is answered (``Terminated``/``Exit`` with NodeDown).

Two lanes go out over the one connection. Heartbeats are the control lane:
written straight to the socket, never behind queued messages, so a full
send queue never delays them. Messages and signals (watch, link, stop,
death and exit notices, failed asks) share one FIFO queue, so that a
``Terminated`` never overtakes the messages its actor sent before it died
(Erlang's signal order); signals are never dropped by the overflow policy,
and a peer that lets more than ``control_queue`` of them pile up is taken
down. Writes are batched: the first message since the last flush is written
at once, and everything queued after it in the same loop iteration goes out
together in frames of up to ``batch_bytes``; a flush waits only when the
socket's buffer is above its high-water mark. A lost connection answers
every watch and link across it at once (see ``_signals``), as Erlang does.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from threading import get_ident
from typing import TYPE_CHECKING, Any

from hewitt import ActorRef, CodecError, MailboxFull, NodeDown, NodeId, NodeUnreachable, Overflow
from hewitt._runtime._asks import Promise, fail_ask, is_temporary
from hewitt._runtime._codec import batch_header
from hewitt._runtime._control import (
    ControlMessage,
    DeathNotice,
    ExitNotice,
    Link,
    Unwatch,
    Watch,
)
from hewitt._runtime._envelope import Item, describe, split

from ._reader import read
from ._signals import Signals
from ._wire import BATCH, GOODBYE, HEARTBEAT

if TYPE_CHECKING:
    from ._node import Node

logger = logging.getLogger("hewitt.node")

_HEARTBEAT_FRAME = (1).to_bytes(4, "big") + bytes((HEARTBEAT,))
_GOODBYE_FRAME = (1).to_bytes(4, "big") + bytes((GOODBYE,))


class LinkState(enum.IntEnum):
    CONNECTING = 0
    UP = 1
    SUSPECT = 2
    DOWN = 3


_ALLOWED = {
    LinkState.CONNECTING: {LinkState.UP, LinkState.SUSPECT, LinkState.DOWN},
    LinkState.UP: {LinkState.SUSPECT, LinkState.DOWN},
    LinkState.SUSPECT: {LinkState.UP, LinkState.DOWN},
    LinkState.DOWN: set(),
}

#: A queued outbound frame: its bytes, and what to tell if it is dropped
#: (for a signal: None and _SIGNAL, and it is never dropped).
_Queued = tuple[bytes, ActorRef[Any] | None, Any]
_SIGNAL: Any = object()
#: asks admitted past a full send queue (see RemoteLink._enqueue)
ASK_HEADROOM = 1024


class Connection:
    """One TCP (or TLS) connection carrying a link, after its handshake."""

    __slots__ = ("dialed", "reader", "reading", "writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dialed: bool
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.dialed = dialed
        self.reading: asyncio.Task[None] | None = None

    def close(self) -> None:
        transport = self.writer.transport
        if not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        self.writer.transport.abort()


class RemoteLink:
    """The recipient of the refs to actors on ``node`` (one incarnation)."""

    def __init__(self, owner: Node, node: NodeId) -> None:
        self.owner = owner
        self.system = owner.system
        self._loop = owner.system._loop
        self._node = node
        self._peer = self.peer = str(node)
        self.state = LinkState.CONNECTING
        #: when the link last left UP (or was made): the down timeout counts from here
        self.since = owner.clock()
        self.down_reason: str | None = None
        self.connection: Connection | None = None
        self.dialing: asyncio.Task[None] | None = None
        self.service_uid = 0
        self._ordinary: deque[_Queued] = deque()
        #: signals in the queue (they do not count against send_queue)
        self._signals_queued = 0
        self._flush_scheduled = False
        self._paused = False
        self._queued_bytes = 0
        self._loop_thread_id = owner.system._loop_thread_id
        self._capacity = owner.config.send_queue
        self._capacity_bytes = owner.config.send_queue_bytes
        self._batch_bytes = owner.config.batch_bytes
        self._max_message = owner.config.max_frame - 64
        self._encode = owner.system.codec.encode_message
        self.detector = owner.config.detector()
        #: the watches and links across this link, both ways
        self.signals = Signals()
        #: why the last connection was lost, until the link is up again or down
        self._lost_signals: str | None = None
        #: bytes arrived since the last tick (the peer is alive, even if its
        #: heartbeats are stuck behind a big message)
        self.heard = False
        #: asks sent over this link and not answered yet
        self._asks: set[Promise] = set()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self.frames_out = 0
        self.frames_in = 0
        self.bytes_out = 0
        self.bytes_in = 0
        self.dropped = 0

    # ------------------------------------------------------------------
    # The recipient protocol

    @property
    def node(self) -> NodeId:
        return self._node

    @property
    def alive(self) -> bool:
        return self.state != LinkState.DOWN

    @property
    def queued(self) -> int:
        """Messages (not signals) waiting to be written."""
        return len(self._ordinary) - self._signals_queued

    def _full(self, size: int) -> bool:
        return (
            len(self._ordinary) - self._signals_queued >= self._capacity
            or self._queued_bytes + size > self._capacity_bytes
        )

    async def drained(self) -> None:
        """Wait until nothing is queued for this link (written to the socket,
        or dropped); NodeDown if it goes down first."""
        if self.state == LinkState.DOWN:
            raise self._error()
        if not self._ordinary:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_room(self) -> None:
        """Let the first waiting sender in, if there is room (it wakes the next)."""
        waiters = self._room_waiters
        while waiters and (
            len(self._ordinary) < self.owner.config.send_queue or self.state == LinkState.DOWN
        ):
            waiter = waiters[0]
            if waiter.done():
                waiters.popleft()
                continue
            waiter.set_result(None)
            return

    def _wake_drained(self, error: BaseException | None = None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _error(self) -> NodeUnreachable:
        if self.state == LinkState.DOWN:
            return NodeDown(self._peer, self.down_reason or "down")
        return NodeUnreachable(self._peer, "suspected (no heartbeat within the expected time)")

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        if self.state is not LinkState.UP:
            if self.state is LinkState.DOWN:
                self._refuse(ref, item)
                return
            sender = split(item)[1]
            if self.state is LinkState.SUSPECT and is_temporary(sender):
                fail_ask(sender, self._error())  # fail fast: a suspect node is not waited for
                return
        data = self._encode(ref, item)  # CodecError reaches the sender
        if len(data) > self._max_message:
            raise CodecError(
                f"{describe(split(item)[0])} to {ref.path} is {len(data)} bytes encoded: more "
                f"than the {self.owner.config.max_frame} bytes a frame to {self._peer} may carry "
                "(NodeConfig.max_frame)"
            )
        if get_ident() == self._loop_thread_id:
            self._enqueue(data, ref, item)
            return
        if self.owner.config.send_overflow is Overflow.FAIL and self._full(len(data)):
            raise MailboxFull(f"the link to {self._peer}", self._capacity, describe(split(item)[0]))
        self.system._call_on_loop(self._enqueue, data, ref, item, False)

    deliver_ask = deliver

    async def deliver_with_room(
        self, ref: ActorRef[Any], item: Item, timeout: float | None
    ) -> None:
        """``await ref.send(msg)``: wait (FIFO among senders) while the send
        queue is full, then queue; MailboxFull after ``timeout`` seconds.
        Whatever the overflow policy, ``send`` never drops."""
        if get_ident() != self._loop_thread_id:  # another loop: wait on the system's
            waiting = asyncio.run_coroutine_threadsafe(
                self.deliver_with_room(ref, item, timeout), self._loop
            )
            await asyncio.wrap_future(waiting)
            return
        capacity = self._capacity
        if self._full(0) or self._room_waiters:
            waiter = self._loop.create_future()
            self._room_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                raise MailboxFull(
                    f"the link to {self._peer}", capacity, describe(split(item)[0])
                ) from None
            finally:
                if waiter in self._room_waiters:
                    self._room_waiters.remove(waiter)
        self.deliver(ref, item)
        self._wake_room()

    def _enqueue(self, data: bytes, ref: ActorRef[Any], item: Any, may_raise: bool = True) -> None:
        if self.state is LinkState.DOWN:
            self._refuse(ref, item)
            return
        asking = type(item) is tuple and isinstance(item[1], Promise)
        if (
            self._full(len(data))
            # An ask's caller waits for its answer, so asks pace themselves: past
            # the bound, a few more are admitted (the sender awaiting its sends
            # then asking for a result must not see that ask dropped).
            and not (asking and len(self._ordinary) < self._capacity + ASK_HEADROOM)
            and not self._make_room(ref, item, may_raise)
        ):
            return
        if asking:
            asks = self._asks
            if len(asks) > 1024 and len(asks) & 1023 == 0:
                self._asks = {ask for ask in asks if not ask.done}
            self._asks.add(item[1])
        self._queue(data, ref, item)

    def _queue(self, data: bytes, ref: ActorRef[Any] | None, item: Any) -> None:
        self._ordinary.append((data, ref, item))
        self._queued_bytes += len(data)
        if self.connection is not None and not self._paused:
            if not self._flush_scheduled:
                # The first frame since the last flush goes at once (an ask's
                # latency); the ones after it in this loop iteration wait for
                # the flush scheduled here, and go together.
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
                self._write_now()
            elif self._queued_bytes >= self._batch_bytes:
                self._write_now()  # a full batch goes now: queueing starts when the socket is full

    def _make_room(self, ref: ActorRef[Any], item: Any, may_raise: bool) -> bool:
        """The send queue is full: apply the overflow policy; False if the new
        message is not to be queued. From another thread (``may_raise``
        False) FAIL cannot reach the caller any more: a dead letter then."""
        overflow = self.owner.config.send_overflow
        if overflow is Overflow.DROP_OLDEST:
            queue = self._ordinary
            for index, (old_data, old_ref, old_item) in enumerate(queue):
                if old_ref is not None:  # the oldest message (signals are never dropped)
                    del queue[index]
                    self._queued_bytes -= len(old_data)
                    self._drop(old_ref, old_item, "the send queue was full (oldest dropped)")
                    return True
        if overflow is Overflow.FAIL and may_raise:
            raise MailboxFull(f"the link to {self._peer}", self._capacity, describe(split(item)[0]))
        self._drop(ref, item, "the send queue was full")
        return False

    def _drop(self, ref: ActorRef[Any], item: Any, reason: str) -> None:
        self.dropped += 1
        message, sender = split(item)
        fail_ask(sender, NodeUnreachable(self._peer, reason))  # first: not as a DeliveryError
        self.system._dead_letter(message, sender, ref, f"to {self._peer}: {reason}")

    def _refuse(self, ref: ActorRef[Any], item: Item) -> None:
        message, sender = split(item)
        error = self._error()
        if is_temporary(sender):
            fail_ask(sender, error)  # first: the dead letter would fail it as a DeliveryError
        self.system._call_on_loop(self.system._dead_letter, message, sender, ref, str(error))

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        if get_ident() != self.system._loop_thread_id:
            self.system._call_on_loop(self.deliver_system, ref, message)
            return
        if self.state == LinkState.DOWN:
            if isinstance(message, Watch):
                watcher = message.watcher
                watcher._recipient.deliver_system(watcher, DeathNotice(ref, self._error()))
            elif isinstance(message, Link):
                other = message.other
                other._recipient.deliver_system(other, ExitNotice(ref, self._error()))
            return
        self.signals.outbound(ref, message)
        if self._signals_queued >= self.owner.config.control_queue:
            self.down(
                f"more than {self.owner.config.control_queue} signals waited to be written: "
                "the peer does not read"
            )
            return
        self._signals_queued += 1
        self._queue(self.system.codec.encode_control(ref, message), None, _SIGNAL)

    # ------------------------------------------------------------------
    # The state machine

    def _become(self, state: LinkState) -> None:
        if state not in _ALLOWED[self.state]:
            raise AssertionError(f"link to {self._peer}: {self.state.name} -> {state.name}")
        previous = self.state
        self.state = state
        if previous == LinkState.UP:
            self.since = self.owner.clock()
        self.owner._link_changed(self, previous)

    def attach(self, connection: Connection, service_uid: int) -> None:
        """A handshake completed: carry this link over ``connection``."""
        if self.state == LinkState.DOWN:
            connection.close()
            return
        old = self.connection
        if old is not None:
            old.close()
        self.connection = connection
        self.service_uid = service_uid
        self._paused = False
        self.detector = self.owner.config.detector()
        self.detector.heartbeat(self.owner.clock())
        connection.reading = self._loop.create_task(read(self, connection))
        if self._lost_signals is not None:
            # Back up after a lost connection: what crossed it may be lost, so
            # each watch and link across it is answered now; watch again.
            why, self._lost_signals = self._lost_signals, None
            self.signals.sever(
                NodeUnreachable(
                    self._peer, f"the connection was lost ({why}) and made again: watch again"
                ),
                self._forget_remote_watcher,
            )
        if self.state != LinkState.UP:
            self._become(LinkState.UP)
        self._kick()

    def suspect(self) -> None:
        """Heartbeats are late, the connection was lost, or dialling failed."""
        if self.state in (LinkState.UP, LinkState.CONNECTING):
            self._become(LinkState.SUSPECT)
        if self.connection is None:
            self._fail_queued_asks()

    def _fail_queued_asks(self) -> None:
        """No connection: the asks waiting to be written fail now, and are not
        written later (an ask fails fast on a suspect link; its request must
        not be handled after its asker was told it failed)."""
        queue = self._ordinary
        if not any(
            isinstance(entry[2], tuple) and isinstance(entry[2][1], Promise) for entry in queue
        ):
            return
        error = self._error()
        kept: deque[_Queued] = deque()
        for entry in queue:
            data, ref, item = entry
            if ref is not None and type(item) is tuple and isinstance(item[1], Promise):
                self._queued_bytes -= len(data)
                fail_ask(item[1], error)
                self.system._dead_letter(item[0], item[1], ref, str(error))
            else:
                kept.append(entry)
        self._ordinary = kept

    def recovered(self) -> None:
        if self.state == LinkState.SUSPECT and self.connection is not None:
            self._become(LinkState.UP)

    def down(self, reason: str, *, close: bool = True) -> None:
        """Declare this incarnation down, for good. ``close=False`` leaves the
        connection to end by itself (after a goodbye, see :meth:`leave`)."""
        if self.state == LinkState.DOWN:
            return
        self.down_reason = reason
        self._become(LinkState.DOWN)
        connection, self.connection = self.connection, None
        if connection is not None:
            if close:
                connection.close()
            else:
                self._loop.call_later(self.owner.config.handshake_timeout, connection.abort)
        if self.dialing is not None:
            self.dialing.cancel()
        error = self._error()
        ordinary, self._ordinary = self._ordinary, deque()
        self._queued_bytes = 0
        self._signals_queued = 0
        asks, self._asks = self._asks, set()
        for ask in asks:
            if not ask.done:
                ask.fail(error)
        for _, ref, item in ordinary:
            if ref is not None:  # signals are answered by the sever below
                message, sender = split(item)
                fail_ask(sender, error)
                self.system._dead_letter(message, sender, ref, str(error))
        self.signals.sever(error, self._forget_remote_watcher)
        self.system.codec.forget_node(self._node)
        self._wake_drained(error)
        self._wake_room()  # each waiting sender goes on: its message is refused (down)

    def leave(self, reason: str) -> None:
        """This node is stopping: write everything queued, say goodbye, and
        go down without cutting the connection (the peer closes it once it
        has read the goodbye, so nothing it sent is lost to a reset)."""
        self.goodbye()
        self.down(reason, close=False)

    def _forget_remote_watcher(self, watchee: ActorRef[Any], watcher: ActorRef[Any]) -> None:
        watchee._recipient.deliver_system(watchee, Unwatch(watcher))

    def connection_lost(self, connection: Connection, why: str) -> None:
        connection.close()
        if connection is not self.connection:
            return
        self.connection = None
        self._flush_scheduled = False
        logger.info("node %s: connection to %s lost: %s", self.system.node, self._peer, why)
        # As Erlang's calls on noconnection: an ask in flight fails now, not at its
        # timeout. Its request may or may not have been handled over there.
        asks, self._asks = self._asks, set()
        lost = NodeUnreachable(
            self._peer, f"the connection was lost ({why}); the request may have been handled"
        )
        for ask in asks:
            if not ask.done:
                ask.fail(lost)
        # A death notice or an exit may have been lost with the connection: the
        # watches and links across it are answered when the link goes down
        # (NodeDown), or, if it comes back first, when it does (see attach).
        self._lost_signals = why
        self.suspect()
        self.owner._redial(self)

    # ------------------------------------------------------------------
    # Writing

    def _kick(self) -> None:
        if not self._flush_scheduled and self.connection is not None and not self._paused:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write_now()

    def _write_now(self) -> None:
        connection = self.connection
        if connection is None or self._paused:
            return
        writer = self.owner.faults.writer_for(self, connection)
        transport = connection.writer.transport
        config = self.owner.config
        limit = config.batch_bytes
        ordinary = self._ordinary
        high_water = config.write_high_water
        while ordinary:
            parts: list[bytes] = []
            size = 0
            while ordinary and size < limit:
                data, ref, _ = ordinary.popleft()
                if ref is None:
                    self._signals_queued -= 1
                parts.append(data)
                size += len(data)
            self._queued_bytes -= size
            payload_size = 1 + size + len(header := batch_header(len(parts)))
            frame = b"".join([payload_size.to_bytes(4, "big"), bytes((BATCH,)), header, *parts])
            self.frames_out += 1
            self.bytes_out += len(frame)
            writer(frame)
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() > high_water:
                self._paused = True
                self._loop.create_task(self._drain(connection))
                if self._room_waiters:
                    self._wake_room()
                return
        if self._drain_waiters:
            self._wake_drained()
        if self._room_waiters:
            self._wake_room()

    async def _drain(self, connection: Connection) -> None:
        try:
            await connection.writer.drain()
        except (ConnectionError, OSError):
            return  # the reader sees the loss
        if connection is self.connection:
            self._paused = False
            self._kick()

    def heartbeat(self) -> None:
        connection = self.connection
        if connection is not None and not connection.writer.transport.is_closing():
            self.owner.faults.writer_for(self, connection)(_HEARTBEAT_FRAME)

    def goodbye(self) -> None:
        """Write everything queued (past the high-water mark: the node is
        stopping), then the goodbye, then end the stream."""
        connection = self.connection
        if connection is None:
            return
        transport = connection.writer.transport
        while self._ordinary and not transport.is_closing():
            self._paused = False
            self._write_now()
        if not transport.is_closing():
            self.owner.faults.writer_for(self, connection)(_GOODBYE_FRAME)
            if transport.can_write_eof():
                transport.write_eof()

    def __repr__(self) -> str:
        return f"RemoteLink({self._peer}, {self.state.name})"
