"""The persistence benches of the ``hewitt`` impls: persisted events/s and recovery time.

Every bench runs against a store given as a :data:`StoreFactory`: SQLite in a
temporary directory, ``synchronous=FULL`` (every acknowledged event survives a
power loss), or PostgreSQL at the DSN in ``HEWITT_BENCH_POSTGRES_DSN``,
``synchronous_commit=on`` (an acknowledged event is in the server's flushed
WAL), in a schema of its own that is dropped afterwards:

* ``persist(n, actors)``: ``actors`` persistent actors each persist ``n /
  actors`` events, one ``ask`` at a time (the next command once the previous
  one is acknowledged, i.e. durable), all actors at once; ``events_per_s`` is
  ``n`` / the time until the last is acknowledged. The actors are spawned and
  recovered (empty) before the clock starts.
* ``recover(n, snapshot_every)``: one actor whose journal holds ``n`` events
  (written beforehand, straight to the journal, in batches); ``secs`` is the
  time from ``spawn`` to its first reply (recovery, then the reply). With
  ``snapshot_every``, the store also holds the snapshot an actor snapshotting
  every that many events would have at its latest (at the largest multiple
  below ``n``), so that recovery replays the worst tail: ``snapshot_every``
  events. The recovered balance is checked.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import msgspec

from benchmarks._common import POSTGRES_DSN_ENV, Metrics
from hewitt import ActorRef, ActorSystem
from hewitt.persistence import (
    Codec,
    Effect,
    Journal,
    Persistence,
    PersistentActor,
    PostgresJournal,
    PostgresSnapshotStore,
    SnapshotStore,
    SqliteJournal,
    SqliteSnapshotStore,
    StoredEvent,
    StoredSnapshot,
)

#: Opens (journal, snapshot store) on the bench's store, which the factory owns.
StoreFactory = Callable[[], tuple[Journal, SnapshotStore]]

#: Events written per journal append while setting up the recovery benches.
SETUP_BATCH: Final = 10_000
#: The recovery benches' persistence id.
RECOVERED_ID: Final = "recovered"


class Deposited(msgspec.Struct, frozen=True):
    amount: int


class Balance(msgspec.Struct, frozen=True):
    balance: int = 0
    version: int = 0


class Deposit(msgspec.Struct, frozen=True):
    amount: int


class GetBalance(msgspec.Struct, frozen=True):
    pass


Command = Deposit | GetBalance


def make_codec() -> Codec:
    codec = Codec()
    codec.register(Deposited, "bench.Deposited")
    codec.register(Balance, "bench.Balance")
    return codec


def _version(state: Balance) -> int:
    return state.version


class Account(PersistentActor[Command, Deposited, Balance]):
    def __init__(self, persistence_id: str) -> None:
        self.persistence_id = persistence_id

    def empty_state(self) -> Balance:
        return Balance()

    def on_command(self, state: Balance, command: Command) -> Effect[Deposited]:
        match command:
            case Deposit(amount):
                return Effect.persist(Deposited(amount)).then_reply(_version)
            case GetBalance():
                return Effect.reply(state)

    def on_event(self, state: Balance, event: Deposited) -> Balance:
        return Balance(state.balance + event.amount, state.version + 1)


# ----------------------------------------------------------------------
# Stores


def sqlite_store(path: Path, writer: Literal["process", "thread"] = "process") -> StoreFactory:
    """SQLite at ``path``, fully durable (``synchronous=FULL``), with ``writer``."""

    def open_store() -> tuple[Journal, SnapshotStore]:
        journal = SqliteJournal(path, synchronous="FULL", writer=writer)
        return journal, SqliteSnapshotStore(path)

    return open_store


def postgres_store(dsn: str, schema: str) -> StoreFactory:
    """PostgreSQL at ``dsn``, tables in ``schema``, ``synchronous_commit=on``."""

    def open_store() -> tuple[Journal, SnapshotStore]:
        return (
            PostgresJournal(dsn, schema=schema, synchronous_commit="on"),
            PostgresSnapshotStore(dsn, schema=schema),
        )

    return open_store


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


def temporary_directory() -> Path:
    """A directory removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="hewitt-bench-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# ----------------------------------------------------------------------
# Persisting


async def persist(store: StoreFactory, n: int, actors: int) -> Metrics:
    """``actors`` actors persist ``n`` events in all, each one ask at a time."""
    if n % actors:
        raise ValueError(f"n ({n}) must be a multiple of the actors ({actors})")
    each = n // actors
    journal, snapshots = store()
    persistence: Persistence | None = None
    try:
        async with ActorSystem("bench") as system:
            persistence = Persistence.install(system, journal, snapshots, make_codec())
            refs: list[ActorRef[Command]] = [
                system.spawn(Account, f"account-{i}") for i in range(actors)
            ]
            for ref in refs:  # recovered (empty) before the clock starts
                await ref.ask(GetBalance(), timeout=60.0)
            deposit = Deposit(1)

            async def client(ref: ActorRef[Command]) -> None:
                for _ in range(each):
                    await ref.ask(deposit, timeout=60.0)

            t0 = time.perf_counter()
            await asyncio.gather(*(client(ref) for ref in refs))
            secs = time.perf_counter() - t0
            for ref in refs[:: max(1, actors // 10)]:
                state: Balance = await ref.ask(GetBalance(), timeout=60.0)
                if state != Balance(each, each):
                    raise AssertionError(f"{ref}: {state}, expected {each} events")
    finally:
        if persistence is not None:
            await persistence.close()
        else:
            await journal.close()
            await snapshots.close()
    return {"events_per_s": n / secs}


# ----------------------------------------------------------------------
# Recovering


async def write_history(store: StoreFactory, n: int, snapshot_every: int | None) -> None:
    """Write ``n`` events of one actor (deposits of 1), and with
    ``snapshot_every`` its latest snapshot (see the module docstring)."""
    journal, snapshots = store()
    codec = make_codec()
    try:
        name, version, payload = codec.encode(Deposited(1))
        written = 0
        timestamp = time.time()
        while written < n:
            count = min(SETUP_BATCH, n - written)
            events = [
                StoredEvent(RECOVERED_ID, written + i, name, version, payload, (), timestamp)
                for i in range(1, count + 1)
            ]
            await journal.append(RECOVERED_ID, written, events)
            written += count
        if snapshot_every is not None and n > snapshot_every:
            at = (n - 1) // snapshot_every * snapshot_every
            state_name, state_version, state = codec.encode(Balance(at, at))
            await snapshots.save(
                StoredSnapshot(RECOVERED_ID, at, state_name, state_version, state, timestamp)
            )
    finally:
        await journal.close()
        await snapshots.close()


async def recover(store: StoreFactory, n: int) -> Metrics:
    """Time ``spawn`` to first reply of the actor whose history :func:`write_history` wrote."""
    journal, snapshots = store()
    async with ActorSystem("bench") as system:
        persistence = Persistence.install(system, journal, snapshots, make_codec())
        try:
            t0 = time.perf_counter()
            ref: ActorRef[Command] = system.spawn(Account, RECOVERED_ID)
            state: Balance = await ref.ask(GetBalance(), timeout=600.0)
            secs = time.perf_counter() - t0
        finally:
            await persistence.close()
    if state != Balance(n, n):
        raise AssertionError(f"recovered {state}, expected {n} events")
    return {"secs": secs}


class RecoveryFixture:
    """A store holding a history of ``n`` events, written once per process and
    reused by every repetition (writing 1e6 events takes longer than reading them)."""

    def __init__(self) -> None:
        self._stores: dict[tuple[int, int | None], StoreFactory] = {}

    async def store(self, n: int, snapshot_every: int | None) -> StoreFactory:
        key = (n, snapshot_every)
        store = self._stores.get(key)
        if store is None:
            store = sqlite_store(temporary_directory() / "recovery.db")
            await write_history(store, n, snapshot_every)
            self._stores[key] = store
        return store


SQLITE_RECOVERY: Final = RecoveryFixture()


async def sqlite_persist(
    n: int, actors: int, writer: Literal["process", "thread"] = "process"
) -> Metrics:
    with tempfile.TemporaryDirectory(prefix="hewitt-bench-") as directory:
        return await persist(sqlite_store(Path(directory) / "persist.db", writer), n, actors)


async def sqlite_recover(n: int, snapshot_every: int | None) -> Metrics:
    return await recover(await SQLITE_RECOVERY.store(n, snapshot_every), n)


async def postgres_persist(n: int, actors: int) -> Metrics:
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        raise RuntimeError(f"set {POSTGRES_DSN_ENV} to the DSN of a PostgreSQL server")
    schema = f"hewitt_bench_{os.getpid()}_{time.time_ns()}"
    try:
        return await persist(postgres_store(dsn, schema), n, actors)
    finally:
        await drop_schema(dsn, schema)
