"""The narrow interfaces every backend implements, and the in-memory backend."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence

from ._records import ConcurrencyConflict, IdempotencyRecord, StoredEvent, StoredSnapshot


class Journal(ABC):
    """An append-only event log per persistence id, plus a global order for tags.

    ``append`` is atomic and durable when it returns: all of the events and the
    idempotency record, or nothing. Backends batch concurrent appends into one
    transaction (group commit) without reordering any one persistence id.
    """

    @abstractmethod
    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        """Append ``events`` (numbered ``expected_sequence_nr + 1`` on, for
        ``persistence_id``; ValueError otherwise) and the idempotency record,
        atomically; durable when it returns. Raise ConcurrencyConflict if the
        journal's highest number is not ``expected_sequence_nr`` (another
        writer got there first), also when ``events`` is empty."""

    def append_soon(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> asyncio.Future[None]:
        """``append``, started now on the running loop, as a future (done when
        durable). Persistent actors use it; backends whose writer already
        works with futures override it to save a task per append."""
        return asyncio.ensure_future(
            self.append(persistence_id, expected_sequence_nr, events, idempotency)
        )

    @abstractmethod
    def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        """The events of ``persistence_id`` in order, from ``from_sequence_nr``."""

    @abstractmethod
    async def highest_sequence_nr(self, persistence_id: str) -> int:
        """The number of the last event (0 if none; deleted events still count)."""

    @abstractmethod
    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        """Delete the events numbered up to ``sequence_nr`` (after a snapshot)."""

    @abstractmethod
    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        """Up to ``limit`` events tagged ``tag`` with a global offset above
        ``after_offset``, in offset order: (offset, event)."""

    @abstractmethod
    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        """The recorded outcome of ``key`` for ``persistence_id`` if it was
        written at or after ``not_before`` (the window)."""

    @abstractmethod
    async def delete_idempotency_before(self, not_before: float) -> None:
        """Delete the idempotency records (of every persistence id) written
        before ``not_before``: those the window has forgotten
        (``Persistence`` calls it now and then)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""


class SnapshotStore(ABC):
    """Snapshots of an actor's state, newest last."""

    @abstractmethod
    async def save(self, snapshot: StoredSnapshot) -> None:
        """Store a snapshot durably."""

    @abstractmethod
    async def load_all(self, persistence_id: str) -> list[StoredSnapshot]:
        """Every snapshot of ``persistence_id``, newest first (recovery falls back
        to an older one when the newest cannot be decoded)."""

    @abstractmethod
    async def delete_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        """Delete the snapshots taken at or before ``sequence_nr``."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""


class InMemoryJournal(Journal):
    """A journal in a dict: for tests (nothing survives the process)."""

    def __init__(self) -> None:
        self._events: dict[str, list[StoredEvent]] = {}
        self._highest: dict[str, int] = {}
        self._tagged: list[tuple[int, StoredEvent]] = []
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        check_append(persistence_id, expected_sequence_nr, events, idempotency)
        if self._highest.get(persistence_id, 0) != expected_sequence_nr:
            raise ConcurrencyConflict(persistence_id, expected_sequence_nr + 1)
        stored = self._events.setdefault(persistence_id, [])
        for event in events:
            stored.append(event)
            if event.tags:
                self._tagged.append((len(self._tagged) + 1, event))
        if events:
            self._highest[persistence_id] = events[-1].sequence_nr
        if idempotency is not None:
            self._idempotency[(persistence_id, idempotency.key)] = idempotency
        await asyncio.sleep(0)  # an append is never synchronous for the caller

    async def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        for event in list(self._events.get(persistence_id, ())):
            if event.sequence_nr < from_sequence_nr:
                continue
            if to_sequence_nr is not None and event.sequence_nr > to_sequence_nr:
                break
            yield event

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return self._highest.get(persistence_id, 0)

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        events = self._events.get(persistence_id, [])
        self._events[persistence_id] = [e for e in events if e.sequence_nr > sequence_nr]
        self._tagged = [
            (offset, e)
            for offset, e in self._tagged
            if e.persistence_id != persistence_id or e.sequence_nr > sequence_nr
        ]

    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        found = [(o, e) for o, e in self._tagged if o > after_offset and tag in e.tags]
        return found[:limit]

    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        record = self._idempotency.get((persistence_id, key))
        return record if record is not None and record.timestamp >= not_before else None

    async def delete_idempotency_before(self, not_before: float) -> None:
        self._idempotency = {
            key: record
            for key, record in self._idempotency.items()
            if record.timestamp >= not_before
        }

    async def close(self) -> None:
        pass


class InMemorySnapshotStore(SnapshotStore):
    """Snapshots in a dict: for tests."""

    def __init__(self) -> None:
        self._snapshots: dict[str, list[StoredSnapshot]] = {}

    async def save(self, snapshot: StoredSnapshot) -> None:
        snapshots = self._snapshots.setdefault(snapshot.persistence_id, [])
        snapshots[:] = [s for s in snapshots if s.sequence_nr != snapshot.sequence_nr]
        snapshots.append(snapshot)

    async def load_all(self, persistence_id: str) -> list[StoredSnapshot]:
        return sorted(
            self._snapshots.get(persistence_id, ()), key=lambda s: s.sequence_nr, reverse=True
        )

    async def delete_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        snapshots = self._snapshots.get(persistence_id, [])
        self._snapshots[persistence_id] = [s for s in snapshots if s.sequence_nr > sequence_nr]

    async def close(self) -> None:
        pass


def check_append(
    persistence_id: str,
    expected_sequence_nr: int,
    events: Sequence[StoredEvent],
    idempotency: IdempotencyRecord | None,
) -> None:
    """ValueError unless ``events`` belong to ``persistence_id``, are numbered
    ``expected_sequence_nr + 1`` on, and carry bytes payloads and str tags
    without NUL characters (a caller's bug, not a conflict: refused before
    anything is written, on every backend)."""
    number = expected_sequence_nr
    for event in events:
        number += 1
        if event.sequence_nr != number or event.persistence_id != persistence_id:
            raise ValueError(
                f"journal: append to {persistence_id!r} after {expected_sequence_nr} got event "
                f"{event.sequence_nr} of {event.persistence_id!r}; events must be numbered "
                f"{expected_sequence_nr + 1} on"
            )
        if type(event.payload) is not bytes:
            raise ValueError(
                f"journal: event {number} of {persistence_id!r} ({event.type_name!r}) has a "
                f"{type(event.payload).__name__} payload; payloads are bytes"
            )
        for tag in event.tags:
            if type(tag) is not str:
                raise ValueError(
                    f"journal: event {number} of {persistence_id!r} ({event.type_name!r}) has "
                    f"the tag {tag!r} of type {type(tag).__name__}; tags are str"
                )
            if "\x00" in tag:
                raise ValueError(
                    f"journal: event {number} of {persistence_id!r} ({event.type_name!r}) has "
                    f"the tag {tag!r}, with a NUL character; tags are text without NUL "
                    "(PostgreSQL cannot store it)"
                )
    if idempotency is not None and idempotency.persistence_id != persistence_id:
        raise ValueError(
            f"journal: idempotency record of {idempotency.persistence_id!r} appended to "
            f"{persistence_id!r}"
        )


def now() -> float:
    """Wall-clock seconds, as stored in records (idempotency windows, timestamps)."""
    return time.time()
