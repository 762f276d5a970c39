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
from collections.abc import Callable
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
from ._extras import Extras
from ._handlers import (
    EMPTY_ARGS,
    EMPTY_KWARGS,
    ClassInfo,
    Handler,
    info_for_factory,
)
from ._lifecycle import RESTARTING, RUNNING, STARTING, STOPPING
from ._mailbox import Admission, MailboxFull, Overflow, PriorityMailbox
from ._marks import ENVELOPE, NOTHING
from ._messages import Exit
from ._ref import ActorRef, register_local_cell
from ._supervision import RestartType
from ._turns import TurnsMixin

if TYPE_CHECKING:
    from ._system import ActorSystem

M = TypeVar("M")

logger = logging.getLogger("hewitt")


class Cell(ContextApi[M], TurnsMixin[M], Generic[M]):
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
        if mailbox is None or type(mailbox) is deque:
            self.deliver(self.ref, item)  # an unbounded mailbox: as any message
            return
        mailbox.force(item)  # type: ignore[union-attr]
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
