"""The handshake refuses a wrong secret, cluster or protocol version and a
replayed nonce before anything else is decoded; malformed, truncated and
oversized frames (fuzzed) close that connection, and the node goes on
serving the others."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hewitt import ActorSystem, NodeId
from hewitt.node import PROTOCOL_VERSION, HandshakeRefused, Node, NodeConfig, PeerSuspect, PeerUp
from hewitt.node._wire import (
    BATCH,
    MAGIC,
    Challenge,
    Hello,
    Proof,
    Refuse,
    Welcome,
    decode_handshake,
    encode_handshake,
    frame,
    proof,
    wire_node,
)
from hewitt.testing import TestProbe
from tests.integration.nodes.actors import Echo, Ping
from tests.integration.nodes.conftest import SECRET, start_node

IMPOSTOR = NodeId("impostor", "127.0.0.1", 1, 7)


async def _raw(node: Node) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(node.node_id.host, node.node_id.port)


async def _read_message(reader: asyncio.StreamReader) -> object:
    size = int.from_bytes(await reader.readexactly(4), "big")
    return decode_handshake(await reader.readexactly(size))


def _hello(
    node: Node, nonce: bytes, *, version: int = PROTOCOL_VERSION, cluster: str = "test"
) -> bytes:
    return MAGIC + encode_handshake(
        Hello(version, cluster, wire_node(IMPOSTOR), wire_node(node.node_id), nonce, 0)
    )


async def test_a_wrong_secret_is_refused_both_ways() -> None:
    a_system, a = await start_node("a")
    other = ActorSystem("c")
    await other.start()
    try:
        c = await Node.start(other, secret="not-the-secret", cluster="test")
        with pytest.raises(HandshakeRefused) as refused:
            await c.connect(a.node_id.host, a.node_id.port)
        assert refused.value.code == "auth"  # the acceptor's proof does not check out
        # The other way round: a dials c, c's proof fails at a.
        with pytest.raises(HandshakeRefused) as refused_back:
            await a.connect(c.node_id.host, c.node_id.port)
        assert refused_back.value.code == "auth"
    finally:
        await other.shutdown()
        await a_system.shutdown()


async def test_a_wrong_cluster_or_version_is_refused() -> None:
    a_system, a = await start_node("a")
    try:
        for hello, code in (
            (_hello(a, os.urandom(32), cluster="other"), "cluster"),
            (_hello(a, os.urandom(32), version=PROTOCOL_VERSION + 1), "version"),
        ):
            reader, writer = await _raw(a)
            writer.write(hello)
            answer = await _read_message(reader)
            assert isinstance(answer, Refuse) and answer.code == code
            assert await reader.read() == b""  # and the connection is closed
            writer.close()
        assert a.refusals == {"cluster": 1, "version": 1}
    finally:
        await a_system.shutdown()


async def test_a_replayed_nonce_is_refused() -> None:
    a_system, a = await start_node("a")
    try:
        nonce = os.urandom(32)
        reader, writer = await _raw(a)
        writer.write(_hello(a, nonce))
        assert isinstance(await _read_message(reader), Challenge)
        writer.close()
        reader, writer = await _raw(a)
        writer.write(_hello(a, nonce))  # the same Hello again
        assert await reader.read() == b""  # closed without a challenge
        writer.close()
        assert a.refusals["replay"] == 1
    finally:
        await a_system.shutdown()


async def test_nothing_is_decoded_from_a_peer_that_failed_to_authenticate() -> None:
    a_system, a = await start_node("a")
    try:
        probe = TestProbe(a_system)
        reader, writer = await _raw(a)
        nonce = os.urandom(32)
        writer.write(_hello(a, nonce))
        challenge = await _read_message(reader)
        assert isinstance(challenge, Challenge)
        wrong = proof(b"guess", b"dial", PROTOCOL_VERSION, "test", challenge.nonce, nonce)
        envelope = a_system.codec.encode_message(probe.ref, "smuggled")
        batch = bytes((BATCH,)) + b"\x91" + envelope
        writer.write(encode_handshake(Proof(wrong)) + frame(batch))
        answer = await _read_message(reader)
        assert isinstance(answer, Refuse) and answer.code == "auth"
        assert await reader.read() == b""
        writer.close()
        await probe.expect_no_message(within=0.3)
        assert a.refusals == {"auth": 1}
    finally:
        await a_system.shutdown()


async def test_a_node_without_a_secret_listens_on_loopback_only() -> None:
    system = ActorSystem("open")
    await system.start()
    try:
        with pytest.raises(ValueError, match="loopback only"):
            await Node.start(system, host="0.0.0.0")
    finally:
        await system.shutdown()


async def test_an_authenticated_peer_sending_a_malformed_batch_is_cut_off() -> None:
    a_system, a = await start_node("a")
    b_system, b = await start_node("b")
    try:
        echo = b_system.spawn(Echo, name="echo")
        remote = await a.lookup(b.node_id, "/user/echo")
        assert remote is not None and await remote.ask(Ping(1)) == Ping(1)
        link = b.link(a.node_id)
        assert link is not None and link.connection is not None
        events = TestProbe(a_system)
        a_system.event_stream.subscribe(events.ref, PeerSuspect)
        a_system.event_stream.subscribe(events.ref, PeerUp)
        link.connection.writer.write(frame(bytes((BATCH,)) + b"\xc1garbage"))
        # a closes that connection (and logs why, naming b); the link comes back on a new one.
        assert await events.expect_message(PeerSuspect, within=30) == PeerSuspect(b.node_id)
        assert await events.expect_message(PeerUp, within=30) == PeerUp(b.node_id)
        assert await remote.ask(Ping(2), timeout=60) == Ping(2)
        assert echo.is_alive
    finally:
        await a_system.shutdown()
        await b_system.shutdown()


# ----------------------------------------------------------------------
# Fuzzing the node port (hypothesis), from plain blocking sockets


class _Fuzzed:
    def __init__(self) -> None:
        config = NodeConfig(handshake_timeout=2.0)
        self.system = ActorSystem.start_in_thread("fuzzed")
        self.node = asyncio.run_coroutine_threadsafe(
            Node.start(self.system, secret=SECRET, cluster="test", config=config),
            self.system._loop,
        ).result(30)
        self.system.spawn(Echo, name="echo")
        self.address = (self.node.node_id.host, self.node.node_id.port)

    def send(self, data: bytes) -> bytes:
        """Send ``data``, half-close, and read until the node closes."""
        with socket.create_connection(self.address, timeout=30) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                received = b""
                while chunk := sock.recv(65536):
                    received += chunk
            except ConnectionResetError:
                return b""
            return received

    def authenticated(self) -> socket.socket:
        """A socket that has passed the handshake (the test holds the secret)."""
        sock = socket.create_connection(self.address, timeout=30)
        nonce = os.urandom(32)
        me = ("fuzzer", "127.0.0.1", 9, int.from_bytes(os.urandom(4), "big"))
        theirs = wire_node(self.node.node_id)
        sock.sendall(
            MAGIC + encode_handshake(Hello(PROTOCOL_VERSION, "test", me, theirs, nonce, 0))
        )
        challenge = decode_handshake(_recv_frame(sock))
        assert isinstance(challenge, Challenge)
        mine = proof(
            SECRET.encode(), b"dial", PROTOCOL_VERSION, "test", challenge.nonce, nonce, me, theirs
        )
        sock.sendall(encode_handshake(Proof(mine)))
        assert isinstance(decode_handshake(_recv_frame(sock)), Welcome)
        return sock

    def close(self) -> None:
        self.system.shutdown_blocking()


def _recv_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    return exactly(int.from_bytes(exactly(4), "big"))


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[_Fuzzed]:
    target = _Fuzzed()
    yield target
    target.close()


def _still_serving(target: _Fuzzed) -> None:
    async def ask() -> object:
        ref = await target.node.lookup(target.node.node_id, "/user/echo")
        assert ref is not None
        return await ref.ask(Ping(9))

    # The node's own service answers, and a legitimate handshake still works.
    target.authenticated().close()
    found = target.system.lookup("/user/echo")
    assert found is not None and found.ask_blocking(Ping(9), timeout=30) == Ping(9)


_FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(st.binary(max_size=300))
def test_fuzzed_bytes_before_the_handshake(fuzzed: _Fuzzed, data: bytes) -> None:
    answer = fuzzed.send(data)
    assert b"Welcome" not in answer and len(answer) < 4096
    _still_serving(fuzzed)


@_FUZZ
@given(
    st.one_of(
        st.binary(max_size=200).map(lambda body: MAGIC + frame(body)),
        st.integers(min_value=4097, max_value=2**32 - 1).map(
            lambda n: MAGIC + n.to_bytes(4, "big")
        ),
        st.binary(max_size=64).map(lambda body: MAGIC + (len(body) + 10).to_bytes(4, "big") + body),
        st.builds(
            lambda fields: MAGIC + frame(msgspec.msgpack.encode(fields)),
            st.lists(
                st.one_of(
                    st.integers(-(2**63), 2**63 - 1), st.binary(max_size=40), st.text(max_size=10)
                ),
                max_size=8,
            ),
        ),
    )
)
def test_fuzzed_handshake_frames(fuzzed: _Fuzzed, data: bytes) -> None:
    answer = fuzzed.send(data)
    assert len(answer) < 4096
    _still_serving(fuzzed)


@_FUZZ
@given(
    st.one_of(
        st.binary(max_size=300).map(lambda body: frame(bytes((BATCH,)) + body)),
        st.binary(max_size=300).map(frame),
        st.integers(min_value=16 * 1024 * 1024 + 1, max_value=2**32 - 1).map(
            lambda n: n.to_bytes(4, "big")
        ),
        st.binary(min_size=1, max_size=3),
    )
)
def test_fuzzed_frames_after_the_handshake(fuzzed: _Fuzzed, data: bytes) -> None:
    sock = fuzzed.authenticated()
    with sock:
        sock.sendall(data + frame(b"\xff"))  # ends with an unknown lane: closed for sure
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass  # heartbeats, until the node closes
        except ConnectionResetError:
            pass
    _still_serving(fuzzed)


async def test_a_handshake_reflected_back_at_its_node_is_refused() -> None:
    """A man in the middle without the secret, dialled by the victim, opens a
    connection to the victim claiming to be it, with its own nonce, to have
    the victim prove the secret for it: refused."""
    from hewitt._runtime._address import ActorAddress

    system, victim = await start_node("victim")
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def attacker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(MAGIC))
        hello = decode_handshake(await _read_frame(reader))
        assert isinstance(hello, Hello)
        r2, w2 = await asyncio.open_connection(victim.node_id.host, victim.node_id.port)
        reflected = Hello(hello.version, hello.cluster, hello.node, hello.node, hello.nonce, 0)
        w2.write(MAGIC + encode_handshake(reflected))
        try:
            outcome.set_result(decode_handshake(await _read_frame(r2)))
        except asyncio.IncompleteReadError:
            outcome.set_result("closed")
        w2.close()
        writer.close()

    server = await asyncio.start_server(attacker, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        ghost = system.resolve(ActorAddress(NodeId("ghost", "127.0.0.1", port, 7), "/user/x", 1))
        ghost.tell("makes the victim dial the attacker")
        assert await asyncio.wait_for(outcome, 30) == "closed"  # no challenge to reflect
        assert victim.refusals.get("replay", 0) + victim.refusals.get("auth", 0) >= 1
    finally:
        server.close()
        await system.shutdown()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await reader.readexactly(4), "big")
    return await reader.readexactly(size)
