"""The process writer of a SQLite journal (the default): the event loop's end.

Why a process: the SQL work of a batch (binding every value, the B-tree
inserts, the fsync) is several microseconds per event, and on a thread of the
application's process the Python part of it takes turns on the GIL with the
event loop that runs the actors; the writer process (``_sqlite_worker``) does
it on another core. The loop's share is one ``msgpack`` encoding per loop
iteration for all the appends made in it, a pipe write, and the replies.

The writer starts at the journal's first read or write (recovery reads
before the first append: by then the writer is starting), never when the
journal is constructed, and is bound to that loop; if it dies, the appends
it had not confirmed fail (they may or may not be committed: recovery reads
what is there) and the next write starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec

from ._fork import Owner
from ._records import AppendInDoubt, ConcurrencyConflict, PersistenceError
from ._sqlite_protocol import (
    CONFLICT,
    IN_DOUBT,
    OK,
    PIPE_BYTES,
    SQLITE_ERROR,
    AppendRequest,
    CloseRequest,
    DeleteRequest,
    PurgeRequest,
    Reply,
    Request,
    frame,
    reply_decoder,
    request_encoder,
    take_frames,
)
from ._sqlite_sql import Synchronous, Write, check_synchronous

#: The writer's entry point, and the folder of the ``hewitt`` package it imports from.
_BOOT = str(Path(__file__).with_name("_sqlite_boot.py"))
_PACKAGE = str(Path(__file__).parent.parent)
#: Seconds a writer whose loop is gone gets to commit and exit before it is killed.
_EXIT_TIMEOUT = 10.0


def writer_command(path: str, synchronous: Synchronous) -> list[str]:
    """The command line of the writer process of the journal at ``path``
    (``_sqlite_boot`` says why each part is there). Its environment is the
    application's, unchanged."""
    msgspec_root = os.path.dirname(os.path.dirname(os.path.abspath(msgspec.__file__)))
    return [
        sys.executable,
        "-S",
        "-P",
        _BOOT,
        _PACKAGE,
        msgspec_root,
        path,
        synchronous,
        str(os.getpid()),
    ]


class ProcessWriter:
    """Sends appends to the writer process and settles their futures."""

    def __init__(self, path: str | Path, synchronous: Synchronous) -> None:
        check_synchronous(synchronous)
        self.path = str(path)
        self.synchronous = synchronous
        self.closed = False
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        #: Request id -> its future and the request (for the error if the writer dies).
        self._waiting: dict[int, tuple[asyncio.Future[None], Request]] = {}
        self._pending: list[Request] = []
        self._unsent = bytearray()
        self._received = bytearray()
        self._exited: asyncio.Future[int] | None = None
        self._sent_up_to = 0  # the id of the last request written to the pipe
        self._owner: Owner | None = None  # the process that started a writer

    # ------------------------------------------------------------------
    # Requests

    def append(self, write: Write) -> asyncio.Future[None]:
        """Send ``write`` (with everything else appended in this loop
        iteration); the future is done once its batch is committed."""
        loop = self._bound_loop()
        persistence_id, expected, events, idempotency = write
        request = AppendRequest(next(self._ids), persistence_id, expected, events, idempotency)
        return self._queue(loop, request)

    async def delete_events(self, persistence_id: str, sequence_nr: int) -> None:
        loop = self._bound_loop()
        await self._queue(loop, DeleteRequest(next(self._ids), persistence_id, sequence_nr))

    async def delete_idempotency_before(self, not_before: float) -> None:
        loop = self._bound_loop()
        await self._queue(loop, PurgeRequest(next(self._ids), not_before))

    def _queue(self, loop: asyncio.AbstractEventLoop, request: Request) -> asyncio.Future[None]:
        """Queue ``request`` for the next flush; its future."""
        future: asyncio.Future[None] = loop.create_future()
        self._waiting[request.id] = (future, request)
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(request)
        return future

    def warm_up(self) -> None:
        """Start the writer now, on the running loop, if it is not running: the
        journal does it at every read (recovery reads before the first
        append), so that an append does not wait for the whole start of a
        process. Reads from another loop start nothing."""
        if self.closed or self._process is not None:
            return
        if self._owner is not None and not self._owner.here:
            return  # a fork: the read reports it
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # created outside a loop: the first read or write starts it
            return
        if self._loop is not None and loop is not self._loop:
            if not self._loop.is_closed():
                return
            self._forget_loop()
        with contextlib.suppress(PersistenceError):  # the first write reports it
            self._start(loop)

    def _bound_loop(self) -> asyncio.AbstractEventLoop:
        if self.closed:
            raise PersistenceError(f"the SQLite journal {self.path!r} is closed")
        if self._owner is not None:
            self._owner.check(f"the SQLite journal {self.path!r}")
        loop = asyncio.get_running_loop()
        if self._loop is not None and loop is not self._loop:
            if not self._loop.is_closed():
                raise PersistenceError(
                    f"the SQLite journal {self.path!r} is in use on another event loop; "
                    "a journal serves one loop (open one per loop)"
                )
            self._forget_loop()  # its loop is gone: nobody waits for it
        if self._process is None:
            self._start(loop)
        return loop

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            process = subprocess.Popen(
                writer_command(self.path, self.synchronous),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except OSError as exc:  # no more processes, file descriptors, memory
            raise PersistenceError(
                f"the SQLite journal {self.path!r} could not start its writer process: {exc}"
            ) from exc
        assert process.stdin is not None and process.stdout is not None
        for pipe in (process.stdin, process.stdout):
            if sys.platform.startswith("linux"):  # a bigger batch per write
                import fcntl

                with contextlib.suppress(OSError):
                    fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            os.set_blocking(pipe.fileno(), False)
        self._process = process
        self._loop = loop
        self._exited = loop.create_future()
        if self._owner is None:
            self._owner = Owner()
        loop.add_reader(process.stdout.fileno(), self._readable)

    # ------------------------------------------------------------------
    # The pipes

    def _flush(self) -> None:
        requests, self._pending = self._pending, []
        if not requests:
            return
        try:
            if self._process is None:  # died since these were queued: a new one
                if self.closed:
                    raise PersistenceError(f"the SQLite journal {self.path!r} is closed")
                assert self._loop is not None
                self._start(self._loop)
            requests, data = self._encode(requests)
        except Exception as exc:
            self._fail(requests, exc)
            return
        if requests:
            self._sent_up_to = requests[-1].id
            self._send(data)

    def _encode(self, requests: list[Request]) -> tuple[list[Request], bytes]:
        """The frame of ``requests``; a request that cannot be encoded fails
        alone (the others of its loop turn are sent)."""
        try:
            return requests, frame(request_encoder.encode(requests))
        except (TypeError, ValueError, OverflowError):
            valid = []
            for request in requests:
                try:
                    request_encoder.encode(request)
                except (TypeError, ValueError, OverflowError) as exc:
                    self._fail([request], exc)
                else:
                    valid.append(request)
            return valid, frame(request_encoder.encode(valid))

    def _fail(self, requests: list[Request], exc: Exception) -> None:
        what = (
            f"the append to {requests[0].persistence_id!r} after {requests[0].expected_sequence_nr}"
            if len(requests) == 1 and isinstance(requests[0], AppendRequest)
            else "a request"
        )
        failure = (
            exc
            if isinstance(exc, PersistenceError)
            else PersistenceError(f"the SQLite journal {self.path!r} cannot send {what}: {exc}")
        )
        if failure is not exc:
            failure.__cause__ = exc
        for request in requests:
            waiting = self._waiting.pop(request.id, None)
            if waiting is not None and not waiting[0].done():
                waiting[0].set_exception(failure)

    def _send(self, data: bytes) -> None:
        assert self._process is not None and self._process.stdin is not None
        if self._unsent:  # the writer is behind: keep the order
            self._unsent += data
            return
        try:
            written = os.write(self._process.stdin.fileno(), data)
        except BlockingIOError:
            written = 0
        except BrokenPipeError:
            return  # it died; _readable sees the end of its output and fails the waiting
        if written < len(data):
            self._unsent += data[written:]
            assert self._loop is not None
            self._loop.add_writer(self._process.stdin.fileno(), self._writable)

    def _writable(self) -> None:
        assert self._process is not None and self._process.stdin is not None
        fd = self._process.stdin.fileno()
        try:
            written = os.write(fd, self._unsent)
        except BlockingIOError:
            return
        except BrokenPipeError:
            written = len(self._unsent)
        del self._unsent[:written]
        if not self._unsent:
            assert self._loop is not None
            self._loop.remove_writer(fd)
            if self.closed:
                self._process.stdin.close()

    def _readable(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        try:
            chunk = os.read(self._process.stdout.fileno(), PIPE_BYTES)
        except BlockingIOError:
            return
        if not chunk:
            self._on_exit()
            return
        self._received += chunk
        for payload in take_frames(self._received):
            self._settle(reply_decoder.decode(payload))

    def _settle(self, replies: list[Reply]) -> None:
        waiting = self._waiting
        for reply in replies:
            entry = waiting.pop(reply.id, None)
            if entry is None or entry[0].done():  # cancelled meanwhile
                continue
            if reply.kind == OK:
                entry[0].set_result(None)
            else:
                entry[0].set_exception(self._error(reply, entry[1]))

    def _error(self, reply: Reply, request: Request) -> BaseException:
        if reply.kind == CONFLICT:
            return ConcurrencyConflict(reply.message, reply.sequence_nr)
        if reply.kind == IN_DOUBT and isinstance(request, AppendRequest):
            return _in_doubt(request, f"the SQLite journal {self.path!r}: {reply.message}")
        if reply.kind == SQLITE_ERROR:
            error_class = getattr(sqlite3, reply.name, None)
            if isinstance(error_class, type) and issubclass(error_class, sqlite3.Error):
                error = error_class(reply.message)
                if reply.code is not None and reply.code_name is not None:
                    error.sqlite_errorcode = reply.code
                    error.sqlite_errorname = reply.code_name
                return error
        return PersistenceError(
            f"the SQLite journal {self.path!r} failed to write: {reply.name}: {reply.message}"
        )

    def _on_exit(self) -> None:
        """The writer's output ended: it exited (closed, or died)."""
        process = self._process
        assert process is not None and self._loop is not None and self._exited is not None
        self._loop.remove_reader(process.stdout.fileno())  # type: ignore[union-attr]
        if self._unsent:
            self._loop.remove_writer(process.stdin.fileno())  # type: ignore[union-attr]
            self._unsent.clear()
        self._received.clear()  # a reply cut short: the next writer starts afresh
        code = process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        reason = (
            f"the SQLite writer process of {self.path!r} exited with code {code} "
            "before it confirmed the append"
        )
        sent = [i for i in self._waiting if i <= self._sent_up_to]  # not the ones still queued
        for request_id in sent:
            future, request = self._waiting.pop(request_id)
            if future.done():
                continue
            if isinstance(request, AppendRequest):
                future.set_exception(_in_doubt(request, reason))
            else:  # a deletion: done again, harmlessly, if asked again
                future.set_exception(PersistenceError(f"{reason}: {request!r}"))
        self._process = None
        if not self._exited.done():
            self._exited.set_result(code)

    def _forget_loop(self) -> None:
        """The loop this writer served is closed (nobody can wait for its
        futures): let the writer commit what it has and exit, and unbind."""
        process, self._process = self._process, None
        self._loop = None
        self._waiting.clear()
        self._pending.clear()
        self._unsent.clear()
        self._received.clear()
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:  # its input is held open by a forked child
            process.kill()
            process.wait()

    async def close(self) -> None:
        """Send what is pending, let the writer commit it and exit; from
        another thread's loop, this runs on the writer's own loop. In a
        forked child it only closes this copy (the writer is the parent's)."""
        if self.closed:
            return
        self.closed = True
        if self._owner is not None and not self._owner.here:
            return
        owner = self._loop
        if owner is not None and owner is not asyncio.get_running_loop():
            if owner.is_closed():
                self._forget_loop()
                return
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close(), owner))
            return
        await self._close()

    def abandon(self) -> None:
        """The journal was dropped without being closed (its finalizer, from
        any thread): the writer commits what it was sent and exits, and its
        pipes are closed once it has, without waiting here."""
        if self.closed or self._process is None:
            return
        if self._owner is not None and not self._owner.here:
            return  # the parent's writer
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._abandon)
            except RuntimeError:  # closed meanwhile
                pass
            else:
                return
        self.closed = True
        self._forget_loop()

    def _abandon(self) -> None:
        if self.closed:
            return
        self.closed = True
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        self._pending.append(CloseRequest(next(self._ids)))
        self._flush()
        if not self._unsent:
            process.stdin.close()  # else _writable closes it once all is sent

    async def _close(self) -> None:
        process = self._process
        if process is not None:
            assert process.stdin is not None and self._exited is not None
            # An explicit request, not only the end of the pipe (a forked child
            # of the application may hold the pipe open).
            self._pending.append(CloseRequest(next(self._ids)))
            self._flush()
            if not self._unsent:
                process.stdin.close()  # else _writable closes it once all is sent
            await self._exited
        closed = PersistenceError(f"the SQLite journal {self.path!r} is closed")
        waiting, self._waiting = self._waiting, {}
        for future, _ in waiting.values():  # queued after the writer died, never sent
            if not future.done():
                future.set_exception(closed)


def _in_doubt(request: AppendRequest, reason: str) -> AppendInDoubt:
    return AppendInDoubt(
        request.persistence_id, request.expected_sequence_nr, len(request.events), reason
    )
