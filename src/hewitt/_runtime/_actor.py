"""The Actor base class and the Context a running actor sees."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from ._mailbox import Mailbox
    from ._ref import ActorRef
    from ._supervision import RestartType, SupervisorStrategy
    from ._system import ActorSystem
    from ._timers import Timers

M = TypeVar("M")
N = TypeVar("N")
T = TypeVar("T")

#: What a handler may return: nothing (sync handler) or an awaitable (async handler).
HandlerResult = Awaitable[None] | None
Behavior = Callable[[M], HandlerResult]


class Actor(Generic[M]):
    """Base class of actors that accept messages of type ``M``.

    Subclass it and implement :meth:`receive`. Instances are built by
    ``spawn`` (never call the class yourself): when the factory given to
    ``spawn`` is the class, ``self.context`` is already usable in
    ``__init__``; otherwise it is usable from :meth:`pre_start` on.

    Class attributes:

    - ``blocking = True`` runs this actor's handlers on the system's thread
      pool, for blocking calls that must not stall the loop.
    - ``supervisor_strategy``: how this actor supervises its children (None:
      one-for-one, restart, at most 10 restarts in 10 s).
    - ``trap_exits = True``: an abnormal exit of a linked actor arrives as an
      :class:`Exit` message instead of failing this actor.
    - ``ref_class``: the ActorRef subclass that ``spawn`` returns for this
      actor (a kernel hook: ``hewitt.routing`` uses it to route on the
      sender's side; see docs/architecture.md).
    """

    __slots__ = ("context",)

    context: Context[M]
    blocking: ClassVar[bool] = False
    supervisor_strategy: ClassVar[SupervisorStrategy | None] = None
    trap_exits: ClassVar[bool] = False
    ref_class: ClassVar[type[ActorRef[Any]] | None] = None

    @abstractmethod
    def receive(self, message: M) -> HandlerResult:
        """Handle one message. May be ``def`` (fast path) or ``async def``.

        Runs on the system's dispatcher (or its thread pool when ``blocking``),
        one message at a time. An async handler suspends only this actor: its
        mailbox keeps filling and the next message waits for it. Raising here
        is a failure, logged and handled by the supervisor (docs/supervision.md):
        by default the actor is restarted from its factory with its mailbox
        kept and the message retried; a message that failed 3 times in a row
        goes to dead letters and an ``ask`` waiting on it gets the exception.
        """

    def pre_start(self) -> HandlerResult:
        """Called on the dispatcher before the first message; may be async.

        Raising here stops the actor (the failure is logged).
        """
        return None

    def post_stop(self) -> HandlerResult:
        """Called on the dispatcher once the actor and all its children have
        stopped; may be async. Raising here is logged; the actor stops anyway."""
        return None

    def pre_restart(self, exc: BaseException, message: Any) -> None:
        """Called on the old instance when its supervisor restarts it, before its
        children are stopped. ``message`` is the one that failed (None when the
        restart comes from a sibling or a hook). Raising here is logged."""

    def post_restart(self, exc: BaseException) -> HandlerResult:
        """Called on the new instance after a restart, before the next message;
        may be async. By default it calls :meth:`pre_start`. Raising here is a
        failure of the new instance, reported to the supervisor."""
        return self.pre_start()


class Context(ABC, Generic[M]):
    """What a running actor can do: ``self.context`` inside an actor.

    All methods must be called from the actor's own handlers or hooks.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def self(self) -> ActorRef[M]:
        """This actor's own ref."""

    @property
    @abstractmethod
    def sender(self) -> ActorRef[Any] | None:
        """The sender of the message being handled (a temporary ref for an ask)."""

    @property
    @abstractmethod
    def parent(self) -> ActorRef[Any]:
        """The ref of the actor that spawned this one (a guardian for top-level actors)."""

    #: The actor system this actor lives in.
    system: ActorSystem

    @abstractmethod
    def children(self) -> list[ActorRef[Any]]:
        """Refs of the live children, in start order."""

    @abstractmethod
    def child(self, name: str) -> ActorRef[Any] | None:
        """The live child with this name, or None."""

    @abstractmethod
    def spawn(
        self,
        factory: Callable[..., Actor[N]],
        *args: Any,
        name: str | None = None,
        restart: RestartType | None = None,
        mailbox: Mailbox | None = None,
        **kwargs: Any,
    ) -> ActorRef[N]:
        """Start a child actor built by ``factory(*args, **kwargs)``; returns its ref.

        ``restart`` (default TRANSIENT: restarted after failures, a stop is
        final) is the child's restart type; ``mailbox`` its mailbox (default
        ``SystemConfig.default_mailbox``, unbounded). ``name``, ``restart`` and
        ``mailbox`` are reserved: they are not passed to the factory.
        """

    @abstractmethod
    def stop(self, ref: ActorRef[Any] | None = None) -> None:
        """Stop this actor (default) or one of its children.

        Stopping itself: the current message finishes, queued messages go to
        dead letters, children stop, then ``post_stop`` runs.
        """

    @abstractmethod
    def watch(self, ref: ActorRef[Any]) -> None:
        """Receive one :class:`Terminated` when ``ref`` stops (at once if it already has)."""

    @abstractmethod
    def unwatch(self, ref: ActorRef[Any]) -> None:
        """Stop watching ``ref``; no Terminated for it will be delivered afterwards."""

    @abstractmethod
    def link(self, ref: ActorRef[Any]) -> None:
        """Link this actor with ``ref`` both ways (Erlang): an abnormal exit of
        one makes the other fail with ``LinkedActorFailed``, unless it sets
        ``trap_exits`` and then receives :class:`Exit`. Linking a dead actor
        acts at once."""

    @abstractmethod
    def unlink(self, ref: ActorRef[Any]) -> None:
        """Remove the link with ``ref`` (both ways)."""

    @property
    @abstractmethod
    def timers(self) -> Timers:
        """This actor's timers (start_single_timer, start_periodic_timer, cancel)."""

    @abstractmethod
    def set_receive_timeout(self, seconds: float | None) -> None:
        """Get a ReceiveTimeout message after ``seconds`` without any message
        (and again after each further idle period); None turns it off."""

    @abstractmethod
    def become(self, behavior: Behavior[M], *, discard_old: bool = True) -> None:
        """Handle the next messages with ``behavior`` instead of the current one.

        With ``discard_old=False`` the current behaviour is kept on a stack that
        :meth:`unbecome` pops.
        """

    @abstractmethod
    def unbecome(self) -> None:
        """Go back to the previous behaviour (or to ``receive`` when the stack is empty)."""

    @abstractmethod
    def stash(self) -> None:
        """Put the current message aside until :meth:`unstash_all`."""

    @abstractmethod
    def unstash_all(self) -> None:
        """Put every stashed message back at the front of the mailbox, in order."""

    @abstractmethod
    def reply(self, message: Any) -> None:
        """Send ``message`` to the sender of the current message (dead letters if none)."""

    @abstractmethod
    def reply_failure(self, error: BaseException) -> None:
        """Answer the current message with a failure: an ``ask`` waiting on it
        raises ``error``; any other sender is sent ``Failure(error)``."""

    @abstractmethod
    def forward(self, ref: ActorRef[Any], message: Any) -> None:
        """Send ``message`` to ``ref`` keeping the current message's sender."""

    @abstractmethod
    def pipe_to(
        self,
        awaitable: Awaitable[T],
        ref: ActorRef[Any] | None = None,
        *,
        map_result: Callable[[T], Any] | None = None,
        map_failure: Callable[[BaseException], Any] | None = None,
    ) -> None:
        """Await ``awaitable`` in the background and send its outcome to ``ref``
        (default: this actor) as a message, so a handler need not wait.

        The result is sent as is (or ``map_result(result)``); an exception is
        sent as :class:`Failure` (or ``map_failure(exc)``).
        """
