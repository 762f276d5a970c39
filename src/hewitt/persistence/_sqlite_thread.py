"""The thread writer of a SQLite journal (``SqliteJournal(writer="thread")``)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._fork import Owner
from ._records import PersistenceError
from ._sqlite_sql import (
    CommitInDoubt,
    Synchronous,
    Write,
    check_synchronous,
    connect,
    delete_events,
    delete_idempotency_before,
    in_doubt,
    write_batch,
)


class _Job:
    """Work for the writer thread; ``future`` lives on the caller's loop
    (None: nobody waits for the outcome)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any] | None) -> None:
        self.future = future


class _Append(_Job):
    __slots__ = ("write",)

    def __init__(self, future: asyncio.Future[Any], write: Write) -> None:
        self.future = future  # not super().__init__: one append per event, keep it cheap
        self.write = write


class _Call(_Job):
    __slots__ = ("args", "function")

    def __init__(
        self, future: asyncio.Future[Any], function: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        super().__init__(future)
        self.function = function
        self.args = args


class _Close(_Job):
    __slots__ = ()


_Outcome = tuple[asyncio.Future[Any] | None, Any, BaseException | None]
_SPLIT_AT = 64  # a batch this big with no outcomes held is written as two


class ThreadWriter:
    """The writer thread of a journal: runs queued jobs in order, and all the
    appends queued back to back as one batch (one transaction)."""

    def __init__(self, path: str | Path, synchronous: Synchronous) -> None:
        check_synchronous(synchronous)
        self.path = str(path)
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: list[_Job] = []
        self._idle = False
        self._thread: threading.Thread | None = None
        self._owner: Owner | None = None  # the process that started the thread
        self.closed = False

    def submit(self, job: _Job) -> None:
        if self.closed:
            raise PersistenceError("the SQLite journal is closed")
        if self._owner is not None:
            self._owner.check(f"the SQLite journal {self.path!r}")
        with self._lock:  # the condition's lock (a plain Lock is cheaper to enter)
            self._queue.append(job)
            if self._thread is None:
                self._owner = Owner()
                self._thread = threading.Thread(
                    target=self._run, name="hewitt-sqlite-writer", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._cond.notify()

    def warm_up(self) -> None:
        """Nothing to do: the thread starts at the first write, at once."""

    def append(self, write: Write) -> asyncio.Future[None]:
        """Queue ``write``; the future is done once its batch is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(_Append(future, write))
        return future

    async def delete_events(self, persistence_id: str, sequence_nr: int) -> None:
        await self.call(delete_events, persistence_id, sequence_nr)

    async def delete_idempotency_before(self, not_before: float) -> None:
        await self.call(delete_idempotency_before, not_before)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(_Call(future, function, args))
        return await future

    async def close(self) -> None:
        if self.closed:
            return
        if self._owner is not None and not self._owner.here:  # a fork: the parent's thread
            self.closed = True
            return
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(_Close(future))
        self.closed = True
        await future
        assert self._thread is not None
        self._thread.join()

    def abandon(self) -> None:
        """The journal was dropped without being closed (its finalizer, from
        any thread): the thread commits what is queued, closes its
        connection and ends, without waiting here."""
        if self.closed or self._owner is None or not self._owner.here:
            return
        self.closed = True
        with self._lock:
            self._queue.append(_Close(None))
            if self._idle:
                self._cond.notify()

    def _run(self) -> None:
        """The thread. Should it ever fail (a bug: storage errors are
        outcomes), the appends still queued fail instead of waiting forever,
        and the journal refuses new ones."""
        try:
            self._serve()
        except BaseException as exc:
            self.closed = True
            with self._lock:
                jobs, self._queue = self._queue, []
            failure = PersistenceError(f"the SQLite writer thread failed: {exc!r}")
            failure.__cause__ = exc
            _post([(job.future, None, failure) for job in jobs])
            raise

    def _serve(self) -> None:
        """The loop of the thread. Outcomes of a committed batch are held until the next
        batch's rows are in, then posted just before its COMMIT: while that
        commit syncs (no GIL needed), the event loop runs the actors whose
        appends are done; the writer meanwhile builds and inserts the next
        batch while the loop has nothing to do (every actor waits for the
        journal), so it does not wait for the GIL at each call into sqlite3.
        With nothing queued, outcomes are posted at once."""
        db: sqlite3.Connection | None = None
        held: list[_Outcome] = []

        def release() -> None:
            nonlocal held
            if held:
                _post(held)
                held = []

        while True:
            with self._cond:
                while not self._queue and not held:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                jobs, self._queue = self._queue, []
                if not held and len(jobs) >= _SPLIT_AT:
                    # Two halves, so that one commits while the loop runs the
                    # actors of the other (see above); they keep alternating.
                    self._queue = jobs[len(jobs) // 2 :]
                    jobs = jobs[: len(jobs) // 2]
            if not jobs:
                release()
                continue
            outcomes: list[_Outcome] = []
            start = 0
            while start < len(jobs):
                job = jobs[start]
                if isinstance(job, _Append):
                    end = start + 1
                    while end < len(jobs) and isinstance(jobs[end], _Append):
                        end += 1
                    appends: list[_Append] = jobs[start:end]  # type: ignore[assignment]
                    start = end
                    try:
                        if db is None:
                            db = connect(self.path, self.synchronous, writer=True)
                        results = write_batch(db, [a.write for a in appends], release)
                    except CommitInDoubt as exc:
                        outcomes.extend(
                            (a.future, None, in_doubt(a.write, str(exc))) for a in appends
                        )
                    except Exception as exc:
                        outcomes.extend((a.future, None, exc) for a in appends)
                    else:
                        outcomes.extend(
                            (a.future, None, result)
                            for a, result in zip(appends, results, strict=True)
                        )
                    finally:
                        release()
                    continue
                start += 1
                release()
                if isinstance(job, _Call):
                    try:
                        if db is None:
                            db = connect(self.path, self.synchronous, writer=True)
                        outcomes.append((job.future, job.function(db, *job.args), None))
                    except Exception as exc:
                        outcomes.append((job.future, None, exc))
                elif isinstance(job, _Close):
                    if db is not None:
                        db.close()
                    outcomes.append((job.future, None, None))
                    _post(outcomes)
                    return
            held = outcomes


def _post(outcomes: list[_Outcome]) -> None:
    """Hand outcomes to their loops: one wake-up of each loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        if outcome[0] is not None:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
            loop.call_soon_threadsafe(_settle, group)


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future is None or future.done():  # cancelled meanwhile
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
