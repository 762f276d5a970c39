"""Timeouts of pending asks, without one event-loop timer per ask.

Asks with the same timeout expire in the order they were made, so each timeout
value gets a FIFO lane of (deadline, promise). Completed promises are dropped
lazily from the front of their lane, and one loop timer is armed for the
earliest deadline. This costs an append per ask instead of a TimerHandle, a
heap push and a cancel.
"""

from __future__ import annotations

from collections import deque
from math import inf
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from ._clock import Cancellable, Clock
    from ._ref import AskRef, ThreadSafeAskRef

    _Promise: TypeAlias = AskRef | ThreadSafeAskRef


class AskTimeouts:
    __slots__ = ("_clock", "_lanes", "_timer", "_timer_when")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lanes: dict[float, deque[tuple[float, _Promise]]] = {}
        self._timer: Cancellable | None = None
        self._timer_when = inf

    def add(self, timeout: float, promise: _Promise) -> None:
        deadline = self._clock.now() + timeout
        lane = self._lanes.get(timeout)
        if lane is None:
            lane = self._lanes[timeout] = deque()
        while lane and lane[0][1]._future.done():
            lane.popleft()
        lane.append((deadline, promise))
        if deadline < self._timer_when:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._clock.call_later(max(0.0, when - self._clock.now()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._timer_when = inf
        now = self._clock.now()
        earliest = inf
        for timeout, lane in list(self._lanes.items()):
            while lane:
                deadline, promise = lane[0]
                if promise.done:
                    lane.popleft()
                elif deadline <= now:
                    lane.popleft()
                    promise.expire()
                else:
                    earliest = min(earliest, deadline)
                    break
            if not lane:
                del self._lanes[timeout]
        if earliest is not inf:
            self._arm(earliest)

    def cancel_all(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = inf
        for lane in self._lanes.values():
            for _, promise in lane:
                promise.expire()
        self._lanes.clear()
