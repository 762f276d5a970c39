"""Fixtures of the persistence conformance suite: ``backend`` runs a test on
every backend (in-memory, SQLite in a temporary file, PostgreSQL on a private
server started for the session, see pgserver.py).

Without PostgreSQL the PostgreSQL tests are skipped with the reason, except
when the environment variable CI is set (``CI=true bash .ci/run``): there a
missing PostgreSQL is an error, never a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from hewitt.persistence import (
    InMemoryJournal,
    InMemorySnapshotStore,
    Journal,
    PostgresJournal,
    PostgresSnapshotStore,
    SnapshotStore,
    SqliteJournal,
    SqliteSnapshotStore,
)

from .pgserver import PostgresServer, PostgresUnavailable

#: "sqlite" writes through its writer process (the default), "sqlite-thread"
#: through a thread (``SqliteJournal(writer="thread")``).
BACKENDS = ["memory", "sqlite", "sqlite-thread", "postgres"]
_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, on 127.0.0.1 and a free port."""
    try:
        prerequisites = PostgresServer.prerequisites()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(
                f"PostgreSQL not available: {exc}. CI must run the PostgreSQL tests "
                "(.ci/run installs PostgreSQL through scripts/bootstrap.sh)",
                pytrace=False,
            )
        pytest.skip(f"PostgreSQL not available: {exc}")
    with PostgresServer.started(prerequisites) as server:
        yield server


class Backend:
    """Opens journals and snapshot stores on one store (a file, a database
    schema, or the same in-memory objects), and closes them after the test."""

    def __init__(self, name: str, location: str) -> None:
        self.name = name
        self.location = location  # file path, or "dsn|schema"
        self._opened: list[Journal | SnapshotStore] = []
        if name == "memory":
            self._memory_journal = InMemoryJournal()
            self._memory_snapshots = InMemorySnapshotStore()

    @property
    def durable(self) -> bool:
        return self.name != "memory"

    def journal(self) -> Journal:
        """A journal on this store: a new instance (a new connection, as a
        second node would have) except in memory, where it is the same."""
        journal: Journal
        if self.name == "memory":
            return self._memory_journal
        if self.name == "sqlite":
            journal = SqliteJournal(self.location)
        elif self.name == "sqlite-thread":
            journal = SqliteJournal(self.location, writer="thread")
        else:
            dsn, schema = self.location.split("|")
            journal = PostgresJournal(dsn, schema=schema)
        self._opened.append(journal)
        return journal

    def snapshots(self) -> SnapshotStore:
        store: SnapshotStore
        if self.name == "memory":
            return self._memory_snapshots
        if self.name.startswith("sqlite"):
            store = SqliteSnapshotStore(self.location)
        else:
            dsn, schema = self.location.split("|")
            store = PostgresSnapshotStore(dsn, schema=schema)
        self._opened.append(store)
        return store

    async def close_all(self) -> None:
        opened, self._opened = self._opened, []
        for store in opened:
            await store.close()


async def _backend(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Backend:
    if name == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return Backend(name, f"{server.dsn}|t{next(_schemas)}")  # a fresh schema per test
    return Backend(name, str(tmp_path / "journal.db"))


@pytest_asyncio.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn."""
    opened = await _backend(request, request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest_asyncio.fixture(params=["sqlite", "sqlite-thread", "postgres"])
async def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend that keeps data across processes."""
    opened = await _backend(request, request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close_all()
