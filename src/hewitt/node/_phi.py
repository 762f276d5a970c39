"""Phi-accrual failure detection (Hayashibara et al., as in Akka and Cassandra).

Instead of a yes/no timeout, the detector turns the time since the last
heartbeat into a suspicion level phi: -log10 of the probability that a
heartbeat would still arrive this late, given the intervals seen so far
(modelled as a normal distribution). phi 1 means about a 10% chance that the
peer is fine, phi 8 one in 10^8.
"""

from __future__ import annotations

import math
from collections import deque


class PhiAccrualDetector:
    """One peer's detector. Times are seconds on any monotonic clock.

    ``acceptable_pause`` is added to the expected interval (pauses such as a
    long handler or a GC that should not count against the peer);
    ``min_std_deviation`` keeps a perfectly regular history from making phi
    jump at the first late heartbeat; ``first_interval`` seeds the history,
    so the first heartbeats are judged against a plausible interval.
    """

    __slots__ = ("_acceptable_pause", "_intervals", "_last", "_min_std", "_sum", "_sum_sq")

    def __init__(
        self,
        *,
        first_interval: float,
        acceptable_pause: float = 0.0,
        min_std_deviation: float = 0.1,
        max_samples: int = 1000,
    ) -> None:
        if first_interval <= 0:
            raise ValueError("first_interval must be positive")
        self._acceptable_pause = acceptable_pause
        self._min_std = min_std_deviation
        self._intervals: deque[float] = deque(maxlen=max_samples)
        self._sum = 0.0
        self._sum_sq = 0.0
        self._last: float | None = None
        # Seed: two intervals around the expected one (mean first_interval,
        # standard deviation first_interval / 4), as Akka does.
        deviation = first_interval / 4
        self._add(first_interval - deviation)
        self._add(first_interval + deviation)

    def _add(self, interval: float) -> None:
        intervals = self._intervals
        if len(intervals) == intervals.maxlen:
            dropped = intervals[0]
            self._sum -= dropped
            self._sum_sq -= dropped * dropped
        intervals.append(interval)
        self._sum += interval
        self._sum_sq += interval * interval

    def heartbeat(self, now: float) -> None:
        """A heartbeat arrived at ``now``."""
        if self._last is not None:
            self._add(max(0.0, now - self._last))
        self._last = now

    @property
    def started(self) -> bool:
        return self._last is not None

    def phi(self, now: float) -> float:
        """The suspicion level at ``now`` (0 before the first heartbeat)."""
        if self._last is None:
            return 0.0
        count = len(self._intervals)
        mean = self._sum / count
        variance = max(0.0, self._sum_sq / count - mean * mean)
        std = max(math.sqrt(variance), self._min_std)
        elapsed = now - self._last
        # Akka's logistic approximation of the normal CDF's tail, in log10.
        y = (elapsed - (mean + self._acceptable_pause)) / std
        if y < -8.0:
            return 0.0  # far earlier than expected (and math.exp would overflow)
        e = math.exp(-y * (1.5976 + 0.070566 * y * y))
        if elapsed > mean + self._acceptable_pause:
            return -math.log10(e / (1.0 + e)) if e > 0 else math.inf
        return -math.log10(1.0 - 1.0 / (1.0 + e))
