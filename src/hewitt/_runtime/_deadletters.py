"""Dead letters: counted, published on the event stream, logged at WARNING
with a rate limit, and a waiting ask fails at once."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ._asks import fail_ask
from ._envelope import describe
from ._errors import DeliveryError
from ._messages import DeadLetter

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._system import ActorSystem

logger = logging.getLogger("hewitt")


class DeadLetters:
    """One system's dead-letter office."""

    __slots__ = ("_logged", "_suppressed", "_system", "_window_start", "count")

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.count = 0
        self._window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def record(
        self,
        message: Any,
        sender: ActorRef[Any] | None,
        recipient: ActorRef[Any],
        reason: str,
    ) -> None:
        self.count += 1
        fail_ask(sender, DeliveryError(recipient.path, describe(message), reason))
        system = self._system
        # A DeadLetter that cannot be delivered is counted, never published
        # again: a subscriber with a full mailbox must not loop on its own drops.
        if system.event_stream._subscribers and type(message) is not DeadLetter:
            system.event_stream.publish(DeadLetter(message, sender, recipient, reason))
        self._log(message, sender, recipient, reason)

    def _log(
        self, message: Any, sender: ActorRef[Any] | None, recipient: ActorRef[Any], reason: str
    ) -> None:
        config = self._system.config
        limit = config.dead_letter_log_limit
        if not limit:
            return
        now = time.monotonic()
        if now - self._window_start >= config.dead_letter_log_window:
            if self._suppressed:
                logger.warning(
                    "%d more dead letters were not logged in the last %g s",
                    self._suppressed,
                    config.dead_letter_log_window,
                )
            self._window_start = now
            self._logged = 0
            self._suppressed = 0
        if self._logged < limit:
            self._logged += 1
            logger.warning(
                "dead letter: %s from %s to %s (%s)",
                describe(message),
                sender.path if sender is not None else "nobody",
                recipient.path,
                reason,
            )
        else:
            self._suppressed += 1
