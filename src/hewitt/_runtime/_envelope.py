"""Mailbox items: the one module that builds envelopes and takes them apart.

A mailbox item is the message itself when it was told without a sender (the
common case: nothing is allocated, nothing is tracked by the garbage
collector), else the envelope tuple ``(message, sender, ENVELOPE)``. A message
put back at the front of the mailbox to be retried after a failure carries
the number of its failed attempts as a fourth element. The private mark keeps
a user's own tuples from being mistaken for envelopes.

Everything in an envelope is an address: the sender is an :class:`ActorRef`
(a temporary ``/temp`` ref for an ask), which the kernel codec turns into an
``ActorAddress`` when the envelope leaves the process.

The dispatcher's turn loop (``Cell.run_turn``) repeats :func:`message_of`
inline, because it runs once per handled message; keep the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._marks import ENVELOPE

if TYPE_CHECKING:
    from ._ref import ActorRef

#: A queued message, bare or in an envelope (see the module docstring).
Item = Any


def envelope(message: Any, sender: ActorRef[Any] | None) -> Item:
    """The mailbox item for ``message`` told by ``sender``."""
    return message if sender is None else (message, sender, ENVELOPE)


def retry(message: Any, sender: ActorRef[Any] | None, attempts: int) -> Item:
    """The item of a message put back to be retried after ``attempts`` failures."""
    return (message, sender, ENVELOPE, attempts)


def is_envelope(item: Item) -> bool:
    return type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE


def message_of(item: Item) -> Any:
    """The message of a mailbox item."""
    if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
        return item[0]
    return item


def split(item: Item) -> tuple[Any, ActorRef[Any] | None]:
    """(message, sender) of a mailbox item."""
    if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
        return item[0], item[1]
    return item, None


def split_attempts(item: Item) -> tuple[Any, ActorRef[Any] | None, int]:
    """(message, sender, failed attempts so far) of a mailbox item."""
    if type(item) is tuple and len(item) >= 3 and item[2] is ENVELOPE:
        return item[0], item[1], item[3] if len(item) == 4 else 0
    return item, None, 0


def describe(message: Any) -> str:
    """The type name of a message, for errors and logs (never its payload)."""
    return type(message).__qualname__
