"""The demo's live progress line: rewritten in place on a terminal, one line a second otherwise."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TextIO

#: Seconds between refreshes on a terminal, and between lines elsewhere.
TTY_INTERVAL = 0.25
PLAIN_INTERVAL = 1.0

#: Rates are measured over this many seconds of recent samples, so that they
#: follow the run without jumping at every refresh.
RATE_WINDOW = 1.0

_CLEAR_TO_END_OF_LINE = "\x1b[K"


@dataclass(frozen=True, slots=True)
class Sample:
    """The demo's counters at one moment."""

    elapsed: float
    completed: int
    refused: int
    messages: int

    @property
    def settled(self) -> int:
        return self.completed + self.refused


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


class ProgressDisplay:
    """Shows :class:`Sample` s as they come; call :meth:`close` before printing anything else."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self.interval = TTY_INTERVAL if self.live else PLAIN_INTERVAL
        self.recent: deque[Sample] = deque([Sample(0.0, 0, 0, 0)])
        self.line_open = False

    def show(self, sample: Sample) -> None:
        recent = self.recent
        recent.append(sample)
        while len(recent) > 2 and sample.elapsed - recent[1].elapsed >= RATE_WINDOW:
            recent.popleft()
        oldest = recent[0]
        seconds = sample.elapsed - oldest.elapsed
        line = (
            f"{sample.elapsed:5.1f} s | transfers {sample.completed:,} completed, "
            f"{sample.refused:,} refused | "
            f"{rate(sample.settled - oldest.settled, seconds):,.0f} transfers/s | "
            f"messages {sample.messages:,} | "
            f"{rate(sample.messages - oldest.messages, seconds):,.0f} msgs/s"
        )
        if self.live:
            self.out.write(f"\r{line}{_CLEAR_TO_END_OF_LINE}")
            self.line_open = True
        else:
            self.out.write(f"{line}\n")
        self.out.flush()

    def close(self) -> None:
        """End the line being rewritten, if any."""
        if self.line_open:
            self.out.write("\n")
            self.out.flush()
            self.line_open = False
