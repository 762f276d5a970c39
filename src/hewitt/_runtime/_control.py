"""Control messages: what one actor's runtime tells another's about watching,
linking, stopping and failed asks.

They travel on the control lane (``Recipient.deliver_system``), never through
a mailbox, so that they overtake user messages and are never refused by a full
bounded mailbox. Every field is a ref (an address on the wire) or plain data:
the kernel codec (``_codec.py``) has a schema for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ref import ActorRef


@dataclass(frozen=True, slots=True)
class Watch:
    """``watcher`` wants one DeathNotice when the recipient stops."""

    watcher: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Unwatch:
    watcher: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Link:
    """``other`` links itself with the recipient (both ways: the recipient
    answers with nothing, or with an ExitNotice at once if it is gone)."""

    other: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Unlink:
    other: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the recipient (``ref.stop()``)."""


@dataclass(frozen=True, slots=True)
class DeathNotice:
    """To a watcher: ``ref`` has stopped (``reason`` None: normally).
    The watcher's runtime turns it into a :class:`Terminated` message."""

    ref: ActorRef[Any]
    reason: BaseException | None


@dataclass(frozen=True, slots=True)
class ExitNotice:
    """To a linked actor: ``ref`` has exited (``reason`` None: normally).
    Becomes an :class:`Exit` message or a ``LinkedActorFailed`` failure."""

    ref: ActorRef[Any]
    reason: BaseException | None


@dataclass(frozen=True, slots=True)
class AskFailed:
    """To a temporary (ask) ref: the ask failed with ``error``."""

    error: BaseException


ControlMessage = Watch | Unwatch | Link | Unlink | Stop | DeathNotice | ExitNotice | AskFailed

STOP = Stop()
