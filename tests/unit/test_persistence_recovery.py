"""Recovery of persistent actors: schema evolution, unknown types, corrupt data.

The shared domain and helpers are in test_persistence.py.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hewitt import (
    ActorInitializationError,
    ActorSystem,
)
from hewitt.persistence import (
    Codec,
    Effect,
    InMemoryJournal,
    InMemorySnapshotStore,
    Persistence,
    PersistentActor,
    RecoveryError,
    StoredEvent,
    StoredSnapshot,
)
from hewitt.testing import TestProbe

from .test_persistence import (
    Account,
    Backend,
    Deposited,
    GetBalance,
    Recovered,
    backend,
    deposit_all,
    install,
    make_codec,
    quiet_failure_logs,
    recovery_failure,
    stored,
)

__all__ = ["backend", "quiet_failure_logs"]  # fixtures used from this module


# --- schema evolution -------------------------------------------------------------


class MoneyAdded(msgspec.Struct, frozen=True):
    """Version 3. v1: {"amount": euros}; v2: {"amount": units, "currency": ...};
    v3: {"cents": ..., "currency": ...}."""

    cents: int
    currency: str


class Totals(msgspec.Struct, frozen=True):
    cents: dict[str, int] = {}


class Wallet(PersistentActor[Any, MoneyAdded, Totals]):
    def __init__(self, persistence_id: str) -> None:
        self.persistence_id = persistence_id

    def empty_state(self) -> Totals:
        return Totals()

    def on_command(self, state: Totals, command: Any) -> Effect[MoneyAdded]:
        if command == "get":
            return Effect.reply(state.cents)
        cents, currency = command
        return Effect.persist(MoneyAdded(cents, currency)).then_reply(lambda s: s.cents)

    def on_event(self, state: Totals, event: MoneyAdded) -> Totals:
        cents = dict(state.cents)
        cents[event.currency] = cents.get(event.currency, 0) + event.cents
        return Totals(cents)


def wallet_codec(upcasters: bool = True) -> tuple[Codec, list[str]]:
    codec = Codec()
    codec.register(MoneyAdded, "MoneyAdded", version=3)
    codec.register(Totals, "Totals")
    calls: list[str] = []
    if upcasters:

        @codec.upcaster("MoneyAdded", 1)
        def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
            calls.append("1->2")
            return {"amount": data["amount"], "currency": "EUR"}

        @codec.upcaster("MoneyAdded", 2)
        def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
            calls.append("2->3")
            return {"cents": data["amount"] * 100, "currency": data["currency"]}

    return codec, calls


def raw(persistence_id: str, sequence_nr: int, name: str, version: int, data: Any) -> StoredEvent:
    return StoredEvent(persistence_id, sequence_nr, name, version, msgspec.msgpack.encode(data))


async def test_upcasters_turn_old_versions_into_the_current_one_on_replay(
    actor_system: ActorSystem,
) -> None:
    codec, calls = wallet_codec()
    journal = InMemoryJournal()
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), codec)
    await journal.append(
        "w",
        0,
        [
            raw("w", 1, "MoneyAdded", 1, {"amount": 5}),
            raw("w", 2, "MoneyAdded", 2, {"amount": 7, "currency": "USD"}),
            raw("w", 3, "MoneyAdded", 3, {"cents": 250, "currency": "EUR"}),
        ],
    )
    wallet = actor_system.spawn(Wallet, "w")
    assert await wallet.ask("get") == {"EUR": 750, "USD": 700}
    assert calls == ["1->2", "2->3", "2->3"]  # v1 went through both, v2 through one
    assert await wallet.ask((1, "USD")) == {"EUR": 750, "USD": 701}
    newest = [e async for e in journal.read_events("w", 4)]
    assert [(e.type_name, e.version) for e in newest] == [("MoneyAdded", 3)]  # written at v3


async def test_upcasters_apply_to_snapshots_too(actor_system: ActorSystem) -> None:
    codec = Codec()
    codec.register(MoneyAdded, "MoneyAdded", version=3)
    codec.register(Totals, "Totals", version=2)

    @codec.upcaster("Totals", 1)
    def units_to_cents(data: dict[str, Any]) -> dict[str, Any]:
        return {"cents": {currency: n * 100 for currency, n in data["units"].items()}}

    journal, snapshots = InMemoryJournal(), InMemorySnapshotStore()
    Persistence.install(actor_system, journal, snapshots, codec)
    await journal.append(
        "w",
        0,
        [
            raw("w", 1, "MoneyAdded", 3, {"cents": 500, "currency": "EUR"}),
            raw("w", 2, "MoneyAdded", 3, {"cents": 1, "currency": "EUR"}),
        ],
    )
    await snapshots.save(
        StoredSnapshot("w", 1, "Totals", 1, msgspec.msgpack.encode({"units": {"EUR": 5}}))
    )
    wallet = actor_system.spawn(Wallet, "w")
    assert await wallet.ask("get") == {"EUR": 501}


@pytest.mark.parametrize(
    ("version", "message"),
    [(1, "no upcaster from version 1 to 2"), (4, "newer than this code")],
)
async def test_a_version_with_no_upcaster_path_is_a_recovery_error(
    actor_system: ActorSystem, version: int, message: str
) -> None:
    codec, _ = wallet_codec(upcasters=False)
    journal = InMemoryJournal()
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), codec)
    await journal.append(
        "w",
        0,
        [
            raw("w", 1, "MoneyAdded", 3, {"cents": 1, "currency": "EUR"}),
            raw("w", 2, "MoneyAdded", version, {"amount": 1}),
        ],
    )
    probe = TestProbe(actor_system)
    terminated = await probe.expect_terminated(actor_system.spawn(Wallet, "w"))
    assert isinstance(terminated.reason, ActorInitializationError)
    error = terminated.reason.__cause__
    assert isinstance(error, RecoveryError)
    assert (error.persistence_id, error.sequence_nr) == ("w", 2)
    assert message in str(error)


async def test_an_upcaster_that_fails_is_a_recovery_error_with_pid_and_seq(
    actor_system: ActorSystem,
) -> None:
    codec, _ = wallet_codec()
    journal = InMemoryJournal()
    Persistence.install(actor_system, journal, InMemorySnapshotStore(), codec)
    await journal.append("w", 0, [raw("w", 1, "MoneyAdded", 1, {"euros": 5})])  # no "amount"
    probe = TestProbe(actor_system)
    terminated = await probe.expect_terminated(actor_system.spawn(Wallet, "w"))
    assert isinstance(terminated.reason, ActorInitializationError)
    error = terminated.reason.__cause__
    assert isinstance(error, RecoveryError)
    assert (error.persistence_id, error.sequence_nr) == ("w", 1)


# --- unknown types and corrupt data ------------------------------------------------


async def test_an_unknown_event_type_stops_the_actor_with_a_recovery_error(
    actor_system: ActorSystem,
) -> None:
    journal, _ = install(actor_system)
    codec = make_codec()
    await journal.append(
        "acc",
        0,
        [stored("acc", 1, Deposited(5), codec), StoredEvent("acc", 2, "Teleported", 1, b"\x80")],
    )
    error = await recovery_failure(actor_system, "acc")
    assert (error.persistence_id, error.sequence_nr) == ("acc", 2)
    assert "'acc'" in str(error)
    assert "sequence number 2" in str(error)
    assert "'Teleported'" in str(error)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xc1\xc1\xc1", id="garbage"),
        pytest.param(msgspec.msgpack.encode(Deposited(12345678))[:-2], id="truncated"),
        pytest.param(msgspec.msgpack.encode("not a deposit"), id="wrong-shape"),
    ],
)
async def test_bad_bytes_in_a_journal_row_are_a_recovery_error_with_pid_and_seq(
    actor_system: ActorSystem, payload: bytes
) -> None:
    journal, _ = install(actor_system)
    codec = make_codec()
    await journal.append(
        "acc",
        0,
        [
            stored("acc", 1, Deposited(5), codec),
            StoredEvent("acc", 2, "Deposited", 1, payload),
            stored("acc", 3, Deposited(5), codec),
        ],
    )
    error = await recovery_failure(actor_system, "acc")
    assert (error.persistence_id, error.sequence_nr) == ("acc", 2)
    assert "'Deposited'" in str(error)


async def test_a_corrupted_sqlite_event_row_is_a_recovery_error_with_pid_and_seq(
    tmp_path: Path,
) -> None:
    backend = Backend("sqlite", tmp_path / "journal.db")
    async with backend.system() as (system, _):
        await deposit_all(system.spawn(Account, "acc"), [1, 2, 3])
    with contextlib.closing(sqlite3.connect(backend.path)) as db, db:
        db.execute(
            "UPDATE hewitt_events SET payload = X'C1FF' "
            "WHERE persistence_id = 'acc' AND sequence_nr = 2"
        )
    async with backend.system() as (system, _):
        error = await recovery_failure(system, "acc")
        assert (error.persistence_id, error.sequence_nr) == ("acc", 2)


async def test_a_corrupted_sqlite_tags_column_is_a_recovery_error_with_pid_and_seq(
    tmp_path: Path,
) -> None:
    backend = Backend("sqlite", tmp_path / "journal.db")
    async with backend.system() as (system, _):
        await deposit_all(system.spawn(Account, "acc"), [1, 2, 3])
    with contextlib.closing(sqlite3.connect(backend.path)) as db, db:
        db.execute(
            "UPDATE hewitt_events SET tags = '[\"acc' "
            "WHERE persistence_id = 'acc' AND sequence_nr = 2"
        )
    async with backend.system() as (system, _):
        probe = TestProbe(system)
        terminated = await probe.expect_terminated(system.spawn(Account, "acc"))
        assert isinstance(terminated.reason, ActorInitializationError)
        error = terminated.reason.__cause__
        assert isinstance(error, RecoveryError), repr(error)
        assert (error.persistence_id, error.sequence_nr) == ("acc", 2)


async def test_an_event_handler_that_fails_on_replay_is_a_recovery_error_with_pid_and_seq(
    actor_system: ActorSystem,
) -> None:
    journal, _ = install(actor_system)
    codec = make_codec()
    await journal.append(
        "acc", 0, [stored("acc", 1, Deposited(5), codec), stored("acc", 2, Deposited(-1), codec)]
    )
    error = await recovery_failure(actor_system, "acc")
    assert (error.persistence_id, error.sequence_nr) == ("acc", 2)


async def test_a_gap_in_the_journal_is_a_recovery_error_naming_the_missing_event(
    actor_system: ActorSystem,
) -> None:
    journal, _ = install(actor_system)
    account = actor_system.spawn(Account, "acc", name="writer")
    await deposit_all(account, [1, 2, 3, 4])
    account.stop()
    await account.wait_terminated()
    await journal.delete_events_up_to("acc", 2)  # and no snapshot covers them
    error = await recovery_failure(actor_system, "acc")
    assert (error.persistence_id, error.sequence_nr) == ("acc", 1)


DAMAGES = {
    "garbage": lambda s: StoredSnapshot(s.persistence_id, s.sequence_nr, s.type_name, 1, b"\xc1"),
    "truncated": lambda s: StoredSnapshot(
        s.persistence_id, s.sequence_nr, s.type_name, 1, s.payload[:-1]
    ),
    "unknown-type": lambda s: StoredSnapshot(
        s.persistence_id, s.sequence_nr, "Vanished", 1, s.payload
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
async def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(
    backend: Backend, damage: str
) -> None:
    class Every2(Account):
        snapshot_every = 2

    async with backend.system() as (system, persistence):
        await deposit_all(system.spawn(Every2, "acc"), [100, 200, 300, 400, 500])
        snapshots = persistence.snapshots
        assert snapshots is not None
        newest, previous = await snapshots.load_all("acc")
        assert (newest.sequence_nr, previous.sequence_nr) == (4, 2)
        await snapshots.delete_up_to("acc", 4)
        await snapshots.save(previous)
        await snapshots.save(DAMAGES[damage](newest))
    async with backend.system() as (system, _):
        probe = TestProbe(system)
        account = system.spawn(Account, "acc", probe.ref)
        # snapshot 2 (balance 300), then events 3, 4 and 5
        assert await probe.expect_message(Recovered) == Recovered(5, 3, 1500)
        assert await account.ask(GetBalance()) == 1500


async def test_when_every_snapshot_is_damaged_recovery_replays_all_events(
    actor_system: ActorSystem,
) -> None:
    _, snapshots = install(actor_system)
    account = actor_system.spawn(Account, "acc", name="writer")
    await deposit_all(account, [1, 2, 3])
    account.stop()
    await account.wait_terminated()
    await snapshots.save(StoredSnapshot("acc", 1, "Balance", 1, b"\xc1"))
    await snapshots.save(StoredSnapshot("acc", 2, "Balance", 1, b""))
    probe = TestProbe(actor_system)
    actor_system.spawn(Account, "acc", probe.ref)
    assert await probe.expect_message(Recovered) == Recovered(3, 3, 6)


async def test_delete_events_on_snapshot_still_allows_falling_back_to_the_previous_snapshot(
    actor_system: ActorSystem,
) -> None:
    class Compacting(Account):
        snapshot_every = 2
        delete_events_on_snapshot = True

    _, snapshots = install(actor_system)
    writer = actor_system.spawn(Compacting, "acc", name="writer")
    await deposit_all(writer, [1, 2, 3, 4, 5])
    writer.stop()
    await writer.wait_terminated()
    newest, previous = await snapshots.load_all("acc")
    assert (newest.sequence_nr, previous.sequence_nr) == (4, 2)
    await snapshots.delete_up_to("acc", 4)
    await snapshots.save(previous)
    await snapshots.save(DAMAGES["garbage"](newest))
    probe = TestProbe(actor_system)
    probe.watch(actor_system.spawn(Account, "acc", probe.ref))
    # snapshot 2, then events 3, 4 and 5 (not a Terminated)
    assert await probe.receive_message() == Recovered(5, 3, 15)
