"""The dispatcher: runs ready actors in turns inside event-loop callbacks.

An idle actor holds no task and is not in the ready queue. When a message
arrives for an idle actor, its cell is appended to the ready queue and, if the
dispatcher is not already scheduled, one ``loop.call_soon`` schedules it. Each
callback runs cells in FIFO order, at most ``throughput`` messages per cell per
turn (a cell with more messages goes to the back of the queue), and at most
``batch_messages`` messages and turns per callback before yielding to the
event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from contextvars import Context
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cell import Cell


@dataclass(frozen=True, slots=True)
class DispatcherStatistics:
    """A snapshot of the dispatcher's counters."""

    messages_processed: int
    callbacks: int
    ready_actors: int


class Dispatcher:
    __slots__ = (
        "_callbacks",
        "_loop",
        "_messages",
        "_ready",
        "_scheduled",
        "_turn",
        "_vars",
        "batch_messages",
        "current",
        "direct_budget",
        "direct_limit",
        "throughput",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        throughput: int,
        batch_messages: int,
        direct_limit: int,
        turn: Callable[[Cell[Any], int], int],
    ) -> None:
        self._loop = loop
        #: ``Cell.run_turn`` (given, so that this module needs no import of it)
        self._turn = turn
        self._ready: deque[Cell[Any]] = deque()
        self._scheduled = False
        #: The dispatcher's own (empty) context: its callbacks never run in the
        #: context of whoever woke it; each actor's turn enters the actor's own.
        self._vars = Context()
        self._messages = 0
        self._callbacks = 0
        self.throughput = throughput
        self.batch_messages = batch_messages
        #: The cell whose turn is running, so that a stop requested from its own
        #: handler waits for the handler to return.
        self.current: Cell[Any] | None = None
        #: Direct hand-offs (see ActorRef.ask) left before the next loop turn.
        self.direct_limit = direct_limit
        self.direct_budget = direct_limit

    def schedule(self, cell: Cell[Any]) -> None:
        """Queue a cell for a turn. Event-loop thread only."""
        self._ready.append(cell)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run, context=self._vars)

    def run_direct(self, cell: Cell[Any]) -> None:
        """Run one turn of an idle cell now, on the caller's stack (see ask)."""
        self.direct_budget -= 1
        cell.scheduled = True
        self.current = cell
        variables = cell.vars
        if variables is None:
            variables = cell.new_vars()
        try:
            self._messages += variables.run(self._turn, cell, self.throughput)
        finally:
            self.current = None
        if not self.direct_budget and not self._scheduled:
            # Budget spent: make sure a loop turn comes to refill it.
            self._scheduled = True
            self._loop.call_soon(self._run, context=self._vars)

    def _run(self) -> None:
        self.direct_budget = self.direct_limit
        ready = self._ready
        popleft = ready.popleft
        throughput = self.throughput
        budget = self.batch_messages
        done = 0
        turns = 0
        turn = self._turn
        try:
            # A turn that handles no message (a pre_start, say) counts as one:
            # a burst of starting actors must not keep the loop waiting either.
            while ready and done + turns < budget:
                cell = popleft()
                self.current = cell
                # Each turn runs in the actor's own context, made at its first turn.
                variables = cell.vars
                if variables is None:
                    variables = cell.new_vars()
                done += variables.run(turn, cell, throughput)
                turns += 1
        finally:
            self.current = None
            self._messages += done
            self._callbacks += 1
            if ready:
                self._loop.call_soon(self._run, context=self._vars)
            else:
                self._scheduled = False

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(self._messages, self._callbacks, len(self._ready))
