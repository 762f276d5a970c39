"""A node's settings."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hewitt import Overflow

from ._phi import PhiAccrualDetector


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """A node's transport settings. Times in seconds.

    Failure detection: every ``heartbeat_interval`` each side sends a
    heartbeat; a phi-accrual detector turns their lateness into suspicion,
    and above ``phi_threshold`` the link is SUSPECT (new asks fail at once).
    A link that is not up (suspect, or never connected) for ``down_after``
    goes DOWN, for good. ``send_queue`` bounds the messages waiting for a
    link (``send_overflow``: DROP_NEWEST, DROP_OLDEST or FAIL).
    """

    heartbeat_interval: float = 0.5
    phi_threshold: float = 8.0
    acceptable_pause: float = 2.0
    min_std_deviation: float = 0.1
    down_after: float = 10.0
    send_queue: int = 20_000
    #: the most bytes of messages waiting for a link (beside their count)
    send_queue_bytes: int = 64 * 1024 * 1024
    send_overflow: Overflow = Overflow.DROP_NEWEST
    #: the most signals (watch, death, exit, ...) waiting for a link: beyond,
    #: the peer does not read and is taken down (signals are never dropped)
    control_queue: int = 100_000
    batch_bytes: int = 256 * 1024
    write_high_water: int = 1024 * 1024
    max_frame: int = 16 * 1024 * 1024
    connect_timeout: float = 5.0
    handshake_timeout: float = 10.0
    reconnect_min: float = 0.05
    reconnect_max: float = 2.0
    #: which import paths other nodes may spawn here (None: any Actor subclass)
    allow_spawn: Callable[[str], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.send_overflow is Overflow.BLOCK:
            raise ValueError(
                "a link's send queue cannot block a tell: use DROP_NEWEST, DROP_OLDEST or FAIL "
                "(`await ref.send(msg)` waits for room whatever the policy)"
            )
        for name in (
            "heartbeat_interval",
            "down_after",
            "connect_timeout",
            "handshake_timeout",
            "phi_threshold",
            "min_std_deviation",
            "reconnect_min",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"NodeConfig.{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.acceptable_pause) and self.acceptable_pause >= 0):
            raise ValueError(
                f"NodeConfig.acceptable_pause must be >= 0, got {self.acceptable_pause!r}"
            )
        if not (math.isfinite(self.reconnect_max) and self.reconnect_max >= self.reconnect_min):
            raise ValueError("NodeConfig.reconnect_max must be at least reconnect_min")
        for name in (
            "send_queue",
            "send_queue_bytes",
            "control_queue",
            "batch_bytes",
            "write_high_water",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"NodeConfig.{name} must be a positive int, got {value!r}")
        if self.max_frame < 1024:
            raise ValueError(f"NodeConfig.max_frame must be at least 1024, got {self.max_frame}")
        if self.batch_bytes > self.max_frame - 1024:
            raise ValueError(
                f"NodeConfig.batch_bytes ({self.batch_bytes}) must leave room in max_frame "
                f"({self.max_frame})"
            )

    def detector(self) -> PhiAccrualDetector:
        return PhiAccrualDetector(
            first_interval=self.heartbeat_interval,
            acceptable_pause=self.acceptable_pause,
            min_std_deviation=self.min_std_deviation,
        )
