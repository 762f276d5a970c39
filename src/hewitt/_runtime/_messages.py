"""Messages and events that the runtime itself sends or publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    from ._ref import ActorRef


@final
class PoisonPill:
    """A user message that stops its recipient when it is processed.

    Messages queued before it are processed first; messages after it go to dead
    letters. Use ``ref.stop()`` to stop an actor without waiting for its queue.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "PoisonPill"


POISON_PILL: Final = PoisonPill()


@dataclass(frozen=True, slots=True)
class Terminated:
    """Sent once to each watcher when the watched actor has stopped.

    ``reason`` is None for a normal stop, else the exception that ended it.
    """

    ref: ActorRef[Any]
    reason: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Exit:
    """Received by an actor with ``trap_exits = True`` when a linked actor exits.

    ``reason`` is None for a normal stop, else the exception that ended it.
    Without ``trap_exits``, an abnormal exit of a linked actor makes this actor
    fail with ``LinkedActorFailed`` instead.
    """

    ref: ActorRef[Any]
    reason: BaseException | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be delivered, published on the event stream."""

    message: Any
    sender: ActorRef[Any] | None
    recipient: ActorRef[Any]
    reason: str


@dataclass(frozen=True, slots=True)
class Failure:
    """What ``pipe_to`` sends when the awaited operation raised."""

    exception: BaseException


@dataclass(frozen=True, slots=True)
class ActorStarted:
    """Published on the event stream when an actor has started (``lifecycle_events``)."""

    ref: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class ActorStopped:
    """Published on the event stream when an actor has stopped (``lifecycle_events``)."""

    ref: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class ReceiveTimeout:
    """Sent to an actor that set a receive timeout and got no message for that long."""


@dataclass(frozen=True, slots=True)
class ActorRestarted:
    """Published on the event stream when an actor was restarted (``lifecycle_events``)."""

    ref: ActorRef[Any]
    reason: BaseException


@dataclass(frozen=True, slots=True)
class ActorFailed:
    """Published on the event stream when a handler raised."""

    ref: ActorRef[Any]
    message_type: str
    exception: BaseException
