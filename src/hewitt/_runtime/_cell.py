"""Cell: one actor's runtime state (instance, mailbox, children, lifecycle).

The cell is also the actor's :class:`Context`. All of its methods run on the
system's event-loop thread: tells from other threads reach it through the
system's inbox (see ``ActorSystem._tell_from_thread``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from threading import get_ident
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _supervise
from ._actor import Actor, Behavior, Context, HandlerResult
from ._errors import (
    ActorInitializationError,
    ActorNameTaken,
    ActorSystemNotRunning,
    InvalidActorName,
    StashOverflow,
)
from ._handlers import (
    CLASS_INFO,
    EMPTY_ARGS,
    EMPTY_KWARGS,
    Handler,
    Item,
    as_handler,
    call_handler,
    class_info,
    describe,
    split,
)
from ._mailbox import Admission, Mailbox, PriorityMailbox
from ._marks import ENVELOPE, NOTHING
from ._messages import POISON_PILL, Exit, Terminated
from ._ref import ActorRef
from ._states import DEAD, NEW, RUNNING, STOPPING, SUSPENDED
from ._supervision import RestartLog, RestartType
from ._timers import ReceiveTimeoutState, Timers

if TYPE_CHECKING:
    from ._clock import Cancellable
    from ._system import ActorSystem

M = TypeVar("M")
N = TypeVar("N")
T = TypeVar("T")

logger = logging.getLogger("hewitt")

_VALID_NAME = re.compile(r"[A-Za-z0-9_\-.:@+=~,!*'()]+")


class Cell(Context[M], Generic[M]):
    __slots__ = (
        "_children",
        "_parent",
        "_stash",
        "actor",
        "args",
        "behaviors",
        "envelope",
        "factory",
        "high_water",
        "kwargs",
        "links",
        "mailbox",
        "name",
        "pending",
        "receive",
        "receive_timeout",
        "ref",
        "restart_cause",
        "restart_log",
        "restart_timer",
        "restart_type",
        "scheduled",
        "state",
        "stop_final",
        "stop_reason",
        "stop_requested",
        "suspended",
        "system",
        "timer_set",
        "watchers",
        "watching",
    )

    def __init__(
        self,
        system: ActorSystem,
        parent: Cell[Any] | None,
        name: str,
        path: str,
        factory: Callable[..., Actor[M]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.system = system
        self._parent = parent
        self.name = name
        info = CLASS_INFO.get(factory)
        if info is None:
            # A class (or a subscripted one, like Pool[Job]) gets its info now,
            # so that its ref class applies from the first spawn.
            origin: Any = (
                factory if isinstance(factory, type) else getattr(factory, "__origin__", None)
            )
            if isinstance(origin, type) and issubclass(origin, Actor):
                info = CLASS_INFO[factory] = class_info(origin)
        ref_class = info.ref_class if info is not None else ActorRef
        self.ref: ActorRef[M] = ref_class(self, path, system._next_uid())
        self.factory = factory
        self.args = args or EMPTY_ARGS
        self.kwargs = kwargs or EMPTY_KWARGS
        self.actor: Actor[M] | None = None
        self.receive: Handler | None = None
        self.mailbox: deque[Item] | PriorityMailbox | None = None
        self.pending: Item = NOTHING
        # True while the dispatcher owns the cell: queued, running or suspended
        # in an async handler. Tells to a scheduled cell only append.
        self.scheduled = False
        self.state = NEW
        self.stop_requested = False
        self.envelope: Item = None
        self.suspended: asyncio.Future[Any] | None = None
        self._children: dict[str, Cell[Any]] | None = None
        self.behaviors: list[Handler] | None = None
        self._stash: deque[Item] | None = None
        self.watchers: set[Cell[Any]] | None = None
        self.watching: set[Cell[Any]] | None = None
        self.links: set[Cell[Any]] | None = None
        self.restart_type = RestartType.TRANSIENT
        #: most messages seen queued (sampled at the start of each turn)
        self.high_water = 0
        self.timer_set: Timers | None = None
        self.receive_timeout: ReceiveTimeoutState | None = None
        #: set while a restart is pending (SUSPENDED) and until post_restart ran
        self.restart_cause: BaseException | None = None
        self.restart_log: RestartLog | None = None
        self.restart_timer: Cancellable | None = None
        #: why it stopped: None for a normal stop
        self.stop_reason: BaseException | None = None
        #: stopped by its supervisor (or shutdown): never restarted
        self.stop_final = False

    # ------------------------------------------------------------------
    # Delivery (thread-safe slow paths of ActorRef.tell)

    def enqueue(self, item: Item) -> None:
        """Queue a mailbox item and wake the actor. Event-loop thread only.

        ``ActorRef.tell`` inlines this; it is here for the other callers.
        """
        mailbox = self.mailbox
        if mailbox is not None:
            mailbox.append(item)
        elif self.pending is NOTHING:
            self.pending = item
        else:
            self.second(item)
        if not self.scheduled:
            self.wake()

    def enqueue_system(self, item: Item) -> None:
        """Queue a message the runtime sends (timer tick, ReceiveTimeout,
        Terminated, Exit): a bounded mailbox never refuses or drops it."""
        mailbox = self.mailbox
        if mailbox is not None and type(mailbox) is not deque:
            mailbox.force(item)  # type: ignore[union-attr]
            if not self.scheduled:
                self.wake()
            return
        self.enqueue(item)

    def second(self, item: Item) -> None:
        """A second item while ``pending`` holds one: move both into a deque."""
        self.mailbox = deque((self.pending, item))
        self.pending = NOTHING

    def _front_deque(self) -> deque[Item] | PriorityMailbox:
        """The mailbox as a deque (``pending`` moved into it), for edits at the front."""
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.mailbox = deque()
            if self.pending is not NOTHING:
                mailbox.append(self.pending)
                self.pending = NOTHING
        return mailbox

    @property
    def has_messages(self) -> bool:
        return bool(self.mailbox) or self.pending is not NOTHING

    @property
    def depth(self) -> int:
        """Messages queued now."""
        mailbox = self.mailbox
        return (len(mailbox) if mailbox is not None else 0) + (self.pending is not NOTHING)

    def wake(self) -> None:
        """Schedule an idle actor that has just been given a message."""
        if self.state >= STOPPING:
            self._drain_to_dead_letters("recipient stopped")
            return
        # Inlined Dispatcher.schedule: this runs for every message to an idle actor.
        self.scheduled = True
        dispatcher = self.system._dispatcher
        dispatcher._ready.append(self)
        if not dispatcher._scheduled:
            dispatcher._scheduled = True
            dispatcher._loop.call_soon(dispatcher._run)

    # ------------------------------------------------------------------
    # Turns

    def run_turn(self, throughput: int) -> int:
        """Handle up to ``throughput`` messages; returns how many were handled."""
        if self.suspended is not None:
            # A stale ready-queue entry (a restart re-queued the cell) must never
            # run a message while a handler is still suspended: one at a time.
            return 0
        if self.state != RUNNING and (self.state != NEW or not self._start()):
            return 0
        receive = self.receive
        if receive is None:
            self._end_turn()
            return 0
        actor = self.actor
        mailbox = self.mailbox
        if mailbox is not None:
            # Between turns the queue only grows, so its length at the start of a
            # turn is the peak since the last one: the high-water mark for free.
            depth = len(mailbox)
            self.high_water = max(self.high_water, depth)
        elif not self.high_water and self.pending is not NOTHING:
            self.high_water = 1
        n = 0
        idle = False
        while n < throughput:
            mailbox = self.mailbox
            if mailbox is None:
                item = self.pending
                if item is NOTHING:
                    idle = True
                    break
                self.pending = NOTHING
            elif mailbox:
                item = mailbox.popleft()
            else:
                if type(mailbox) is deque:
                    self.mailbox = None  # drop the empty deque: idle actors stay small
                idle = True
                break
            n += 1
            self.envelope = item
            if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
                message = item[0]
            else:
                message = item
            if message is POISON_PILL:
                self.stop()
                break
            try:
                result = receive(actor, message)
            except Exception as exc:
                self._on_failure(exc, item)
                receive = self.receive
                actor = self.actor
                if self.state != RUNNING or receive is None:
                    break  # restarted into NEW (pre_start next turn) or stopping
                continue
            if result is not None:
                self._suspend(result)
                return n
            if self.receive is not receive:  # become or stop
                receive = self.receive
                if receive is None:
                    break
        if idle:
            # The common end of a turn, inlined: nothing queued, go idle.
            self.envelope = None
            self.scheduled = False
            if self.receive_timeout is not None:
                self.receive_timeout.touch()
            return n
        self._end_turn()
        return n

    def _end_turn(self) -> None:
        """End of a turn (or of an async handler): stop, requeue or go idle."""
        self.envelope = None
        if self.stop_requested:
            self._terminate()
            return
        if self.state == SUSPENDED:
            return  # stays "scheduled": the restart (or its supervisor) resumes it
        if self.state == NEW and self.restart_cause is not None:
            return  # rebuilt by a restart, which has queued it already
        if self.has_messages or self.state == NEW:
            self.system._dispatcher.schedule(self)
            return
        if type(self.mailbox) is deque:
            self.mailbox = None
        self.scheduled = False
        if self.receive_timeout is not None:
            self.receive_timeout.touch()

    def _suspend(self, result: Any) -> None:
        if asyncio.iscoroutine(result):
            future: asyncio.Future[Any] = self.system._loop.create_task(result)
        elif asyncio.isfuture(result):
            future = result
        elif isinstance(result, Awaitable):
            future = asyncio.ensure_future(result, loop=self.system._loop)
        else:
            self._on_failure(
                TypeError(
                    f"{self.ref.path}: handler returned {type(result).__qualname__!r}; "
                    "handlers return None (or are async); use context.reply() to answer"
                ),
                self.envelope,
            )
            self._end_turn()
            return
        self.suspended = future
        future.add_done_callback(self._resumed)

    def _resumed(self, future: asyncio.Future[Any]) -> None:
        self.suspended = None
        if future.cancelled():
            exc: BaseException | None = asyncio.CancelledError(
                f"{self.ref.path}: async handler was cancelled"
            )
        else:
            exc = future.exception()
        state = self.state
        if state == DEAD:
            return
        if state == STOPPING:  # an async post_stop has finished
            if exc is not None:
                logger.error("actor %s failed in post_stop", self.ref.path, exc_info=exc)
            self._finalize()
            return
        if state == SUSPENDED:  # restarted (by a sibling's failure) while it awaited
            if exc is not None:
                logger.error("actor %s failed while being restarted", self.ref.path, exc_info=exc)
            self.envelope = None
            _supervise.maybe_complete_restart(self)
            return
        if exc is not None:
            if state == NEW:
                self._start_failed(exc)
            else:
                self._on_failure(exc, self.envelope)
        elif state == NEW:
            self.state = RUNNING
            self.restart_cause = None
            self._publish_started()
        self._end_turn()

    # ------------------------------------------------------------------
    # Construction, start, failure

    def build(self) -> None:
        """Build the actor instance from its factory (at spawn and at restart)."""
        factory: Any = self.factory
        info = CLASS_INFO.get(factory)
        if info is not None and not isinstance(factory, type):
            info = None  # a subscripted class (Pool[Job]): build it by calling it
        try:
            if info is not None or (isinstance(factory, type) and issubclass(factory, Actor)):
                actor: Any = factory.__new__(factory)
                actor.context = self
                actor.__init__(*self.args, **self.kwargs)
            else:
                actor = factory(*self.args, **self.kwargs)
                if isinstance(actor, Actor):
                    actor.context = self
        except Exception as exc:
            raise ActorInitializationError(
                f"{self.ref.path}: factory {getattr(factory, '__qualname__', factory)!r} "
                f"raised {type(exc).__name__}: {exc}"
            ) from exc
        if info is None or type(actor) is not factory:
            if not isinstance(actor, Actor):
                raise ActorInitializationError(
                    f"{self.ref.path}: factory returned {type(actor).__qualname__!r}, "
                    "not an hewitt.Actor"
                )
            info = class_info(type(actor))
        self.actor = actor
        self.receive = info.receive if not info.blocking else self._in_pool(info.receive)
        self.behaviors = None

    def _in_pool(self, handler: Handler) -> Handler:
        system = self.system

        def run_in_pool(actor: Any, message: Any) -> HandlerResult:
            return system._loop.run_in_executor(
                system._executor(), call_handler, handler, actor, message
            )

        return run_in_pool

    def _wrap(self, behavior: Behavior[M]) -> Handler:
        handler = as_handler(behavior, self.actor)
        actor = self.actor
        if actor is not None and class_info(type(actor)).blocking:
            return self._in_pool(handler)
        return handler

    def needs_start(self) -> bool:
        actor = self.actor
        return actor is not None and class_info(type(actor)).needs_start

    def _start(self) -> bool:
        """Run pre_start; True when the cell may handle messages now."""
        actor = self.actor
        assert actor is not None
        cause = self.restart_cause
        try:
            result = actor.pre_start() if cause is None else actor.post_restart(cause)
        except Exception as exc:
            self._start_failed(exc)
            self._end_turn()
            return False
        if result is not None:
            self._suspend(result)
            return False
        self.state = RUNNING
        self.restart_cause = None
        self._publish_started()
        return True

    def _start_failed(self, exc: BaseException) -> None:
        # A failing pre_start is an initialization error (stopped by default);
        # a failing post_restart is a failure of the new instance.
        hook = "pre_start" if self.restart_cause is None else "post_restart"
        self.state = RUNNING
        self.restart_cause = None
        error = ActorInitializationError(
            f"{self.ref.path}: {hook} raised {type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        _supervise.handle_failure(self, error if hook == "pre_start" else exc, None)

    def _publish_started(self) -> None:
        if self.system.config.lifecycle_events:
            from ._messages import ActorStarted

            self.system.event_stream.publish(ActorStarted(self.ref))

    def _on_failure(self, exc: BaseException, item: Item) -> None:
        _supervise.handle_failure(self, exc, item)

    # ------------------------------------------------------------------
    # Stopping

    def request_stop(self) -> None:
        """Stop from outside this actor's handlers (ref.stop, parent, shutdown)."""
        if self.stop_requested or self.state >= STOPPING:
            return
        self.stop_requested = True
        self.receive = None
        if self.suspended is not None or self.system._dispatcher.current is self:
            return  # the running handler finishes first; the turn's end terminates
        # Idle or queued for a turn: terminate now (the dispatcher skips stopped cells).
        self._terminate()

    def _terminate(self) -> None:
        if self.state >= STOPPING:
            return
        if self.restart_timer is not None:
            self.restart_timer.cancel()
            self.restart_timer = None
        if self.state == NEW:
            # Never started (pre_start or post_restart did not run): no post_stop.
            self.actor = None
        self.state = STOPPING
        self.stop_requested = True
        self.receive = None
        self.scheduled = False
        self.cancel_timers()
        mailbox = self.mailbox
        if isinstance(mailbox, Admission):
            # Blocked senders go on: their messages then become dead letters.
            for waiter in mailbox.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            mailbox.waiters.clear()
        self._drain_to_dead_letters("recipient stopped")
        stash = self._stash
        if stash:
            system = self.system
            for item in stash:
                message, sender = split(item)
                system._dead_letter(message, sender, self.ref, "stashed when the actor stopped")
            stash.clear()
        if self._children:
            # The last child to finish calls _after_children (see _finalize).
            self._stop_children()
        else:
            self._after_children()

    def cancel_timers(self) -> None:
        """Timers and the receive timeout die with the actor and with a restart."""
        if self.timer_set is not None:
            self.timer_set.cancel_all()
            self.timer_set = None
        if self.receive_timeout is not None:
            self.receive_timeout.cancel()
            self.receive_timeout = None

    def _stop_children(self) -> None:
        children = self._children
        if children:
            for child in list(children.values()):
                child.stop_final = True
                child.request_stop()

    def _after_children(self) -> None:
        actor = self.actor
        if actor is not None and type(actor).post_stop is not Actor.post_stop:
            try:
                result = actor.post_stop()
            except Exception as exc:
                logger.error("actor %s failed in post_stop", self.ref.path, exc_info=exc)
                result = None
            if result is not None:
                self._suspend(result)
                return
        self._finalize()

    def _finalize(self) -> None:
        if self.state == DEAD:
            return
        self.state = DEAD
        self.receive = None
        self.actor = None
        self.behaviors = None
        self._drain_to_dead_letters("recipient stopped")
        system = self.system
        ref = self.ref
        watching = self.watching
        if watching:
            for target in watching:
                if target.watchers is not None:
                    target.watchers.discard(self)
            self.watching = None
        watchers = self.watchers
        if watchers:
            self.watchers = None
            for watcher in watchers:
                if watcher.watching is not None:
                    watcher.watching.discard(self)
                watcher.enqueue_system(Terminated(ref, self.stop_reason))
        _supervise.propagate_exit(self, self.stop_reason)
        parent = self._parent
        if parent is not None:
            siblings = parent._children
            if siblings is not None and siblings.get(self.name) is self:
                if _supervise.restart_after_stop(self):
                    system._on_terminated(self)  # this incarnation is gone all the same
                    return
                del siblings[self.name]
                if not siblings:
                    if parent.state == STOPPING:
                        parent._after_children()
                    elif parent.state == SUSPENDED:
                        _supervise.maybe_complete_restart(parent)
        system._on_terminated(self)

    def _drain_to_dead_letters(self, reason: str) -> None:
        if not self.has_messages:
            return
        mailbox = self._front_deque()
        system = self.system
        ref = self.ref
        while mailbox:
            message, sender = split(mailbox.popleft())
            system._dead_letter(message, sender, ref, reason)
        self.mailbox = None

    @property
    def is_alive(self) -> bool:
        return self.state < STOPPING and not self.stop_requested

    # ------------------------------------------------------------------
    # Children

    def spawn_child(
        self,
        factory: Callable[..., Actor[N]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        restart: RestartType | None = None,
        mailbox: Mailbox | None = None,
    ) -> ActorRef[N]:
        if self.state >= STOPPING or self.stop_requested:
            raise ActorSystemNotRunning(f"cannot spawn a child of {self.ref.path}: it is stopping")
        children = self._children
        if children is None:
            children = self._children = {}
        system = self.system
        if name is None:
            name = system._next_name()
        elif name in children:
            raise ActorNameTaken(f"{self.ref.path} already has a live child named {name!r}")
        elif name.startswith("$") or _VALID_NAME.fullmatch(name) is None:
            raise InvalidActorName(
                f"invalid actor name {name!r} under {self.ref.path}: use letters, digits "
                "and -_.:@+=~,!*'() (a leading '$' is reserved for generated names)"
            )
        cell: Cell[N] = Cell(system, self, name, self.ref.path + "/" + name, factory, args, kwargs)
        if restart is not None:
            if not isinstance(restart, RestartType):
                raise TypeError(f"restart must be a RestartType, got {restart!r}")
            cell.restart_type = restart
        if mailbox is None:
            mailbox = system.config.default_mailbox
        elif not isinstance(mailbox, Mailbox):
            raise TypeError(f"mailbox must be a hewitt.Mailbox, got {mailbox!r}")
        if not mailbox.is_plain:
            cell.mailbox = mailbox.build(cell)
        cell.build()
        children[name] = cell
        system._live += 1
        if CLASS_INFO[type(cell.actor)].needs_start:
            cell.scheduled = True
            system._dispatcher.schedule(cell)
        else:
            cell.state = RUNNING
            if system.config.lifecycle_events:
                cell._publish_started()
        return cell.ref

    # ------------------------------------------------------------------
    # Context

    @property
    def self(self) -> ActorRef[M]:
        return self.ref

    @property
    def sender(self) -> ActorRef[Any] | None:
        item = self.envelope
        return split(item)[1]

    @property
    def parent(self) -> ActorRef[Any]:
        parent = self._parent
        return parent.ref if parent is not None else self.ref

    def children(self) -> list[ActorRef[Any]]:
        return [child.ref for child in (self._children or {}).values()]

    def child(self, name: str) -> ActorRef[Any] | None:
        children = self._children
        child = children.get(name) if children else None
        return child.ref if child is not None else None

    def spawn(
        self,
        factory: Callable[..., Actor[N]],
        *args: Any,
        name: str | None = None,
        restart: RestartType | None = None,
        mailbox: Mailbox | None = None,
        **kwargs: Any,
    ) -> ActorRef[N]:
        system = self.system
        if get_ident() != system._loop_thread_id:
            return system._call_on_loop_blocking(
                self.spawn_child, factory, args, kwargs, name, restart, mailbox
            )
        return self.spawn_child(factory, args, kwargs, name, restart, mailbox)

    def stop(self, ref: ActorRef[Any] | None = None) -> None:
        if ref is None or ref._cell is self:
            if get_ident() != self.system._loop_thread_id:
                self.system._call_on_loop(self.stop)
                return
            if self.stop_requested or self.state >= STOPPING:
                return
            self.stop_requested = True
            self.receive = None
            if self.suspended is None and self.system._dispatcher.current is not self:
                self._terminate()
            return
        target = ref._cell
        if target is None or target._parent is not self:
            raise ValueError(
                f"{self.ref.path} can only stop itself or its children, not {ref.path}; "
                "use ref.stop() to stop any actor"
            )
        target.stop_final = True  # a supervisor's own stop is never undone by a restart
        self.system._call_on_loop(target.request_stop)

    def watch(self, ref: ActorRef[Any]) -> None:
        self.system._call_on_loop(self._watch, ref)

    def _watch(self, ref: ActorRef[Any]) -> None:
        target = ref._cell
        if target is None or target.state == DEAD:
            self.enqueue_system(Terminated(ref, target.stop_reason if target is not None else None))
            return
        if target.watchers is None:
            target.watchers = set()
        target.watchers.add(self)
        if self.watching is None:
            self.watching = set()
        self.watching.add(target)

    def unwatch(self, ref: ActorRef[Any]) -> None:
        self.system._call_on_loop(self._unwatch, ref)

    def _unwatch(self, ref: ActorRef[Any]) -> None:
        target = ref._cell
        if target is not None:
            if target.watchers is not None:
                target.watchers.discard(self)
            if self.watching is not None:
                self.watching.discard(target)
        if self.has_messages:
            mailbox = self._front_deque()
            # A Terminated already queued for ref must not be delivered after unwatch.
            kept = [
                item for item in mailbox if not (isinstance(item, Terminated) and item.ref == ref)
            ]
            if len(kept) != len(mailbox):
                mailbox.clear()
                mailbox.extend(kept)

    def link(self, ref: ActorRef[Any]) -> None:
        self.system._call_on_loop(self._link, ref)

    def _link(self, ref: ActorRef[Any]) -> None:
        other = ref._cell
        if other is self:
            return
        if other is None or other.state >= STOPPING or other.stop_requested:
            # Erlang: linking a dead process delivers its exit at once (noproc).
            reason = other.stop_reason if other is not None else None
            noproc = reason if reason is not None else LookupError(f"{ref.path} is not alive")
            if self.actor is not None and type(self.actor).trap_exits:
                self.enqueue_system(Exit(ref, noproc))
            else:
                _supervise.handle_failure(
                    self, _supervise.LinkedActorFailed(ref.path, noproc), None
                )
            return
        if self.links is None:
            self.links = set()
        if other.links is None:
            other.links = set()
        self.links.add(other)
        other.links.add(self)

    def unlink(self, ref: ActorRef[Any]) -> None:
        self.system._call_on_loop(self._unlink, ref)

    def _unlink(self, ref: ActorRef[Any]) -> None:
        other = ref._cell
        if other is None:
            return
        if self.links is not None:
            self.links.discard(other)
        if other.links is not None:
            other.links.discard(self)

    @property
    def timers(self) -> Timers:
        timers = self.timer_set
        if timers is None:
            timers = self.timer_set = Timers(self)
        return timers

    def set_receive_timeout(self, seconds: float | None) -> None:
        if self.receive_timeout is not None:
            self.receive_timeout.cancel()
            self.receive_timeout = None
        if seconds is not None:
            self.receive_timeout = ReceiveTimeoutState(self, seconds)

    def become(self, behavior: Behavior[M], *, discard_old: bool = True) -> None:
        if self.stop_requested:
            return
        if not discard_old:
            if self.behaviors is None:
                self.behaviors = []
            current = self.receive
            assert current is not None
            self.behaviors.append(current)
        self.receive = self._wrap(behavior)

    def unbecome(self) -> None:
        if self.stop_requested:
            return
        behaviors = self.behaviors
        if behaviors:
            self.receive = behaviors.pop()
        elif self.actor is not None:
            info = class_info(type(self.actor))
            self.receive = info.receive if not info.blocking else self._in_pool(info.receive)

    def stash(self) -> None:
        envelope = self.envelope
        if envelope is None or self.state != RUNNING:
            raise RuntimeError(f"{self.ref.path}: stash() outside a message handler")
        stash = self._stash
        if stash is None:
            stash = self._stash = deque()
        capacity = self.system.config.stash_capacity
        if len(stash) >= capacity:
            raise StashOverflow(
                f"{self.ref.path}: stash is full ({capacity} messages); "
                f"cannot stash {describe(split(envelope)[0])}"
            )
        stash.append(envelope)

    def unstash_all(self) -> None:
        stash = self._stash
        if not stash:
            return
        self._front_deque().extendleft(reversed(stash))
        stash.clear()

    def reply(self, message: Any) -> None:
        item = self.envelope
        sender = split(item)[1]
        if sender is None:
            self.system._dead_letter(message, self.ref, self.ref, "reply with no sender")
            return
        sender.tell(message, self.ref)

    def forward(self, ref: ActorRef[Any], message: Any) -> None:
        item = self.envelope
        ref.tell(message, split(item)[1])

    def pipe_to(
        self,
        awaitable: Awaitable[T],
        ref: ActorRef[Any] | None = None,
        *,
        map_result: Callable[[T], Any] | None = None,
        map_failure: Callable[[BaseException], Any] | None = None,
    ) -> None:
        self.system.pipe_to(
            awaitable,
            ref if ref is not None else self.ref,
            map_result=map_result,
            map_failure=map_failure,
        )

    def __repr__(self) -> str:
        return f"<Context of {self.ref.path}>"
