"""What a cell calls: handlers and the facts it keeps per actor class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import Context
from typing import Any

from ._actor import Actor, Behavior, HandlerResult
from ._ref import ActorRef

# A cell calls its current handler as handler(actor, message): for the class's
# own receive that is the plain function, so no bound method is allocated (and
# tracked by the garbage collector) per actor.
Handler = Callable[[Any, Any], HandlerResult]


class ClassInfo:
    __slots__ = ("async_receive", "blocking", "needs_start", "receive", "ref_class")

    def __init__(self, cls: type[Actor[Any]]) -> None:
        self.receive: Handler = cls.receive
        self.needs_start = cls.pre_start is not Actor.pre_start
        self.blocking = bool(cls.blocking)
        self.async_receive = inspect.iscoroutinefunction(cls.receive)
        self.ref_class: type[ActorRef[Any]] = cls.ref_class or ActorRef


CLASS_INFO: dict[Any, ClassInfo] = {}  # keyed by factory: a class or Class[T]


def class_info(cls: type[Actor[Any]]) -> ClassInfo:
    info = CLASS_INFO.get(cls)
    if info is None:
        info = CLASS_INFO[cls] = ClassInfo(cls)
    return info


def info_for_factory(factory: Any) -> ClassInfo | None:
    """The class info of a factory that is an Actor class (or a subscripted
    one, like ``Pool[Job]``), so that its ref class applies from the first
    spawn; None for any other callable."""
    info = CLASS_INFO.get(factory)
    if info is None:
        origin: Any = factory if isinstance(factory, type) else getattr(factory, "__origin__", None)
        if isinstance(origin, type) and issubclass(origin, Actor):
            info = CLASS_INFO[factory] = class_info(origin)
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


def call_in_context(context: Context, handler: Handler, actor: Any, message: Any) -> None:
    """Run a blocking actor's handler on a pool thread, in the actor's context."""
    context.run(handler, actor, message)


EMPTY_ARGS: tuple[Any, ...] = ()
EMPTY_KWARGS: dict[str, Any] = {}
