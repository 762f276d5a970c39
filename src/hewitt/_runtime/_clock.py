"""Time, read through one object so that tests can run actors on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the runtime needs of time: timers, receive timeouts, ask timeouts,
    restart backoff and intensity windows all go through it."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Cancellable:
        """Run ``callback(*args)`` on the system's loop after ``delay`` seconds."""
        ...


class LoopClock:
    """The event loop's own clock (the default)."""

    __slots__ = ("_loop", "now")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: ``loop.time`` itself: read for every ask, so no method of our own between
        self.now: Callable[[], float] = loop.time

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Cancellable:
        return self._loop.call_later(delay, callback, *args)
