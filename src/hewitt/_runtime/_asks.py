"""Asks: temporary reply refs (``/temp/...``), their timeouts, and ``ask`` itself.

An ask sends its request with a temporary ref as the sender; telling that ref
completes the caller's future. A temporary ref gets a path (``/temp/<n>``)
and a place in its system's table of temporary refs only when something asks
for its address (when the kernel codec sends it to another node, say), so a
local ask pays nothing for being addressable. A control message
:class:`AskFailed` told to it fails the ask.

Timeouts: asks with the same timeout value expire in the order they were
made, so each value gets a lane, an insertion-ordered dict of promise ->
deadline, and one loop timer is armed for the earliest deadline. An answered
ask leaves its lane at once (nothing of it is retained), an ask answered by
the direct hand-off never enters one, and no ask costs a loop timer of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from math import inf
from threading import get_ident
from typing import TYPE_CHECKING, Any

from ._address import TEMP_PREFIX, NodeId
from ._control import AskFailed, ControlMessage, DeathNotice, Watch
from ._envelope import Item, describe, split
from ._errors import AskTimeout, WrongThread
from ._marks import ENVELOPE
from ._ref import DEFAULT_TIMEOUT, ActorRef, Timeout
from ._sysstate import RUNNING

if TYPE_CHECKING:
    from ._clock import Cancellable, Clock
    from ._system import ActorSystem


class TemporaryRecipient:
    """The recipient of a system's temporary refs: it hands each message to
    the ref itself (one per system, so a temporary ref costs no recipient)."""

    __slots__ = ("system",)

    def __init__(self, system: ActorSystem) -> None:
        self.system = system

    @property
    def node(self) -> NodeId:
        return self.system.node

    @property
    def alive(self) -> bool:
        return True

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        message, sender = split(item)
        ref.tell(message, sender)

    deliver_ask = deliver

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        assert isinstance(ref, Promise)
        ref._control(message)


class Promise(ActorRef[Any]):
    """A temporary ref that completes a waiting caller when it is told."""

    __slots__ = ("_future", "_lane", "_message_type", "_target", "_timeout")

    _future: Any
    _target: ActorRef[Any]
    _message_type: type[Any]
    _timeout: float | None
    #: the timeout lane it waits in (None: answered at once, or none yet)
    _lane: dict[Promise, float] | None

    # Identity, and in C: a promise is hashed into its timeout lane once per ask.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(
        self,
        recipient: TemporaryRecipient,
        future: asyncio.Future[Any] | concurrent.futures.Future[Any],
        target: ActorRef[Any],
        message: Any,
        timeout: float | None,
    ) -> None:
        # Flat on purpose (no super() chain): this runs once per ask.
        self._recipient = recipient
        self._path = "/temp"
        self._uid = 0
        self._future = future
        self._target = target
        self._message_type = type(message)
        self._timeout = timeout
        self._lane = None

    @property
    def path(self) -> str:
        if not self._uid:
            self._uid = self._recipient.system._register_temporary(self)
            self._path = f"{TEMP_PREFIX}{self._uid:x}"
        return self._path

    @property
    def uid(self) -> int:
        self.path  # noqa: B018  (registers it)
        return self._uid

    @property
    def done(self) -> bool:
        return bool(self._future.done())

    @property
    def is_alive(self) -> bool:
        return not self._future.done()

    def _finished(self) -> None:
        """Called once the outcome is set: forget the timeout and the address."""
        system = self._recipient.system
        if self._lane is not None:
            if get_ident() == system._loop_thread_id:
                system._ask_timeouts.discard(self)
            else:
                system._call_on_loop(system._ask_timeouts.discard, self)
        if self._uid:
            system._temporaries.pop(self._uid, None)
        if system._temporary_watchers:
            self._notify_watchers()

    def fail(self, exc: BaseException) -> None:
        raise NotImplementedError

    def expire(self) -> None:
        timeout = self._timeout if self._timeout is not None else inf
        self.fail(AskTimeout(self._target.path, self._message_type.__qualname__, timeout))

    def _control(self, message: ControlMessage) -> None:
        if isinstance(message, AskFailed):
            self.fail(message.error)
        elif isinstance(message, Watch):
            # A temporary ref lives until its ask has its outcome; then its
            # watchers get a DeathNotice, as for an actor that stopped.
            if self.done:
                message.watcher._recipient.deliver_system(message.watcher, DeathNotice(self, None))
            else:
                self._recipient.system._temporary_watchers.setdefault(self, []).append(
                    message.watcher
                )

    def _notify_watchers(self) -> None:
        watchers = self._recipient.system._temporary_watchers.pop(self, None)
        if watchers:
            notice = DeathNotice(self, None)
            for watcher in watchers:
                watcher._recipient.deliver_system(watcher, notice)

    def _late(self, message: Any, sender: ActorRef[Any] | None) -> None:
        self._recipient.system._dead_letter(
            message, sender, self, "reply to an expired or completed ask"
        )

    def __repr__(self) -> str:
        return f"AskRef({self._target.path}, {self._message_type.__qualname__})"


class AskRef(Promise):
    """Promise for an ``ask`` made on the system's own event loop."""

    __slots__ = ()

    def tell(self, message: Any, sender: ActorRef[Any] | None = None) -> None:
        system = self._recipient.system
        if get_ident() != system._loop_thread_id:
            system._call_on_loop(self.tell, message, sender)
            return
        future = self._future
        if future.done():
            self._late(message, sender)
            return
        future.set_result(message)
        # Promise._finished, inlined (on the loop thread already): once per ask.
        lane = self._lane
        if lane is not None:
            self._lane = None
            del lane[self]
        if self._uid:
            system._temporaries.pop(self._uid, None)
        if system._temporary_watchers:
            self._notify_watchers()

    def fail(self, exc: BaseException) -> None:
        system = self._recipient.system
        if get_ident() != system._loop_thread_id:
            system._call_on_loop(self.fail, exc)
            return
        if not self._future.done():
            self._future.set_exception(exc)
            self._finished()


class ThreadSafeAskRef(Promise):
    """Promise for an ``ask`` made from another thread or another event loop."""

    __slots__ = ()

    def tell(self, message: Any, sender: ActorRef[Any] | None = None) -> None:
        try:
            self._future.set_result(message)
        except concurrent.futures.InvalidStateError:
            self._late(message, sender)
            return
        self._finished()

    def fail(self, exc: BaseException) -> None:
        try:
            self._future.set_exception(exc)
        except concurrent.futures.InvalidStateError:
            return
        self._finished()

    def _finished(self) -> None:
        super()._finished()
        self._recipient.system._foreign_asks.discard(self)


class TerminationWaiter(Promise):
    """A temporary ref that watches an actor: ``wait_terminated`` awaits it."""

    __slots__ = ()

    def __init__(
        self, recipient: TemporaryRecipient, future: asyncio.Future[None], target: ActorRef[Any]
    ) -> None:
        super().__init__(recipient, future, target, None, None)

    def tell(self, message: Any, sender: ActorRef[Any] | None = None) -> None:
        self._late(message, sender)

    def _control(self, message: ControlMessage) -> None:
        if isinstance(message, DeathNotice) and not self._future.done():
            self._future.set_result(None)
            if self._uid:
                self._recipient.system._temporaries.pop(self._uid, None)

    def fail(self, exc: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(exc)
        self.forget()

    def forget(self) -> None:
        """Leave the system's table of temporary refs (done, failed or given up)."""
        if self._uid:
            self._recipient.system._temporaries.pop(self._uid, None)

    def __repr__(self) -> str:
        return f"TerminationWaiter({self._target.path})"


def is_temporary(ref: ActorRef[Any] | None) -> bool:
    """True for the reply ref of an ask (local or on another node)."""
    if ref is None:
        return False
    if isinstance(ref, Promise):
        return True
    return ref._path.startswith(TEMP_PREFIX)


def fail_ask(sender: ActorRef[Any] | None, error: BaseException) -> bool:
    """Fail the ask whose reply ref is ``sender``; False if it is no ask."""
    if not is_temporary(sender):
        return False
    assert sender is not None
    sender._recipient.deliver_system(sender, AskFailed(error))
    return True


# ----------------------------------------------------------------------
# ask


def _resolve_timeout(system: ActorSystem, timeout: Timeout) -> float | None:
    if timeout is DEFAULT_TIMEOUT:
        return system.config.ask_timeout
    return _checked(timeout)


def _checked(timeout: Timeout) -> float | None:
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise ValueError(f"ask timeout must be a number > 0 or None, got {timeout!r}")
    return timeout


async def ask(system: ActorSystem, ref: ActorRef[Any], message: Any, timeout: Timeout) -> Any:
    """``ref.ask(message)``: see ``ActorRef.ask``."""
    seconds = system.config.ask_timeout if timeout is DEFAULT_TIMEOUT else _checked(timeout)
    loop = system._loop
    if system._state != RUNNING:
        system._check_accepting(ref, message)
    if asyncio.get_running_loop() is not loop:
        foreign = _ask_threadsafe(system, ref, message, seconds)
        return await _await_foreign(foreign, ref, message, seconds)
    future: asyncio.Future[Any] = loop.create_future()
    promise = AskRef(system._temporary_recipient, future, ref, message, seconds)
    ref._recipient.deliver_ask(ref, (message, promise, ENVELOPE))
    if future.done():
        return future.result()
    system._ask_timeouts.add(seconds, promise)
    return await future


def ask_blocking(system: ActorSystem, ref: ActorRef[Any], message: Any, timeout: Timeout) -> Any:
    """``ref.ask_blocking(message)``: see ``ActorRef.ask_blocking``."""
    if get_ident() == system._loop_thread_id:
        raise WrongThread(
            f"ask_blocking to {ref.path} was called on the actor system's event-loop "
            "thread, where it would deadlock; use `await ref.ask(...)` there"
        )
    seconds = _resolve_timeout(system, timeout)
    system._check_accepting(ref, message)
    future = _ask_threadsafe(system, ref, message, seconds)
    try:
        return future.result(_grace(seconds))
    except TimeoutError:
        if future.done():
            raise  # the ask's own outcome (an AskTimeout, or a handler's TimeoutError)
        promise_timeout = _caller_timeout(ref, message, seconds)
        raise promise_timeout from None


def _ask_threadsafe(
    system: ActorSystem, ref: ActorRef[Any], message: Any, timeout: float | None
) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    promise = ThreadSafeAskRef(system._temporary_recipient, future, ref, message, timeout)
    system._foreign_asks.add(promise)
    try:
        ref._recipient.deliver(ref, (message, promise, ENVELOPE))
        system._call_on_loop(_track, system, timeout, promise)
    except Exception as refused:  # stopped, a full mailbox, a codec error: the caller's
        promise.fail(refused)
    return future


def _track(system: ActorSystem, timeout: float | None, promise: Promise) -> None:
    if not promise.done:  # answered before this ran on the loop
        system._ask_timeouts.add(timeout, promise)


async def _await_foreign(
    future: concurrent.futures.Future[Any], ref: ActorRef[Any], message: Any, timeout: float | None
) -> Any:
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), _grace(timeout))
    except TimeoutError:
        if future.done() and not future.cancelled():
            return future.result()
        raise _caller_timeout(ref, message, timeout) from None


def _grace(timeout: float | None) -> float | None:
    # The system's own timer fails the ask at the deadline; the caller's side
    # waits a little longer and then gives up by itself, for a system that can
    # no longer run its timers (its loop is blocked or gone).
    return None if timeout is None else timeout * 1.1 + 0.05


def _caller_timeout(ref: ActorRef[Any], message: Any, timeout: float | None) -> AskTimeout:
    return AskTimeout(ref.path, describe(message), inf if timeout is None else timeout)


# ----------------------------------------------------------------------
# Timeouts


class AskTimeouts:
    """Deadlines of pending asks, by timeout value (see the module docstring).
    Event-loop thread only."""

    __slots__ = ("_clock", "_lanes", "_timer", "_timer_when")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lanes: dict[float | None, dict[Promise, float]] = {}
        self._timer: Cancellable | None = None
        self._timer_when = inf

    def add(self, timeout: float | None, promise: Promise) -> None:
        """Track ``promise`` (not yet answered) until its deadline."""
        lane = self._lanes.get(timeout)
        if lane is None:
            lane = self._lanes[timeout] = {}
        promise._lane = lane
        if timeout is None:
            lane[promise] = inf  # never expires; kept so that shutdown can fail it
            return
        deadline = self._clock.now() + timeout
        lane[promise] = deadline
        if deadline < self._timer_when:
            self._arm(deadline)

    def discard(self, promise: Promise) -> None:
        lane = promise._lane
        if lane is not None:
            promise._lane = None
            lane.pop(promise, None)

    def pending(self) -> int:
        """Asks waiting for a reply (for statistics and tests)."""
        return sum(len(lane) for lane in self._lanes.values())

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._clock.call_later(max(0.0, when - self._clock.now()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._timer_when = inf
        now = self._clock.now()
        earliest = inf
        for timeout, lane in list(self._lanes.items()):
            if timeout is None:
                continue
            expired: list[Promise] = []
            for promise, deadline in lane.items():
                if deadline > now:
                    earliest = min(earliest, deadline)
                    break
                expired.append(promise)
            for promise in expired:
                lane.pop(promise, None)
                promise._lane = None
                promise.expire()
            if not lane:
                self._lanes.pop(timeout, None)
        if earliest is not inf:
            self._arm(earliest)

    def fail_all(self, error: BaseException) -> None:
        """Fail every pending ask with ``error`` (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = inf
        lanes = list(self._lanes.values())
        self._lanes.clear()
        for lane in lanes:
            for promise in list(lane):
                promise._lane = None
                promise.fail(error)


def watch_for_termination(
    system: ActorSystem, ref: ActorRef[Any], future: asyncio.Future[None]
) -> TerminationWaiter:
    """Make ``future`` complete when ``ref`` stops (by watching it)."""
    waiter = TerminationWaiter(system._temporary_recipient, future, ref)
    ref._recipient.deliver_system(ref, Watch(waiter))
    return waiter
