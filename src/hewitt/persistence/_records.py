"""What journals and snapshot stores hold, and the errors they raise.

The SQLite writer process imports this module (see ``_sqlite_boot``): keep
its imports to the standard library, msgspec and ``_runtime._errors``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import msgspec

from .._runtime._errors import HewittError


class StoredEvent(msgspec.Struct, frozen=True, gc=False):
    """One event as a journal stores it: encoded, typed, versioned, tagged."""

    persistence_id: str
    sequence_nr: int
    type_name: str
    version: int
    payload: bytes
    tags: tuple[str, ...] = ()
    timestamp: float = 0.0


class IdempotencyRecord(msgspec.Struct, frozen=True, gc=False):
    """The outcome of a command with an idempotency key, written with its events."""

    persistence_id: str
    key: str
    outcome: bytes
    timestamp: float


class StoredSnapshot(msgspec.Struct, frozen=True):
    """A snapshot of an actor's state after ``sequence_nr`` events."""

    persistence_id: str
    sequence_nr: int
    type_name: str
    version: int
    payload: bytes
    timestamp: float = 0.0


class PersistenceError(HewittError):
    """Base class of persistence errors."""


class ConcurrencyConflict(PersistenceError):
    """Another writer already appended this sequence number for this persistence id."""

    def __init__(self, persistence_id: str, sequence_nr: int) -> None:
        super().__init__(
            f"journal: {persistence_id!r} already has event {sequence_nr}: another writer "
            "appended it (two actors, or two nodes, writing the same persistence id)"
        )
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr


class AppendInDoubt(PersistenceError):
    """The outcome of an append is unknown: it may or may not be committed.

    The journal lost track of it after sending it: the SQLite writer process
    died, or the connection to PostgreSQL was lost, before the outcome came
    back, or the commit itself reported an error. Retrying it blindly could
    write its events twice; the journal holds the truth (a
    ``PersistentActor`` fails the command's ask with this error and recovers
    from the journal before its next message: docs/persistence.md).
    """

    def __init__(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: int,
        reason: str,
    ) -> None:
        first = expected_sequence_nr + 1
        last = expected_sequence_nr + events
        what = (
            f"events {first}..{last}"
            if events > 1
            else f"event {first}"
            if events
            else f"the idempotency record written after event {expected_sequence_nr}"
        )
        super().__init__(
            f"journal: the outcome of appending {what} of {persistence_id!r} is unknown "
            f"(in doubt: it may or may not be committed): {reason}"
        )
        self.persistence_id = persistence_id
        self.first_sequence_nr = first
        self.last_sequence_nr = last
        self.reason = reason


class RecoveryError(PersistenceError):
    """An actor's state could not be rebuilt; names the persistence id and sequence number."""

    def __init__(self, persistence_id: str, sequence_nr: int, reason: str) -> None:
        super().__init__(
            f"recovery of {persistence_id!r} failed at sequence number {sequence_nr}: {reason}"
        )
        self.persistence_id = persistence_id
        self.sequence_nr = sequence_nr
        self.reason = reason


class UnknownEventType(PersistenceError):
    """A stored event or snapshot names a type (or version) that no code registers."""


# How both SQL backends store an event's tags: a JSON array in a text column.
NO_TAGS = "[]"
_tags_encoder = msgspec.json.Encoder()
_tags_decoder = msgspec.json.Decoder(tuple[str, ...])


@functools.lru_cache(maxsize=4096)  # an application has few distinct tag sets
def encode_tags(tags: tuple[str, ...]) -> str:
    """The tags column of an event."""
    return _tags_encoder.encode(tags).decode() if tags else NO_TAGS


def event_from_row(persistence_id: str, row: Sequence[Any]) -> StoredEvent:
    """A StoredEvent from (sequence_nr, type_name, version, payload, tags, timestamp);
    unreadable tags are a RecoveryError naming the persistence id and sequence number."""
    sequence_nr, type_name, version, payload, tags, timestamp = row
    try:
        decoded_tags = _tags_decoder.decode(tags) if tags != NO_TAGS else ()
    except msgspec.DecodeError as exc:
        raise RecoveryError(
            persistence_id, sequence_nr, f"the event's tags are unreadable ({tags!r}: {exc})"
        ) from exc
    return StoredEvent(
        persistence_id, sequence_nr, type_name, version, bytes(payload), decoded_tags, timestamp
    )
