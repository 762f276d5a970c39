"""The node protocol's bytes: frames, the handshake's messages, lanes.

Every unit on a connection is a *frame*: a u32 big-endian length, then that
many bytes. Before authentication only handshake frames are read, each at
most :data:`HANDSHAKE_LIMIT` bytes and decoded as exactly one of the
handshake's structs; nothing else is decoded until both sides have proved
they hold the cluster secret. After it, a frame's first byte names what it
carries (:data:`BATCH`, :data:`HEARTBEAT`, :data:`GOODBYE`); a batch is a
msgpack array of kernel frames (envelopes and control messages).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Final

import msgspec

from hewitt._runtime._address import NodeId

#: The protocol version; a peer with another one is refused in the handshake.
PROTOCOL_VERSION: Final = 1
#: The largest handshake frame read before the peer is authenticated.
HANDSHAKE_LIMIT: Final = 4096
#: The first bytes a dialer sends, so that a stray client is told apart at once.
MAGIC: Final = b"HWT1"

#: Lane bytes: what a frame after the handshake carries.
BATCH: Final = 0
HEARTBEAT: Final = 1
GOODBYE: Final = 2


class FrameTooLarge(ValueError):
    """A frame announced more bytes than the limit allows."""


#: A node's identity on the wire: (system, host, port, incarnation).
WireNode = tuple[str, str, int, int]


def wire_node(node: NodeId) -> WireNode:
    return (node.system, node.host, node.port, node.incarnation)


def node_of(wire: WireNode) -> NodeId:
    return NodeId(*wire)


class Hello(msgspec.Struct, array_like=True, frozen=True, tag=0):
    """The dialer's opening: who it is, which cluster and protocol version it
    speaks, whom it expects to reach (incarnation 0: whoever listens there),
    and a fresh nonce the acceptor must prove the secret over."""

    version: int
    cluster: str
    node: WireNode
    expected: WireNode
    nonce: bytes
    service_uid: int
    #: only to learn who listens there (``Node.connect``): welcomed, then closed
    probe: bool = False


class Challenge(msgspec.Struct, array_like=True, frozen=True, tag=1):
    """The acceptor's answer: its identity, its own fresh nonce, and its proof
    of the secret over both nonces and both identities."""

    node: WireNode
    nonce: bytes
    proof: bytes


class Proof(msgspec.Struct, array_like=True, frozen=True, tag=2):
    """The dialer's proof of the secret over both nonces (in the other order)."""

    proof: bytes


class Welcome(msgspec.Struct, array_like=True, frozen=True, tag=3):
    """The acceptor took the connection; ``service_uid`` is the uid of its
    node service actor (``/system/node``), which the dialer then addresses."""

    service_uid: int


class Refuse(msgspec.Struct, array_like=True, frozen=True, tag=4):
    """The handshake was refused: ``code`` says why for the program (one of
    :data:`REFUSALS`), ``reason`` for the log."""

    code: str
    reason: str


#: Why a handshake can be refused.
REFUSALS: Final = frozenset(
    {"version", "cluster", "auth", "replay", "gone", "quarantined", "simultaneous", "stopping"}
)


HandshakeMessage = Hello | Challenge | Proof | Welcome | Refuse

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(HandshakeMessage)


def encode_handshake(message: HandshakeMessage) -> bytes:
    return frame(_encoder.encode(message))


def decode_handshake(data: bytes) -> HandshakeMessage:
    """Raises msgspec.DecodeError/ValidationError for anything else."""
    return _decoder.decode(data)


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def proof(secret: bytes, label: bytes, *parts: bytes | WireNode | str | int) -> bytes:
    """HMAC-SHA256 of ``label`` and ``parts``, each length-prefixed (so no two
    different sequences of parts give the same bytes)."""
    mac = hmac.new(secret, label, hashlib.sha256)
    for part in parts:
        data = msgspec.msgpack.encode(part)
        mac.update(len(data).to_bytes(4, "big"))
        mac.update(data)
    return mac.digest()


async def read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    """One frame's payload; FrameTooLarge above ``limit`` bytes,
    asyncio.IncompleteReadError at the end of the stream."""
    header = await reader.readexactly(4)
    size = int.from_bytes(header, "big")
    if size > limit:
        raise FrameTooLarge(f"a frame of {size} bytes (the limit is {limit})")
    return await reader.readexactly(size)
