"""Reading a link's connection: frames in, batches decoded and delivered.

A connection replaced by another is still read to its end (what the peer
wrote on it came before what it writes on the new one). A malformed,
truncated or oversized frame closes the connection, logged with the peer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from hewitt import CodecError
from hewitt._runtime._codec import ControlFrame

from ._wire import BATCH, GOODBYE, HEARTBEAT, FrameTooLarge

if TYPE_CHECKING:
    from ._link import Connection, RemoteLink

logger = logging.getLogger("hewitt.node")

#: frames above this size are read in chunks of it (see _read_frame)
CHUNK = 256 * 1024


async def read(link: RemoteLink, connection: Connection) -> None:
    """Read ``connection`` to its end, delivering what arrives over ``link``."""
    owner = link.owner
    codec = link.system.codec
    limit = owner.config.max_frame
    reader = connection.reader
    peer = link.peer
    why = "closed by the peer"
    try:
        while True:
            payload = await _read_frame(link, reader, limit)
            # A connection replaced by another is still read to its end:
            # what the peer wrote on it came before what it writes on the new one.
            link.heard = True
            link.frames_in += 1
            link.bytes_in += len(payload) + 4
            if not owner.faults.accept_inbound(link):
                continue
            lane = payload[0] if payload else -1
            if lane == HEARTBEAT:
                link.detector.heartbeat(owner.clock())
            elif lane == BATCH:
                _arrive(link, codec.decode_batch(memoryview(payload)[1:], peer))
            elif lane == GOODBYE:
                link.down("the node stopped")
                return
            else:
                raise CodecError(f"unknown lane {lane} from {peer}")
    except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except (CodecError, FrameTooLarge) as exc:
        why = str(exc)
        logger.warning("node %s: closing the connection to %s: %s", link.system.node, peer, exc)
        connection.abort()
    except asyncio.CancelledError:
        why = "cancelled"
        raise
    finally:
        link.connection_lost(connection, why)


async def _read_frame(link: RemoteLink, reader: asyncio.StreamReader, limit: int) -> bytes:
    """One frame; a big one in chunks, each of which tells the failure
    detector that the peer is alive (its heartbeats are behind it)."""
    size = int.from_bytes(await reader.readexactly(4), "big")
    if size > limit:
        raise FrameTooLarge(f"a frame of {size} bytes (the limit is {limit})")
    if size <= CHUNK:
        return await reader.readexactly(size)
    chunks = []
    left = size
    while left:
        chunk = await reader.readexactly(min(left, CHUNK))
        chunks.append(chunk)
        left -= len(chunk)
        link.heard = True
    return b"".join(chunks)


def _arrive(link: RemoteLink, frames: list[Any]) -> None:
    codec = link.system.codec
    peer = link.peer
    for frame in frames:
        try:
            if type(frame) is ControlFrame:
                ref = codec.resolve(frame.ref) if frame.ref is not None else None
                link.signals.inbound(frame.kind, codec.resolve(frame.to), ref)
            codec.deliver(frame, peer)
        except Exception:  # one bad frame must not lose the rest of the batch
            logger.exception("node %s: a frame from %s failed to deliver", link.system.node, peer)
