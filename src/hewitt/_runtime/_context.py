"""The Context API: what a running actor can do (``self.context``).

A mixin of :class:`~hewitt._runtime._cell.Cell` (so an actor costs no extra
object). Every method may be called from the actor's own handlers and hooks,
including from the pool thread of a ``blocking`` actor: a call made off the
event-loop thread runs on the loop and waits for it there.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from threading import get_ident
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _deathwatch, _stopping
from ._actor import Actor, Behavior, Context
from ._asks import fail_ask
from ._envelope import Item, describe, envelope, split
from ._errors import ActorNameTaken, ActorSystemNotRunning, InvalidActorName, StashOverflow
from ._handlers import CLASS_INFO, as_handler, class_info, info_for_factory
from ._lifecycle import RESTARTING, RUNNING, STOPPING, SUSPENDED
from ._lifecycle import name as lifecycle_name
from ._mailbox import Mailbox
from ._messages import ActorStarted, Failure
from ._ref import ActorRef
from ._supervision import RestartType
from ._timers import ReceiveTimeoutState, Timers

if TYPE_CHECKING:
    from ._cell import Cell
    from ._extras import Extras
    from ._handlers import ClassInfo, Handler
    from ._system import ActorSystem

M = TypeVar("M")
N = TypeVar("N")
T = TypeVar("T")

_VALID_NAME = re.compile(r"[A-Za-z0-9_\-.:@+=~,!*'()]+")


class ContextApi(Context[M], Generic[M]):
    if not TYPE_CHECKING:  # mypy would refuse the attributes the concrete class declares
        __slots__ = ()

    if TYPE_CHECKING:
        system: ActorSystem
        ref: ActorRef[M]
        actor: Actor[M] | None
        receive: Handler | None
        envelope: Item
        state: int
        stop_requested: bool
        stop_final: bool
        restart_type: RestartType
        parent_cell: Cell[Any] | None
        child_cells: dict[str, Cell[Any]] | None
        extras: Extras | None
        mailbox: Any

        def get_extras(self) -> Extras: ...
        def build(self, info: ClassInfo | None = None) -> None: ...
        def front_deque(self) -> Any: ...
        def in_pool(self, handler: Handler) -> Handler: ...

    def _off_loop(self) -> bool:
        return get_ident() != self.system._loop_thread_id

    # ------------------------------------------------------------------
    # Who

    @property
    def self(self) -> ActorRef[M]:
        return self.ref

    @property
    def sender(self) -> ActorRef[Any] | None:
        return split(self.envelope)[1]

    @property
    def parent(self) -> ActorRef[Any]:
        parent = self.parent_cell
        return parent.ref if parent is not None else self.ref

    def children(self) -> list[ActorRef[Any]]:
        if self._off_loop():
            return self.system._call_on_loop_blocking(self.children)
        return [child.ref for child in (self.child_cells or {}).values()]

    def child(self, name: str) -> ActorRef[Any] | None:
        if self._off_loop():
            return self.system._call_on_loop_blocking(self.child, name)
        children = self.child_cells
        found = children.get(name) if children else None
        return found.ref if found is not None else None

    # ------------------------------------------------------------------
    # Spawning

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

    def spawn_child(
        self,
        factory: Callable[..., Actor[N]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        restart: RestartType | None = None,
        mailbox: Mailbox | None = None,
        replacing: bool = False,
    ) -> ActorRef[N]:
        """Build and register a child (event-loop thread). ``replacing``: a new
        incarnation of a permanent child, under its old (maybe generated) name."""
        state = self.state
        if state >= STOPPING or self.stop_requested:
            raise ActorSystemNotRunning(f"cannot spawn a child of {self.ref.path}: it is stopping")
        if state in (RESTARTING, SUSPENDED):
            # Its children are stopping for the restart, which waits for them all.
            raise ActorSystemNotRunning(
                f"cannot spawn a child of {self.ref.path}: it is {lifecycle_name(state)}"
            )
        children = self.child_cells
        if children is None:
            children = self.child_cells = {}
        system = self.system
        if name is None:
            name = f"${next(system._names):x}"
        elif name in children:
            raise ActorNameTaken(f"{self.ref.path} already has a live child named {name!r}")
        elif replacing:
            pass
        elif name.startswith("$") or _VALID_NAME.fullmatch(name) is None:
            raise InvalidActorName(
                f"invalid actor name {name!r} under {self.ref.path}: use letters, digits "
                "and -_.:@+=~,!*'() (a leading '$' is reserved for generated names)"
            )
        if restart is not None and not isinstance(restart, RestartType):
            raise TypeError(f"restart must be a RestartType, got {restart!r}")
        if mailbox is None:
            mailbox = system._default_mailbox
        elif not isinstance(mailbox, Mailbox):
            raise TypeError(f"mailbox must be a hewitt.Mailbox, got {mailbox!r}")
        info = CLASS_INFO.get(factory) or info_for_factory(factory)
        cell_class: Any = type(self)  # a Cell: this mixin is only ever part of one
        cell: Cell[N] = cell_class(
            system, self, name, self.ref._path + "/" + name, factory, args, kwargs, info
        )
        if restart is not None:
            cell.restart_type = restart
        if mailbox is not None and not mailbox.is_plain:
            cell.mailbox = mailbox.build(cell)
        cell.build(info)
        children[name] = cell
        system._live += 1
        actor: Any = cell.actor
        if info is not None and type(actor) is factory:
            needs_start = info.needs_start
        else:
            needs_start = class_info(type(actor)).needs_start
        if needs_start:
            cell.scheduled = True
            system._dispatcher.schedule(cell)
        else:
            # Nothing to wait for: it enters its lifecycle in RUNNING (see _lifecycle).
            cell.state = RUNNING
            if system.config.lifecycle_events:
                system.event_stream.publish(ActorStarted(cell.ref))
        return cell.ref

    # ------------------------------------------------------------------
    # Stopping, watching, linking

    def stop(self, ref: ActorRef[Any] | None = None) -> None:
        if ref is None or ref is self.ref or ref == self.ref:
            if get_ident() != self.system._loop_thread_id:
                self.system._call_on_loop(self.stop)
                return
            if self.stop_requested or self.state >= STOPPING:
                return
            if self.system._dispatcher.current is self:
                # In its own handler (the usual case): the turn's end terminates.
                self.stop_requested = True
                self.receive = None
                return
            _stopping.request_stop(self)  # type: ignore[arg-type]
            return
        if self._off_loop():
            self.system._call_on_loop_blocking(self.stop, ref)
            return
        if ref.path.rpartition("/")[0] != self.ref.path:
            raise ValueError(
                f"{self.ref.path} can only stop itself or its children, not {ref.path}; "
                "use ref.stop() to stop any actor"
            )
        children = self.child_cells
        target = children.get(ref.name) if children else None
        if target is None or target.ref != ref:
            return  # a child that has already gone
        target.stop_final = True  # a supervisor's own stop is never undone by a restart
        _stopping.request_stop(target)

    def watch(self, ref: ActorRef[Any]) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.watch, ref)
            return
        _deathwatch.watch(self, ref)  # type: ignore[arg-type]

    def unwatch(self, ref: ActorRef[Any]) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.unwatch, ref)
            return
        _deathwatch.unwatch(self, ref)  # type: ignore[arg-type]

    def link(self, ref: ActorRef[Any]) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.link, ref)
            return
        _deathwatch.link(self, ref)  # type: ignore[arg-type]

    def unlink(self, ref: ActorRef[Any]) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.unlink, ref)
            return
        _deathwatch.unlink(self, ref)  # type: ignore[arg-type]

    # ------------------------------------------------------------------
    # Time

    @property
    def timers(self) -> Timers:
        if self._off_loop():  # a blocking actor's pool thread: made on the loop
            return self.system._call_on_loop_blocking(lambda: self.timers)
        extras = self.get_extras()
        timers = extras.timers
        if timers is None:
            timers = extras.timers = Timers(self)  # type: ignore[arg-type]
        return timers

    def set_receive_timeout(self, seconds: float | None) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.set_receive_timeout, seconds)
            return
        extras = self.get_extras()
        if extras.receive_timeout is not None:
            extras.receive_timeout.cancel()
            extras.receive_timeout = None
        if seconds is not None:
            extras.receive_timeout = ReceiveTimeoutState(self, seconds)  # type: ignore[arg-type]

    # ------------------------------------------------------------------
    # Behaviour and stash

    def become(self, behavior: Behavior[M], *, discard_old: bool = True) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.become, behavior, discard_old=discard_old)
            return
        if self.stop_requested:
            return
        if not discard_old:
            extras = self.get_extras()
            if extras.behaviors is None:
                extras.behaviors = []
            current = self.receive
            assert current is not None
            extras.behaviors.append(current)
        handler = as_handler(behavior, self.actor)
        actor = self.actor
        if actor is not None and class_info(type(actor)).blocking:
            handler = self.in_pool(handler)
        self.receive = handler

    def unbecome(self) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.unbecome)
            return
        if self.stop_requested:
            return
        extras = self.extras
        behaviors = extras.behaviors if extras is not None else None
        if behaviors:
            self.receive = behaviors.pop()
        elif self.actor is not None:
            info = class_info(type(self.actor))
            self.receive = info.receive if not info.blocking else self.in_pool(info.receive)

    def stash(self) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.stash)
            return
        item = self.envelope
        if item is None or self.state not in (RUNNING, RESTARTING):
            # (RESTARTING: an async handler that awaited while its actor was
            # being restarted; the stash comes back in front of the new instance.)
            raise RuntimeError(f"{self.ref.path}: stash() outside a message handler")
        extras = self.get_extras()
        stash = extras.stash
        if stash is None:
            stash = extras.stash = deque()
        capacity = self.system.config.stash_capacity
        if len(stash) >= capacity:
            raise StashOverflow(
                f"{self.ref.path}: stash is full ({capacity} messages); "
                f"cannot stash {describe(split(item)[0])}"
            )
        stash.append(item)

    def unstash_all(self) -> None:
        if self._off_loop():
            self.system._call_on_loop_blocking(self.unstash_all)
            return
        extras = self.extras
        stash = extras.stash if extras is not None else None
        if not stash:
            return
        self.front_deque().extendleft(reversed(stash))
        stash.clear()

    # ------------------------------------------------------------------
    # Replies

    def reply(self, message: Any) -> None:
        sender = split(self.envelope)[1]
        if sender is None:
            self.system._dead_letter(message, self.ref, self.ref, "reply with no sender")
            return
        sender.tell(message, self.ref)

    def reply_failure(self, error: BaseException) -> None:
        sender = split(self.envelope)[1]
        if fail_ask(sender, error):
            return
        if sender is None:
            self.system._dead_letter(Failure(error), self.ref, self.ref, "reply with no sender")
            return
        sender.tell(Failure(error), self.ref)

    def forward(self, ref: ActorRef[Any], message: Any) -> None:
        # Straight to the recipient: the original sender is kept even when it
        # is None (a tell would put this actor in as the sender).
        ref._recipient.deliver(ref, envelope(message, split(self.envelope)[1]))

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
