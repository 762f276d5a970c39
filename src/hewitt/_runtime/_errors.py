"""The runtime's exceptions. Every message names the actor and what went wrong."""

from __future__ import annotations


class HewittError(Exception):
    """Base class of every error raised by hewitt."""


class AskTimeout(HewittError, TimeoutError):
    """An ``ask`` got no reply within its timeout.

    The request may still be processed later; a reply that arrives after the
    timeout goes to dead letters.
    """

    def __init__(self, recipient: str, message_type: str, timeout: float) -> None:
        super().__init__(
            f"ask to {recipient} with message {message_type} got no reply within {timeout:g} s"
        )
        self.recipient = recipient
        self.message_type = message_type
        self.timeout = timeout


class DeliveryError(HewittError):
    """An ``ask`` could not be delivered: its recipient is stopped or unknown.

    The request went to dead letters; the error is raised at once instead of
    waiting for the timeout.
    """

    def __init__(self, recipient: str, message_type: str, reason: str) -> None:
        super().__init__(f"ask to {recipient} with message {message_type} failed: {reason}")
        self.recipient = recipient
        self.message_type = message_type
        self.reason = reason


class ActorNameTaken(HewittError, ValueError):
    """``spawn`` was given a name that a live sibling already has."""


class InvalidActorName(HewittError, ValueError):
    """``spawn`` was given a name that is not a valid path element."""


class ActorInitializationError(HewittError):
    """The actor's factory raised while building the actor instance."""


class ActorSystemNotRunning(HewittError, RuntimeError):
    """The operation needs a running actor system."""


class StashOverflow(HewittError):
    """An actor stashed more messages than its stash capacity allows."""


class WrongThread(HewittError, RuntimeError):
    """A call was made on a thread where it would deadlock or is not allowed."""
