"""Pool and Group routers: actors that forward each message to one of their routees."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

from hewitt import (
    Actor,
    ActorRef,
    Mailbox,
    MailboxFull,
    PoisonPill,
    SupervisorStrategy,
    Terminated,
)

# The kernel details sender-side routing needs (see RouterRef and the
# ``ref_class`` hook in docs/architecture.md): the implicit sender of a tell
# inside a handler, and the envelope of a message with a sender.
from .._runtime._envelope import envelope
from .._runtime._marks import ENVELOPE
from .._runtime._ref import implicit_sender
from ._messages import (
    AddRoutee,
    Broadcast,
    GetRoutees,
    GroupCommand,
    InvalidRouterConfig,
    PoolCommand,
    RemoveRoutee,
    Resize,
    RouterCommand,
)
from ._strategies import RoundRobin, Routees, RoutingLogic, RoutingStrategy

logger = logging.getLogger("hewitt")

M = TypeVar("M")
R = TypeVar("R")

#: The reason of the dead letter of a message that arrives when there is no routee.
NO_ROUTEES: Final = "router has no routees"

# What the router handles itself, by exact type: one set lookup per message
# (cheaper than isinstance with a tuple; the commands are final classes).
_OWN: Final = frozenset(
    {Broadcast, GetRoutees, Resize, AddRoutee, RemoveRoutee, Terminated, PoisonPill}
)


def _forward(ref: ActorRef[Any], message: Any, sender: ActorRef[Any] | None) -> None:
    """Deliver to a routee keeping the original sender, even when it is None
    (a ``tell`` inside the router's handler would put the router in)."""
    ref._recipient.deliver(ref, envelope(message, sender))


class RouterRef(ActorRef[R]):
    """The ref ``spawn`` returns for a router: it routes on the sender's side.

    When the router is idle (running, nothing queued, on its system's thread)
    and the message is not a router command, ``tell`` selects the routee
    right here and delivers to it, keeping the sender, instead of going
    through the router's mailbox: one hop instead of two (Akka's routed refs
    do the same). Otherwise the message goes to the router's mailbox as
    usual, so the order of what one sender sends is never changed.
    """

    __slots__ = ()

    def tell(self, message: Any, sender: ActorRef[Any] | None = None) -> None:
        if sender is None:
            sender = implicit_sender()
        recipient: Any = self._recipient
        # The kernel hook for sender-side routing: the router instance when its
        # cell is running, idle and on this thread (docs/architecture.md).
        idle_actor = getattr(recipient, "idle_actor", None)
        router = idle_actor() if idle_actor is not None and type(message) not in _OWN else None
        if router is None:
            recipient.deliver(self, message if sender is None else (message, sender, ENVELOPE))
            return
        routees = router._routees
        if router._round_robin and routees:  # no routee: _route dead-letters
            i = router._next
            if i >= len(routees):
                i = 0
            router._next = i + 1
            routee = routees[i]
            routee._recipient.deliver(
                routee, message if sender is None else (message, sender, ENVELOPE)
            )
            return
        router._route(message, sender)


class Router(Actor[R]):
    """What :class:`Pool` and :class:`Group` share: routing and the common commands.

    Not spawned directly. Every message that is not one of the router commands
    (nor a ``Terminated`` of a routee) is forwarded, with its original sender,
    to the routee(s) the strategy selects; so an ``ask`` through a router is
    answered by a routee. Its ref is a :class:`RouterRef`.

    A routee whose bounded mailbox refuses the message (``Overflow.FAIL`` or
    ``BLOCK``, full) does not fail the router: the message is a dead letter
    naming the routee and its capacity, and an ``ask`` fails at once with
    ``DeliveryError``. It is not sent to another routee instead.
    """

    ref_class = RouterRef

    # Set by pre_start: self.context is not usable in __init__ when the factory
    # is a subscripted class (Pool[Job]).
    _select: Callable[[Any, Routees], ActorRef[Any] | None]
    _route: Callable[[Any, ActorRef[Any] | None], None]
    _next: int  # the round-robin position
    #: RouterRef may queue on the routee itself (its inlined round-robin):
    #: round-robin, and no routee can refuse a message (see _set_routees).
    _round_robin: bool

    def __init__(self, strategy: RoutingStrategy) -> None:
        if not isinstance(strategy, RoutingStrategy):
            raise InvalidRouterConfig(
                f"{type(self).__name__}: strategy must be a RoutingStrategy "
                f"(RoundRobin(), ConsistentHashing(key=...), ...), got {strategy!r}"
            )
        self.strategy = strategy
        self._routees: Routees = ()
        #: the routees whose mailbox may refuse a message
        self._refusing: frozenset[ActorRef[Any]] = frozenset()

    def pre_start(self) -> None:
        """Create the strategy's logic. Runs on the dispatcher before the first
        message, and again (from ``post_restart``) on a restarted router."""
        logic: RoutingLogic = self.strategy.create_logic(self.context.system)
        self._select = logic.select
        self._next = 0
        self._round_robin = type(self.strategy) is RoundRobin
        # Round-robin, the most common strategy, is inlined: one call less.
        self._route = (
            self._route_round_robin if type(self.strategy) is RoundRobin else self._route_any
        )

    def _set_routees(self, routees: Routees) -> None:
        """Replace the routees (a new tuple: the strategies detect changes by
        identity) and note which of them may refuse a message.

        A routee may refuse unless it is a live actor of this system with an
        unbounded mailbox. While one may, RouterRef does not queue on routees
        itself (it could not catch the refusal): round-robin then goes through
        ``_route_round_robin``, which turns a refusal into a dead letter.
        """
        stats = self.context.system.actor_statistics
        old = set(self._routees)
        refusing = {ref for ref in self._refusing if ref in routees}
        for ref in routees:
            if ref not in old:
                info = stats(ref)
                if info is None or info.capacity is not None:
                    refusing.add(ref)
        self._routees = routees
        self._refusing = frozenset(refusing)
        self._round_robin = type(self.strategy) is RoundRobin and not refusing

    def receive(self, message: Any) -> None:
        """Forward ``message`` to the selected routee(s), or handle a command.

        Runs on the dispatcher (or on the sender's side, see RouterRef). With
        no routee, when the strategy raises (a consistent-hashing key function
        that fails), or when the routee's mailbox refuses it, the message is a
        dead letter; the router does not fail.
        """
        if type(message) in _OWN:
            self._command(message)
            return
        self._route(message, self.context.sender)

    def _route_any(self, message: Any, sender: ActorRef[Any] | None) -> None:
        routees = self._routees
        if not routees:
            self._dead_letter(message, sender, NO_ROUTEES)
            return
        try:
            ref = self._select(message, routees)
        except Exception as exc:
            self._routing_failed(message, sender, exc)
            return
        if ref is None:
            self._broadcast(message, sender)
            return
        try:
            _forward(ref, message, sender)
        except MailboxFull as full:
            self._dead_letter(message, sender, _refused(full))

    def _route_round_robin(self, message: Any, sender: ActorRef[Any] | None) -> None:
        routees = self._routees
        i = self._next
        if i >= len(routees):
            if not routees:
                self._dead_letter(message, sender, NO_ROUTEES)
                return
            i = 0
        self._next = i + 1
        try:
            _forward(routees[i], message, sender)
        except MailboxFull as full:
            self._dead_letter(message, sender, _refused(full))

    def _broadcast(self, message: Any, sender: ActorRef[Any] | None) -> None:
        """Tell every routee. A copy a routee refuses is a dead letter; it
        carries the sender only if every routee refused (so that an ask fails
        at once then, and waits for a routee's reply otherwise)."""
        refusals = []
        for ref in self._routees:
            try:
                _forward(ref, message, sender)
            except MailboxFull as full:
                refusals.append(full)
        if refusals:
            taken = len(refusals) < len(self._routees)
            for refusal in refusals:
                self._dead_letter(message, None if taken else sender, _refused(refusal))

    # ------------------------------------------------------------------

    def _command(self, message: Any) -> None:
        if isinstance(message, Terminated):
            self._remove(message.ref)
        elif isinstance(message, Broadcast):
            if not self._routees:
                self._dead_letter(message, self.context.sender, NO_ROUTEES)
                return
            self._broadcast(message.message, self.context.sender)
        elif isinstance(message, GetRoutees):
            self.context.reply(list(self._routees))
        else:
            self._manage(message)

    def _manage(self, message: RouterCommand) -> None:
        self._dead_letter(
            message,
            self.context.sender,
            f"{type(self).__name__} routers do not handle {type(message).__name__}",
        )

    def _remove(self, ref: ActorRef[Any]) -> bool:
        routees = self._routees
        if ref not in routees:
            return False
        self._set_routees(tuple(routee for routee in routees if routee != ref))
        return True

    def _reply_size(self) -> None:
        if self.context.sender is not None:
            self.context.reply(len(self._routees))

    def _dead_letter(self, message: Any, sender: ActorRef[Any] | None, reason: str) -> None:
        context = self.context
        context.system.dead_letter(message, sender, context.self, reason)

    def _routing_failed(self, message: Any, sender: ActorRef[Any] | None, exc: Exception) -> None:
        reason = f"routing failed: {type(exc).__name__}: {exc}"
        logger.error(
            "%s: %s for a %s message",
            self.context.self.path,
            reason,
            type(message).__qualname__,
            exc_info=exc,
        )
        self._dead_letter(message, sender, reason)


def _refused(full: MailboxFull) -> str:
    return f"routee {full.path} refused it: mailbox full (capacity {full.capacity})"


class Pool(Router[M | PoolCommand]):
    """A router that spawns, supervises and routes to its own routees.

    ::

        workers = system.spawn(Pool[Job], RoundRobin(), Worker, db, size=5, name="workers")

    The routees are children of the router, built by ``factory(*args,
    **kwargs)`` and named ``routee-1``, ``routee-2``... (so their paths are
    ``/user/workers/routee-1``...). The router's ``supervisor_strategy``
    applies to them: by default a failing routee is restarted (same ref, still
    routed to); a routee that stops is removed. :class:`Resize` grows or
    shrinks the pool (newest routees stop first). Stopping the router
    (``POISON_PILL``, ``ref.stop()``) stops its routees.

    A restarted router (its own failure, or restart intensity exceeded) stops
    its routees and starts ``size`` fresh ones: the resized size is not kept.

    Args:
        strategy: how each message picks its routee.
        factory: the routees' factory (an Actor class or a function).
        *args: positional arguments of the factory.
        size: how many routees to start (an int >= 0; keyword).
        supervisor_strategy: how the router supervises its routees (default:
            one-for-one restart, see docs/supervision.md).
        routee_mailbox: the mailbox of each routee, e.g.
            ``Mailbox.bounded(100, Overflow.FAIL)`` (default:
            ``SystemConfig.default_mailbox``). A message a full routee refuses
            is a dead letter (see :class:`Router`). ``spawn(Pool, ...,
            mailbox=...)`` sets the router's own mailbox.
        **kwargs: keyword arguments of the factory (``name``, ``restart`` and
            ``mailbox`` are ``spawn``'s own).

    Subscript it for a typed ref: ``spawn(Pool[Job], ...)`` returns an
    ``ActorRef[Job | PoolCommand]``; unsubscripted, the message type is Any.
    """

    def __init__(
        self,
        strategy: RoutingStrategy,
        factory: Callable[..., Actor[M]],
        *args: Any,
        size: int,
        supervisor_strategy: SupervisorStrategy | None = None,
        routee_mailbox: Mailbox | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(strategy)
        if not callable(factory):
            raise InvalidRouterConfig(f"Pool: factory must be callable, got {factory!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidRouterConfig(f"Pool: size must be an int >= 0, got {size!r}")
        if routee_mailbox is not None and not isinstance(routee_mailbox, Mailbox):
            raise InvalidRouterConfig(
                f"Pool: routee_mailbox must be a hewitt.Mailbox, got {routee_mailbox!r}"
            )
        reserved = sorted({"name", "restart", "mailbox"} & kwargs.keys())
        if reserved:
            raise InvalidRouterConfig(
                f"Pool: {', '.join(reserved)}= is spawn's own keyword, not one the routees' "
                "factory can be given; give the routees a mailbox with routee_mailbox="
            )
        if supervisor_strategy is not None:
            if not isinstance(supervisor_strategy, SupervisorStrategy):
                raise InvalidRouterConfig(
                    "Pool: supervisor_strategy must be a SupervisorStrategy, "
                    f"got {supervisor_strategy!r}"
                )
            # The runtime reads the strategy from the instance first.
            self.supervisor_strategy = supervisor_strategy  # type: ignore[misc]
        self.factory = factory
        self.args = args
        self.kwargs: Mapping[str, Any] = MappingProxyType(kwargs)
        self.size = size
        self.routee_mailbox = routee_mailbox
        self._spawned = 0

    def pre_start(self) -> None:
        """Create the strategy's logic and spawn ``size`` routees (again after a
        restart). Raising here (a routee factory that fails) stops the router."""
        super().pre_start()
        self._grow(self.size)

    def _grow(self, size: int) -> None:
        context = self.context
        added = []
        for _ in range(size - len(self._routees)):
            self._spawned += 1
            ref = context.spawn(
                self.factory,
                *self.args,
                name=f"routee-{self._spawned}",
                mailbox=self.routee_mailbox,
                **self.kwargs,
            )
            context.watch(ref)
            added.append(ref)
        self._set_routees((*self._routees, *added))

    def _manage(self, message: RouterCommand) -> None:
        if isinstance(message, Resize):
            routees = self._routees
            if message.size > len(routees):
                self._grow(message.size)
            elif message.size < len(routees):
                self._set_routees(routees[: message.size])
                for ref in reversed(routees[message.size :]):
                    self.context.stop(ref)
            self._reply_size()
        else:
            super()._manage(message)


class Group(Router[M | GroupCommand]):
    """A router over actors that already exist (it does not own them).

    ::

        shards = system.spawn(Group[Put | Get], ConsistentHashing(key=lambda m: m.key), refs)

    Each routee is watched and removed when it stops. :class:`AddRoutee` and
    :class:`RemoveRoutee` change the routees; a removed routee is not stopped,
    nor are the routees when the router stops. A restarted router goes back
    to the routees it was spawned with (those still alive).

    Args:
        strategy: how each message picks its routee.
        routees: the initial routees, in routing order (duplicates are dropped).

    Subscript it for a typed ref: ``spawn(Group[Job], ...)`` returns an
    ``ActorRef[Job | GroupCommand]``; unsubscripted, the message type is Any.
    """

    def __init__(self, strategy: RoutingStrategy, routees: Iterable[ActorRef[M]]) -> None:
        super().__init__(strategy)
        initial = tuple(dict.fromkeys(routees))
        for ref in initial:
            if not isinstance(ref, ActorRef):
                raise InvalidRouterConfig(f"Group: routees must be ActorRefs, got {ref!r}")
        self.initial: Routees = initial

    def pre_start(self) -> None:
        """Create the strategy's logic and watch the initial routees. One that
        has stopped already is left out now: its Terminated would come after
        the messages queued meanwhile, which would still be routed to it."""
        super().pre_start()
        alive = tuple(ref for ref in self.initial if ref.is_alive)
        for ref in alive:
            self.context.watch(ref)
        self._set_routees(alive)

    def _manage(self, message: RouterCommand) -> None:
        if isinstance(message, AddRoutee):
            if message.ref not in self._routees and message.ref.is_alive:  # see pre_start
                self.context.watch(message.ref)
                self._set_routees((*self._routees, message.ref))
            self._reply_size()
        elif isinstance(message, RemoveRoutee):
            if self._remove(message.ref):
                self.context.unwatch(message.ref)
            self._reply_size()
        else:
            super()._manage(message)
