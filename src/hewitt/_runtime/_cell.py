"""Cell: one actor's runtime state, its delivery, and its turns.

A cell is the recipient of its actor's ref: ``deliver`` queues a message and
wakes the actor, ``deliver_system`` applies a control message. It is also the
actor's :class:`Context` (the methods in ``_context.py``). All of its state
is touched on the system's event-loop thread only: deliveries from other
threads go through the system's inbox (``ActorSystem._deliver_from_thread``).
Lifecycle states change only through ``_lifecycle.transition``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import Context as VarContext
from threading import get_ident
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _deathwatch, _stopping, _supervise
from ._actor import Actor
from ._address import NodeId
from ._context import ContextApi
from ._control import (
    ControlMessage,
    DeathNotice,
    ExitNotice,
    Link,
    Stop,
    Unlink,
    Unwatch,
    Watch,
)
from ._envelope import Item, describe, split
from ._errors import ActorInitializationError
from ._extras import Extras
from ._handlers import (
    CLASS_INFO,
    EMPTY_ARGS,
    EMPTY_KWARGS,
    ClassInfo,
    Handler,
    call_in_context,
    class_info,
    info_for_factory,
)
from ._lifecycle import RESTARTING, RUNNING, STARTING, STOPPED, STOPPING, SUSPENDED, transition
from ._mailbox import Admission, MailboxFull, Overflow, PriorityMailbox
from ._marks import ENVELOPE, NOTHING
from ._messages import POISON_PILL, ActorStarted, Exit
from ._ref import CURRENT_ACTOR, ActorRef, register_local_cell
from ._supervision import RestartType

if TYPE_CHECKING:
    from ._system import ActorSystem

M = TypeVar("M")

logger = logging.getLogger("hewitt")


class Cell(ContextApi[M], Generic[M]):
    __slots__ = (
        "actor",
        "args",
        "child_cells",
        "envelope",
        "extras",
        "factory",
        "high_water",
        "kwargs",
        "mailbox",
        "name",
        "parent_cell",
        "pending",
        "receive",
        "ref",
        "restart_type",
        "scheduled",
        "state",
        "stop_final",
        "stop_requested",
        "suspended",
        "system",
        "vars",
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
        info: ClassInfo | None = None,
    ) -> None:
        self.system = system
        self.parent_cell = parent
        self.name = name
        if info is None:
            info = info_for_factory(factory)
        ref_class = info.ref_class if info is not None else ActorRef
        self.ref: ActorRef[M] = ref_class(self, path, next(system._uids))
        self.factory = factory
        self.args = args or EMPTY_ARGS
        self.kwargs = kwargs or EMPTY_KWARGS
        self.actor: Actor[M] | None = None
        self.receive: Handler | None = None
        self.mailbox: deque[Item] | PriorityMailbox | None = None
        self.pending: Item = NOTHING
        # True while the dispatcher owns the cell: queued, running or suspended
        # in an async handler (or restarting). Deliveries to a scheduled cell
        # only append.
        self.scheduled = False
        self.state = STARTING
        self.stop_requested = False
        #: stopped by its supervisor (or shutdown): never restarted
        self.stop_final = False
        self.envelope: Item = None
        self.suspended: asyncio.Future[Any] | None = None
        self.child_cells: dict[str, Cell[Any]] | None = None
        self.restart_type = RestartType.TRANSIENT
        #: most messages seen queued (sampled at the start of each turn)
        self.high_water = 0
        #: the actor's own contextvars.Context, made at its first turn
        self.vars: VarContext | None = None
        self.extras: Extras | None = None

    def get_extras(self) -> Extras:
        extras = self.extras
        if extras is None:
            extras = self.extras = Extras()
        return extras

    # ------------------------------------------------------------------
    # Recipient: delivery (any thread)

    @property
    def node(self) -> NodeId:
        return self.system.node

    @property
    def alive(self) -> bool:
        return self.state < STOPPING and not self.stop_requested

    def deliver(self, ref: ActorRef[Any], item: Item) -> None:
        """Queue a message and wake the actor (the fast path of every tell)."""
        system = self.system
        if get_ident() != system._loop_thread_id:
            system._deliver_from_thread(self, ref, item)
            return
        mailbox = self.mailbox
        if mailbox is not None:
            mailbox.append(item)
        elif self.pending is NOTHING:
            self.pending = item
        else:
            self.second(item)
        if not self.scheduled:
            self.wake()

    async def deliver_with_room(
        self, ref: ActorRef[Any], item: Item, timeout: float | None
    ) -> None:
        """``ref.send``: deliver once a full BLOCK mailbox has room (on the
        system's loop, whichever loop awaits this)."""
        system = self.system
        if asyncio.get_running_loop() is not system._loop:
            system._check_accepting(ref, split(item)[0])
            future = asyncio.run_coroutine_threadsafe(
                self.deliver_with_room(ref, item, timeout), system._loop
            )
            await asyncio.wrap_future(future)
            return
        mailbox = self.mailbox
        if (
            isinstance(mailbox, Admission)
            and mailbox.overflow is Overflow.BLOCK
            and mailbox.full()
            and self.alive
            and not await mailbox.wait_for_room(timeout, system.clock)
        ):
            raise MailboxFull(ref.path, mailbox.capacity or 0, describe(split(item)[0]))
        self.deliver(ref, item)

    def deliver_ask(self, ref: ActorRef[Any], item: Item) -> None:
        """Deliver an ask's request, made on the system's loop (``ask`` has
        checked); when the actor is idle with an empty mailbox, run its turn
        right now on the caller's stack (the direct hand-off: the turn the
        dispatcher would run next, minus two loop iterations). The
        dispatcher's budget makes callers yield regularly."""
        if self.scheduled or self.state != RUNNING or self.pending is not NOTHING or self.mailbox:
            self.deliver(ref, item)
            return
        dispatcher = self.system._dispatcher
        if not dispatcher.direct_budget or dispatcher.current is not None:
            self.deliver(ref, item)
            return
        mailbox = self.mailbox
        if mailbox is not None:
            mailbox.append(item)  # a bounded or priority mailbox is kept for life
        else:
            self.pending = item
        dispatcher.run_direct(self)

    def deliver_system(self, ref: ActorRef[Any], message: ControlMessage) -> None:
        """Apply a control message (watch, link, stop, notices) at once."""
        system = self.system
        if get_ident() != system._loop_thread_id:
            system._call_on_loop(self.deliver_system, ref, message)
            return
        if isinstance(message, Stop):
            if self.parent_cell is None:
                logger.warning("%s: a guardian stops only with its system; stop refused", ref.path)
                return
            _stopping.request_stop(self)
        elif isinstance(message, DeathNotice):
            _deathwatch.death_notice(self, message)
        elif isinstance(message, Watch):
            _deathwatch.add_watcher(self, message.watcher)
        elif isinstance(message, Unwatch):
            _deathwatch.remove_watcher(self, message.watcher)
        elif isinstance(message, Link):
            other = message.other
            if self.alive:
                _deathwatch.add_link(self, other)
            else:
                extras = self.extras
                reason = extras.stop_reason if extras is not None else None
                noproc = reason or LookupError(f"{ref.path} is not alive")
                other._recipient.deliver_system(other, ExitNotice(ref, noproc))
        elif isinstance(message, Unlink):
            _deathwatch.remove_link(self, message.other)
        elif isinstance(message, ExitNotice):
            self._linked_exit(message)
        else:
            logger.warning("%s: a control message for asks reached an actor: %r", ref.path, message)

    def _linked_exit(self, notice: ExitNotice) -> None:
        if self.system._dispatcher.current is self:
            # In the middle of its own turn (it linked to an actor that is
            # gone, say): the exit arrives after the handler, as a signal would.
            self.system._loop.call_soon(self._linked_exit, notice)
            return
        if not _deathwatch.take_link(self, notice.ref):
            return
        if not self.alive:
            return
        actor = self.actor
        if actor is not None and type(actor).trap_exits:
            self.enqueue_system(Exit(notice.ref, notice.reason))
        elif notice.reason is not None:
            _supervise.handle_failure(
                self, _supervise.LinkedActorFailed(notice.ref.path, notice.reason), None
            )

    def enqueue_system(self, item: Item) -> None:
        """Queue a message the runtime sends (timer tick, ReceiveTimeout,
        Terminated, Exit): a bounded mailbox never refuses or drops it.
        Event-loop thread only."""
        mailbox = self.mailbox
        if mailbox is not None and type(mailbox) is not deque:
            mailbox.force(item)  # type: ignore[union-attr]
        elif mailbox is not None:
            mailbox.append(item)
        elif self.pending is NOTHING:
            self.pending = item
        else:
            self.second(item)
        if not self.scheduled:
            self.wake()

    def second(self, item: Item) -> None:
        """A second item while ``pending`` holds one: move both into a deque."""
        self.mailbox = deque((self.pending, item))
        self.pending = NOTHING

    def front_deque(self) -> deque[Item] | PriorityMailbox:
        """The mailbox as a deque (``pending`` moved into it), for edits at the front."""
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.mailbox = deque()
            if self.pending is not NOTHING:
                mailbox.append(self.pending)
                self.pending = NOTHING
        return mailbox

    def withdraw(self, unwanted: Callable[[Any], bool]) -> None:
        """Remove the queued messages for which ``unwanted(message)`` holds."""
        self._withdraw_items(lambda item: unwanted(split(item)[0]))

    @staticmethod
    def is_timer_tick(item: Item) -> bool:
        return type(item) is tuple and len(item) == 5 and item[2] is ENVELOPE

    def withdraw_timer_ticks(self, timer: object = None) -> None:
        """Remove queued and stashed timer ticks (of one timer, or all of them)."""

        def unwanted(item: Item) -> bool:
            return self.is_timer_tick(item) and (timer is None or item[4] is timer)

        self._withdraw_items(unwanted)
        stash = self.extras.stash if self.extras is not None else None
        if stash:
            kept = [item for item in stash if not unwanted(item)]
            if len(kept) != len(stash):
                stash.clear()
                stash.extend(kept)

    def _withdraw_items(self, unwanted: Callable[[Item], bool]) -> None:
        if not self.has_messages:
            return
        mailbox = self.front_deque()
        if isinstance(mailbox, PriorityMailbox):
            removed = mailbox.remove_where(unwanted)
        else:
            kept = [item for item in mailbox if not unwanted(item)]
            removed = len(mailbox) - len(kept)
            if removed:
                mailbox.clear()
                mailbox.extend(kept)
        if removed and isinstance(mailbox, Admission):
            for _ in range(removed):  # the room made wakes blocked senders
                mailbox._wake_sender()

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
            self.drain_to_dead_letters("recipient stopped")
            return
        # Inlined Dispatcher.schedule: this runs for every message to an idle actor.
        self.scheduled = True
        dispatcher = self.system._dispatcher
        dispatcher._ready.append(self)
        if not dispatcher._scheduled:
            dispatcher._scheduled = True
            dispatcher._loop.call_soon(dispatcher._run, context=dispatcher._vars)

    def drain_to_dead_letters(self, reason: str) -> None:
        if not self.has_messages:
            return
        mailbox = self.front_deque()
        system = self.system
        ref = self.ref
        while mailbox:
            message, sender = split(mailbox.popleft())
            system._dead_letter(message, sender, ref, reason)
        if type(mailbox) is deque:
            self.mailbox = None  # a bounded or priority mailbox stays until finalize

    def idle_actor(self) -> Actor[M] | None:
        """The actor instance when it is running, idle and on this thread, else
        None: a kernel hook for routing on the sender's side (``RouterRef``)."""
        if self.scheduled or self.state != RUNNING or get_ident() != self.system._loop_thread_id:
            return None
        return self.actor

    # ------------------------------------------------------------------
    # Turns (event-loop thread)

    def new_vars(self) -> VarContext:
        """The actor's own contextvars.Context, where its handlers run (made at
        its first turn; CURRENT_ACTOR is this actor there)."""
        variables = self.vars = VarContext()
        variables.run(CURRENT_ACTOR.set, self.ref)
        return variables

    def run_turn(self, throughput: int) -> int:
        """Handle up to ``throughput`` messages; returns how many were handled.
        The dispatcher runs it in the actor's own context (``new_vars``)."""
        if self.suspended is not None:
            # A stale ready-queue entry (a restart re-queued the cell) must never
            # run a message while a handler is still suspended: one at a time.
            return 0
        if self.state != RUNNING and (self.state != STARTING or not self._start()):
            return 0
        receive = self.receive
        if receive is None:
            self.end_turn()
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
            # _envelope.message_of, inlined: this runs for every message.
            if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
                message = item[0]
                if len(item) == 5:
                    item[4].handled()  # a timer tick (see _timers)
            else:
                message = item
            if message is POISON_PILL:
                self.stop()
                break
            try:
                result = receive(actor, message)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self.on_failure(exc, item)
                receive = self.receive
                actor = self.actor
                if self.state != RUNNING or receive is None:
                    break  # restarting, suspended or stopping
                continue
            if result is not None:
                self.suspend(result)
                return n
            if self.receive is not receive:  # become, stop, or a restart
                receive = self.receive
                if receive is None or self.actor is not actor or self.state != RUNNING:
                    break
        if idle:
            # The common end of a turn, inlined: nothing queued, go idle.
            self.envelope = None
            self.scheduled = False
            extras = self.extras
            if extras is not None and extras.receive_timeout is not None:
                extras.receive_timeout.touch()
            return n
        self.end_turn()
        return n

    def end_turn(self) -> None:
        """End of a turn (or of an async handler): stop, requeue or go idle."""
        self.envelope = None
        if self.stop_requested:
            _stopping.terminate(self)
            return
        state = self.state
        if state in (SUSPENDED, RESTARTING):
            return  # stays "scheduled": the restart (or its supervisor) resumes it
        if state == STARTING and self.extras is not None and self.extras.restart_cause:
            return  # rebuilt by a restart, which has queued it already
        if self.has_messages or state == STARTING:
            self.system._dispatcher.schedule(self)
            return
        if type(self.mailbox) is deque:
            self.mailbox = None
        self.scheduled = False
        extras = self.extras
        if extras is not None and extras.receive_timeout is not None:
            extras.receive_timeout.touch()

    def run_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        """Run a lifecycle hook in the actor's own context (in a copy of it when
        that context is in use already)."""
        variables = self.vars
        if variables is None:
            variables = self.new_vars()
        try:
            variables.run(_nothing)
        except RuntimeError:
            # Entered already, further up this stack (a failure decided inside
            # its own turn or task) or in a blocking handler's thread: a copy.
            variables = variables.copy()
        return variables.run(hook, *args)

    def suspend(self, result: Any) -> None:
        """A handler or hook returned an awaitable: the actor waits for it."""
        loop = self.system._loop
        if asyncio.iscoroutine(result):
            future: asyncio.Future[Any] = loop.create_task(result, context=self.vars)
        elif asyncio.isfuture(result):
            future = result
        elif isinstance(result, Awaitable):
            future = asyncio.ensure_future(result, loop=loop)
        else:
            self.on_failure(
                TypeError(
                    f"{self.ref.path}: handler returned {type(result).__qualname__!r}; "
                    "handlers return None (or are async); use context.reply() to answer"
                ),
                self.envelope,
            )
            self.end_turn()
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
        if state == STOPPED:
            return
        if state == STOPPING:  # an async post_stop has finished
            if exc is not None:
                logger.error("actor %s failed in post_stop", self.ref.path, exc_info=exc)
            _stopping.finalize(self)
            return
        if state == RESTARTING:  # restarted (by a sibling's failure) while it awaited
            if exc is not None:
                logger.error("actor %s failed while being restarted", self.ref.path, exc_info=exc)
            self.envelope = None
            _supervise.maybe_complete_restart(self)
            return
        if exc is not None:
            if state == STARTING:
                self._start_failed(exc)
            else:
                self.on_failure(exc, self.envelope)
        elif state == STARTING:
            transition(self, RUNNING)
            self._started()
        self.end_turn()

    # ------------------------------------------------------------------
    # Construction, start, failure

    def build(self, info: ClassInfo | None = None) -> None:
        """Build the actor instance from its factory (at spawn and at restart);
        ``info``: the factory's class info, when the caller has it."""
        factory: Any = self.factory
        if info is None:
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
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
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
        if info.blocking and info.async_receive:
            raise ActorInitializationError(
                f"{self.ref.path}: {type(actor).__qualname__} is blocking = True with an "
                "async def receive; a blocking actor's handlers are plain def (they run "
                "on a thread of the pool), an async actor's need no pool"
            )
        self.actor = actor
        self.receive = info.receive if not info.blocking else self.in_pool(info.receive)
        if self.extras is not None:
            self.extras.behaviors = None

    def in_pool(self, handler: Handler) -> Handler:
        system = self.system

        def run_in_pool(actor: Any, message: Any) -> Any:
            # On the pool, in the actor's own context; submitted after this turn,
            # which is still in that context (a context is entered once at a time).
            loop = system._loop
            done: asyncio.Future[None] = loop.create_future()

            def submit() -> None:
                if done.done():
                    return  # cancelled (shutdown) before it started
                variables = self.vars if self.vars is not None else self.new_vars()
                work = loop.run_in_executor(
                    system._executor(), call_in_context, variables, handler, actor, message
                )
                work.add_done_callback(lambda finished: _copy_outcome(finished, done))

            loop.call_soon(submit)
            return done

        return run_in_pool

    def _start(self) -> bool:
        """Run pre_start (or post_restart); True when the cell may handle messages now."""
        actor = self.actor
        assert actor is not None
        extras = self.extras
        cause = extras.restart_cause if extras is not None else None
        try:
            result = actor.pre_start() if cause is None else actor.post_restart(cause)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._start_failed(exc)
            self.end_turn()
            return False
        if result is not None:
            self.suspend(result)
            return False
        transition(self, RUNNING)
        self._started()
        return True

    def _started(self) -> None:
        if self.extras is not None:
            self.extras.restart_cause = None
        if self.system.config.lifecycle_events:
            self.system.event_stream.publish(ActorStarted(self.ref))

    def _start_failed(self, exc: BaseException) -> None:
        # A failing pre_start is an initialization error (stopped by default);
        # a failing post_restart is a failure of the new instance.
        extras = self.extras
        restarted = extras is not None and extras.restart_cause is not None
        hook = "post_restart" if restarted else "pre_start"
        transition(self, RUNNING)
        if extras is not None:
            extras.restart_cause = None
        error = ActorInitializationError(
            f"{self.ref.path}: {hook} raised {type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        _supervise.handle_failure(self, exc if restarted else error, None)

    def on_failure(self, exc: BaseException, item: Item) -> None:
        _supervise.handle_failure(self, exc, item)

    # ------------------------------------------------------------------
    # Children and stopping (what the lifecycle modules call back)

    def left_restart_group(self) -> None:
        """It stopped while restarting with its siblings (see _supervise)."""
        _supervise.left_restart_group(self)

    def restart_after_stop(self, child: Cell[Any]) -> bool:
        """A PERMANENT child stopped: its supervisor's rules may replace it."""
        return _supervise.restart_after_stop(self, child)

    def children_gone(self) -> None:
        """The children being stopped are all gone: go on with the stop or restart."""
        if self.state == STOPPING:
            _stopping.after_children(self)
        elif self.state == RESTARTING:
            _supervise.maybe_complete_restart(self)

    def cancel_timers(self) -> None:
        """Timers and the receive timeout die with the actor and with a restart."""
        extras = self.extras
        if extras is None:
            return
        if extras.timers is not None:
            extras.timers.cancel_all()
            extras.timers = None
        if extras.receive_timeout is not None:
            extras.receive_timeout.cancel()
            extras.receive_timeout = None

    def request_stop(self) -> None:
        _stopping.request_stop(self)

    def __repr__(self) -> str:
        return f"<Cell {self.ref.path} {self.state}>"


register_local_cell(Cell)


def _nothing() -> None:
    pass


def _copy_outcome(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())
