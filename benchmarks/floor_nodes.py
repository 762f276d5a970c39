"""The cross-node benches of ``floor-asyncio`` and ``floor-uvloop``: plain asyncio over TCP.

Two processes on 127.0.0.1, asyncio streams, frames of a u32 length (network byte
order) and a payload, msgspec's MessagePack for the messages; no actor machinery.
The peers are children of the cell process (see _nodes.py); they run on the loop
the registry asked for, like the cell.

* ``node-ask``: the cell process is the client of an echo server in a child. N
  sequential round trips, one request in flight: encode ``i``, write the frame,
  read the reply frame, decode it and check it is ``i``. The server writes back
  every frame it reads. With one request in flight the reply is the flow control:
  neither side ever has more than one frame buffered, so neither awaits
  ``drain()``. One untimed round trip first.
* ``node-tell``: the cell process sends N messages ``(i, "tell")`` to a receiving
  child through one connection. The sender encodes each message as it sends it,
  appending it to the frame being filled (a MessagePack array, its length and
  count patched in when the frame is closed); a frame is closed and written once it
  holds :data:`FRAME_BYTES`, the transport's high-water mark, and the sender awaits
  ``drain()`` only when the transport's buffer is above that mark (then the frames
  queue in the transport while the socket would block, and go out together); no
  timer, no fixed delay. The last, partial frame is written at the end. The
  receiver decodes every frame into its messages and delivers each in order
  (checking its sequence number); after the N-th it writes one acknowledgement (the
  count, a u32), which the sender awaits: ``msgs_per_s`` is N / the time from the
  first message until the acknowledgement.
* ``node-scale``: pairs of child processes running ``node-tell``'s sender and
  receiver (see ``_nodes.scale``).

Run as ``python -m benchmarks.floor_nodes echo | sink N | source N PORT`` (a child).
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from benchmarks import _nodes
from benchmarks._common import Metrics, latency_metrics, loop_runner

_ns = time.perf_counter_ns
#: The frame header: the payload's length.
_U32: Final = struct.Struct("!I")
#: A node-tell frame's first bytes: its length, then a MessagePack array32 header
#: (0xdd, the count), both patched in when the frame is closed.
_BATCH: Final = struct.Struct("!IBI")
_ARRAY32: Final = 0xDD
#: node-tell: a frame is written once it holds this many bytes (the high-water mark
#: of the write buffer of asyncio's and uvloop's transports).
FRAME_BYTES: Final = 64 * 1024
#: The receiving side's stream buffer (asyncio's default is 64 KiB, one frame).
READ_LIMIT: Final = 4 * FRAME_BYTES
#: What node-tell sends: ``(i, TEXT)``.
TEXT: Final = "tell"
_MODULE: Final = "benchmarks.floor_nodes"

Message = tuple[int, str]


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(_nodes.HOST, port)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Write back every frame."""
    readexactly, write, unpack = reader.readexactly, writer.write, _U32.unpack
    try:
        while True:
            header = await readexactly(4)
            write(header + await readexactly(unpack(header)[0]))
    except asyncio.IncompleteReadError:
        pass  # the client is gone
    finally:
        writer.close()


async def _receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    """Decode and deliver ``n`` messages, in order; then acknowledge them."""
    readexactly, unpack = reader.readexactly, _U32.unpack
    decode = msgspec.msgpack.Decoder(list[Message]).decode
    expected = 0
    try:
        while expected < n:
            (size,) = unpack(await readexactly(4))
            for i, _text in decode(await readexactly(size)):
                if i != expected:
                    raise AssertionError(f"message {i} arrived where {expected} was due")
                expected += 1
        writer.write(_U32.pack(expected))
        await writer.drain()
        await reader.read()  # until the sender closes
    finally:
        writer.close()


async def _send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    """Send ``(i, TEXT)`` for ``i`` in ``range(n)`` in batched frames; return once the
    receiver has acknowledged all ``n``."""
    transport = writer.transport
    high = transport.get_write_buffer_limits()[1]
    buffered = transport.get_write_buffer_size
    write, drain = writer.write, writer.drain
    encode_into = msgspec.msgpack.Encoder().encode_into
    seal, start = _BATCH.pack_into, bytes(_BATCH.size)
    frame = bytearray(start)
    count = 0
    for i in range(n):
        encode_into((i, TEXT), frame, -1)
        count += 1
        if len(frame) >= FRAME_BYTES:
            seal(frame, 0, len(frame) - 4, _ARRAY32, count)
            write(frame)
            frame = bytearray(start)
            count = 0
            if buffered() > high:
                await drain()
    if count:
        seal(frame, 0, len(frame) - 4, _ARRAY32, count)
        write(frame)
    (acknowledged,) = _U32.unpack(await reader.readexactly(4))
    if acknowledged != n:
        raise AssertionError(f"the receiver acknowledged {acknowledged} of {n} messages")


async def _node_ask(n: int) -> Metrics:
    async with _nodes.peer(_MODULE, "echo") as server:
        reader, writer = await _connect(int(server.ready))
        try:
            readexactly, write = reader.readexactly, writer.write
            pack, unpack = _U32.pack, _U32.unpack
            encode = msgspec.msgpack.Encoder().encode
            decode = msgspec.msgpack.Decoder(int).decode
            payload = encode(-1)  # not timed: the first round trip
            write(pack(len(payload)) + payload)
            await readexactly(unpack(await readexactly(4))[0])
            latencies = [0] * n
            t0 = time.perf_counter()
            for i in range(n):
                start = _ns()
                payload = encode(i)
                write(pack(len(payload)) + payload)
                (size,) = unpack(await readexactly(4))
                if decode(await readexactly(size)) != i:
                    raise AssertionError(f"round trip {i}: wrong reply")
                latencies[i] = _ns() - start
            elapsed = time.perf_counter() - t0
        finally:
            writer.close()
        return {"rt_per_s": n / elapsed, **latency_metrics(latencies)}


async def _node_tell(n: int) -> Metrics:
    async with _nodes.peer(_MODULE, "sink", str(n)) as receiver:
        reader, writer = await _connect(int(receiver.ready))
        try:
            t0 = time.perf_counter()
            await _send(reader, writer, n)
            elapsed = time.perf_counter() - t0
        finally:
            writer.close()
        return {"msgs_per_s": n / elapsed}


def bench_node_ask(n: int) -> Metrics:
    with loop_runner(default="asyncio") as runner:
        return runner.run(_node_ask(n))


def bench_node_tell(n: int) -> Metrics:
    with loop_runner(default="asyncio") as runner:
        return runner.run(_node_tell(n))


def bench_node_scale(n: int) -> Metrics:
    scale = _nodes.scale(n, [_MODULE, "sink", str(n)], [_MODULE, "source", str(n)])
    with loop_runner(default="asyncio") as runner:
        return runner.run(scale)


# The children.


async def _serve(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> None:
    server = await asyncio.start_server(handler, _nodes.HOST, 0, limit=READ_LIMIT)
    async with server:
        await _nodes.serve(server.sockets[0].getsockname()[1])


async def _source(n: int, port: int) -> None:
    reader, writer = await _connect(port)
    try:
        await _nodes.source(lambda: _send(reader, writer, n))
    finally:
        writer.close()


def main(argv: list[str]) -> None:
    match argv:
        case ["echo"]:
            child = _serve(_echo)
        case ["sink", n]:
            child = _serve(lambda reader, writer: _receive(reader, writer, int(n)))
        case ["source", n, port]:
            child = _source(int(n), int(port))
        case _:
            raise SystemExit(f"usage: python -m {_MODULE} echo | sink N | source N PORT")
    with loop_runner(default="asyncio") as runner:
        runner.run(child)


if __name__ == "__main__":
    main(sys.argv[1:])
