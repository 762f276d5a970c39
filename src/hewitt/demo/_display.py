"""The demo's live progress: three lines rewritten in place on a terminal, a plain
line a second elsewhere (a pipe, a log file, a CI job)."""

from __future__ import annotations

import shutil
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
_TO_START_OF_PREVIOUS_LINE = "\x1b[F"


@dataclass(frozen=True, slots=True)
class Sample:
    """The demo's counters at one moment."""

    elapsed: float
    completed: int
    refused: int
    messages: int
    #: the actor system's counters (supervisors' restarts, undeliverable messages)
    restarts: int = 0
    dead_letters: int = 0

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
        self.lines_shown = False

    def show(self, sample: Sample) -> None:
        recent = self.recent
        recent.append(sample)
        # Keep one sample at least RATE_WINDOW old, to measure the rates from.
        while len(recent) > 2 and sample.elapsed - recent[1].elapsed >= RATE_WINDOW:
            recent.popleft()
        oldest = recent[0]
        seconds = sample.elapsed - oldest.elapsed
        transfer_rate = rate(sample.settled - oldest.settled, seconds)
        message_rate = rate(sample.messages - oldest.messages, seconds)
        if self.live:
            self._rewrite(
                f"{sample.elapsed:6.1f} s  transfers {sample.completed:>11,} completed "
                f"{sample.refused:>9,} refused {transfer_rate:>9,.0f}/s",
                f"{'':8}  messages  {sample.messages:>11,} processed "
                f"{'':17}{message_rate:>9,.0f}/s",
                f"{'':8}  supervision {sample.restarts:>9,} restarts  "
                f"{sample.dead_letters:>9,} dead letters",
            )
        else:
            self.out.write(
                f"{sample.elapsed:5.1f} s | transfers {sample.completed:,} completed, "
                f"{sample.refused:,} refused | {transfer_rate:,.0f} transfers/s | "
                f"messages {sample.messages:,} | {message_rate:,.0f} msgs/s | "
                f"restarts {sample.restarts:,}, dead letters {sample.dead_letters:,}\n"
            )
        self.out.flush()

    def _rewrite(self, *lines: str) -> None:
        # A line longer than the terminal would wrap, and going back up a line
        # would then no longer reach the start of the display.
        width = shutil.get_terminal_size().columns - 1
        text = "\n".join(line[:width] + _CLEAR_TO_END_OF_LINE for line in lines)
        if self.lines_shown:
            text = "\r" + _TO_START_OF_PREVIOUS_LINE * (len(lines) - 1) + text
        self.out.write(text)
        self.lines_shown = True

    def close(self) -> None:
        """End the lines being rewritten, if any."""
        if self.lines_shown:
            self.out.write("\n")
            self.out.flush()
            self.lines_shown = False
