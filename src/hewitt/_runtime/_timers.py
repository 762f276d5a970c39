"""Per-actor timers and the receive timeout (``context.timers``,
``context.set_receive_timeout``). Both die with the actor and with a restart.

A timer's message is queued as a *tick* item, ``(message, None, ENVELOPE, 0,
timer)``: the actor handles the message, and the runtime can find the ticks
of one timer in the mailbox, so that cancelling it (or restarting the actor)
withdraws every tick already queued.
"""

from __future__ import annotations

from collections.abc import Hashable
from threading import get_ident
from typing import TYPE_CHECKING, Any

from ._clock import Cancellable
from ._marks import ENVELOPE
from ._messages import ReceiveTimeout

if TYPE_CHECKING:
    from ._cell import Cell


class _Timer:
    __slots__ = ("due", "handle", "interval", "key", "message", "mode", "timers")

    def __init__(
        self, timers: Timers, key: Hashable, message: Any, mode: str, interval: float
    ) -> None:
        self.timers = timers
        self.key = key
        self.message = message
        self.mode = mode  # "single", "fixed_delay" or "fixed_rate"
        self.interval = interval
        self.due = 0.0
        self.handle: Cancellable | None = None

    def handled(self) -> None:
        """Its tick is being handled: a single timer that fired is done."""
        if self.handle is None and self.mode == "single":
            timers = self.timers._timers
            if timers.get(self.key) is self:
                del timers[self.key]


class Timers:
    """An actor's timers, by key: starting a timer with a key in use replaces
    (cancels) the old one, and a cancelled timer's messages are never handled,
    even those already queued. All timers are cancelled when the actor stops
    or restarts. Usable from the actor's handlers (and a blocking actor's
    pool thread)."""

    __slots__ = ("_cell", "_timers")

    def __init__(self, cell: Cell[Any]) -> None:
        self._cell = cell
        #: active timers, and single timers that fired and whose tick is still
        #: queued (so that a cancel can withdraw it); a handled tick's goes
        self._timers: dict[Hashable, _Timer] = {}

    def _off_loop(self) -> bool:
        return get_ident() != self._cell.system._loop_thread_id

    def start_single_timer(self, key: Hashable, message: Any, delay: float) -> None:
        """Send ``message`` to this actor once, after ``delay`` seconds."""
        self._start(key, message, "single", delay, delay)

    def start_periodic_timer(
        self,
        key: Hashable,
        message: Any,
        interval: float,
        *,
        fixed_rate: bool = False,
        initial_delay: float | None = None,
    ) -> None:
        """Send ``message`` every ``interval`` seconds.

        Fixed delay (default): each message comes ``interval`` after the
        previous one was sent, so a late tick delays the ones after it. Fixed
        rate: ticks keep to the schedule ``start + n * interval`` (late ticks
        are caught up), for a long-run frequency that is exact.
        """
        mode = "fixed_rate" if fixed_rate else "fixed_delay"
        first = interval if initial_delay is None else initial_delay
        self._start(key, message, mode, interval, first)

    def cancel(self, key: Hashable) -> None:
        """Cancel the timer ``key`` (no-op if none); its queued messages are withdrawn."""
        if self._off_loop():
            self._cell.system._call_on_loop_blocking(self.cancel, key)
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            self._withdraw(timer)

    def cancel_all(self) -> None:
        """Cancel every timer of this actor."""
        if self._off_loop():
            self._cell.system._call_on_loop_blocking(self.cancel_all)
            return
        for key in list(self._timers):
            self.cancel(key)

    def is_timer_active(self, key: Hashable) -> bool:
        """True while timer ``key`` is scheduled (a single timer that has fired is not)."""
        timer = self._timers.get(key)
        return timer is not None and timer.handle is not None

    def _start(self, key: Hashable, message: Any, mode: str, interval: float, first: float) -> None:
        if interval <= 0 or first < 0:
            raise ValueError(
                f"{self._cell.ref.path}: timer {key!r} needs a positive interval, got {interval}"
            )
        if self._off_loop():
            self._cell.system._call_on_loop_blocking(
                self._start, key, message, mode, interval, first
            )
            return
        self.cancel(key)
        timer = _Timer(self, key, message, mode, interval)
        clock = self._cell.system.clock
        timer.due = clock.now() + first
        timer.handle = clock.call_later(first, self._fire, key, timer)
        self._timers[key] = timer

    def _fire(self, key: Hashable, timer: _Timer) -> None:
        if self._timers.get(key) is not timer:
            return
        cell = self._cell
        if timer.mode == "single":
            # Kept (inactive) so that a cancel can still withdraw its queued message.
            timer.handle = None
        else:
            clock = cell.system.clock
            now = clock.now()
            if timer.mode == "fixed_rate":
                timer.due += timer.interval
                delay = max(0.0, timer.due - now)
            else:
                timer.due = now + timer.interval
                delay = timer.interval
            timer.handle = clock.call_later(delay, self._fire, key, timer)
        cell.enqueue_system((timer.message, None, ENVELOPE, 0, timer))

    def _withdraw(self, timer: _Timer) -> None:
        if timer.handle is not None:
            timer.handle.cancel()
            timer.handle = None
        self._cell.withdraw_timer_ticks(timer)


class ReceiveTimeoutState:
    """Sends ReceiveTimeout after ``seconds`` without a handled message, and
    again after each further idle period, until cleared."""

    __slots__ = ("_cell", "_handle", "last_activity", "seconds")

    def __init__(self, cell: Cell[Any], seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"{cell.ref.path}: receive timeout must be > 0, got {seconds}")
        self._cell = cell
        self.seconds = seconds
        clock = cell.system.clock
        self.last_activity = clock.now()
        self._handle: Cancellable | None = clock.call_later(seconds, self._check)

    def touch(self) -> None:
        self.last_activity = self._cell.system.clock.now()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        cell = self._cell
        clock = cell.system.clock
        idle_for = clock.now() - self.last_activity
        if idle_for >= self.seconds - 1e-9 and not cell.has_messages and not cell.scheduled:
            self.last_activity = clock.now()
            cell.enqueue_system(ReceiveTimeout())
            self._handle = clock.call_later(self.seconds, self._check)
        else:
            remaining = max(self.seconds - idle_for, 1e-3)
            self._handle = clock.call_later(remaining, self._check)
