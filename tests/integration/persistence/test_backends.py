"""Backend-specific behaviour beyond the shared contract (test_conformance.py):
settings, failures of the storage itself, closing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import warnings
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Literal

import asyncpg
import msgspec
import pytest

import hewitt
from hewitt import ActorRef, ActorSystem
from hewitt.persistence import (
    AppendInDoubt,
    ConcurrencyConflict,
    Journal,
    Persistence,
    PersistenceError,
    PostgresJournal,
    SqliteJournal,
    SqliteSnapshotStore,
    StoredEvent,
)
from hewitt.persistence import _sqlite_process as sqlite_process
from hewitt.persistence import _sqlite_sql as sqlite_sql
from hewitt.persistence._sqlite_process import ProcessWriter, writer_command
from hewitt.persistence._sqlite_sql import JournalConnection, connect

from .bank import Account, Command, Deposit, GetBalance, bank_codec
from .conftest import Backend
from .pgserver import PostgresServer


def event(pid: str, nr: int, *tags: str) -> StoredEvent:
    return StoredEvent(pid, nr, "Test", 1, b"\x01", tags, 1.0)


async def test_using_a_closed_store_is_an_error(durable_backend: Backend) -> None:
    journal, snapshots = durable_backend.journal(), durable_backend.snapshots()
    await journal.append("a", 0, [event("a", 1)])
    await journal.close()
    await snapshots.close()
    await journal.close()  # idempotent
    with pytest.raises(PersistenceError, match="closed"):
        await journal.append("a", 1, [event("a", 2)])
    with pytest.raises(PersistenceError, match="closed"):
        await journal.highest_sequence_nr("a")
    with pytest.raises(PersistenceError, match="closed"):
        await snapshots.load_all("a")


def test_sqlite_refuses_an_unknown_synchronous_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FULL, NORMAL or EXTRA"):
        SqliteJournal(tmp_path / "j.db", synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="FULL, NORMAL or EXTRA"):
        SqliteSnapshotStore(tmp_path / "j.db", synchronous="off")  # type: ignore[arg-type]


async def test_sqlite_a_file_that_cannot_be_opened_fails_the_appends(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "no such folder" / "j.db")
    outcomes = await asyncio.gather(
        *(journal.append(f"p{i}", 0, [event(f"p{i}", 1)]) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes), outcomes
    assert {o.sqlite_errorname for o in outcomes} == {"SQLITE_CANTOPEN"}  # type: ignore[union-attr]
    with pytest.raises(sqlite3.OperationalError):
        await journal.highest_sequence_nr("p0")
    await journal.close()


async def test_sqlite_normal_durability_works_the_same(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path, synchronous="NORMAL")
    await journal.append("a", 0, [event("a", 1, "t")])
    with pytest.raises(ConcurrencyConflict):
        await journal.append("a", 0, [event("a", 1)])
    await journal.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reopened = SqliteJournal(path)
    assert [e async for e in reopened.read_events("a")] == [event("a", 1, "t")]
    await reopened.close()


async def test_sqlite_a_damaged_tags_column_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    await journal.append("a", 0, [event("a", 1, "t"), event("a", 2, "t")])
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE hewitt_events SET tags = '[\"t' WHERE sequence_nr = 2")
    with pytest.raises(PersistenceError, match=r"'a' failed at sequence number 2"):
        _ = [e async for e in journal.read_events("a")]
    await journal.close()


async def _execute_behind_the_journal(backend: Backend, sql: str) -> None:
    """Run ``sql`` on the backend's tables, as other code sharing them would."""
    if backend.name.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(backend.location)) as db, db:
            db.execute(sql)
        return
    dsn, schema = backend.location.split("|")
    connection = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def test_rows_written_by_other_code_make_the_batch_fall_back(
    durable_backend: Backend,
) -> None:
    # hewitt_highest says 0 but event 1 exists (tables also written by other
    # code): the UNIQUE constraint still refuses the duplicate, and the batch
    # is redone one append per savepoint, so the other appends commit.
    # (PostgreSQL used to refuse the per-write savepoints inside the batch's
    # transaction, failing the whole batch.)
    journal = durable_backend.journal()
    await journal.append("a", 0, [event("a", 1)])
    await _execute_behind_the_journal(
        durable_backend, "DELETE FROM hewitt_highest WHERE persistence_id = 'a'"
    )
    outcomes = await asyncio.gather(
        journal.append("a", 0, [event("a", 1)]),
        journal.append("b", 0, [event("b", 1, "t")]),
        journal.append("c", 0, [event("c", 1)]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], ConcurrencyConflict), outcomes
    assert outcomes[1:] == [None, None]
    assert [await journal.highest_sequence_nr(p) for p in "bc"] == [1, 1]
    assert [e for _, e in await journal.read_by_tag("t", 0, 10)] == [event("b", 1, "t")]


async def test_one_append_the_store_refuses_fails_alone_in_its_batch(
    durable_backend: Backend,
) -> None:
    # Values that pass the journal's checks but not the store's: a number out
    # of the range of its integers; in PostgreSQL, a NUL in a text column.
    journal = durable_backend.journal()
    await journal.append("warm", 0, [event("warm", 1)])  # connected, schema made
    refused = {"huge": [event("huge", 1), StoredEvent("huge", 2, "T", 2**70, b"", ())]}
    if durable_backend.name == "postgres":
        refused["nul\x00id"] = [event("nul\x00id", 1)]
    outcomes = await asyncio.gather(
        journal.append("ok-1", 0, [event("ok-1", 1, "t")]),
        *(journal.append(pid, 0, events) for pid, events in refused.items()),
        journal.append("ok-2", 0, [event("ok-2", 1)]),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[-1] is None, outcomes
    for failure, pid in zip(outcomes[1:-1], refused, strict=True):
        assert isinstance(failure, (PersistenceError, ValueError)), outcomes
        assert not isinstance(failure, (ConcurrencyConflict, AppendInDoubt))
        assert repr(pid) in str(failure), failure
    assert [await journal.highest_sequence_nr(p) for p in ("ok-1", "ok-2", "huge")] == [1, 1, 0]
    await journal.append("ok-1", 1, [event("ok-1", 2)])  # the writer goes on


def test_sqlite_opening_a_new_file_waits_out_a_lock_instead_of_failing(tmp_path: Path) -> None:
    # SQLite refuses to switch a file to WAL at once ("database is locked",
    # without waiting) while another connection holds its write lock: what
    # two connections opening a new file at once run into. It is retried.
    path = tmp_path / "j.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a new file, still in rollback mode
    retries = 0

    def release() -> None:
        nonlocal retries
        retries += 1
        if blocker.in_transaction:
            blocker.execute("COMMIT")

    connection = connect(str(path), "FULL", on_busy=release)
    try:
        assert retries == 1
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()
        blocker.close()


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_sqlite_journals_opening_a_new_file_at_once_all_succeed(
    tmp_path: Path, writer: Literal["process", "thread"]
) -> None:
    for round_ in range(10):
        path = tmp_path / f"j{round_}.db"
        journals = [SqliteJournal(path, writer=writer) for _ in range(3)]
        try:
            # Each opens a reader and a writer connection, all at once.
            await asyncio.gather(
                *(j.append(f"p{i}", 0, [event(f"p{i}", 1)]) for i, j in enumerate(journals)),
                *(j.highest_sequence_nr("p0") for j in journals),
            )
            assert [await journals[0].highest_sequence_nr(f"p{i}") for i in range(3)] == [1] * 3
        finally:
            for journal in journals:
                await journal.close()


@pytest.mark.parametrize("writer", ["process", "thread"])
@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_sqlite_a_journal_file_deleted_underneath_is_detected(
    tmp_path: Path, writer: Literal["process", "thread"], how: str
) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path, writer=writer)
    try:
        await journal.append("a", 0, [event("a", 1)])
        assert await journal.highest_sequence_nr("a") == 1
        if how == "deleted":
            path.unlink()
        else:  # another journal file moved over it
            other = SqliteJournal(tmp_path / "other.db", writer="thread")
            await other.append("b", 0, [event("b", 1)])
            await other.close()
            os.replace(tmp_path / "other.db", path)
        # Never acknowledged into a file that is gone (nor into another one).
        with pytest.raises(PersistenceError, match=r"j\.db' was deleted or replaced"):
            await journal.append("a", 1, [event("a", 2)])
        with pytest.raises(PersistenceError, match="deleted or replaced"):
            await journal.highest_sequence_nr("a")
        with pytest.raises(PersistenceError, match="deleted or replaced"):
            await journal.delete_events_up_to("a", 1)
    finally:
        await journal.close()


async def test_postgres_the_writer_reconnects_after_losing_its_connection(
    postgres_server: PostgresServer,
) -> None:
    journal = PostgresJournal(postgres_server.dsn, schema="reconnect")
    try:
        await journal.append("a", 0, [event("a", 1)])
        admin = await asyncpg.connect(postgres_server.dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'hewitt-journal-writer'"
            )
        finally:
            await admin.close()
        assert killed == 1
        try:
            await journal.append("a", 1, [event("a", 2)])
        except Exception as exc:
            # The batch that finds the connection dead may fail (nothing was
            # written), with whatever asyncpg makes of it; the next reconnects.
            assert not isinstance(exc, ConcurrencyConflict)
            await journal.append("a", 1, [event("a", 2)])
        assert await journal.highest_sequence_nr("a") == 2
    finally:
        await journal.close()


async def test_postgres_refuses_a_schema_name_that_is_not_an_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        PostgresJournal("postgresql://nowhere/db", schema='x"; DROP TABLE y; --')


# ----------------------------------------------------------------------
# The SQLite writer process (the default writer)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds processes through /proc"
)


def writer_pids(path: Path) -> list[int]:
    """The writer processes of the journal at ``path``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        boot = any(argument.endswith(b"_sqlite_boot.py") for argument in arguments)
        if boot and str(path).encode() in arguments:
            pids.append(int(entry.name))
    return pids


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` exits within ``timeout`` seconds (no polling)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([descriptor], [], [], timeout)
        return bool(readable)
    finally:
        os.close(descriptor)


async def journal_with_writer(tmp_path: Path) -> tuple[Path, SqliteJournal, int]:
    """A journal with event 1 of "a" appended and its reader connected, and
    the pid of its writer process."""
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    await journal.append("a", 0, [event("a", 1)])
    assert await journal.highest_sequence_nr("a") == 1
    (pid,) = writer_pids(path)
    return path, journal, pid


def test_sqlite_refuses_an_unknown_writer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'process' or 'thread'"):
        SqliteJournal(tmp_path / "j.db", writer="fork")  # type: ignore[arg-type]


@linux_only
async def test_sqlite_a_dead_writer_fails_the_appends_it_had_and_a_new_one_takes_over(
    tmp_path: Path,
) -> None:
    path, journal, pid = await journal_with_writer(tmp_path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for this lock
    stuck = journal.append_soon("a", 1, [event("a", 2)])
    assert await journal.highest_sequence_nr("a") == 1  # meanwhile the append has been sent
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(PersistenceError, match=r"j\.db'.* exited with code -9"):
        await stuck
    blocker.execute("ROLLBACK")
    blocker.close()
    await journal.append("a", 1, [event("a", 2)])  # a new writer
    assert [e.sequence_nr async for e in journal.read_events("a")] == [1, 2]
    assert writer_pids(path) not in ([], [pid])
    await journal.close()
    assert writer_pids(path) == []


@linux_only
def test_sqlite_the_writer_dies_with_the_application(tmp_path: Path) -> None:
    # An application killed with SIGKILL must not leave a writer that could
    # commit after it, while its next run already reads the journal.
    path = tmp_path / "j.db"
    script = (
        "import asyncio, sys\n"
        "from hewitt.persistence import SqliteJournal, StoredEvent\n"
        "async def main():\n"
        f"    journal = SqliteJournal({str(path)!r})\n"
        "    await journal.append('a', 0, [StoredEvent('a', 1, 'T', 1, b'', (), 1.0)])\n"
        "    print('appended', flush=True)\n"
        "    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)\n"
        "asyncio.run(main())\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as application:
        try:
            assert application.stdout is not None
            assert application.stdout.readline() == b"appended\n"
            (pid,) = writer_pids(path)
            application.kill()
            application.wait()
            assert wait_for_exit(pid, timeout=10.0), "the writer outlived its application"
        finally:
            application.kill()


@linux_only
async def test_sqlite_closing_after_the_writer_died_fails_what_was_queued(tmp_path: Path) -> None:
    _, journal, pid = await journal_with_writer(tmp_path)
    os.kill(pid, signal.SIGKILL)
    assert wait_for_exit(pid, timeout=10.0)
    queued = journal.append_soon("a", 1, [event("a", 2)])
    await journal.close()
    with pytest.raises(PersistenceError, match=r"exited with code -9|is closed"):
        await asyncio.wait_for(queued, timeout=10.0)  # failed, never left waiting


@linux_only
async def test_sqlite_the_writer_starts_at_the_first_use_not_at_construction(
    tmp_path: Path,
) -> None:
    # Recovery reads before the first append: the first read starts the
    # writer, so that the append does not wait for the whole start.
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)  # on the running loop
    journal_off_the_loop = await asyncio.to_thread(SqliteJournal, tmp_path / "k.db")
    assert writer_pids(path) == writer_pids(tmp_path / "k.db") == []
    assert await journal.highest_sequence_nr("a") == 0
    assert len(writer_pids(path)) == 1
    await journal.close()
    await journal_off_the_loop.close()  # never used: nothing to stop
    assert writer_pids(path) == []


def test_sqlite_the_writer_process_imports_only_what_it_needs(tmp_path: Path) -> None:
    # Not the hewitt package (the runtime, asyncio, ...): at every start,
    # and without cached bytecode each module is compiled again.
    command = writer_command(str(tmp_path / "j.db"), "FULL")
    command[1:1] = ["-X", "importtime"]
    started = subprocess.run(  # its input closed at once: it exits
        command, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True
    )
    imported = {
        line.split(b"|")[-1].strip().decode()
        for line in started.stderr.splitlines()
        if line.startswith(b"import time:") and b"|" in line
    }
    assert {m for m in imported if m.startswith("hewitt")} == {
        "hewitt._runtime._errors",
        "hewitt.persistence._records",
        "hewitt.persistence._sqlite_protocol",
        "hewitt.persistence._sqlite_sql",
        "hewitt.persistence._sqlite_worker",
    }
    assert {"msgspec._core", "sqlite3"} <= imported
    assert not {"asyncio", "site"} & imported


def test_sqlite_the_writer_process_does_not_shadow_the_standard_library(
    tmp_path: Path,
) -> None:
    # An application whose hewitt sits in a folder after the standard library
    # on sys.path (as site-packages does) beside a module named like one of
    # the standard library's: the writer must import the standard library's.
    site = tmp_path / "site"
    shutil.copytree(
        Path(hewitt.__file__).parent, site / "hewitt", ignore=shutil.ignore_patterns("__pycache__")
    )
    (site / "select.py").write_text("raise ImportError('the select of the site folder')\n")
    script = (
        "import asyncio, sys\n"
        f"sys.path.append({str(site)!r})\n"
        "from hewitt.persistence import SqliteJournal, StoredEvent\n"
        "assert SqliteJournal.__module__ and __import__('hewitt').__file__.startswith("
        f"{str(site)!r})\n"
        "async def main():\n"
        f"    journal = SqliteJournal({str(tmp_path / 'j.db')!r})\n"
        "    await journal.append('a', 0, [StoredEvent('a', 1, 'T', 1, b'', (), 1.0)])\n"
        "    await journal.close()\n"
        "asyncio.run(main())\n"
        "print('appended')\n"
    )
    # -S: without site, the editable install's hewitt is not on sys.path.
    msgspec_root = str(Path(msgspec.__file__).parent.parent)
    application = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.append({msgspec_root!r})\n{script}"],
        capture_output=True,
        timeout=60,
        text=True,
        check=False,
    )
    assert application.stdout == "appended\n", application.stderr


@linux_only
async def test_sqlite_the_writer_ignores_ctrl_c_and_sigterm(tmp_path: Path) -> None:
    # They reach every process of the group; the application decides when its
    # journal closes (a graceful shutdown still has appends to commit).
    path, journal, pid = await journal_with_writer(tmp_path)
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    await journal.append("a", 1, [event("a", 2)])
    assert not wait_for_exit(pid, timeout=0.5)  # the same writer, still there
    assert writer_pids(path) == [pid]
    await journal.close()


@linux_only
async def test_sqlite_close_does_not_wait_for_a_forked_child_holding_the_pipe(
    tmp_path: Path,
) -> None:
    path, journal, _ = await journal_with_writer(tmp_path)
    release, hold = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        child = os.fork()
    if child == 0:  # inherits the writer's pipes, as a multiprocessing worker would
        os.close(hold)
        os.read(release, 1)
        os._exit(0)
    try:
        await asyncio.wait_for(journal.close(), timeout=10.0)
        assert writer_pids(path) == []
    finally:
        os.write(hold, b"x")
        os.waitpid(child, 0)
        os.close(release)
        os.close(hold)


# ----------------------------------------------------------------------
# Forks, and journals dropped without being closed


def _in_a_new_thread(coroutine: Coroutine[Any, Any, str]) -> str:
    """Run ``coroutine`` on a new loop in a new thread: in a forked child the
    forking thread still looks like it runs its parent's loop."""
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    return outcome[0] if outcome else "the child's thread failed"


async def _use_in_child(journal: Journal) -> str:
    """How each use of the parent's journal ends in the child, one line each."""
    lines = []
    for use in (
        lambda: journal.append("a", 1, [event("a", 2)]),
        lambda: journal.highest_sequence_nr("a"),
        journal.close,  # closes the child's copy, not the parent's writer
    ):
        try:
            await asyncio.wait_for(use(), timeout=10.0)
        except Exception as exc:
            lines.append(f"{type(exc).__name__}: {exc}")
        else:
            lines.append("ok")
    return "\n".join(lines)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
async def test_a_forked_child_using_its_parents_journal_gets_a_clear_error(
    durable_backend: Backend,
) -> None:
    journal = durable_backend.journal()
    await journal.append("a", 0, [event("a", 1)])
    assert await journal.highest_sequence_nr("a") == 1  # writer and readers running
    report, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        child = os.fork()
    if child == 0:
        try:
            os.close(report)
            outcome = _in_a_new_thread(_use_in_child(journal))
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        # Never a hang: the child reports (or this fails) within the timeout.
        readable, _, _ = await asyncio.to_thread(select.select, [report], [], [], 60.0)
        assert readable, "the child hangs using its parent's journal"
        lines = (await asyncio.to_thread(os.read, report, 1 << 16)).decode().splitlines()
    finally:
        os.close(report)
        with contextlib.suppress(ChildProcessError):
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
    assert len(lines) == 3, lines
    for line in lines[:2]:
        assert line.startswith("PersistenceError:"), lines
        assert f"opened by process {os.getpid()}" in line and "is a fork of it" in line, line
        assert "Open a new journal" in line, line
    assert lines[2] == "ok"
    # The parent's journal is untouched.
    await journal.append("a", 1, [event("a", 2)])
    assert await journal.highest_sequence_nr("a") == 2


@linux_only
@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_sqlite_a_dropped_journal_leaks_no_process_thread_nor_descriptor(
    tmp_path: Path, writer: Literal["process", "thread"]
) -> None:
    path = tmp_path / "j.db"
    descriptors = set(os.listdir("/proc/self/fd"))
    threads = set(threading.enumerate())
    journal = SqliteJournal(path, writer=writer)
    snapshots = SqliteSnapshotStore(path)
    await journal.append("a", 0, [event("a", 1)])
    assert await journal.highest_sequence_nr("a") == 1
    assert await snapshots.load_all("a") == []
    pids = writer_pids(path)
    assert len(pids) == (writer == "process")
    exited = journal._writer._exited if isinstance(journal._writer, ProcessWriter) else None
    started = set(threading.enumerate()) - threads
    assert started  # the reader's, the snapshot store's, and the thread writer
    del journal, snapshots
    gc.collect()
    if exited is not None:
        assert await asyncio.wait_for(exited, timeout=30.0) == 0  # committed and exited
    for thread in started:
        await asyncio.to_thread(thread.join, 30.0)
        assert not thread.is_alive(), thread
    assert writer_pids(path) == []
    assert set(os.listdir("/proc/self/fd")) - descriptors == set()
    reopened = SqliteJournal(path)
    assert await reopened.highest_sequence_nr("a") == 1
    await reopened.close()


# ----------------------------------------------------------------------
# Appends in doubt: committed, but the outcome never came back

#: A doomed append: of event 2 of a persistence id that says "doomed". The
#: writer process of ``doomed_writer`` runs the real writer, but kills itself
#: right after the COMMIT of the first batch with a doomed append, before
#: its reply (once: the marker file remembers it, so the next writer works).
_DOOMED_WRITER = """
import os, runpy, signal, sys
boot = runpy.run_path(sys.argv[1], run_name="boot")
arguments = boot["prepare"](sys.argv[1:])
import hewitt.persistence._sqlite_worker as worker
write_batch = worker.write_batch
def doomed(db, writes, before_commit):
    results = write_batch(db, writes, before_commit)
    doomed = any("doomed" in w[0] and any(e.sequence_nr == 2 for e in w[2]) for w in writes)
    if doomed and not os.path.exists(MARKER):
        open(MARKER, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return results
worker.write_batch = doomed
worker.main(arguments)
"""


@pytest.fixture
def doomed_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite journals (writer="process") get the writer of _DOOMED_WRITER."""
    script = tmp_path / "doomed_writer.py"
    script.write_text(f"MARKER = {str(tmp_path / 'doomed.marker')!r}\n{_DOOMED_WRITER}")

    def command(path: str, synchronous: Literal["FULL", "NORMAL", "EXTRA"]) -> list[str]:
        real = writer_command(path, synchronous)
        boot = real.index(next(a for a in real if a.endswith("_sqlite_boot.py")))
        return [*real[:boot], str(script), *real[boot:]]

    monkeypatch.setattr(sqlite_process, "writer_command", command)


class _CommitThenFail(JournalConnection):
    """A connection whose COMMIT of a batch with a doomed append takes effect
    and then reports a disk I/O error (once)."""

    doomed = True

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor = super().execute(sql, parameters)
        if sql == "COMMIT" and _CommitThenFail.doomed and self.batch_is_doomed:
            _CommitThenFail.doomed = False
            raise sqlite3.OperationalError("disk I/O error")
        if sql == "BEGIN IMMEDIATE":
            self.batch_is_doomed = False
        elif "hewitt_events" in sql and any(
            isinstance(value, str) and "doomed" in value and parameters[i + 1] == 2
            for i, value in enumerate(parameters[:-1])
        ):
            self.batch_is_doomed = True
        return cursor


@pytest.fixture
def doomed_thread_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite journals (writer="thread") write through _CommitThenFail."""
    _CommitThenFail.doomed = True
    open_connection = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs["factory"] = _CommitThenFail
        return open_connection(*args, **kwargs)

    monkeypatch.setattr(sqlite_sql.sqlite3, "connect", connect)


class _CommitThenLoseTheConnection(PostgresJournal):
    """Its writer's COMMIT of a batch with a doomed append takes effect, then
    the connection is reported lost (once)."""

    doomed = True

    async def _commit(self, connection: asyncpg.Connection) -> None:
        await super()._commit(connection)
        if self.doomed and self._batch_is_doomed:
            self.doomed = False
            raise ConnectionResetError("connection reset by peer")

    async def _write_batch(self, writes: list[Any]) -> list[BaseException | None]:
        self._batch_is_doomed = any(
            "doomed" in w[0] and any(e.sequence_nr == 2 for e in w[2]) for w in writes
        )
        return await super()._write_batch(writes)


def doomed_journal(backend: Backend) -> Journal:
    """A journal of ``backend`` whose first doomed append commits and loses
    its outcome, the way that backend can."""
    if backend.name == "sqlite":
        return backend.journal()  # with the doomed_writer fixture
    if backend.name == "sqlite-thread":
        return backend.journal()  # with the doomed_thread_writer fixture
    dsn, schema = backend.location.split("|")
    journal = _CommitThenLoseTheConnection(dsn, schema=schema)
    backend._opened.append(journal)
    return journal


@pytest.fixture
def doomed_backend(durable_backend: Backend, request: pytest.FixtureRequest) -> Backend:
    if durable_backend.name == "sqlite":
        request.getfixturevalue("doomed_writer")
    elif durable_backend.name == "sqlite-thread":
        request.getfixturevalue("doomed_thread_writer")
    return durable_backend


async def test_an_append_committed_whose_outcome_was_lost_is_in_doubt(
    doomed_backend: Backend,
) -> None:
    # The SQLite writer process killed after its COMMIT, before its reply; a
    # COMMIT that took effect and reported an error; the connection to
    # PostgreSQL lost during the COMMIT.
    journal = doomed_journal(doomed_backend)
    await journal.append("a", 0, [event("a", 1)])
    with pytest.raises(AppendInDoubt) as caught:
        await journal.append("doomed", 0, [event("doomed", 1), event("doomed", 2)])
    failure = caught.value
    assert (failure.persistence_id, failure.first_sequence_nr, failure.last_sequence_nr) == (
        "doomed",
        1,
        2,
    )
    assert "events 1..2 of 'doomed' is unknown" in str(failure)
    assert "may or may not be committed" in str(failure)
    # It was committed: the journal has the truth. And the journal goes on.
    assert await journal.highest_sequence_nr("doomed") == 2
    await journal.append("doomed", 2, [event("doomed", 3)])
    await journal.append("a", 1, [event("a", 2)])
    assert [await journal.highest_sequence_nr(p) for p in ("a", "doomed")] == [2, 3]


async def test_a_failure_before_the_commit_is_not_in_doubt(tmp_path: Path) -> None:
    # Nothing was written: an ordinary failure (the actor retries the command).
    journal = SqliteJournal(tmp_path / "no such folder" / "j.db")
    with pytest.raises(sqlite3.OperationalError) as caught:
        await journal.append("a", 0, [event("a", 1)])
    assert not isinstance(caught.value, AppendInDoubt)
    await journal.close()


async def test_a_persistent_actor_never_persists_a_command_in_doubt_twice(
    doomed_backend: Backend,
) -> None:
    # The deposit of 50 is committed, its outcome lost. A blind retry by the
    # default RESTART used to persist it again (balance 200, three events).
    system = ActorSystem("bank")
    await system.start()
    persistence = Persistence.install(
        system, doomed_journal(doomed_backend), doomed_backend.snapshots(), bank_codec()
    )
    try:
        account: ActorRef[Command] = system.spawn(Account, "doomed")
        assert await account.ask(Deposit(100)) == 100
        with pytest.raises(AppendInDoubt, match=r"event 2 of 'account-doomed' is unknown"):
            await account.ask(Deposit(50))
        assert await account.ask(GetBalance()) == 150  # recovered: the truth
        assert await persistence.journal.highest_sequence_nr("account-doomed") == 2
        assert await account.ask(Deposit(1)) == 151
    finally:
        await system.shutdown()
        await persistence.close()


# ----------------------------------------------------------------------
# asyncpg: the optional extra hewitt[postgres]


def _python(code: str) -> str:
    """What ``code`` prints in a new interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_hewitt_persistence_imports_none_of_its_modules_nor_asyncpg() -> None:
    # Only what a name needs, when it is used; asyncpg only for PostgreSQL.
    added = _python(
        "import sys, hewitt\n"
        "before = set(sys.modules)\n"
        "import hewitt.persistence\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    assert added == "['hewitt.persistence']\n"
    used = _python(
        "import sys\n"
        "from hewitt.persistence import (\n"
        "    Persistence, PersistentActor, PostgresJournal, SqliteJournal, SqliteSnapshotStore)\n"
        "assert SqliteJournal.__module__ == 'hewitt.persistence'\n"
        "print('asyncpg' in sys.modules)\n"
    )
    assert used == "False\n"


def test_a_postgres_store_without_asyncpg_names_the_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['asyncpg'] = None  # not installed\n"
        "from hewitt.persistence import PersistenceError, PostgresJournal, PostgresSnapshotStore\n"
        "for store in (PostgresJournal, PostgresSnapshotStore):\n"
        "    try:\n"
        "        store('postgresql://localhost/db')\n"
        "    except PersistenceError as exc:\n"
        "        print(exc)\n"
    )
    assert _python(code).splitlines() == [
        f"{store} needs asyncpg, which is not installed: install hewitt with its "
        "PostgreSQL extra, pip install 'hewitt[postgres]'"
        for store in ("PostgresJournal", "PostgresSnapshotStore")
    ]
