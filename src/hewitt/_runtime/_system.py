"""ActorSystem: the registry of actors, their dispatcher, guardians and shutdown."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from itertools import count
from threading import get_ident
from types import TracebackType
from typing import Any, TypeVar

from ._actor import Actor
from ._asks import AskTimeouts
from ._cell import Cell
from ._clock import Clock, LoopClock
from ._config import SystemConfig
from ._dispatcher import Dispatcher
from ._errors import ActorSystemNotRunning, DeliveryError, WrongThread
from ._events import EventStream
from ._handlers import describe, split
from ._mailbox import Admission, Mailbox, MailboxFull, Overflow
from ._messages import ActorFailed, ActorStopped, DeadLetter, Failure
from ._ref import ActorAddress, ActorRef, _Promise
from ._states import DEAD, RUNNING
from ._supervision import RestartType
from ._tombstone import Tombstone

logger = logging.getLogger("hewitt")

N = TypeVar("N")
T = TypeVar("T")
R = TypeVar("R")

_CREATED, _RUNNING, _STOPPING, _TERMINATED = range(4)
_REFUSING = (Overflow.FAIL, Overflow.BLOCK)


@dataclass(frozen=True, slots=True)
class SystemStatistics:
    """A snapshot of an actor system's counters."""

    live_actors: int
    spawned: int
    messages_processed: int
    dead_letters: int
    failures: int
    restarts: int
    ready_actors: int


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """A snapshot of one actor's counters (see ``ActorSystem.actor_statistics``).

    ``high_water_mark`` is the most messages seen queued at once, sampled at
    the start of each turn (between turns a queue only grows).
    """

    path: str
    mailbox_depth: int
    high_water_mark: int
    children: int
    #: None for an unbounded mailbox
    capacity: int | None
    #: messages a full bounded mailbox dropped (dead letters)
    dropped: int


class _Guardian(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.system._dead_letter(
            message, self.context.sender, self.context.self, "sent to a guardian"
        )


def new_event_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop when installed and wanted, else asyncio's default."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, R], *, use_uvloop: bool = True) -> R:
    """Run ``main`` to completion on a new event loop (uvloop when installed)."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(use_uvloop)) as runner:
        return runner.run(main)


class ActorSystem:
    """A tree of actors on one event loop: ``/user`` for yours, ``/system`` for hewitt's.

    Use it as an async context manager inside a running loop::

        async with ActorSystem("bank") as system:
            ref = system.spawn(Account, 100, name="alice")

    or from synchronous code on a background thread::

        with ActorSystem.start_in_thread("bank") as system:
            ref = system.spawn(Account, 100)
            ref.tell(Deposit(5))                      # thread-safe
            balance = ref.ask_blocking(GetBalance())  # blocks this thread
    """

    def __init__(self, name: str = "hewitt", *, config: SystemConfig | None = None) -> None:
        if not name or "/" in name:
            raise ValueError(f"invalid actor system name {name!r}")
        self.name = name
        self.config = config if config is not None else SystemConfig()
        self._state = _CREATED
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._loop_thread_id = -1
        self._dispatcher: Dispatcher = None  # type: ignore[assignment]
        self._ask_timeouts: AskTimeouts = None  # type: ignore[assignment]
        # Tells from other threads: (cell, item) pairs drained on the loop, one
        # wake-up of the loop per batch (see _tell_from_thread).
        self._inbox: deque[tuple[Cell[Any], Any]] = deque()
        self._inbox_scheduled = False
        self._uids = count(int.from_bytes(os.urandom(5), "big") << 24)
        self._names = count(1)
        self._live = 0
        self._stopped = 0
        self._failures = 0
        self._restarts = 0
        self._dead_letters = 0
        self._dl_window_start = 0.0
        self._dl_logged = 0
        self._dl_suppressed = 0
        self._termination_waiters: dict[Cell[Any], list[asyncio.Future[None]]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.event_stream = EventStream(self)
        #: Components attached to this system (persistence, ...), by key: no
        #: global registries, everything belongs to a system.
        self.extensions: dict[Any, Any] = {}
        self.unclean_stops: list[str] = []
        self._rng = random.Random(self.config.seed)
        #: why the system stopped itself (guardian policy "stop_system"), if it did
        self.termination_reason: BaseException | None = None
        self._terminated: asyncio.Future[None] | None = None
        self._user: Cell[Any] = None  # type: ignore[assignment]
        self._system: Cell[Any] = None  # type: ignore[assignment]

    # ------------------------------------------------------------------
    # Start and stop

    async def __aenter__(self) -> ActorSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Bind the system to the running event loop and start its guardians."""
        if self._state != _CREATED:
            raise ActorSystemNotRunning(f"actor system {self.name!r} was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread_id = get_ident()
        self._dispatcher = Dispatcher(
            loop, self.config.throughput, self.config.batch_messages, self.config.direct_asks
        )
        self.clock: Clock = self.config.clock if self.config.clock is not None else LoopClock(loop)
        self._ask_timeouts = AskTimeouts(self.clock)
        self._user = self._guardian("user")
        self._system = self._guardian("system")
        self._terminated = loop.create_future()
        self._state = _RUNNING

    def _guardian(self, name: str) -> Cell[Any]:
        cell: Cell[Any] = Cell(self, None, name, "/" + name, _Guardian, (), {})
        cell.build()
        cell.state = RUNNING
        return cell

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop every actor (``/user`` first, then ``/system``) and wait for them.

        Handlers still running after ``timeout`` seconds (default
        ``SystemConfig.shutdown_timeout``) are cancelled and their paths are
        recorded in ``unclean_stops``. Pending asks fail. Idempotent.
        """
        if self._state != _RUNNING:
            return
        self._state = _STOPPING
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        for guardian in (self._user, self._system):
            guardian.request_stop()
            waiter = self._termination_future(guardian)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                stuck = [c for c in self._walk(guardian) if c.suspended is not None]
                self.unclean_stops.extend(c.ref.path for c in stuck)
                logger.error(
                    "actor system %s: %d actors did not stop within %g s; cancelling: %s",
                    self.name,
                    len(stuck),
                    timeout,
                    ", ".join(c.ref.path for c in stuck),
                )
                for cell in stuck:
                    if cell.suspended is not None:
                        cell.suspended.cancel()
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), 1.0)
                except TimeoutError:
                    logger.error("actor system %s: actors still running after cancel", self.name)
        for task in list(self._background):
            task.cancel()
        self._ask_timeouts.cancel_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._state = _TERMINATED
        if self._terminated is not None and not self._terminated.done():
            self._terminated.set_result(None)

    async def wait_terminated(self) -> None:
        """Wait until the system has shut down (by ``shutdown`` or by its
        guardian policy ``"stop_system"``); see ``termination_reason``."""
        if self._terminated is None:
            raise ActorSystemNotRunning(f"actor system {self.name!r} was never started")
        await asyncio.shield(self._terminated)

    def _terminate_from_inside(self, reason: BaseException) -> None:
        if self._state != _RUNNING:
            return
        self.termination_reason = reason
        task = self._loop.create_task(self.shutdown())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _walk(self, cell: Cell[Any]) -> list[Cell[Any]]:
        found = [cell]
        for child in list((cell._children or {}).values()):
            found.extend(self._walk(child))
        return found

    @property
    def is_running(self) -> bool:
        """True between start and shutdown."""
        return self._state == _RUNNING

    # ------------------------------------------------------------------
    # Threaded mode

    @classmethod
    def start_in_thread(
        cls, name: str = "hewitt", *, config: SystemConfig | None = None
    ) -> ActorSystem:
        """Start a system on its own daemon thread with its own event loop.

        For synchronous programs (scripts, notebooks, WSGI apps): ``tell`` and
        ``spawn`` are thread-safe, ``ref.ask_blocking`` waits for a reply, and
        ``shutdown_blocking`` (or leaving the ``with`` block) stops everything.
        """
        system = cls(name, config=config)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def main() -> None:
            loop = new_event_loop(system.config.use_uvloop)
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(system.start())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=main, name=f"hewitt-{name}", daemon=True)
        system._thread = thread
        thread.start()
        started.result()
        return system

    def shutdown_blocking(self, timeout: float | None = None) -> None:
        """Stop a system started with :meth:`start_in_thread` and join its thread."""
        thread = self._thread
        if thread is None:
            raise WrongThread(
                f"actor system {self.name!r} runs in your event loop; use `await system.shutdown()`"
            )
        if get_ident() == self._loop_thread_id:
            raise WrongThread("shutdown_blocking() called on the system's own thread")
        if not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.shutdown(timeout), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
        thread.join()

    def __enter__(self) -> ActorSystem:
        if self._thread is None:
            raise WrongThread(
                "`with ActorSystem(...)` needs ActorSystem.start_in_thread(...); "
                "in async code use `async with ActorSystem(...)`"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown_blocking()

    # ------------------------------------------------------------------
    # Actors

    def spawn(
        self,
        factory: Callable[..., Actor[N]],
        *args: Any,
        name: str | None = None,
        restart: RestartType | None = None,
        mailbox: Mailbox | None = None,
        **kwargs: Any,
    ) -> ActorRef[N]:
        """Start a top-level actor under ``/user`` built by ``factory(*args, **kwargs)``.

        Returns its ref at once; ``pre_start`` runs on the dispatcher before the
        first message. ``restart`` is its restart type under the ``/user``
        guardian (default TRANSIENT), ``mailbox`` its mailbox (default
        ``SystemConfig.default_mailbox``). Raises :class:`ActorNameTaken`,
        :class:`InvalidActorName` or :class:`ActorInitializationError`.
        Thread-safe.
        """
        self._check_running()
        if get_ident() != self._loop_thread_id:
            return self._call_on_loop_blocking(
                self._user.spawn_child, factory, args, kwargs, name, restart, mailbox
            )
        return self._user.spawn_child(factory, args, kwargs, name, restart, mailbox)

    def spawn_system_actor(
        self,
        factory: Callable[..., Actor[N]],
        *args: Any,
        name: str | None = None,
        **kwargs: Any,
    ) -> ActorRef[N]:
        """Start an actor under ``/system`` (for framework components and test probes)."""
        self._check_running()
        return self._call_on_loop_blocking(self._system.spawn_child, factory, args, kwargs, name)

    def lookup(self, path: str) -> ActorRef[Any] | None:
        """The live actor at ``path`` (like ``/user/bank/account-42``), or None."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None
        roots = {"user": self._user, "system": self._system}
        cell = roots.get(parts[0])
        for part in parts[1:]:
            if cell is None:
                return None
            children = cell._children
            cell = children.get(part) if children else None
        if cell is None or cell.state == DEAD:
            return None
        return cell.ref

    def resolve(self, address: ActorAddress) -> ActorRef[Any]:
        """The ref for a serialized address; a ref to no live actor if it is gone.

        Telling an unresolvable ref sends the message to dead letters.
        """
        if address.system == self.name:
            ref = self.lookup(address.path)
            if ref is not None and ref.uid == address.uid:
                return ref
        return Tombstone(self, address.path, address.uid).ref

    def pipe_to(
        self,
        awaitable: Awaitable[T],
        ref: ActorRef[Any],
        *,
        map_result: Callable[[T], Any] | None = None,
        map_failure: Callable[[BaseException], Any] | None = None,
    ) -> None:
        """Await ``awaitable`` in the background and tell ``ref`` its outcome.

        The result is sent as is (or ``map_result(result)``); an exception as
        :class:`Failure` (or ``map_failure(exc)``). Thread-safe.
        """

        async def pipe() -> None:
            try:
                result = await awaitable
            except Exception as exc:
                ref.tell(map_failure(exc) if map_failure is not None else Failure(exc))
                return
            ref.tell(map_result(result) if map_result is not None else result)

        def start() -> None:
            task = self._loop.create_task(pipe())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        self._call_on_loop(start)

    def dead_letter(
        self,
        message: Any,
        sender: ActorRef[Any] | None,
        recipient: ActorRef[Any],
        reason: str,
    ) -> None:
        """Record ``message`` as undeliverable: counted, published as a
        :class:`DeadLetter`, logged at a rate limit, and a waiting ask fails at
        once with :class:`DeliveryError`. For components (routers...) that
        drop a message on purpose. Event-loop thread."""
        self._dead_letter(message, sender, recipient, reason)

    def mailbox_depth(self, ref: ActorRef[Any]) -> int:
        """Messages queued for a local actor now (0 if it has stopped); cheap."""
        cell = ref._cell
        return cell.depth if cell is not None and cell.system is self else 0

    def actor_statistics(self, ref: ActorRef[Any]) -> ActorStatistics | None:
        """A snapshot of a live local actor's counters, or None if it has stopped."""
        cell = ref._cell
        if cell is None or cell.state == DEAD or cell.system is not self:
            return None
        mailbox: Any = cell.mailbox
        bounded = mailbox is not None and type(mailbox) is not deque
        return ActorStatistics(
            path=ref.path,
            mailbox_depth=cell.depth,
            high_water_mark=max(cell.high_water, cell.depth),
            children=len(cell._children or ()),
            capacity=mailbox.capacity if bounded else None,
            dropped=mailbox.dropped if bounded else 0,
        )

    def statistics(self) -> SystemStatistics:
        """A snapshot of the system's counters (cheap; for metrics and displays)."""
        dispatcher = self._dispatcher
        processed = dispatcher.statistics().messages_processed if dispatcher else 0
        return SystemStatistics(
            live_actors=self._live,
            spawned=self._live + self._stopped,
            messages_processed=processed,
            dead_letters=self._dead_letters,
            failures=self._failures,
            restarts=self._restarts,
            ready_actors=len(dispatcher._ready) if dispatcher else 0,
        )

    def __repr__(self) -> str:
        return f"ActorSystem({self.name!r})"

    # ------------------------------------------------------------------
    # Internals used by cells and refs

    def _check_running(self) -> None:
        if self._state != _RUNNING:
            raise ActorSystemNotRunning(f"actor system {self.name!r} is not running")

    def _next_uid(self) -> int:
        return next(self._uids)

    def _next_name(self) -> str:
        return f"${next(self._names):x}"

    def _tell_from_thread(self, cell: Cell[Any], item: Any) -> None:
        # Append first, then check the flag; the drain clears the flag before it
        # pops. So an item is either seen by a drain already under way or its
        # sender schedules a new drain: never stranded. Items from one thread
        # keep their order (one FIFO inbox).
        mailbox = cell.mailbox
        if isinstance(mailbox, Admission) and mailbox.overflow in _REFUSING and mailbox.full():
            # Approximate (the loop may be popping right now) but never loses:
            # the sending thread learns at once that the message was refused.
            raise MailboxFull(cell.ref.path, mailbox.capacity or 0, describe(split(item)[0]))
        self._inbox.append((cell, item))
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain_inbox)
            except RuntimeError:  # the loop is closed: the system is gone
                self._inbox.clear()
                self._dead_letters += 1

    def _drain_inbox(self) -> None:
        self._inbox_scheduled = False
        inbox = self._inbox
        while inbox:
            cell, item = inbox.popleft()
            try:
                cell.enqueue(item)
            except MailboxFull as full:
                # The sending thread has moved on: the message becomes a dead letter.
                message, sender = split(item)
                self._dead_letter(message, sender, cell.ref, str(full))

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if get_ident() == self._loop_thread_id:
            fn(*args)
            return
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: the system is gone
            self._dead_letters += 1

    def _call_on_loop_blocking(self, fn: Callable[..., R], *args: Any) -> R:
        if get_ident() == self._loop_thread_id:
            return fn(*args)
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(call)
        return future.result()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.config.executor_workers, thread_name_prefix=f"hewitt-{self.name}"
            )
        return self._pool

    def _termination_future(self, cell: Cell[Any]) -> asyncio.Future[None]:
        loop = self._loop
        future: asyncio.Future[None] = loop.create_future()
        if cell.state == DEAD:
            future.set_result(None)
        else:
            self._termination_waiters.setdefault(cell, []).append(future)
        return future

    def _on_terminated(self, cell: Cell[Any]) -> None:
        if cell._parent is not None:
            self._live -= 1
            self._stopped += 1
        if self.event_stream._subscribers:
            self.event_stream._unsubscribe(cell.ref, None)
        for future in self._termination_waiters.pop(cell, ()):
            if not future.done():
                future.set_result(None)
        if self.config.lifecycle_events:
            self.event_stream.publish(ActorStopped(cell.ref))

    def _publish_failure(self, ref: ActorRef[Any], message_type: str, exc: BaseException) -> None:
        if self.event_stream._subscribers:
            self.event_stream.publish(ActorFailed(ref, message_type, exc))

    def _dead_letter(
        self,
        message: Any,
        sender: ActorRef[Any] | None,
        recipient: ActorRef[Any],
        reason: str,
    ) -> None:
        self._dead_letters += 1
        if isinstance(sender, _Promise):
            sender.fail(DeliveryError(recipient.path, describe(message), reason))
        if self.event_stream._subscribers:
            self.event_stream.publish(DeadLetter(message, sender, recipient, reason))
        limit = self.config.dead_letter_log_limit
        if not limit:
            return
        now = time.monotonic()
        if now - self._dl_window_start >= self.config.dead_letter_log_window:
            if self._dl_suppressed:
                logger.info(
                    "%d more dead letters were not logged in the last %g s",
                    self._dl_suppressed,
                    self.config.dead_letter_log_window,
                )
            self._dl_window_start = now
            self._dl_logged = 0
            self._dl_suppressed = 0
        if self._dl_logged < limit:
            self._dl_logged += 1
            logger.info(
                "dead letter: %s from %s to %s (%s)",
                describe(message),
                sender.path if sender is not None else "nobody",
                recipient.path,
                reason,
            )
        else:
            self._dl_suppressed += 1
