"""The writer process of a SQLite journal, and the protocol it speaks.

Started as ``python -S -P .../_sqlite_boot.py ... PATH SYNCHRONOUS PARENT_PID``
(``_sqlite_boot`` imports this module without the ``hewitt`` package; keep
its imports, and those of the modules it imports, to the standard library,
msgspec and the writer's own modules): requests come on stdin and replies
go out on stdout, both as frames (a
4-byte little-endian length, then msgpack: typed structs, decoded with
msgspec into exactly these types, never unpickled). The process owns the
journal's only writing connection; it takes every request that has arrived,
writes the appends in one transaction (one fsync; see
``_sqlite_sql.write_batch``) and replies once it is committed. Big batches
are written in two halves, so that the event loop runs the actors of the
first half while the second commits.

A batch whose COMMIT fails after it may have taken effect is answered
IN_DOUBT for each of its appends (``AppendInDoubt`` in the application).

It exits when stdin closes (the journal closed it, after its last request),
and on Linux at once when its parent dies (``PR_SET_PDEATHSIG``): a killed
application must not leave a writer that commits after it, while the next
run already reads the journal. Either way SQLite keeps every transaction
whole: a batch not committed is not there.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import sqlite3
import sys
from collections import deque
from typing import cast

import msgspec

from ._records import ConcurrencyConflict
from ._sqlite_protocol import (
    CONFLICT,
    ERROR,
    IN_DOUBT,
    PIPE_BYTES,
    SQLITE_ERROR,
    AppendRequest,
    CloseRequest,
    DeleteRequest,
    PurgeRequest,
    Reply,
    Request,
    frame,
    one_request_decoder,
    reply_encoder,
    request_decoder,
    take_frames,
)
from ._sqlite_sql import (
    CommitInDoubt,
    Synchronous,
    Write,
    check_synchronous,
    connect,
    delete_events,
    delete_idempotency_before,
    write_batch,
)

#: A batch of at least this many appends is written as two transactions.
SPLIT_AT = 256
#: The writer's first-generation GC threshold (see main).
GC_THRESHOLD = 100_000


def reply_for(request_id: int, outcome: BaseException | None) -> Reply:
    if outcome is None:
        return Reply(request_id)
    if isinstance(outcome, ConcurrencyConflict):
        return Reply(
            request_id, CONFLICT, message=outcome.persistence_id, sequence_nr=outcome.sequence_nr
        )
    if isinstance(outcome, sqlite3.Error):
        return Reply(
            request_id,
            SQLITE_ERROR,
            type(outcome).__name__,
            str(outcome),
            code=getattr(outcome, "sqlite_errorcode", None),
            code_name=getattr(outcome, "sqlite_errorname", None),
        )
    return Reply(request_id, ERROR, type(outcome).__name__, str(outcome))


class Worker:
    """The loop of the process: read what has arrived, write, commit, reply."""

    def __init__(self, path: str, synchronous: Synchronous, fd_in: int, fd_out: int) -> None:
        self.path = path
        self.synchronous = synchronous
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.buffer = bytearray()
        self.queue: deque[Request] = deque()
        self.db: sqlite3.Connection | None = None
        self.eof = False
        self.closing = False

    def serve(self) -> None:
        while not self.closing:
            self.read(block=not self.queue and not self.eof)
            if not self.queue:
                if self.eof:
                    break
                continue
            self.run_some()
        if self.db is not None:
            self.db.close()

    def read(self, *, block: bool) -> None:
        """Queue the requests that have arrived (wait for some if ``block``)."""
        while not self.eof:
            if not block and not select.select([self.fd_in], [], [], 0)[0]:
                return
            chunk = os.read(self.fd_in, PIPE_BYTES)
            if not chunk:
                self.eof = True
                break
            self.buffer += chunk
            for payload in take_frames(self.buffer):
                try:
                    self.queue.extend(request_decoder.decode(payload))
                except msgspec.ValidationError:
                    self.queue.extend(self.sort_out(payload))
            block = False

    def sort_out(self, payload: bytes) -> list[Request]:
        """The valid requests of a frame that failed to decode as a whole; the
        others are refused (their id read from the raw frame) instead of
        taking the writer, and every other append of the frame, down."""
        valid: list[Request] = []
        for raw in msgspec.msgpack.decode(payload):
            try:
                valid.append(one_request_decoder.decode(msgspec.msgpack.encode(raw)))
            except msgspec.ValidationError as exc:
                request_id = raw[1] if isinstance(raw, list) and len(raw) > 1 else None
                if isinstance(request_id, int):
                    self.send([Reply(request_id, ERROR, "ValueError", f"invalid request: {exc}")])
        return valid

    def run_some(self) -> None:
        """Write the appends at the head of the queue (half of them if many and
        more may come), or run the delete there, and reply."""
        head = self.queue[0]
        if isinstance(head, CloseRequest):
            self.queue.popleft()
            self.closing = True
            self.send([Reply(head.id)])
            return
        if isinstance(head, (DeleteRequest, PurgeRequest)):
            self.queue.popleft()
            self.send([reply_for(head.id, self.delete(head))])
            return
        appends: list[AppendRequest] = []
        for request in self.queue:
            if not isinstance(request, AppendRequest):
                break
            appends.append(request)
        if len(appends) >= SPLIT_AT and not self.eof:
            del appends[len(appends) // 2 :]
        for _ in appends:
            self.queue.popleft()
        writes: list[Write] = [
            (a.persistence_id, a.expected_sequence_nr, a.events, a.idempotency) for a in appends
        ]
        try:
            if self.db is None:
                self.db = connect(self.path, self.synchronous, writer=True)
            outcomes = write_batch(self.db, writes, _nothing)
        except CommitInDoubt as exc:
            self.send([Reply(a.id, IN_DOUBT, message=str(exc)) for a in appends])
            return
        except Exception as exc:  # the file cannot be opened, the disk is full, ...
            outcomes = [exc] * len(appends)
        self.send([reply_for(a.id, o) for a, o in zip(appends, outcomes, strict=True)])

    def delete(self, request: DeleteRequest | PurgeRequest) -> BaseException | None:
        try:
            if self.db is None:
                self.db = connect(self.path, self.synchronous, writer=True)
            if isinstance(request, PurgeRequest):
                delete_idempotency_before(self.db, request.not_before)
            else:
                delete_events(self.db, request.persistence_id, request.sequence_nr)
        except Exception as exc:
            return exc
        return None

    def send(self, replies: list[Reply]) -> None:
        data = memoryview(frame(reply_encoder.encode(replies)))
        while data:
            data = data[os.write(self.fd_out, data) :]


def _nothing() -> None:
    pass


def die_with_parent(parent: int) -> None:
    """On Linux, be killed when the parent dies (see the module docstring)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl
        os._exit(1)


def main(argv: list[str]) -> None:
    path, setting, parent = argv[1], argv[2], int(argv[3])
    check_synchronous(setting)
    synchronous = cast(Synchronous, setting)
    die_with_parent(parent)
    # Ctrl+C in a terminal, or a service manager's SIGTERM, reaches every
    # process of the group; the application decides when to close its journal
    # (then this process commits what it was sent and exits).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Every batch allocates thousands of short-lived containers (requests,
    # events, rows) that refcounting frees; with the default thresholds the
    # cyclic collector would run every 700 of them for nothing.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
    # The pipes get private descriptors: a stray print (a library's, a
    # warning's) goes to stderr instead of into the replies.
    requests, replies = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    Worker(path, synchronous, requests, replies).serve()


if __name__ == "__main__":
    main(sys.argv)
