"""ActorSystem: one node's registry of actors, its guardians, delivery by
address, and shutdown."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextvars import Context as VarContext
from itertools import count
from threading import get_ident
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import _asks, _stopping
from ._actor import Actor
from ._address import TEMP_PREFIX, ActorAddress, NodeId
from ._bridge import LoopBridge
from ._cell import Cell
from ._clock import Clock, LoopClock
from ._config import SystemConfig
from ._control import ControlMessage, Unwatch
from ._deadletters import DeadLetters
from ._dispatcher import Dispatcher
from ._envelope import envelope
from ._errors import ActorSystemNotRunning, ActorSystemStopped
from ._events import EventStream
from ._lifecycle import RUNNING as CELL_RUNNING
from ._lifecycle import STOPPED
from ._lifecycle import name as state_name
from ._mailbox import Mailbox
from ._messages import ActorFailed, ActorStopped, Failure
from ._recipients import DeadRecipient, UnreachableRecipient
from ._ref import CURRENT_ACTOR, ActorRef, Recipient, RunningTurn
from ._statistics import ActorStatistics, SystemStatistics
from ._supervision import RestartType
from ._sysstate import CREATED, RUNNING, STOPPING, TERMINATED
from ._threaded import ThreadedMode

if TYPE_CHECKING:
    from ._asks import Promise, ThreadSafeAskRef
    from ._codec import KernelCodec

logger = logging.getLogger("hewitt")

N = TypeVar("N")
T = TypeVar("T")


class RemoteProvider(Protocol):
    """What a transport gives a system: the recipient for another node's refs
    (a link), or None when it has none (see ``ActorSystem.use_remote``)."""

    def recipient_for(self, node: NodeId) -> Recipient | None: ...


class _Guardian(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.system._dead_letter(
            message, self.context.sender, self.context.self, "sent to a guardian"
        )


class ActorSystem(ThreadedMode, LoopBridge):
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
        #: the mailbox of actors spawned without one: None for the plain deque
        self._default_mailbox: Mailbox | None = (
            None if self.config.default_mailbox.is_plain else self.config.default_mailbox
        )
        #: this system's node identity: name and a random incarnation (and the
        #: transport's host and port, once a node layer binds one)
        self.node = NodeId.mint(name)
        self._state = CREATED
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._loop_thread_id = -1
        self._dispatcher: Dispatcher = None  # type: ignore[assignment]
        self._ask_timeouts: _asks.AskTimeouts = None  # type: ignore[assignment]
        self.clock: Clock = None  # type: ignore[assignment]
        self._inbox: deque[Any] = deque()
        self._inbox_scheduled = False
        self._bridged: set[concurrent.futures.Future[Any]] = set()
        self._uids = count(int.from_bytes(os.urandom(5), "big") << 24)
        self._names = count(1)
        self._live = 0
        self._stopped = 0
        self._failures = 0
        self._restarts = 0
        self._dead_letter_office = DeadLetters(self)
        self._dead = DeadRecipient(self, "recipient stopped")
        self._unknown = DeadRecipient(self, "no such actor")
        self._expired = DeadRecipient(self, "reply to an expired or completed ask")
        self._temporary_recipient = _asks.TemporaryRecipient(self)
        self._temporaries: dict[int, Promise] = {}
        #: watchers of temporary refs, told when the ref's ask has its outcome
        self._temporary_watchers: dict[Promise, list[ActorRef[Any]]] = {}
        self._foreign_asks: set[ThreadSafeAskRef] = set()
        self._remote: RemoteProvider | None = None
        self._codec: KernelCodec | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
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

    _ask = _asks.ask
    _ask_blocking = _asks.ask_blocking

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
        if self._state != CREATED:
            raise ActorSystemNotRunning(f"actor system {self.name!r} was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread_id = get_ident()
        self._dispatcher = Dispatcher(
            loop,
            self.config.throughput,
            self.config.batch_messages,
            self.config.direct_asks,
            Cell.run_turn,
        )
        #: every actor's context starts as a copy of this one (see RunningTurn)
        self._actor_context = VarContext()
        self._actor_context.run(CURRENT_ACTOR.set, RunningTurn(self._dispatcher))
        self.clock = self.config.clock if self.config.clock is not None else LoopClock(loop)
        self._ask_timeouts = _asks.AskTimeouts(self.clock)
        self._user = self._guardian("user")
        self._system = self._guardian("system")
        self._terminated = loop.create_future()
        self._state = RUNNING

    def _guardian(self, name: str) -> Cell[Any]:
        cell: Cell[Any] = Cell(self, None, name, "/" + name, _Guardian, (), {})
        cell.build()
        cell.state = CELL_RUNNING  # no pre_start: it enters its lifecycle running
        return cell

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop every actor (``/user`` first, then ``/system``) and wait for them.

        Handlers still running after ``timeout`` seconds (default
        ``SystemConfig.shutdown_timeout``) are cancelled and their paths are
        recorded in ``unclean_stops``. Asks still pending then fail with
        ActorSystemStopped. A second call waits for the first to finish.
        Usable from any event loop.
        """
        if self._state == CREATED:
            self._state = TERMINATED
            return
        if asyncio.get_running_loop() is not self._loop:
            if self._loop.is_closed():
                return
            future = asyncio.run_coroutine_threadsafe(self.shutdown(timeout), self._loop)
            await asyncio.wrap_future(future)
            return
        if self._shutdown_task is None:
            self._shutdown_task = self._loop.create_task(self._shut_down(timeout))
        await asyncio.shield(self._shutdown_task)

    async def _shut_down(self, timeout: float | None) -> None:
        self._state = STOPPING
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        for guardian in (self._user, self._system):
            waiter = self._loop.create_future()
            _asks.watch_for_termination(self, guardian.ref, waiter)
            _stopping.request_stop(guardian)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                self._stop_all_now(guardian, timeout)
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), 1.0)
                except TimeoutError:
                    left = [c.ref.path for c in _walk(guardian) if c.state != STOPPED]
                    self.unclean_stops.extend(p for p in left if p not in self.unclean_stops)
                    logger.error(
                        "actor system %s: %d actors still not stopped after cancelling: %s",
                        self.name,
                        len(left),
                        ", ".join(left),
                    )
        for task in list(self._background):
            task.cancel()
        self._close()

    def _stop_all_now(self, guardian: Cell[Any], timeout: float) -> None:
        """The shutdown's deadline passed: every actor still there is asked to
        stop at once (no longer one at a time), then every suspended handler
        and hook is cancelled; the ones that were stuck are recorded in
        ``unclean_stops``."""
        cells = _walk(guardian)
        stuck = [c for c in cells if c.suspended is not None]
        for cell in reversed(cells):
            if cell.state < STOPPING and not cell.stop_requested and cell.parent_cell is not None:
                cell.stop_final = True
                _stopping.request_stop(cell)
        self.unclean_stops.extend(c.ref.path for c in stuck)
        logger.error(
            "actor system %s: %d actors did not stop within %g s; cancelling: %s",
            self.name,
            len(stuck),
            timeout,
            ", ".join(c.ref.path for c in stuck),
        )
        for cell in _walk(guardian):
            if cell.suspended is not None:
                cell.suspended.cancel()

    def _close(self) -> None:
        """The end of the system (a shutdown, or its loop gone): nothing waits
        for it any more. Idempotent."""
        first = self._state != TERMINATED
        self._state = TERMINATED
        stopped = ActorSystemStopped(f"actor system {self.name!r} shut down before the reply")
        if self._ask_timeouts is not None:
            self._ask_timeouts.fail_all(stopped)
        for foreign in list(self._foreign_asks):
            foreign.fail(stopped)
        for temporary in list(self._temporaries.values()):
            temporary.fail(stopped)
        self._temporaries.clear()
        self._inbox.clear()
        self._fail_bridged()
        if first and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._terminated is not None and not self._terminated.done():
            with contextlib.suppress(RuntimeError):  # its loop may be closed
                self._terminated.set_result(None)

    async def wait_terminated(self) -> None:
        """Wait until the system has shut down (by ``shutdown`` or by its
        guardian policy ``"stop_system"``); see ``termination_reason``.
        Usable from any event loop."""
        if self._terminated is None:
            raise ActorSystemNotRunning(f"actor system {self.name!r} was never started")
        if asyncio.get_running_loop() is not self._loop:
            if self._state == TERMINATED:
                return
            future = asyncio.run_coroutine_threadsafe(self.wait_terminated(), self._loop)
            await asyncio.wrap_future(future)
            return
        await asyncio.shield(self._terminated)

    async def wait_all_terminated(
        self, refs: Iterable[ActorRef[Any]], timeout: float | None = None
    ) -> None:
        """Wait until every actor in ``refs`` has stopped (TimeoutError after
        ``timeout`` seconds; nothing is left behind)."""
        waits = [self._wait_terminated(ref, None) for ref in refs]
        await asyncio.wait_for(asyncio.gather(*waits), timeout)

    def _terminate_from_inside(self, reason: BaseException) -> None:
        if self._state != RUNNING:
            return
        self.termination_reason = reason
        task = self._loop.create_task(self.shutdown())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def is_running(self) -> bool:
        """True between start and shutdown."""
        return self._state == RUNNING

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
        Thread-safe, and usable inside any actor's handlers.
        """
        self._check_running()
        return self._call_on_loop_blocking(
            self._user.spawn_child, factory, args, kwargs, name, restart, mailbox
        )

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
            children = cell.child_cells
            cell = children.get(part) if children else None
        if cell is None or cell.state == STOPPED:
            return None
        return cell.ref

    def resolve(self, address: ActorAddress) -> ActorRef[Any]:
        """The ref for a serialized address.

        An address of this node resolves to its live actor, or to a ref whose
        messages are dead letters ("no such actor") when that incarnation is
        gone; an address of another node resolves through the system's remote
        provider (see :meth:`use_remote`), or to an unreachable ref.
        """
        node = address.node
        path = address.path
        if node == self.node:
            if path.startswith(TEMP_PREFIX):
                promise = self._temporaries.get(address.uid)
                if promise is not None:
                    return promise
                return ActorRef(self._expired, path, address.uid)
            else:
                ref = self.lookup(path)
                if ref is not None and ref.uid == address.uid:
                    return ref
            return ActorRef(self._unknown, path, address.uid)
        recipient = self._remote.recipient_for(node) if self._remote is not None else None
        if recipient is None:
            recipient = UnreachableRecipient(self, node)
        return ActorRef(recipient, path, address.uid)

    @property
    def codec(self) -> KernelCodec:
        """This system's kernel codec: the registry of message types that may
        cross to other nodes (``system.codec.register(Deposit, ...)``) and the
        frames a transport sends. Made (and msgspec imported) on first use."""
        codec = self._codec
        if codec is None:
            from ._codec import KernelCodec  # msgspec is imported only now

            codec = self._codec = KernelCodec(self)
        return codec

    def use_remote(self, provider: RemoteProvider | None) -> None:
        """Resolve the addresses of other nodes through ``provider`` (a
        transport's hook; see docs/architecture.md, "The delivery seam")."""
        self._remote = provider

    def deliver(
        self, address: ActorAddress, message: Any, sender: ActorRef[Any] | None = None
    ) -> None:
        """Deliver ``message`` from ``sender`` to the actor at ``address``
        (what a transport calls for an arriving envelope). Thread-safe."""
        ref = self.resolve(address)
        ref._recipient.deliver(ref, envelope(message, sender))

    def deliver_system(self, address: ActorAddress, message: ControlMessage) -> None:
        """Deliver a control message (watch, link, stop, notices) to ``address``."""
        ref = self.resolve(address)
        ref._recipient.deliver_system(ref, message)

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
        :class:`DeadLetter`, logged at WARNING at a rate limit, and a waiting
        ask fails at once with :class:`DeliveryError`. For components
        (routers...) that drop a message on purpose. Event-loop thread."""
        self._dead_letter_office.record(message, sender, recipient, reason)

    def fail_ask(self, ref: ActorRef[Any] | None, error: BaseException) -> bool:
        """If ``ref`` is the reply ref of an ask (``context.sender`` of a
        request made with ``ask``, here or on another node), fail that ask with
        ``error`` and return True; else return False. For components that
        answer a request later than its handler (persistence, say)."""
        return _asks.fail_ask(ref, error)

    def mailbox_depth(self, ref: ActorRef[Any]) -> int:
        """Messages queued for a local actor now (0 if it has stopped); cheap."""
        cell = self._local_cell(ref)
        return cell.depth if cell is not None else 0

    def actor_statistics(self, ref: ActorRef[Any]) -> ActorStatistics | None:
        """A snapshot of a live local actor's counters, or None if it has stopped."""
        cell = self._local_cell(ref)
        if cell is None or cell.state == STOPPED:
            return None
        mailbox: Any = cell.mailbox
        bounded = mailbox is not None and type(mailbox) is not deque
        return ActorStatistics(
            path=ref.path,
            mailbox_depth=cell.depth,
            high_water_mark=max(cell.high_water, cell.depth),
            children=len(cell.child_cells or ()),
            capacity=mailbox.capacity if bounded else None,
            dropped=mailbox.dropped if bounded else 0,
            state=state_name(cell.state),
            watchers=len(cell.extras.watchers or ()) if cell.extras is not None else 0,
        )

    def statistics(self) -> SystemStatistics:
        """A snapshot of the system's counters (cheap; for metrics and displays)."""
        dispatcher = self._dispatcher
        processed = dispatcher.statistics().messages_processed if dispatcher else 0
        return SystemStatistics(
            live_actors=self._live,
            spawned=self._live + self._stopped,
            messages_processed=processed,
            dead_letters=self._dead_letter_office.count,
            failures=self._failures,
            restarts=self._restarts,
            ready_actors=len(dispatcher._ready) if dispatcher else 0,
            pending_asks=self._ask_timeouts.pending() if self._ask_timeouts else 0,
        )

    def __repr__(self) -> str:
        return f"ActorSystem({self.name!r})"

    # ------------------------------------------------------------------
    # Internals used by cells, refs and asks

    def _local_cell(self, ref: ActorRef[Any]) -> Cell[Any] | None:
        recipient = ref._recipient
        return recipient if isinstance(recipient, Cell) and recipient.system is self else None

    def _check_running(self) -> None:
        if self._state != RUNNING:
            if self._state == TERMINATED:
                raise self._stopped_error("no actor can be spawned")
            raise ActorSystemNotRunning(f"actor system {self.name!r} is not running")

    def _check_accepting(self, ref: ActorRef[Any], message: Any) -> None:
        """Refuse a call made before start or after shutdown."""
        if self._state == CREATED:
            raise ActorSystemNotRunning(f"actor system {self.name!r} has not been started")
        if self._state == TERMINATED:
            raise self._stopped_error(f"{type(message).__qualname__} to {ref.path} refused")

    def _register_temporary(self, promise: Promise) -> int:
        uid = next(self._uids)
        if not promise.done:
            self._temporaries[uid] = promise
        return uid

    def _dead_with_reason(self, reason: BaseException) -> DeadRecipient:
        return DeadRecipient(self, "recipient stopped", reason)

    async def _wait_terminated(self, ref: ActorRef[Any], timeout: float | None) -> None:
        if asyncio.get_running_loop() is not self._loop:
            if self._state == TERMINATED:
                return
            future = asyncio.run_coroutine_threadsafe(self._wait_terminated(ref, None), self._loop)
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            except TimeoutError:
                future.cancel()  # its waiter unwatches on the loop
                raise
            return
        if not ref.is_alive and isinstance(ref._recipient, DeadRecipient):
            return
        done: asyncio.Future[None] = self._loop.create_future()
        waiter = _asks.watch_for_termination(self, ref, done)
        try:
            await asyncio.wait_for(done, timeout)
        finally:
            if not done.done() or done.cancelled():
                waiter.forget()
                with contextlib.suppress(ActorSystemStopped):
                    ref._recipient.deliver_system(ref, Unwatch(waiter))

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.config.executor_workers, thread_name_prefix=f"hewitt-{self.name}"
            )
        return self._pool

    def _on_terminated(self, cell: Cell[Any]) -> None:
        if cell.parent_cell is not None:
            self._live -= 1
            self._stopped += 1
        if self.event_stream._subscribers:
            self.event_stream._unsubscribe(cell.ref, None)
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
        self._dead_letter_office.record(message, sender, recipient, reason)


def _walk(cell: Cell[Any]) -> list[Cell[Any]]:
    found = [cell]
    for child in list((cell.child_cells or {}).values()):
        found.extend(_walk(child))
    return found
