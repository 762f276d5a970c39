"""ActorRef: the only handle users hold on an actor, and the delivery seam.

A ref is an address (node, path, incarnation) plus its *recipient*: the object
that delivers to that address. Every send goes through the recipient's
``deliver(ref, item)`` (user messages) or ``deliver_system(ref, message)``
(control messages: watch, link, stop, death notices). A local actor's
recipient is its cell, which queues the message (the fast path); an actor on
another node has a link as its recipient; an actor that is gone has its
system's dead-letter recipient. Nothing outside the recipient touches a cell.
"""

from __future__ import annotations

from collections.abc import Coroutine
from contextvars import ContextVar
from threading import get_ident
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from ._address import ActorAddress, NodeId
from ._control import STOP, ControlMessage
from ._envelope import Item
from ._errors import ActorSystemStopped, WrongThread
from ._marks import ENVELOPE, NOTHING
from ._messages import PoisonPill
from ._sysstate import TERMINATED

if TYPE_CHECKING:
    from ._system import ActorSystem

M_contra = TypeVar("M_contra", contravariant=True)


class _DefaultTimeout:
    """The type of :data:`DEFAULT_TIMEOUT`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT_TIMEOUT"


#: "Use ``SystemConfig.ask_timeout``": the default of every ``ask``'s
#: ``timeout``. ``timeout=None`` waits forever, as everywhere in hewitt.
DEFAULT_TIMEOUT: Final = _DefaultTimeout()

Timeout = float | None | _DefaultTimeout


class RunningTurn:
    """What CURRENT_ACTOR holds in an actor's context until the actor needs its
    own ref there: "the actor whose turn the dispatcher is running". Every
    actor's context starts as a copy of its system's template (one object,
    no set per actor); the actor's ref is set in it the first time it runs
    an async handler, a hook or a blocking handler."""

    __slots__ = ("dispatcher",)

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher


#: The actor whose handler runs in the current context (or a RunningTurn):
#: each actor runs its handlers in a ``contextvars.Context`` of its own, so a
#: ``tell`` inside a handler carries the actor as its sender (as in Akka), also
#: after an ``await`` in an async handler.
CURRENT_ACTOR: ContextVar[ActorRef[Any] | RunningTurn | None] = ContextVar(
    "hewitt_current_actor", default=None
)
_current_actor = CURRENT_ACTOR.get


def implicit_sender() -> ActorRef[Any] | None:
    """The actor a ``tell`` made here is from (None outside any actor)."""
    who = _current_actor()
    if type(who) is RunningTurn:
        cell = who.dispatcher.current
        return cell.ref if cell is not None else None
    return who  # type: ignore[return-value]


#: The class of local cells, registered by ``_cell`` when it is imported (this
#: module is below it and cannot import it): ``tell``'s fast path tests for it.
_local_cell: type[Any] = type(None)


def register_local_cell(cell_class: type[Any]) -> None:
    global _local_cell
    _local_cell = cell_class


class Recipient(Protocol):
    """What delivers messages to a ref's address (the transport seam).

    Implemented by a local cell, by the dead-letter recipient of a system and
    by links to other nodes. All methods may be called from any thread.
    """

    #: The local system this recipient delivers for.
    system: ActorSystem

    @property
    def node(self) -> NodeId: ...

    @property
    def alive(self) -> bool: ...

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        """Deliver a user message (a mailbox item, see ``_envelope``) to ``ref``."""

    def deliver_ask(self, ref: ActorRef[Any], item: Item) -> None:
        """Deliver an ask's request; a local idle actor may handle it at once."""

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        """Deliver a control message (watch, link, stop, notices) to ``ref``."""


class ActorRef(Generic[M_contra]):
    """A typed, immutable, hashable handle on an actor that accepts messages of type ``M``.

    ``tell`` never blocks and may be called from any thread. Two refs are equal
    when they name the same incarnation of the same path on the same node.
    """

    __slots__ = ("_path", "_recipient", "_uid")

    _recipient: Recipient
    _path: str
    _uid: int

    def __init__(self, recipient: Recipient, path: str, uid: int) -> None:
        self._recipient = recipient
        self._path = path
        self._uid = uid

    @property
    def path(self) -> str:
        """The hierarchical path, like ``/user/bank/account-42``."""
        return self._path

    @property
    def uid(self) -> int:
        """The incarnation id: a new actor at the same path gets a new one."""
        return self._uid

    @property
    def node(self) -> NodeId:
        """The node (actor system incarnation) this actor lives on."""
        return self._recipient.node

    def tell(self, message: M_contra | PoisonPill, sender: ActorRef[Any] | None = None) -> None:
        """Send ``message`` without waiting; ``sender`` is what the recipient may reply to.

        Inside a handler the sender defaults to the running actor (as in Akka).
        Every actor also accepts ``POISON_PILL``. Never blocks; never raises
        for a stopped recipient (the message goes to dead letters). Raises
        ActorSystemStopped once the recipient's system has shut down.
        """
        if sender is None:
            sender = _current_actor()  # type: ignore[assignment]
            if sender is not None and type(sender) is RunningTurn:
                running = sender.dispatcher.current
                sender = running.ref if running is not None else None
        item = message if sender is None else (message, sender, ENVELOPE)
        cell: Any = self._recipient
        if type(cell) is not _local_cell or get_ident() != cell.system._loop_thread_id:
            cell.deliver(self, item)
            return
        # Cell.deliver for a local actor on its loop thread, inlined: the
        # hottest path of the runtime (one Python call less per tell). Keep
        # the two in step; every other sender goes through Cell.deliver.
        mailbox = cell.mailbox
        if mailbox is not None:
            mailbox.append(item)
        elif cell.pending is NOTHING:
            cell.pending = item
        else:
            cell.second(item)
        if not cell.scheduled:
            cell.wake()

    async def send(
        self,
        message: M_contra | PoisonPill,
        sender: ActorRef[Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """``tell`` with backpressure: when the recipient has a bounded mailbox
        with the BLOCK policy and it is full, wait (FIFO among senders) until
        there is room; raise ``MailboxFull`` if none comes within ``timeout``
        seconds (None: wait as long as it takes). For every other mailbox it
        is ``tell``. Usable from any event loop."""
        if sender is None:
            sender = implicit_sender()
        item = message if sender is None else (message, sender, ENVELOPE)
        recipient = self._recipient
        deliver_with_room = getattr(recipient, "deliver_with_room", None)
        if deliver_with_room is None:
            recipient.deliver(self, item)
            return
        await deliver_with_room(self, item, timeout)

    def send_blocking(
        self,
        message: M_contra | PoisonPill,
        sender: ActorRef[Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """``send`` for synchronous code on other threads: blocks this thread
        while the recipient's BLOCK mailbox is full. Raises WrongThread on the
        system's own thread."""
        system = self._recipient.system
        if get_ident() == system._loop_thread_id:
            raise WrongThread(
                f"send_blocking to {self.path} was called on the actor system's event-loop "
                "thread, where it would deadlock; use `await ref.send(...)` there"
            )
        system._run_blocking(self.send(message, sender, timeout=timeout), None)

    def ask(
        self, message: M_contra, *, timeout: Timeout = DEFAULT_TIMEOUT
    ) -> Coroutine[Any, Any, Any]:
        """Send ``message`` and wait for the first reply.

        Raises :class:`AskTimeout` (naming this actor and the message type) when
        no reply comes within ``timeout`` seconds (default:
        ``SystemConfig.ask_timeout``; None waits forever),
        :class:`DeliveryError` when the recipient is stopped,
        :class:`ActorSystemStopped` when the system shuts down first, and
        re-raises the exception if the handler failed. Usable from any event
        loop; from the system's own loop it takes the fast path.

        (A plain method that returns the ask's coroutine: ``await`` it, or
        make it a task; one coroutine per ask, not two.)
        """
        return self._recipient.system._ask(self, message, timeout)

    def ask_blocking(self, message: M_contra, *, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """``ask`` for synchronous code on other threads: blocks until the reply.

        The timeout is enforced in the calling thread too, so a wedged or
        stopped system never blocks it longer. Raises :class:`WrongThread` on
        the system's event-loop thread, where it would deadlock.
        """
        return self._recipient.system._ask_blocking(self, message, timeout)

    def stop(self) -> None:
        """Ask the actor to stop: it finishes its current message, its queued
        messages go to dead letters, its children stop first (one at a time,
        the last started first), then ``post_stop`` runs. Returns at once;
        see :meth:`wait_terminated`. Thread-safe."""
        self._recipient.deliver_system(self, STOP)

    async def wait_terminated(self, timeout: float | None = None) -> None:
        """Wait until the actor has stopped (at once if it already has).

        Raises TimeoutError after ``timeout`` seconds (None: wait as long as it
        takes). Usable from any event loop; nothing is left behind on timeout.
        """
        await self._recipient.system._wait_terminated(self, timeout)

    def wait_terminated_blocking(self, timeout: float | None = None) -> None:
        """:meth:`wait_terminated` for synchronous code on other threads; the
        timeout holds in the calling thread too. Returns at once after the
        system has shut down (every local actor has stopped then)."""
        system = self._recipient.system
        if system._state == TERMINATED:
            return
        try:
            system._run_blocking(system._wait_terminated(self, timeout), timeout)
        except ActorSystemStopped:
            return

    @property
    def name(self) -> str:
        """The last element of the path."""
        return self.path.rpartition("/")[2]

    @property
    def address(self) -> ActorAddress:
        """The serializable address of this ref (see ``ActorSystem.resolve``)."""
        return ActorAddress(self._recipient.node, self.path, self._uid)

    @property
    def is_alive(self) -> bool:
        """True while the actor has not stopped, as far as this node knows
        (a snapshot; it may stop right after)."""
        return self._recipient.alive

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        if self._uid != other._uid or self._path != other._path:
            return False
        node, other_node = self._recipient.node, other._recipient.node
        return node is other_node or node == other_node

    def __hash__(self) -> int:
        return hash((self._path, self._uid, self._recipient.node.incarnation))

    def __repr__(self) -> str:
        return f"ActorRef({self.path}#{self.uid})"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self!r} cannot be pickled; send it inside a message through the kernel "
            "codec, or serialize `ref.address` (msgspec) and `ActorSystem.resolve` it"
        )

    def __copy__(self) -> ActorRef[M_contra]:
        return self

    def __deepcopy__(self, memo: Any) -> ActorRef[M_contra]:
        return self


def tell_anonymously(ref: ActorRef[Any], message: Any) -> None:
    """Deliver ``message`` with no sender, even inside a handler (the runtime's
    own messages: events, timer ticks)."""
    ref._recipient.deliver(ref, message)
