"""Calls into a system from other threads and other event loops.

Cells are touched only on the system's loop thread. A delivery from another
thread is appended to the system's inbox, a deque of (recipient, ref, item),
and, unless a drain is already scheduled, wakes the loop once with
``call_soon_threadsafe``: a burst of tells from a thread costs one wake-up.
Senders append before they read the flag and the drain clears the flag
before it pops, so no item is stranded; one FIFO inbox keeps each thread's
order. A drain takes what was there when it began (and no more, so that a
thread that never stops telling cannot keep it going forever).

Everything here fails fast with ``ActorSystemStopped`` once the system has
shut down, and nothing waits forever on a loop that is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from threading import get_ident
from typing import TYPE_CHECKING, Any, TypeVar

from ._envelope import Item, describe, split
from ._errors import ActorSystemStopped, WrongThread
from ._mailbox import Admission, MailboxFull, Overflow
from ._sysstate import TERMINATED

if TYPE_CHECKING:
    from ._cell import Cell
    from ._ref import ActorRef

logger = logging.getLogger("hewitt")

R = TypeVar("R")

_REFUSING = (Overflow.FAIL, Overflow.BLOCK)


class LoopBridge:
    """The part of ActorSystem that other threads and loops go through."""

    if not TYPE_CHECKING:  # mypy would refuse the attributes the concrete class declares
        __slots__ = ()

    if TYPE_CHECKING:
        name: str
        _state: int
        _loop: asyncio.AbstractEventLoop
        _loop_thread_id: int
        _inbox: deque[tuple[Cell[Any], ActorRef[Any], Item]]
        _inbox_scheduled: bool
        _bridged: set[concurrent.futures.Future[Any]]

        def _dead_letter(
            self, message: Any, sender: Any, recipient: ActorRef[Any], reason: str
        ) -> None: ...

    def _stopped_error(self, what: str) -> ActorSystemStopped:
        return ActorSystemStopped(f"actor system {self.name!r} has shut down: {what}")

    def _deliver_from_thread(self, cell: Cell[Any], ref: ActorRef[Any], item: Item) -> None:
        if self._state == TERMINATED:
            raise self._stopped_error(f"{describe(split(item)[0])} to {ref.path} refused")
        mailbox = cell.mailbox
        if isinstance(mailbox, Admission) and mailbox.overflow in _REFUSING and mailbox.full():
            # Approximate (the loop may be popping right now) but never loses:
            # the sending thread learns at once that the message was refused.
            raise MailboxFull(ref.path, mailbox.capacity or 0, describe(split(item)[0]))
        self._inbox.append((cell, ref, item))
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain_inbox)
            except RuntimeError:  # the loop is closed: the system is gone
                self._inbox.clear()
                raise self._stopped_error(
                    f"{describe(split(item)[0])} to {ref.path} refused"
                ) from None

    def _drain_inbox(self) -> None:
        # Everything queued when the drain begins, so that what a thread sent
        # before it signalled the loop is delivered before what the loop sends
        # next (a flood cannot hold shutdown_blocking: it has a deadline).
        self._inbox_scheduled = False
        inbox = self._inbox
        for _ in range(len(inbox)):
            if not inbox:
                return  # cleared: the system was closed meanwhile
            cell, ref, item = inbox.popleft()
            try:
                cell.deliver(ref, item)
            except Exception as exc:
                # The sending thread has moved on: the message becomes a dead
                # letter, and the drain goes on with the rest.
                message, sender = split(item)
                self._dead_letter(message, sender, ref, f"refused on arrival: {exc}")

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread (now, if this is it)."""
        if get_ident() == self._loop_thread_id:
            fn(*args)
            return
        if self._state == TERMINATED:
            raise self._stopped_error(f"{getattr(fn, '__qualname__', fn)} refused")
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: the system is gone
            raise self._stopped_error(f"{getattr(fn, '__qualname__', fn)} refused") from None

    def _call_on_loop_blocking(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn`` on the loop thread and return its result; raises its
        exception, or ActorSystemStopped if the system shuts down first."""
        if get_ident() == self._loop_thread_id:
            return fn(*args, **kwargs)
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def call() -> None:
            if future.done():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                _settle(future, exception=exc)
            else:
                _settle(future, result=result)

        self._bridge(future, lambda: self._loop.call_soon_threadsafe(call))
        return future.result()

    def _run_blocking(self, coroutine: Coroutine[Any, Any, R], timeout: float | None) -> R:
        """Run ``coroutine`` on the system's loop from another thread and wait
        (raises TimeoutError after ``timeout`` seconds, None: no limit)."""
        if get_ident() == self._loop_thread_id:
            coroutine.close()
            raise WrongThread(
                "a blocking call was made on the actor system's own event-loop thread, "
                "where it would deadlock; await the async variant there"
            )
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        started: list[concurrent.futures.Future[R]] = []

        def start() -> None:
            try:
                inner = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            except RuntimeError:
                coroutine.close()
                raise
            started.append(inner)
            inner.add_done_callback(lambda done: _copy_outcome(done, future))

        self._bridge(future, start)
        if not started:
            coroutine.close()
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.done():
                raise  # the coroutine's own TimeoutError
            for inner in started:
                inner.cancel()
            raise TimeoutError(f"gave up after {timeout} s") from None

    def _bridge(self, future: concurrent.futures.Future[Any], schedule: Callable[[], Any]) -> None:
        # Registered before the state is read, failed by shutdown after it sets
        # the state: either this call sees TERMINATED or shutdown sees it.
        bridged = self._bridged
        bridged.add(future)
        future.add_done_callback(bridged.discard)
        if self._state == TERMINATED or self._loop is None:
            _settle(future, exception=self._stopped_error("the call was refused"))
            return
        try:
            schedule()
        except RuntimeError:
            _settle(future, exception=self._stopped_error("its event loop is closed"))

    def _fail_bridged(self) -> None:
        for future in list(self._bridged):
            _settle(future, exception=self._stopped_error("the call was not run"))


def _settle(
    future: concurrent.futures.Future[Any],
    *,
    result: Any = None,
    exception: BaseException | None = None,
) -> None:
    """Set ``future``'s outcome unless shutdown has already failed it."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


def _copy_outcome(
    source: concurrent.futures.Future[Any], target: concurrent.futures.Future[Any]
) -> None:
    if source.cancelled():
        _settle(target, exception=concurrent.futures.CancelledError())
    elif source.exception() is not None:
        _settle(target, exception=source.exception())
    else:
        _settle(target, result=source.result())
