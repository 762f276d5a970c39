"""Configuration of an actor system: data, validated when built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._clock import Clock
from ._mailbox import Mailbox
from ._supervision import SupervisorStrategy


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemConfig:
    """Settings of an :class:`ActorSystem`; every default is written here.

    Attributes:
        throughput: most messages one actor handles in a turn before the
            dispatcher moves on to the next ready actor (fairness).
        batch_messages: most messages the dispatcher handles before it yields
            to the event loop, so that I/O and other tasks keep running.
        ask_timeout: seconds an ``ask`` waits when no timeout is given.
        stash_capacity: most messages one actor may stash.
        use_uvloop: run on uvloop when the system owns its loop (threaded mode,
            :func:`hewitt.run`) and uvloop is installed.
        executor_workers: threads of the pool that runs handlers of actors with
            ``blocking = True``.
        dead_letter_log_limit: dead letters logged per ``dead_letter_log_window``
            seconds; the rest are counted, published and summarised.
        shutdown_timeout: seconds ``shutdown`` waits for actors to stop before
            it cancels the handlers still running and reports them.
        lifecycle_events: publish ActorStarted / ActorStopped on the event stream.
        direct_asks: most asks that an awaiting caller may run directly on an
            idle recipient (see docs/architecture.md, "direct hand-off") before
            the dispatcher yields to the event loop; 0 disables it.
        guardian_strategy: how the ``/user`` and ``/system`` guardians
            supervise top-level actors.
        guardian_policy: what a guardian does when a top-level actor's failure
            escalates to it or its restart intensity is exceeded:
            ``"stop_subtree"`` (log, stop that actor and its subtree) or
            ``"stop_system"`` (log, shut the whole system down).
        seed: seed of the system's random generator (backoff jitter), for
            reproducible tests; None for a random seed.
        default_mailbox: the mailbox of actors spawned without ``mailbox=``.
        clock: the time source of timers, timeouts and backoff (None: the
            event loop's clock); ``hewitt.testing.VirtualClock`` in tests.
    """

    throughput: int = 100
    batch_messages: int = 8192
    ask_timeout: float = 5.0
    stash_capacity: int = 100_000
    use_uvloop: bool = True
    executor_workers: int = 8
    dead_letter_log_limit: int = 10
    dead_letter_log_window: float = 10.0
    shutdown_timeout: float = 10.0
    lifecycle_events: bool = False
    direct_asks: int = 32
    guardian_strategy: SupervisorStrategy = field(default_factory=SupervisorStrategy)
    guardian_policy: Literal["stop_subtree", "stop_system"] = "stop_subtree"
    seed: int | None = None
    default_mailbox: Mailbox = field(default_factory=Mailbox)
    clock: Clock | None = None

    def __post_init__(self) -> None:
        for name in ("throughput", "batch_messages", "stash_capacity", "executor_workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SystemConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("ask_timeout", "dead_letter_log_window", "shutdown_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"SystemConfig.{name} must be a number > 0, got {value!r}")
        if not isinstance(self.direct_asks, int) or self.direct_asks < 0:
            raise ValueError(
                f"SystemConfig.direct_asks must be an int >= 0, got {self.direct_asks!r}"
            )
        if not isinstance(self.default_mailbox, Mailbox):
            raise ValueError(
                f"SystemConfig.default_mailbox must be a Mailbox, got {self.default_mailbox!r}"
            )
        if self.guardian_policy not in ("stop_subtree", "stop_system"):
            raise ValueError(
                "SystemConfig.guardian_policy must be 'stop_subtree' or 'stop_system', "
                f"got {self.guardian_policy!r}"
            )
        if self.dead_letter_log_limit < 0:
            raise ValueError("SystemConfig.dead_letter_log_limit must be >= 0")
