"""ActorRef: the only handle users hold on an actor.

A ref is an address (system name, hierarchical path, incarnation id); a local
ref also keeps a direct pointer to its cell, which is the fast path of ``tell``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from threading import get_ident
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from ._errors import AskTimeout, DeliveryError, WrongThread
from ._mailbox import Admission, MailboxFull, Overflow
from ._marks import ENVELOPE, NOTHING
from ._messages import PoisonPill
from ._states import RUNNING

if TYPE_CHECKING:
    from ._cell import Cell
    from ._system import ActorSystem

M_contra = TypeVar("M_contra", contravariant=True)


class ActorAddress(msgspec.Struct, frozen=True):
    """The serializable identity of an actor: system name, path and incarnation."""

    system: str
    path: str
    uid: int


class ActorRef(Generic[M_contra]):
    """A typed, immutable, hashable handle on an actor that accepts messages of type ``M``.

    ``tell`` never blocks and may be called from any thread. Two refs are equal
    when they name the same incarnation of the same path in the same system.
    """

    __slots__ = ("_cell", "_path", "_uid")

    _cell: Cell[Any] | None
    _path: str
    _uid: int

    def __init__(self, cell: Cell[Any] | None, path: str, uid: int) -> None:
        self._cell = cell
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

    def tell(self, message: M_contra | PoisonPill, sender: ActorRef[Any] | None = None) -> None:
        """Send ``message`` without waiting; ``sender`` is what the recipient may reply to.

        Every actor also accepts ``POISON_PILL``.

        Never blocks, never raises for a stopped recipient: the message then goes
        to dead letters.
        """
        cell = self._cell
        if cell is None:
            _unbound_tell(self, message, sender)
            return
        item = message if sender is None else (message, sender, ENVELOPE)
        system = cell.system
        if get_ident() != system._loop_thread_id:
            system._tell_from_thread(cell, item)
            return
        # Cell.enqueue, inlined: this is the hottest path of the runtime.
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
        cell = self._cell
        if cell is None:
            self.tell(message, sender)
            return
        system = cell.system
        if asyncio.get_running_loop() is not system._loop:
            future = asyncio.run_coroutine_threadsafe(
                self.send(message, sender, timeout=timeout), system._loop
            )
            await asyncio.wrap_future(future)
            return
        mailbox = cell.mailbox
        if (
            isinstance(mailbox, Admission)
            and mailbox.overflow is Overflow.BLOCK
            and mailbox.full()
            and cell.is_alive
        ):
            try:
                await asyncio.wait_for(mailbox.wait_for_room(), timeout)
            except TimeoutError:
                raise MailboxFull(
                    self.path, mailbox.capacity or 0, type(message).__qualname__
                ) from None
        self.tell(message, sender)

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
        cell = self._cell
        if cell is None:
            self.tell(message, sender)
            return
        system = cell.system
        if get_ident() == system._loop_thread_id:
            raise WrongThread(
                f"send_blocking to {self.path} was called on the actor system's event-loop "
                "thread, where it would deadlock; use `await ref.send(...)` there"
            )
        asyncio.run_coroutine_threadsafe(
            self.send(message, sender, timeout=timeout), system._loop
        ).result()

    async def ask(self, message: M_contra, *, timeout: float | None = None) -> Any:
        """Send ``message`` and wait for the first reply.

        Raises :class:`AskTimeout` (naming this actor and the message type) when
        no reply comes within ``timeout`` seconds (default:
        ``SystemConfig.ask_timeout``), :class:`DeliveryError` when the recipient
        is stopped, and re-raises the exception if the handler failed. Usable
        from any event loop; from the system's own loop it takes the fast path.
        """
        cell = self._cell
        if cell is None:
            raise DeliveryError(self.path, type(message).__name__, "the ref is not bound")
        system = cell.system
        if timeout is None:
            timeout = system.config.ask_timeout
        loop = system._loop
        if asyncio.get_running_loop() is not loop:
            return await asyncio.wrap_future(self._ask_threadsafe(message, timeout))
        future: asyncio.Future[Any] = loop.create_future()
        promise = AskRef(future, self, message, timeout, system)
        item = (message, promise, ENVELOPE)
        mailbox = cell.mailbox
        if mailbox is not None:
            mailbox.append(item)
        elif cell.pending is NOTHING:
            cell.pending = item
        else:
            cell.second(item)
        if not cell.scheduled:
            dispatcher = system._dispatcher
            if dispatcher.direct_budget and dispatcher.current is None and cell.state == RUNNING:
                # Direct hand-off: the actor is idle and its mailbox holds only
                # this request, so the waiting caller runs the actor's turn now,
                # exactly as the dispatcher would, instead of paying two
                # event-loop iterations. The budget makes the caller yield to
                # the loop regularly.
                dispatcher.run_direct(cell)
                if future.done():
                    return future.result()
            else:
                cell.wake()
        system._ask_timeouts.add(timeout, promise)
        return await future

    def ask_blocking(self, message: M_contra, *, timeout: float | None = None) -> Any:
        """``ask`` for synchronous code on other threads: blocks until the reply.

        Raises :class:`WrongThread` on the system's event-loop thread, where it
        would deadlock.
        """
        cell = self._cell
        if cell is None:
            raise DeliveryError(self.path, type(message).__name__, "the ref is not bound")
        system = cell.system
        if get_ident() == system._loop_thread_id:
            raise WrongThread(
                f"ask_blocking to {self.path} was called on the actor system's event-loop "
                "thread, where it would deadlock; use `await ref.ask(...)` there"
            )
        if timeout is None:
            timeout = system.config.ask_timeout
        return self._ask_threadsafe(message, timeout).result()

    def _ask_threadsafe(self, message: Any, timeout: float) -> concurrent.futures.Future[Any]:
        cell = self._cell
        assert cell is not None
        system = cell.system
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        promise = ThreadSafeAskRef(future, self, message, timeout, system)
        self.tell(message, promise)
        system._call_on_loop(system._ask_timeouts.add, timeout, promise)
        return future

    def stop(self) -> None:
        """Ask the actor to stop: it finishes its current message, its queued
        messages go to dead letters, its children stop first, then ``post_stop``
        runs. Returns at once; see :meth:`wait_terminated`. Thread-safe."""
        cell = self._cell
        if cell is not None:
            cell.system._call_on_loop(cell.request_stop)

    async def wait_terminated(self, timeout: float | None = None) -> None:
        """Wait until the actor has stopped (at once if it already has)."""
        cell = self._cell
        if cell is None:
            return
        await asyncio.wait_for(cell.system._termination_future(cell), timeout)

    @property
    def name(self) -> str:
        """The last element of the path."""
        return self.path.rpartition("/")[2]

    @property
    def address(self) -> ActorAddress:
        """The serializable address of this ref (see ``ActorSystem.resolve``)."""
        cell = self._cell
        system = cell.system.name if cell is not None else ""
        return ActorAddress(system, self.path, self.uid)

    @property
    def is_alive(self) -> bool:
        """True while the actor has not stopped (a snapshot; it may stop right after)."""
        cell = self._cell
        return cell is not None and cell.is_alive

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return self._uid == other._uid and self._path == other._path

    def __hash__(self) -> int:
        return hash((self._path, self._uid))

    def __repr__(self) -> str:
        return f"ActorRef({self.path}#{self.uid})"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self!r} cannot be pickled; serialize `ref.address` (msgspec) and "
            "`ActorSystem.resolve` it on the other side"
        )

    def __copy__(self) -> ActorRef[M_contra]:
        return self

    def __deepcopy__(self, memo: Any) -> ActorRef[M_contra]:
        return self


def _unbound_tell(ref: ActorRef[Any], message: Any, sender: ActorRef[Any] | None) -> None:
    # A ref that resolves to no live actor (unknown path, stale incarnation).
    if isinstance(sender, _Promise):
        sender._system._dead_letter(message, sender, ref, "no such actor")


class _Promise(ActorRef[Any]):
    """A temporary ref that completes an ask when it is told the reply."""

    __slots__ = ("_message_type", "_system", "_target", "_timeout")

    _target: ActorRef[Any]
    _message_type: type[Any]
    _timeout: float
    _system: ActorSystem

    @property
    def done(self) -> bool:
        raise NotImplementedError

    def fail(self, exc: BaseException) -> None:
        raise NotImplementedError

    def expire(self) -> None:
        self.fail(AskTimeout(self._target.path, self._message_type.__qualname__, self._timeout))

    def _late(self, message: Any, sender: ActorRef[Any] | None) -> None:
        self._system._dead_letter(message, sender, self, "reply to an expired or completed ask")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"AskRef({self._target.path}, {self._message_type.__qualname__})"


class AskRef(_Promise):
    """Promise for an ``ask`` made on the system's own event loop."""

    __slots__ = ("_future",)

    def __init__(
        self,
        future: asyncio.Future[Any],
        target: ActorRef[Any],
        message: Any,
        timeout: float,
        system: ActorSystem,
    ) -> None:
        # Flat on purpose (no super() chain): this runs once per ask.
        self._cell = None
        self._path = target._path
        self._uid = -1
        self._future = future
        self._target = target
        self._message_type = type(message)
        self._timeout = timeout
        self._system = system

    @property
    def done(self) -> bool:
        return self._future.done()

    def tell(self, message: Any, sender: ActorRef[Any] | None = None) -> None:
        if get_ident() != self._system._loop_thread_id:
            self._system._call_on_loop(self.tell, message, sender)
            return
        future = self._future
        if future.done():
            self._late(message, sender)
        else:
            future.set_result(message)

    def fail(self, exc: BaseException) -> None:
        if get_ident() != self._system._loop_thread_id:
            self._system._call_on_loop(self.fail, exc)
            return
        if not self._future.done():
            self._future.set_exception(exc)


class ThreadSafeAskRef(_Promise):
    """Promise for an ``ask`` made from another thread or another event loop."""

    __slots__ = ("_future",)

    def __init__(
        self,
        future: concurrent.futures.Future[Any],
        target: ActorRef[Any],
        message: Any,
        timeout: float,
        system: ActorSystem,
    ) -> None:
        self._cell = None
        self._path = target._path
        self._uid = -1
        self._future = future
        self._target = target
        self._message_type = type(message)
        self._timeout = timeout
        self._system = system

    @property
    def done(self) -> bool:
        return self._future.done()

    def tell(self, message: Any, sender: ActorRef[Any] | None = None) -> None:
        try:
            self._future.set_result(message)
        except concurrent.futures.InvalidStateError:
            self._late(message, sender)

    def fail(self, exc: BaseException) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self._future.set_exception(exc)
