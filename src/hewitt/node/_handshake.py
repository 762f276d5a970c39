"""The handshake: both ends prove they hold the cluster secret.

HMAC-SHA256 challenge-response with a fresh 32-byte nonce from each side
(mutual authentication, as Erlang distribution's challenge/reply, with a
stronger MAC)::

    dialer   -> MAGIC, Hello(version, cluster, dialer, expected, nonce_d)
    acceptor -> Challenge(acceptor, nonce_a, HMAC(secret, "accept", ...))
    dialer   -> Proof(HMAC(secret, "dial", ...))
    acceptor -> Welcome(service uid)   or   Refuse(code, reason)

Both proofs cover the protocol version, the cluster name, both nonces and
both identities (incarnations included), under different labels, so that no
proof can be replayed in another role, on another connection or for other
nodes. A nonce seen before is refused (replay). Until the dialer's proof is
checked, the acceptor decodes nothing but these small, size-limited structs.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from hewitt import HewittError, NodeId

from ._wire import (
    HANDSHAKE_LIMIT,
    MAGIC,
    PROTOCOL_VERSION,
    Challenge,
    HandshakeMessage,
    Hello,
    Proof,
    Refuse,
    Welcome,
    decode_handshake,
    encode_handshake,
    node_of,
    proof,
    read_frame,
    wire_node,
)


class HandshakeRefused(HewittError):
    """A connection to or from another node was refused in the handshake.

    ``peer`` is the other end (its address, or its node once known), ``code``
    one of ``version``, ``cluster``, ``auth``, ``replay``, ``gone`` (the node
    dialled is an incarnation that no longer exists), ``quarantined``,
    ``simultaneous`` (both ends dialled at once; the other connection is
    used), ``stopping``, ``closed`` (the peer closed the connection during
    the handshake: a TLS certificate it refused, say), or ``protocol`` (bytes
    that are not the handshake).
    """

    def __init__(self, peer: str, code: str, reason: str) -> None:
        super().__init__(f"handshake with {peer} refused ({code}): {reason}")
        self.peer = peer
        self.code = code
        self.reason = reason


class NonceLog:
    """The nonces seen lately (bounded): a nonce seen twice is a replay."""

    def __init__(self, size: int = 65536) -> None:
        self._order: deque[bytes] = deque()
        self._seen: set[bytes] = set()
        self._size = size

    def first_time(self, nonce: bytes) -> bool:
        if nonce in self._seen:
            return False
        self._seen.add(nonce)
        self._order.append(nonce)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        return True


@dataclass(frozen=True, slots=True)
class Greeting:
    """What a completed handshake established."""

    peer: NodeId
    #: what the dialer expected to reach (acceptor side; None on the dialer's)
    expected: NodeId | None
    #: the uid of the peer's node service actor (``/system/node``)
    service_uid: int
    #: the dialer only wanted to learn who listens here
    probe: bool = False


def _nonce() -> bytes:
    return os.urandom(32)


async def _read(reader: asyncio.StreamReader, peer: str) -> HandshakeMessage:
    try:
        return decode_handshake(await read_frame(reader, HANDSHAKE_LIMIT))
    except asyncio.IncompleteReadError:
        raise HandshakeRefused(
            peer, "closed", "the peer closed the connection during the handshake"
        ) from None
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise HandshakeRefused(peer, "protocol", f"not a handshake message: {exc}") from None


async def dial(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    secret: bytes,
    cluster: str,
    local: NodeId,
    expected: NodeId,
    nonces: NonceLog,
    service_uid: int,
    probe: bool = False,
) -> Greeting:
    """The dialer's half. Raises HandshakeRefused (or a connection error).
    A ``probe`` only learns who listens there: the acceptor closes it."""
    peer = f"{expected.host}:{expected.port}"
    nonce = _nonce()
    nonces.first_time(nonce)  # ours: a Hello that comes back with it is a reflection
    hello = Hello(
        PROTOCOL_VERSION, cluster, wire_node(local), wire_node(expected), nonce, service_uid, probe
    )
    writer.write(MAGIC + encode_handshake(hello))
    answer = await _read(reader, peer)
    if isinstance(answer, Refuse):
        raise HandshakeRefused(peer, answer.code, answer.reason)
    if not isinstance(answer, Challenge):
        raise HandshakeRefused(
            peer, "protocol", f"expected a challenge, got {type(answer).__name__}"
        )
    theirs = answer.node
    if theirs == hello.node or theirs[1:3] == hello.node[1:3]:
        # Our own handshake reflected back at us by a man in the middle.
        raise HandshakeRefused(peer, "auth", "the acceptor claims to be this node")
    if (expected.system and theirs[0] != expected.system) or (
        expected.incarnation and theirs[3] != expected.incarnation
    ):
        raise HandshakeRefused(peer, "gone", f"{node_of(theirs)} answered, not {expected}")
    expected_proof = proof(
        secret, b"accept", PROTOCOL_VERSION, cluster, nonce, answer.nonce, hello.node, theirs
    )
    if not hmac.compare_digest(answer.proof, expected_proof):
        raise HandshakeRefused(peer, "auth", "the acceptor does not hold the cluster secret")
    if not nonces.first_time(answer.nonce):
        raise HandshakeRefused(peer, "replay", "the acceptor's nonce was seen before")
    mine = proof(
        secret, b"dial", PROTOCOL_VERSION, cluster, answer.nonce, nonce, hello.node, theirs
    )
    writer.write(encode_handshake(Proof(mine)))
    verdict = await _read(reader, peer)
    if isinstance(verdict, Refuse):
        raise HandshakeRefused(str(node_of(theirs)), verdict.code, verdict.reason)
    if not isinstance(verdict, Welcome):
        raise HandshakeRefused(
            peer, "protocol", f"expected a welcome, got {type(verdict).__name__}"
        )
    return Greeting(node_of(theirs), None, verdict.service_uid)


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    secret: bytes,
    cluster: str,
    local: NodeId,
    nonces: NonceLog,
    service_uid: int,
    admit: Callable[[NodeId, NodeId, bool], tuple[str, str] | None],
) -> Greeting:
    """The acceptor's half. ``admit(peer, expected, probe)`` returns None to take
    the connection or ``(code, reason)`` to refuse it. Raises HandshakeRefused."""
    address = writer.get_extra_info("peername")
    peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
    try:
        magic = await reader.readexactly(len(MAGIC))
    except asyncio.IncompleteReadError:
        raise HandshakeRefused(peer, "protocol", "closed before the handshake") from None
    if magic != MAGIC:
        raise HandshakeRefused(peer, "protocol", f"not a hewitt node (it sent {magic!r})")
    hello = await _read(reader, peer)
    if not isinstance(hello, Hello):
        raise HandshakeRefused(peer, "protocol", f"expected a hello, got {type(hello).__name__}")

    def refuse(code: str, reason: str) -> HandshakeRefused:
        writer.write(encode_handshake(Refuse(code, reason)))
        return HandshakeRefused(peer, code, reason)

    if hello.version != PROTOCOL_VERSION:
        raise refuse(
            "version", f"protocol version {hello.version} (this node speaks {PROTOCOL_VERSION})"
        )
    if hello.cluster != cluster:
        # Not naming this node's cluster: the peer is not authenticated.
        raise refuse("cluster", f"not a node of cluster {hello.cluster!r}")
    if len(hello.nonce) != 32 or not nonces.first_time(hello.nonce):
        raise HandshakeRefused(peer, "replay", "a nonce seen before (or not 32 bytes)")
    mine = wire_node(local)
    if hello.node == mine or hello.node[1:3] == mine[1:3]:
        raise HandshakeRefused(peer, "auth", "a peer claiming to be this node (a reflection)")
    nonce = _nonce()
    nonces.first_time(nonce)
    writer.write(
        encode_handshake(
            Challenge(
                mine,
                nonce,
                proof(
                    secret,
                    b"accept",
                    PROTOCOL_VERSION,
                    cluster,
                    hello.nonce,
                    nonce,
                    hello.node,
                    mine,
                ),
            )
        )
    )
    answer = await _read(reader, peer)
    if not isinstance(answer, Proof):
        raise HandshakeRefused(peer, "protocol", f"expected a proof, got {type(answer).__name__}")
    expected_proof = proof(
        secret, b"dial", PROTOCOL_VERSION, cluster, nonce, hello.nonce, hello.node, mine
    )
    if not hmac.compare_digest(answer.proof, expected_proof):
        raise refuse("auth", "authentication failed (wrong cluster secret)")
    dialer = node_of(hello.node)
    refusal = admit(dialer, node_of(hello.expected), hello.probe)
    if refusal is not None:
        raise refuse(*refusal)
    writer.write(encode_handshake(Welcome(service_uid)))
    return Greeting(dialer, node_of(hello.expected), hello.service_uid, hello.probe)
