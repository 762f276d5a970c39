"""What a cell calls and carries: mailbox items, handlers, per-class facts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._actor import Actor, Behavior, HandlerResult
from ._marks import ENVELOPE
from ._ref import ActorRef

# A mailbox item is the message itself when it was told without a sender (the
# common case, allocation-free), else a (message, sender, ENVELOPE) tuple.
#
# Queued items live in ``pending`` while there is at most one (most actors in a
# fan-out or a tree of workers never hold more), and in a deque from the second
# on. A deque costs 760 bytes and a malloc, so it is created only then, and
# dropped when the actor goes idle: idle actors stay small.
Envelope = tuple[Any, ActorRef[Any] | None]
Item = Any


# A cell calls its current handler as handler(actor, message): for the class's
# own receive that is the plain function, so no bound method is allocated (and
# tracked by the garbage collector) per actor.
Handler = Callable[[Any, Any], HandlerResult]


class ClassInfo:
    __slots__ = ("blocking", "needs_start", "receive", "ref_class")

    def __init__(self, cls: type[Actor[Any]]) -> None:
        self.receive: Handler = cls.receive
        self.needs_start = cls.pre_start is not Actor.pre_start
        self.blocking = bool(cls.blocking)
        self.ref_class: type[ActorRef[Any]] = cls.ref_class or ActorRef


CLASS_INFO: dict[Any, ClassInfo] = {}  # keyed by factory: a class or Class[T]


def class_info(cls: type[Actor[Any]]) -> ClassInfo:
    info = CLASS_INFO.get(cls)
    if info is None:
        info = CLASS_INFO[cls] = ClassInfo(cls)
    return info


def as_handler(behavior: Behavior[Any], actor: Actor[Any] | None) -> Handler:
    """A behaviour given to become(), in the handler(actor, message) convention."""
    if getattr(behavior, "__self__", None) is actor and actor is not None:
        func = getattr(behavior, "__func__", None)
        if func is not None:
            return func  # type: ignore[no-any-return]

    def call(_actor: Any, message: Any) -> HandlerResult:
        return behavior(message)

    return call


def call_handler(handler: Handler, actor: Any, message: Any) -> None:
    handler(actor, message)


def split(item: Item) -> Envelope:
    """(message, sender) of a mailbox item."""
    if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
        return item[0], item[1]
    return item, None


EMPTY_ARGS: tuple[Any, ...] = ()
EMPTY_KWARGS: dict[str, Any] = {}


def describe(message: Any) -> str:
    """The type name of a message, for errors and logs (never its payload)."""
    return type(message).__qualname__
