"""A node's settings."""

from __future__ import annotations

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
    send_overflow: Overflow = Overflow.DROP_NEWEST
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
            raise ValueError("a link's send queue cannot block a tell: use DROP_* or FAIL")
        for name in ("heartbeat_interval", "down_after", "connect_timeout", "handshake_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"NodeConfig.{name} must be positive")
        if self.send_queue < 1 or self.batch_bytes < 1 or self.max_frame < 1024:
            raise ValueError("NodeConfig: send_queue, batch_bytes and max_frame must be positive")

    def detector(self) -> PhiAccrualDetector:
        return PhiAccrualDetector(
            first_interval=self.heartbeat_interval,
            acceptable_pause=self.acceptable_pause,
            min_std_deviation=self.min_std_deviation,
        )
