"""pipe_to: deliver the outcome of an awaitable to an actor as a message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._ref import ActorRef

T = TypeVar("T")


def pipe_to(
    awaitable: Awaitable[T],
    ref: ActorRef[Any],
    *,
    map_result: Callable[[T], Any] | None = None,
    map_failure: Callable[[BaseException], Any] | None = None,
) -> None:
    """Await ``awaitable`` on ``ref``'s system and tell ``ref`` the outcome.

    So that a handler never has to await an ask: ``pipe_to(other.ask(q), self_ref)``.
    The result is sent as is (or ``map_result(result)``); an exception is sent
    as :class:`Failure` (or ``map_failure(exc)``).
    """
    ref._recipient.system.pipe_to(awaitable, ref, map_result=map_result, map_failure=map_failure)
