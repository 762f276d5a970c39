"""VirtualClock: time that moves only when a test says so."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count
from typing import Any


class _Handle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock for ``SystemConfig(clock=...)`` that stands still until
    :meth:`advance` moves it; then the timers, receive timeouts, ask timeouts
    and backoff delays that fall due run in time order, synchronously.

    Call it on the system's loop (from the test coroutine); after an advance,
    await a probe or a reply to let the actors handle what was sent.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _Handle, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = count()

    def now(self) -> float:
        """The virtual time in seconds."""
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _Handle:
        """Run ``callback(*args)`` when the clock has advanced ``delay`` seconds."""
        handle = _Handle()
        heapq.heappush(
            self._heap, (self._now + max(0.0, delay), next(self._seq), handle, callback, args)
        )
        return handle

    def advance(self, seconds: float) -> int:
        """Move time forward, running everything that falls due (including what
        those callbacks schedule within the window); returns how many ran."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds} s)")
        target = self._now + seconds
        ran = 0
        heap = self._heap
        while heap and heap[0][0] <= target:
            when, _, handle, callback, args = heapq.heappop(heap)
            self._now = max(self._now, when)
            if not handle.cancelled:
                callback(*args)
                ran += 1
        self._now = target
        return ran

    @property
    def pending(self) -> int:
        """Scheduled callbacks not yet run or cancelled."""
        return sum(1 for entry in self._heap if not entry[2].cancelled)
