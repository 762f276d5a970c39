"""The protocol between a SQLite journal and its writer process (``_sqlite_worker``).

Frames: a 4-byte little-endian length, then msgpack of a list of requests (to
the writer) or of replies (back), decoded by msgspec into exactly these types:
bytes from the pipe are never unpickled.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ._records import IdempotencyRecord, StoredEvent

#: Bytes asked of the pipe per read, and the pipe size asked of the kernel.
PIPE_BYTES = 1 << 20


class AppendRequest(msgspec.Struct, array_like=True, tag=0):
    id: int
    persistence_id: str
    expected_sequence_nr: int
    events: Sequence[StoredEvent]
    idempotency: IdempotencyRecord | None


class DeleteRequest(msgspec.Struct, array_like=True, tag=1):
    id: int
    persistence_id: str
    sequence_nr: int


class PurgeRequest(msgspec.Struct, array_like=True, tag=3):
    """Delete the idempotency records written before ``not_before``."""

    id: int
    not_before: float


class CloseRequest(msgspec.Struct, array_like=True, tag=2):
    """Commit what came before, reply, and exit (an explicit request, not only
    the end of the pipe: a forked child of the application may hold the pipe
    open)."""

    id: int


Request = AppendRequest | DeleteRequest | PurgeRequest | CloseRequest

#: Reply kinds: done, a ConcurrencyConflict (``message`` is the persistence
#: id), an error of sqlite3 (``name`` is its class, ``code`` and
#: ``code_name`` its SQLite error code), any other error, an append whose
#: outcome is unknown (``message`` says why: its batch's COMMIT failed).
OK, CONFLICT, SQLITE_ERROR, ERROR, IN_DOUBT = 0, 1, 2, 3, 4


class Reply(msgspec.Struct, array_like=True):
    id: int
    kind: int = OK
    name: str = ""
    message: str = ""
    sequence_nr: int = 0
    code: int | None = None
    code_name: str | None = None


request_encoder = msgspec.msgpack.Encoder()
request_decoder = msgspec.msgpack.Decoder(list[Request])
one_request_decoder = msgspec.msgpack.Decoder(Request)
reply_encoder = msgspec.msgpack.Encoder()
reply_decoder = msgspec.msgpack.Decoder(list[Reply])


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "little") + payload


def take_frames(buffer: bytearray) -> list[bytes]:
    """The complete frames at the start of ``buffer``, removed from it."""
    frames: list[bytes] = []
    start = 0
    while len(buffer) - start >= 4:
        size = int.from_bytes(buffer[start : start + 4], "little")
        if len(buffer) - start - 4 < size:
            break
        frames.append(bytes(buffer[start + 4 : start + 4 + size]))
        start += 4 + size
    del buffer[:start]
    return frames
