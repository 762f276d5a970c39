"""An actor's turns: handling its messages, its hooks, its async handlers and
its blocking handlers; building its instance, starting and failing.

A mixin of :class:`~hewitt._runtime._cell.Cell` (the runtime state and the
delivery live in ``_cell.py``, the Context API in ``_context.py``). All of it
runs on the system's loop thread, except a blocking actor's handlers, which
run on a pool thread in the actor's own context.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import Context as VarContext
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _stopping, _supervise
from ._actor import Actor
from ._envelope import Item
from ._errors import ActorInitializationError
from ._handlers import CLASS_INFO, ClassInfo, Handler, call_in_context, class_info
from ._lifecycle import RESTARTING, RUNNING, STARTING, STOPPED, STOPPING, SUSPENDED, transition
from ._marks import ENVELOPE, NOTHING
from ._messages import POISON_PILL, ActorStarted
from ._ref import CURRENT_ACTOR

if TYPE_CHECKING:
    from ._extras import Extras
    from ._mailbox import PriorityMailbox
    from ._ref import ActorRef
    from ._system import ActorSystem

M = TypeVar("M")

logger = logging.getLogger("hewitt")


class TurnsMixin(Generic[M]):
    if not TYPE_CHECKING:  # mypy would refuse the attributes the concrete class declares
        __slots__ = ()

    if TYPE_CHECKING:
        system: ActorSystem
        ref: ActorRef[M]
        actor: Actor[M] | None
        receive: Handler | None
        mailbox: deque[Item] | PriorityMailbox | None
        pending: Item
        scheduled: bool
        state: int
        stop_requested: bool
        envelope: Item
        suspended: asyncio.Future[Any] | None
        high_water: int
        vars: VarContext | None
        extras: Extras | None
        factory: Any
        args: tuple[Any, ...]
        kwargs: dict[str, Any]

        @property
        def has_messages(self) -> bool: ...
        def stop(self, ref: ActorRef[Any] | None = None) -> None: ...

    def new_vars(self) -> VarContext:
        """The actor's own contextvars.Context, where its handlers run (made at
        its first turn: a copy of its system's template, see RunningTurn)."""
        variables = self.vars = self.system._actor_context.copy()
        return variables

    def own_vars(self) -> VarContext:
        """The actor's context, with its own ref set in it (for the handlers that
        run outside its turns: async handlers, hooks, blocking handlers)."""
        variables = self.vars
        if variables is None:
            variables = self.new_vars()
        if variables.get(CURRENT_ACTOR) is not self.ref:
            if self.system._dispatcher.current is self:
                CURRENT_ACTOR.set(self.ref)  # in its own turn: this is its context
            else:
                try:
                    variables.run(CURRENT_ACTOR.set, self.ref)
                except RuntimeError:  # entered elsewhere: a copy with the ref
                    variables = variables.copy()
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
            _stopping.terminate(self)  # type: ignore[arg-type]  # self is the Cell
            return
        state = self.state
        if state in (SUSPENDED, RESTARTING):
            return  # stays "scheduled": the restart (or its supervisor) resumes it
        if state == STARTING and self.extras is not None and self.extras.restart_cause:
            return  # rebuilt by a restart, which has queued it already
        if self.has_messages or state == STARTING:
            self.system._dispatcher.schedule(self)  # type: ignore[arg-type]  # self is the Cell
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
        variables = self.own_vars()
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
            future: asyncio.Future[Any] = loop.create_task(result, context=self.own_vars())
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
            _stopping.finalize(self)  # type: ignore[arg-type]  # self is the Cell
            return
        if state == RESTARTING:  # restarted (by a sibling's failure) while it awaited
            if exc is not None:
                logger.error("actor %s failed while being restarted", self.ref.path, exc_info=exc)
            self.envelope = None
            _supervise.maybe_complete_restart(self)  # type: ignore[arg-type]  # self is the Cell
            return
        if exc is not None:
            if state == STARTING:
                self._start_failed(exc)
            else:
                self.on_failure(exc, self.envelope)
        elif state == STARTING:
            transition(self, RUNNING)  # type: ignore[arg-type]  # self is the Cell
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
                    actor.context = self  # type: ignore[assignment]  # self is the Cell
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
                variables = self.own_vars()
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
        transition(self, RUNNING)  # type: ignore[arg-type]  # self is the Cell
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
        transition(self, RUNNING)  # type: ignore[arg-type]  # self is the Cell
        if extras is not None:
            extras.restart_cause = None
        error = ActorInitializationError(
            f"{self.ref.path}: {hook} raised {type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        _supervise.handle_failure(self, exc if restarted else error, None)  # type: ignore[arg-type]  # self is the Cell

    def on_failure(self, exc: BaseException, item: Item) -> None:
        _supervise.handle_failure(self, exc, item)  # type: ignore[arg-type]  # self is the Cell


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
