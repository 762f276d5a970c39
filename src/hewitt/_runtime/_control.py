"""Control messages: what one actor's runtime tells another's about watching,
linking, stopping and failed asks.

They travel on the control lane (``Recipient.deliver_system``), never through
a mailbox, so that they overtake user messages and are never refused by a full
bounded mailbox. Every field is a ref (an address on the wire) or plain data:
the kernel codec (``_codec.py``) has a schema for each.

Plain slotted classes, not dataclasses: they are the runtime's own, compared
only by type, and a dataclass costs a millisecond or more of ``import hewitt``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ref import ActorRef


class _Control:
    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Watch(_Control):
    """``watcher`` wants one DeathNotice when the recipient stops."""

    __slots__ = ("watcher",)

    def __init__(self, watcher: ActorRef[Any]) -> None:
        self.watcher = watcher


class Unwatch(_Control):
    __slots__ = ("watcher",)

    def __init__(self, watcher: ActorRef[Any]) -> None:
        self.watcher = watcher


class Link(_Control):
    """``other`` links itself with the recipient (both ways: the recipient
    answers with nothing, or with an ExitNotice at once if it is gone)."""

    __slots__ = ("other",)

    def __init__(self, other: ActorRef[Any]) -> None:
        self.other = other


class Unlink(_Control):
    __slots__ = ("other",)

    def __init__(self, other: ActorRef[Any]) -> None:
        self.other = other


class Stop(_Control):
    """Stop the recipient (``ref.stop()``)."""

    __slots__ = ()


class DeathNotice(_Control):
    """To a watcher: ``ref`` has stopped (``reason`` None: normally).
    The watcher's runtime turns it into a :class:`Terminated` message."""

    __slots__ = ("reason", "ref")

    def __init__(self, ref: ActorRef[Any], reason: BaseException | None) -> None:
        self.ref = ref
        self.reason = reason


class ExitNotice(_Control):
    """To a linked actor: ``ref`` has exited (``reason`` None: normally).
    Becomes an :class:`Exit` message or a ``LinkedActorFailed`` failure."""

    __slots__ = ("reason", "ref")

    def __init__(self, ref: ActorRef[Any], reason: BaseException | None) -> None:
        self.ref = ref
        self.reason = reason


class AskFailed(_Control):
    """To a temporary (ask) ref: the ask failed with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


ControlMessage = Watch | Unwatch | Link | Unlink | Stop | DeathNotice | ExitNotice | AskFailed

STOP = Stop()
