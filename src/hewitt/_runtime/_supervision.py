"""Supervision as data: directives, restart types, backoff and strategies.

Reference semantics are Erlang/OTP's ``supervisor`` (strategies, restart types,
intensity counted per supervisor over all its children) with Akka's directive
per exception type (restart, resume, stop, escalate) and its rule that a
restart keeps the mailbox and the ref. docs/supervision.md states every rule.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ActorInitializationError, HewittError


class Directive(enum.Enum):
    """What a supervisor does with a failed child."""

    #: Keep the instance and its state; the failed message is skipped (dead letter).
    RESUME = "resume"
    #: Build a fresh instance from the factory; mailbox and ref are kept.
    RESTART = "restart"
    #: Stop the child (abnormal exit).
    STOP = "stop"
    #: Fail the supervisor itself with the same exception; its parent decides.
    ESCALATE = "escalate"


class RestartType(enum.Enum):
    """When a child is restarted (OTP's ``restart`` key of a child spec)."""

    #: Always: after a failure and after a normal stop.
    PERMANENT = "permanent"
    #: Only after an abnormal exit (a failure); a normal stop is final.
    TRANSIENT = "transient"
    #: Never: a failure stops it.
    TEMPORARY = "temporary"


class StrategyKind(enum.Enum):
    """Which children restart when one of them fails."""

    #: Only the failed child.
    ONE_FOR_ONE = "one_for_one"
    #: Every child (the others are stopped, in reverse start order, then all restart).
    ONE_FOR_ALL = "one_for_all"
    #: The failed child and every child started after it.
    REST_FOR_ONE = "rest_for_one"


class RestartIntensityExceeded(HewittError):
    """A supervisor restarted its children more than its strategy allows.

    The supervisor gives up: it stops its children and fails with this error,
    which its own parent handles like any failure.
    """

    def __init__(self, supervisor: str, max_restarts: int, within: float) -> None:
        super().__init__(
            f"supervisor {supervisor} exceeded its restart intensity: more than "
            f"{max_restarts} restarts within {within:g} s"
        )
        self.supervisor = supervisor
        self.max_restarts = max_restarts
        self.within = within


class InvalidSupervisorStrategy(HewittError, ValueError):
    """A strategy, backoff or child spec field is invalid (the message names it)."""


Decider = Callable[[BaseException], Directive]


def _default_decider(exc: BaseException) -> Directive:
    # As Akka's default: an actor that cannot even be built is stopped;
    # any other failure restarts it.
    if isinstance(exc, ActorInitializationError):
        return Directive.STOP
    return Directive.RESTART


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delays before restarts: ``min_delay * factor**n`` (n = restarts in a row),
    capped at ``max_delay``, each spread by +-``jitter`` (a fraction), and n
    reset to 0 after ``reset_after`` seconds without a failure."""

    min_delay: float = 0.1
    max_delay: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float = 30.0

    def __post_init__(self) -> None:
        if self.min_delay < 0:
            raise InvalidSupervisorStrategy(f"Backoff.min_delay must be >= 0, got {self.min_delay}")
        if self.max_delay < self.min_delay:
            raise InvalidSupervisorStrategy(
                f"Backoff.max_delay ({self.max_delay}) must be >= min_delay ({self.min_delay})"
            )
        if self.factor < 1:
            raise InvalidSupervisorStrategy(f"Backoff.factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise InvalidSupervisorStrategy(f"Backoff.jitter must be in [0, 1), got {self.jitter}")
        if self.reset_after <= 0:
            raise InvalidSupervisorStrategy(
                f"Backoff.reset_after must be > 0, got {self.reset_after}"
            )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay before restart number ``attempt`` (0-based) of a streak."""
        base = min(self.max_delay, self.min_delay * self.factor**attempt)
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return min(base, self.max_delay)


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStrategy:
    """How an actor supervises its children. Every default is written here.

    Attributes:
        kind: which children restart when one fails (default one-for-one).
        max_restarts, within: restart intensity, counted over all children as
            in OTP: more than ``max_restarts`` restarts within ``within``
            seconds and the supervisor gives up (see RestartIntensityExceeded).
        decider: exception -> Directive; a mapping from exception classes is
            accepted too (the most specific class in the exception's MRO wins;
            unmatched exceptions restart).
        backoff: delay restarts (None: restart at once).
        poison_threshold: a message that makes a child fail this many times in
            a row is not retried again: it goes to dead letters with the
            exception. Below it, a restarted child gets the message again.
    """

    kind: StrategyKind = StrategyKind.ONE_FOR_ONE
    max_restarts: int = 10
    within: float = 10.0
    decider: Decider | Mapping[type[BaseException], Directive] = field(default=_default_decider)
    backoff: Backoff | None = None
    poison_threshold: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.kind, StrategyKind):
            raise InvalidSupervisorStrategy(
                f"SupervisorStrategy.kind must be a StrategyKind, got {self.kind!r}"
            )
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise InvalidSupervisorStrategy(
                f"SupervisorStrategy.max_restarts must be an int >= 0, got {self.max_restarts!r}"
            )
        if not isinstance(self.within, (int, float)) or self.within <= 0:
            raise InvalidSupervisorStrategy(
                f"SupervisorStrategy.within must be > 0 seconds, got {self.within!r}"
            )
        if not isinstance(self.poison_threshold, int) or self.poison_threshold < 1:
            raise InvalidSupervisorStrategy(
                "SupervisorStrategy.poison_threshold must be an int >= 1, "
                f"got {self.poison_threshold!r}"
            )
        if isinstance(self.decider, Mapping):
            for key, value in self.decider.items():
                if not (isinstance(key, type) and issubclass(key, BaseException)):
                    raise InvalidSupervisorStrategy(
                        f"SupervisorStrategy.decider keys must be exception classes, got {key!r}"
                    )
                if not isinstance(value, Directive):
                    raise InvalidSupervisorStrategy(
                        f"SupervisorStrategy.decider[{key.__name__}] must be a Directive, "
                        f"got {value!r}"
                    )
        elif not callable(self.decider):
            raise InvalidSupervisorStrategy(
                f"SupervisorStrategy.decider must be callable or a mapping, got {self.decider!r}"
            )

    @classmethod
    def one_for_one(cls, **settings: Any) -> SupervisorStrategy:
        """Restart only the child that failed."""
        return cls(kind=StrategyKind.ONE_FOR_ONE, **settings)

    @classmethod
    def one_for_all(cls, **settings: Any) -> SupervisorStrategy:
        """Restart every child when one fails."""
        return cls(kind=StrategyKind.ONE_FOR_ALL, **settings)

    @classmethod
    def rest_for_one(cls, **settings: Any) -> SupervisorStrategy:
        """Restart the failed child and the children started after it."""
        return cls(kind=StrategyKind.REST_FOR_ONE, **settings)

    def decide(self, exc: BaseException) -> Directive:
        """The directive for ``exc``."""
        decider = self.decider
        if isinstance(decider, Mapping):
            for cls in type(exc).__mro__:
                directive = decider.get(cls)
                if directive is not None:
                    return directive
            return Directive.RESTART
        return decider(exc)


#: The strategy of actors that do not set ``supervisor_strategy``.
DEFAULT_STRATEGY = SupervisorStrategy()


class RestartLog:
    """Restart times of one supervisor, for its intensity and its backoff."""

    __slots__ = ("_times", "last_failure", "streak")

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self.streak = 0
        self.last_failure = -1e18

    def record(self, now: float, strategy: SupervisorStrategy) -> bool:
        """Count a restart at ``now``; False when it exceeds the intensity."""
        times = self._times
        times.append(now)
        horizon = now - strategy.within
        while times and times[0] < horizon:
            times.popleft()
        return len(times) <= strategy.max_restarts

    def next_delay(self, now: float, backoff: Backoff, rng: random.Random) -> float:
        if now - self.last_failure > backoff.reset_after:
            self.streak = 0
        delay = backoff.delay(self.streak, rng)
        self.streak += 1
        self.last_failure = now
        return delay
