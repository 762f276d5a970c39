"""Persistence: the journal, snapshot store and codec of one actor system."""

from __future__ import annotations

from typing import Any

from .._runtime._system import ActorSystem
from ._codec import Codec
from ._journal import Journal, SnapshotStore
from ._records import PersistenceError


class Persistence:
    """What persistent actors of a system write to. Install it once::

        Persistence.install(system, SqliteJournal("bank.db"), SqliteSnapshotStore("bank.db"),
                            codec)

    Attributes:
        idempotency_window: seconds an idempotency key is remembered (kept
            durably with the events, so it survives restarts).
    """

    def __init__(
        self,
        journal: Journal,
        snapshots: SnapshotStore | None = None,
        codec: Codec | None = None,
        *,
        idempotency_window: float = 24 * 3600.0,
    ) -> None:
        self.journal = journal
        self.snapshots = snapshots
        self.codec = codec if codec is not None else Codec()
        self.idempotency_window = idempotency_window

    @classmethod
    def install(
        cls,
        system: ActorSystem,
        journal: Journal,
        snapshots: SnapshotStore | None = None,
        codec: Codec | None = None,
        **settings: Any,
    ) -> Persistence:
        """Attach a Persistence to ``system`` (one per system) and return it."""
        persistence = cls(journal, snapshots, codec, **settings)
        system.extensions[Persistence] = persistence
        return persistence

    @classmethod
    def of(cls, system: ActorSystem) -> Persistence:
        """The Persistence installed on ``system``."""
        persistence = system.extensions.get(Persistence)
        if persistence is None:
            raise PersistenceError(
                f"actor system {system.name!r} has no Persistence: call "
                "Persistence.install(system, journal, snapshots, codec) before spawning "
                "persistent actors"
            )
        assert isinstance(persistence, Persistence)
        return persistence

    async def close(self) -> None:
        """Close the journal and the snapshot store."""
        await self.journal.close()
        if self.snapshots is not None:
            await self.snapshots.close()
