"""The journal and snapshot store contract, on every backend (conftest.py:
in-memory, SQLite in a temporary file, PostgreSQL on a private server).

A backend is conformant when all of this passes. Journal rows are compared
as stored: decoding (and its errors) is the PersistentActor's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from hewitt import ActorRef, ActorSystem, DeadLetter
from hewitt.persistence import (
    AppendInDoubt,
    ConcurrencyConflict,
    IdempotencyRecord,
    Journal,
    Persistence,
    PersistenceError,
    PostgresJournal,
    SqliteJournal,
    StoredEvent,
    StoredSnapshot,
)
from hewitt.testing import TestProbe

from .bank import INSUFFICIENT_FUNDS, Account, Command, Deposit, GetBalance, Withdraw, bank_codec
from .conftest import Backend

NOW = 1_700_000_000.0


def event(pid: str, nr: int, *tags: str, payload: bytes | None = None) -> StoredEvent:
    body = payload if payload is not None else msgspec.msgpack.encode({"n": nr, "pid": pid})
    return StoredEvent(pid, nr, "Test", 1, body, tags, NOW + nr)


async def events_of(
    journal: Journal, pid: str, start: int = 1, end: int | None = None
) -> list[StoredEvent]:
    return [e async for e in journal.read_events(pid, start, end)]


# --- append and read ---------------------------------------------------------------


async def test_appended_events_read_back_in_order_as_stored(backend: Backend) -> None:
    journal = backend.journal()
    first = [event("a", 1, "t"), event("a", 2)]
    second = [event("a", 3, "t", "u")]
    await journal.append("a", 0, first)
    await journal.append("a", 2, second)
    await journal.append("b", 0, [event("b", 1)])
    assert await events_of(journal, "a") == first + second
    assert await events_of(journal, "a", 2) == [first[1], *second]
    assert await events_of(journal, "a", 1, 2) == first
    assert await events_of(journal, "a", 4) == []
    assert await events_of(journal, "nobody") == []


async def test_an_event_with_a_bad_tag_or_payload_is_refused_and_the_others_go_through(
    backend: Backend,
) -> None:
    journal = backend.journal()
    bad_tag = StoredEvent("a", 1, "Test", 1, b"x", ("t", 42), NOW)  # type: ignore[arg-type]
    bad_payload = StoredEvent("b", 1, "Test", 1, "x", (), NOW)  # type: ignore[arg-type]
    nul_tag = StoredEvent("d", 1, "Test", 1, b"x", ("t", "a\x00b"), NOW)
    outcomes = await asyncio.gather(
        journal.append("a", 0, [bad_tag]),
        journal.append("b", 0, [bad_payload]),
        journal.append("c", 0, [event("c", 1, "t")]),
        journal.append("d", 0, [nul_tag]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], ValueError)
    assert "42" in str(outcomes[0]) and "tags are str" in str(outcomes[0])
    assert isinstance(outcomes[1], ValueError)
    assert "payloads are bytes" in str(outcomes[1])
    assert outcomes[2] is None
    assert isinstance(outcomes[3], ValueError)
    assert "event 1 of 'd'" in str(outcomes[3]) and "NUL character" in str(outcomes[3])
    assert await events_of(journal, "a") == await events_of(journal, "b") == []
    assert await events_of(journal, "d") == []
    assert await events_of(journal, "c") == [event("c", 1, "t")]


async def test_highest_sequence_number(backend: Backend) -> None:
    journal = backend.journal()
    assert await journal.highest_sequence_nr("a") == 0
    await journal.append("a", 0, [event("a", 1), event("a", 2)])
    assert await journal.highest_sequence_nr("a") == 2
    await journal.append("a", 2, [event("a", 3)])
    assert await journal.highest_sequence_nr("a") == 3
    assert await journal.highest_sequence_nr("b") == 0


async def test_a_row_with_bad_bytes_is_returned_exactly_as_stored(backend: Backend) -> None:
    journal = backend.journal()
    odd = [
        StoredEvent("a", 1, "NoSuchType", 99, b"\xc1\xff\x00garbage", ("t",), NOW),
        StoredEvent("a", 2, "Test", 1, b"", (), 0.0),
        StoredEvent("a", 3, "Test", 1, bytes(range(256)) * 40, ("é", "t 2"), -1.5),
    ]
    await journal.append("a", 0, odd)
    assert await events_of(journal, "a") == odd
    found = await journal.read_by_tag("t", 0, 10)
    assert [e for _, e in found] == [odd[0]]


async def test_events_must_be_numbered_after_the_expected_number(backend: Backend) -> None:
    journal = backend.journal()
    with pytest.raises(ValueError, match="numbered 1 on"):
        await journal.append("a", 0, [event("a", 2)])
    with pytest.raises(ValueError, match="numbered 1 on"):
        await journal.append("a", 0, [event("a", 1), event("a", 3)])
    with pytest.raises(ValueError):
        await journal.append("a", 0, [event("b", 1)])
    assert await journal.highest_sequence_nr("a") == 0


# --- optimistic concurrency ---------------------------------------------------------


async def test_a_stale_expected_number_is_a_concurrency_conflict(backend: Backend) -> None:
    journal = backend.journal()
    await journal.append("a", 0, [event("a", 1)])
    with pytest.raises(ConcurrencyConflict) as caught:
        await journal.append("a", 0, [event("a", 1, payload=b"second writer")])
    assert (caught.value.persistence_id, caught.value.sequence_nr) == ("a", 1)
    assert "'a'" in str(caught.value)
    with pytest.raises(ConcurrencyConflict):  # ahead of the journal is a conflict too
        await journal.append("a", 5, [event("a", 6)])
    with pytest.raises(ConcurrencyConflict):  # also with no events
        await journal.append("a", 0, [], IdempotencyRecord("a", "k", b"\x01", NOW))
    assert await events_of(journal, "a") == [event("a", 1)]
    assert await journal.find_idempotency("a", "k", 0.0) is None


async def test_two_writers_racing_for_the_same_number_one_wins(backend: Backend) -> None:
    # Two journals on one store: two nodes after a split (in memory: one journal).
    node1, node2 = backend.journal(), backend.journal()
    await node1.append("a", 0, [event("a", 1)])
    assert await node2.highest_sequence_nr("a") == 1
    for round_ in range(5):
        n = 2 + round_
        mine = event("a", n, payload=b"node1")
        theirs = event("a", n, payload=b"node2")
        outcomes = await asyncio.gather(
            node1.append("a", n - 1, [mine]),
            node2.append("a", n - 1, [theirs]),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if o is None]
        losers = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
        assert (len(winners), len(losers)) == (1, 1), outcomes
        assert losers[0].sequence_nr == n
        stored = await events_of(node1, "a", n)
        assert stored == [mine if outcomes[0] is None else theirs]
    assert await node2.highest_sequence_nr("a") == 6


async def test_two_appends_racing_in_one_journal_one_wins(backend: Backend) -> None:
    journal = backend.journal()
    outcomes = await asyncio.gather(
        journal.append("a", 0, [event("a", 1, payload=b"x")]),
        journal.append("a", 0, [event("a", 1, payload=b"y")]),
        return_exceptions=True,
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], ConcurrencyConflict)
    assert [e.payload for e in await events_of(journal, "a")] == [b"x"]


# --- atomicity and group commit -------------------------------------------------------


async def test_events_and_idempotency_record_are_written_together_or_not_at_all(
    backend: Backend,
) -> None:
    journal = backend.journal()
    record = IdempotencyRecord("a", "key-1", b"\x92\x01\x02", NOW)
    await journal.append("a", 0, [event("a", 1), event("a", 2)], record)
    assert len(await events_of(journal, "a")) == 2
    assert await journal.find_idempotency("a", "key-1", 0.0) == record
    refused = IdempotencyRecord("a", "key-2", b"\x01", NOW)
    with pytest.raises(ConcurrencyConflict):
        await journal.append("a", 1, [event("a", 2), event("a", 3)], refused)
    assert await journal.find_idempotency("a", "key-2", 0.0) is None
    assert await journal.highest_sequence_nr("a") == 2
    assert await events_of(journal, "a") == [event("a", 1), event("a", 2)]
    # An append of only an idempotency record (a refused command with a key).
    only = IdempotencyRecord("a", "key-3", b"\xa2no", NOW)
    await journal.append("a", 2, [], only)
    assert await journal.find_idempotency("a", "key-3", 0.0) == only
    assert await journal.highest_sequence_nr("a") == 2


async def test_a_conflicting_append_fails_alone_in_its_batch(backend: Backend) -> None:
    journal = backend.journal()
    for pid in ("p0", "p1", "p2", "p3"):
        await journal.append(pid, 0, [event(pid, 1)])
    outcomes = await asyncio.gather(
        journal.append("p0", 1, [event("p0", 2)]),
        journal.append("p1", 0, [event("p1", 1)], IdempotencyRecord("p1", "k", b"\x01", NOW)),
        journal.append("p2", 1, [event("p2", 2, "t")], IdempotencyRecord("p2", "k", b"\x02", NOW)),
        journal.append("p3", 1, [event("p3", 2)]),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], ConcurrencyConflict)
    assert await journal.find_idempotency("p1", "k", 0.0) is None
    assert await journal.find_idempotency("p2", "k", 0.0) is not None
    assert [await journal.highest_sequence_nr(p) for p in ("p0", "p1", "p2", "p3")] == [2, 1, 2, 2]


async def test_group_commit_never_reorders_one_persistence_id(backend: Backend) -> None:
    journal = backend.journal()
    pids = [f"pid-{i}" for i in range(60)]
    rounds = 15

    async def writer(pid: str) -> None:
        for n in range(1, rounds + 1):
            await journal.append(pid, n - 1, [event(pid, n, "all")])

    await asyncio.gather(*(writer(pid) for pid in pids))
    for pid in pids:
        assert await events_of(journal, pid) == [event(pid, n, "all") for n in range(1, rounds + 1)]
    tagged = await journal.read_by_tag("all", 0, 10_000)
    assert len(tagged) == len(pids) * rounds
    for pid in pids:  # the global order agrees with each pid's order
        assert [e.sequence_nr for _, e in tagged if e.persistence_id == pid] == list(
            range(1, rounds + 1)
        )


async def test_appends_queued_together_for_one_pid_keep_their_order(backend: Backend) -> None:
    journal = backend.journal()
    # Not awaited one by one: they may share a batch; each sees the one before.
    await asyncio.gather(*(journal.append("a", n, [event("a", n + 1)]) for n in range(20)))
    assert await events_of(journal, "a") == [event("a", n) for n in range(1, 21)]


# --- tags -----------------------------------------------------------------------------------


async def test_read_by_tag_in_global_order_with_offsets(backend: Backend) -> None:
    journal = backend.journal()
    written: list[StoredEvent] = []
    for n in range(1, 6):
        for pid in ("a", "b"):
            tags = ("even",) if n % 2 == 0 else ("odd", "any")
            stored = event(pid, n, *tags)
            await journal.append(pid, n - 1, [stored])
            written.append(stored)
    await journal.append("c", 0, [event("c", 1)])  # untagged
    odd = await journal.read_by_tag("odd", 0, 100)
    assert [e for _, e in odd] == [e for e in written if "odd" in e.tags]
    offsets = [o for o, _ in odd]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert [e for _, e in await journal.read_by_tag("any", 0, 100)] == [e for _, e in odd]
    page = await journal.read_by_tag("odd", offsets[1], 2)
    assert page == odd[2:4]
    assert await journal.read_by_tag("odd", offsets[-1], 10) == []
    assert await journal.read_by_tag("nothing", 0, 10) == []
    even = await journal.read_by_tag("even", 0, 100)
    assert not set(offsets) & {o for o, _ in even}  # one global sequence of offsets
    later = event("a", 6, "odd")
    await journal.append("a", 5, [later])
    newer = await journal.read_by_tag("odd", offsets[-1], 10)
    assert [e for _, e in newer] == [later] and newer[0][0] > max(o for o, _ in even)


# --- deletion -------------------------------------------------------------------------------


async def test_delete_events_up_to_keeps_the_highest_number(backend: Backend) -> None:
    journal = backend.journal()
    await journal.append("a", 0, [event("a", n, "t") for n in range(1, 6)])
    await journal.append("b", 0, [event("b", 1, "t")])
    await journal.delete_events_up_to("a", 2)
    assert [e.sequence_nr for e in await events_of(journal, "a")] == [3, 4, 5]
    assert await journal.highest_sequence_nr("a") == 5
    tagged = await journal.read_by_tag("t", 0, 100)
    assert [(e.persistence_id, e.sequence_nr) for _, e in tagged] == [
        ("a", 3),
        ("a", 4),
        ("a", 5),
        ("b", 1),
    ]
    await journal.delete_events_up_to("a", 5)
    assert await events_of(journal, "a") == []
    assert await journal.highest_sequence_nr("a") == 5  # deleted events still count
    with pytest.raises(ConcurrencyConflict):
        await journal.append("a", 0, [event("a", 1)])
    await journal.append("a", 5, [event("a", 6)])
    assert [e.sequence_nr for e in await events_of(journal, "a")] == [6]
    assert len(await events_of(journal, "b")) == 1


# --- idempotency --------------------------------------------------------------------------


async def test_idempotency_records_are_found_within_the_window(backend: Backend) -> None:
    journal = backend.journal()
    record = IdempotencyRecord("a", "k", b"\x93\x01\x02\x03", NOW)
    await journal.append("a", 0, [event("a", 1)], record)
    assert await journal.find_idempotency("a", "k", NOW - 60) == record
    assert await journal.find_idempotency("a", "k", NOW) == record  # at the edge: inside
    assert await journal.find_idempotency("a", "k", NOW + 0.001) is None  # expired
    assert await journal.find_idempotency("a", "other", 0.0) is None
    assert await journal.find_idempotency("b", "k", 0.0) is None  # per persistence id
    newer = IdempotencyRecord("a", "k", b"\x01", NOW + 100)
    await journal.append("a", 1, [event("a", 2)], newer)
    assert await journal.find_idempotency("a", "k", NOW + 50) == newer


async def test_idempotency_records_written_before_a_time_are_deleted(backend: Backend) -> None:
    journal = backend.journal()
    old_a = IdempotencyRecord("a", "old", b"\x01", NOW - 100)
    old_b = IdempotencyRecord("b", "old", b"\x02", NOW - 100)
    edge = IdempotencyRecord("a", "edge", b"\x03", NOW - 50)
    fresh = IdempotencyRecord("b", "fresh", b"\x04", NOW)
    await journal.append("a", 0, [event("a", 1)], old_a)
    await journal.append("b", 0, [], old_b)
    await journal.append("a", 1, [], edge)
    await journal.append("b", 0, [event("b", 1)], fresh)
    await journal.delete_idempotency_before(NOW - 50)
    assert await journal.find_idempotency("a", "old", 0.0) is None
    assert await journal.find_idempotency("b", "old", 0.0) is None
    assert await journal.find_idempotency("a", "edge", 0.0) == edge  # at the edge: kept
    assert await journal.find_idempotency("b", "fresh", 0.0) == fresh
    assert await events_of(journal, "a") == [event("a", 1)]  # events untouched
    assert [await journal.highest_sequence_nr(p) for p in "ab"] == [1, 1]


# --- snapshots ------------------------------------------------------------------------------


async def test_snapshots_newest_first_and_delete_up_to(backend: Backend) -> None:
    store = backend.snapshots()
    assert await store.load_all("a") == []

    def snap(nr: int, payload: bytes = b"s") -> StoredSnapshot:
        return StoredSnapshot("a", nr, "State", 1, payload + bytes([nr]), NOW + nr)

    for nr in (5, 10, 3):
        await store.save(snap(nr))
    await store.save(StoredSnapshot("b", 7, "State", 2, b"\xc1", NOW))
    assert await store.load_all("a") == [snap(10), snap(5), snap(3)]
    await store.save(snap(5, b"again"))  # the same number again replaces it
    assert await store.load_all("a") == [snap(10), snap(5, b"again"), snap(3)]
    await store.delete_up_to("a", 5)
    assert await store.load_all("a") == [snap(10)]
    assert await store.load_all("b") == [StoredSnapshot("b", 7, "State", 2, b"\xc1", NOW)]


# --- reopening ------------------------------------------------------------------------------


async def test_reopening_the_store_keeps_everything(durable_backend: Backend) -> None:
    backend = durable_backend
    journal, store = backend.journal(), backend.snapshots()
    record = IdempotencyRecord("a", "k", b"\x01", NOW)
    written = [event("a", 1, "t"), event("a", 2), event("a", 3, "t")]
    await journal.append("a", 0, written[:2])
    await journal.append("a", 2, written[2:], record)
    await journal.append("b", 0, [event("b", 1, "t")])
    await journal.delete_events_up_to("b", 1)
    await store.save(StoredSnapshot("a", 2, "State", 1, b"snap", NOW))
    tagged = await journal.read_by_tag("t", 0, 10)
    await journal.close()
    await store.close()

    journal, store = backend.journal(), backend.snapshots()
    assert await events_of(journal, "a") == written
    assert await journal.highest_sequence_nr("a") == 3
    assert await journal.highest_sequence_nr("b") == 1
    assert await journal.read_by_tag("t", 0, 10) == tagged
    assert await journal.find_idempotency("a", "k", 0.0) == record
    assert await store.load_all("a") == [StoredSnapshot("a", 2, "State", 1, b"snap", NOW)]
    await journal.append("a", 3, [event("a", 4, "t")])
    assert (await journal.read_by_tag("t", tagged[-1][0], 10))[0][1] == event("a", 4, "t")


async def test_close_commits_what_is_queued(backend: Backend) -> None:
    journal = backend.journal()
    appends = [
        asyncio.ensure_future(journal.append(f"p{i}", 0, [event(f"p{i}", 1)])) for i in range(50)
    ]
    await asyncio.sleep(0)  # one turn of the loop: the appends are queued, not committed
    await journal.close()
    await asyncio.gather(*appends)
    if backend.durable:
        reopened = backend.journal()
        assert [await reopened.highest_sequence_nr(f"p{i}") for i in range(50)] == [1] * 50


async def test_a_schema_from_newer_code_is_refused(durable_backend: Backend) -> None:
    backend = durable_backend
    journal = backend.journal()
    await journal.append("a", 0, [event("a", 1)])
    await journal.close()
    if isinstance(journal, SqliteJournal):
        with contextlib.closing(sqlite3.connect(backend.location)) as db, db:
            db.execute("UPDATE hewitt_schema SET version = 99")
    else:
        assert isinstance(journal, PostgresJournal)
        import asyncpg

        dsn, schema = backend.location.split("|")
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'UPDATE "{schema}".hewitt_schema SET version = 99')
        finally:
            await connection.close()
    with pytest.raises(PersistenceError, match="schema version 99"):
        await backend.journal().highest_sequence_nr("a")


# --- the PersistentActor on each backend -------------------------------------------------


async def start_bank(backend: Backend) -> tuple[ActorSystem, Persistence]:
    system = ActorSystem("bank")
    await system.start()
    persistence = Persistence.install(system, backend.journal(), backend.snapshots(), bank_codec())
    return system, persistence


async def test_accounts_end_to_end_survive_a_restart(backend: Backend) -> None:
    system, persistence = await start_bank(backend)
    try:
        accounts: list[ActorRef[Command]] = [
            system.spawn(Account, str(i), name=f"acc-{i}") for i in range(20)
        ]

        async def run(i: int, ref: ActorRef[Command]) -> int:
            for _ in range(5):
                await ref.ask(Deposit(10 + i))
            assert await ref.ask(Withdraw(1000)) == INSUFFICIENT_FUNDS
            balance: int = await ref.ask(Withdraw(3))
            return balance

        balances = await asyncio.gather(*(run(i, ref) for i, ref in enumerate(accounts)))
        assert balances == [5 * (10 + i) - 3 for i in range(20)]
        assert await persistence.journal.highest_sequence_nr("account-0") == 6
    finally:
        await system.shutdown()
        await persistence.close()

    system, persistence = await start_bank(backend)  # a new process on the same store
    try:
        for i in range(20):
            ref: ActorRef[Command] = system.spawn(Account, str(i), name=f"acc-{i}")
            assert await ref.ask(GetBalance()) == balances[i]
        assert await persistence.journal.highest_sequence_nr("account-0") == 6
    finally:
        await system.shutdown()
        await persistence.close()


async def test_a_duplicate_idempotency_key_replies_the_original_and_writes_nothing(
    backend: Backend,
) -> None:
    system, persistence = await start_bank(backend)
    try:
        account: ActorRef[Command] = system.spawn(Account, "x")
        assert await account.ask(Deposit(100, idempotency_key="d-1")) == 100
        assert await account.ask(Withdraw(30, idempotency_key="w-1")) == 70
        assert await account.ask(Withdraw(500, idempotency_key="w-2")) == INSUFFICIENT_FUNDS
        highest = await persistence.journal.highest_sequence_nr("account-x")
        assert highest == 2
        assert await account.ask(Deposit(100, idempotency_key="d-1")) == 100  # the original
        assert await account.ask(Withdraw(30, idempotency_key="w-1")) == 70
        assert await account.ask(Withdraw(500, idempotency_key="w-2")) == INSUFFICIENT_FUNDS
        assert await persistence.journal.highest_sequence_nr("account-x") == highest
        assert await account.ask(GetBalance()) == 70
    finally:
        await system.shutdown()
        await persistence.close()
    system, persistence = await start_bank(backend)  # remembered across restarts
    try:
        account = system.spawn(Account, "x")
        assert await account.ask(Withdraw(30, idempotency_key="w-1")) == 70
        assert await account.ask(GetBalance()) == 70
        assert await persistence.journal.highest_sequence_nr("account-x") == 2
    finally:
        await system.shutdown()
        await persistence.close()


class LosesOutcomes(Journal):
    """Delegates to ``inner``; the next ``lose`` appends end in doubt: the
    append commits (``commit=True``) or not, and its outcome is lost."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self.lose: list[bool] = []  # commit or not, for each next append

    async def append(
        self,
        persistence_id: str,
        expected_sequence_nr: int,
        events: Sequence[StoredEvent],
        idempotency: IdempotencyRecord | None = None,
    ) -> None:
        if not self.lose:
            await self.inner.append(persistence_id, expected_sequence_nr, events, idempotency)
            return
        if self.lose.pop(0):
            await self.inner.append(persistence_id, expected_sequence_nr, events, idempotency)
        raise AppendInDoubt(persistence_id, expected_sequence_nr, len(events), "lost (a test)")

    def read_events(
        self, persistence_id: str, from_sequence_nr: int = 1, to_sequence_nr: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        return self.inner.read_events(persistence_id, from_sequence_nr, to_sequence_nr)

    async def highest_sequence_nr(self, persistence_id: str) -> int:
        return await self.inner.highest_sequence_nr(persistence_id)

    async def delete_events_up_to(self, persistence_id: str, sequence_nr: int) -> None:
        await self.inner.delete_events_up_to(persistence_id, sequence_nr)

    async def read_by_tag(
        self, tag: str, after_offset: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        return await self.inner.read_by_tag(tag, after_offset, limit)

    async def find_idempotency(
        self, persistence_id: str, key: str, not_before: float
    ) -> IdempotencyRecord | None:
        return await self.inner.find_idempotency(persistence_id, key, not_before)

    async def delete_idempotency_before(self, not_before: float) -> None:
        await self.inner.delete_idempotency_before(not_before)

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
async def test_a_command_whose_append_is_in_doubt_fails_is_not_retried_and_the_truth_is_recovered(
    backend: Backend, committed: bool
) -> None:
    # docs/persistence.md, "Appends in doubt". A blind retry (the default
    # RESTART retries the failed message) used to persist the committed
    # deposit twice: balance 200.
    journal = LosesOutcomes(backend.journal())
    system = ActorSystem("bank")
    await system.start()
    persistence = Persistence.install(system, journal, backend.snapshots(), bank_codec())
    probe = TestProbe(system)
    try:
        account: ActorRef[Command] = system.spawn(Account, "x")
        assert await account.ask(Deposit(100)) == 100
        journal.lose.append(committed)
        with pytest.raises(AppendInDoubt) as caught:
            await account.ask(Deposit(50))
        assert (caught.value.persistence_id, caught.value.first_sequence_nr) == ("account-x", 2)
        assert "is unknown" in str(caught.value)
        truth = 150 if committed else 100
        assert await account.ask(GetBalance()) == truth  # recovered before this
        assert await journal.highest_sequence_nr("account-x") == (2 if committed else 1)
        assert await account.ask(Deposit(1)) == truth + 1
        # A told command in doubt is a dead letter (no reply comes), not a retry.
        system.event_stream.subscribe(probe.ref, DeadLetter)
        journal.lose.append(committed)
        account.tell(Deposit(7), probe.ref)
        letter = await probe.expect_message(DeadLetter)
        assert letter.message == Deposit(7) and "is unknown" in letter.reason
        assert await account.ask(GetBalance()) == truth + 1 + (7 if committed else 0)
        assert probe.pending == 0
    finally:
        await system.shutdown()
        await persistence.close()


async def test_expired_idempotency_records_are_deleted_as_keyed_commands_come(
    backend: Backend,
) -> None:
    # docs/persistence.md, "Idempotency": records older than the window are
    # deleted (every persistence id's), at most once per purge interval.
    journal = backend.journal()
    expired = IdempotencyRecord("account-old", "k", b"\x01", time.time() - 7200)
    kept = IdempotencyRecord("account-old", "recent", b"\x02", time.time() - 60)
    await journal.append("account-old", 0, [], expired)
    await journal.append("account-old", 0, [], kept)
    system = ActorSystem("bank")
    await system.start()
    persistence = Persistence.install(
        system, journal, backend.snapshots(), bank_codec(), idempotency_window=3600.0
    )
    assert persistence.idempotency_purge_interval == 3600.0
    try:
        account: ActorRef[Command] = system.spawn(Account, "x")
        assert await account.ask(Deposit(5)) == 5  # no key: no purge
        assert await journal.find_idempotency("account-old", "k", 0.0) == expired
        assert await account.ask(Deposit(5, idempotency_key="d-1")) == 10
        assert await journal.find_idempotency("account-old", "k", 0.0) is None
        assert await journal.find_idempotency("account-old", "recent", 0.0) == kept
        assert await account.ask(Deposit(5, idempotency_key="d-1")) == 10  # still found
        # Within the interval nothing more is deleted; purge_idempotency runs now.
        older = IdempotencyRecord("account-old", "k2", b"\x03", time.time() - 7200)
        await journal.append("account-old", 0, [], older)
        assert await account.ask(Deposit(5, idempotency_key="d-2")) == 15
        assert await journal.find_idempotency("account-old", "k2", 0.0) == older
        await persistence.purge_idempotency()
        assert await journal.find_idempotency("account-old", "k2", 0.0) is None
        assert await journal.find_idempotency("account-x", "d-2", 0.0) is not None
    finally:
        await system.shutdown()
        await persistence.close()
