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


class ActorSystemStopped(ActorSystemNotRunning):
    """The actor system has shut down (or is shutting down) while the call
    waited, or the call was made after it shut down."""


class NodeUnreachable(HewittError):
    """The node an actor lives on cannot be reached (its link is down)."""

    def __init__(self, node: str, detail: str = "") -> None:
        super().__init__(f"node {node} is unreachable" + (f": {detail}" if detail else ""))
        self.node = node
        self.detail = detail


class NodeDown(NodeUnreachable):
    """The node was declared down (it stopped, crashed, restarted as a new
    incarnation, or stayed unreachable past the down timeout). Final: that
    incarnation is quarantined and never reached again."""

    def __init__(self, node: str, detail: str = "") -> None:
        HewittError.__init__(self, f"node {node} is down" + (f": {detail}" if detail else ""))
        self.node = node
        self.detail = detail


class RemoteError(HewittError):
    """An exception raised on another node, carried back as data (never pickled).

    ``type_name`` is the qualified name of the original exception's class.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_message = message


class CodecError(HewittError, TypeError):
    """A message could not be encoded or decoded by the kernel codec (an
    unregistered type, malformed bytes, a value its type refuses)."""
