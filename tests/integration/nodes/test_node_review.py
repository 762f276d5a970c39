"""Edges of the transport found in its review, each a behaviour that must hold."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorRef,
    CodecError,
    MailboxFull,
    NodeDown,
    NodeId,
    NodeUnreachable,
    Overflow,
    Terminated,
)
from hewitt._runtime._address import ActorAddress
from hewitt.node import LinkState, Node, NodeConfig, PeerDown, PeerUp
from hewitt.testing import TestProbe
from tests.integration.nodes.actors import Echo, Payload, Sequence
from tests.integration.nodes.conftest import FAST, start_node


async def test_nodes_connecting_to_each_other_at_once_lose_nothing() -> None:
    started = [await start_node(f"n{i}") for i in range(4)]
    nodes = [node for _, node in started]
    try:
        for _, node in started:
            node.system.spawn(Sequence, name="sequence")
        pairs = [(a, b) for a in nodes for b in nodes if a is not b]
        for _ in range(2):  # all at once, and again: connect is idempotent
            await asyncio.gather(*(a.connect(b.node_id.host, b.node_id.port) for a, b in pairs))
        total = 2000
        for a in nodes:
            for b in nodes:
                if a is not b:
                    remote = await a.lookup(b.node_id, "/user/sequence")
                    assert remote is not None
                    for _ in range(total):
                        remote.tell(Payload(0, b""))
        for a in nodes:  # each sender's tells, then its ask: FIFO, so all have arrived
            for b in nodes:
                if a is not b:
                    remote = await a.lookup(b.node_id, "/user/sequence")
                    assert remote is not None
                    await remote.ask("count", timeout=60)
        for node in nodes:
            local = node.system.lookup("/user/sequence")
            assert local is not None
            assert await local.ask("count") == 3 * total
    finally:
        for system, _ in started:
            await system.shutdown()


async def test_signals_keep_their_order_with_messages(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    probe = TestProbe(a.system)
    target_on_b = await b.lookup(a.node_id, probe.ref.path)
    assert target_on_b is not None

    class Sender(Actor[Any]):
        def receive(self, message: Any) -> None:
            if message == "go":
                for i in range(200):
                    target_on_b.tell(i)
                self.context.stop()

    sender = b.system.spawn(Sender, name="sender")
    remote_sender = await a.lookup(b.node_id, "/user/sender")
    assert remote_sender is not None and remote_sender == sender
    probe.watch(remote_sender)
    await a.lookup(b.node_id, "/user/sender")  # a round trip: the watch has arrived
    remote_sender.tell("go")
    received = [await probe.receive_message(within=30) for _ in range(201)]
    assert received[:200] == list(range(200))
    assert isinstance(received[200], Terminated)


async def test_a_message_larger_than_a_frame_is_refused_at_the_sender() -> None:
    config = NodeConfig(max_frame=64 * 1024, batch_bytes=16 * 1024)
    a_system, a = await start_node("a", config)
    b_system, b = await start_node("b", config)
    try:
        b_system.spawn(Echo, name="echo")
        echo = await a.lookup(b.node_id, "/user/echo")
        assert echo is not None
        with pytest.raises(CodecError, match="max_frame"):
            echo.tell(b"x" * 100_000)
        assert await echo.ask(b"y" * 1000) == b"y" * 1000  # the link is fine
        assert a.links[b.node_id] is LinkState.UP
    finally:
        await a_system.shutdown()
        await b_system.shutdown()


async def test_a_lost_connection_made_again_answers_the_watches_across_it(
    two_nodes: tuple[Node, Node],
) -> None:
    a, b = two_nodes
    b.system.spawn(Echo, name="echo")
    echo = await a.lookup(b.node_id, "/user/echo")
    assert echo is not None
    watcher = TestProbe(a.system)
    watcher.watch(echo)
    assert await echo.ask("sync") == "sync"
    events = TestProbe(a.system)
    a.system.event_stream.subscribe(events.ref, PeerUp)
    link = a.link(b.node_id)
    assert link is not None and link.connection is not None
    link.connection.abort()
    terminated = await watcher.expect_terminated(echo, within=30)
    assert isinstance(terminated.reason, NodeUnreachable) and "watch again" in str(
        terminated.reason
    )
    await events.expect_message(PeerUp, within=30)
    assert await echo.ask("still there") == "still there"  # the actor itself is fine
    local = b.system.lookup("/user/echo")
    assert local is not None
    assert _watchers(b, local) == 0  # the remote watch was forgotten


async def test_a_stopping_node_delivers_what_it_had_queued(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    sequence = b.system.spawn(Sequence, name="sequence")
    remote = await a.lookup(b.node_id, "/user/sequence")
    assert remote is not None
    events = TestProbe(b.system)
    b.system.event_stream.subscribe(events.ref, PeerDown)
    total = 20_000
    for _ in range(total):
        remote.tell(Payload(0, b""))
    await a.stop()
    down = await events.expect_message(PeerDown, within=30)
    assert down.reason == "the node stopped"  # a goodbye, not a reset
    link = a.link(b.node_id)
    assert link is not None
    assert await sequence.ask("count") + link.dropped == total
    assert link.dropped == 0


async def test_watches_of_a_node_that_went_down_are_forgotten(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = b.system.spawn(Echo, name="echo")
    remote = await a.lookup(b.node_id, "/user/echo")
    assert remote is not None
    for _ in range(5):
        TestProbe(a.system).watch(remote)
    assert await remote.ask("sync") == "sync"
    assert _watchers(b, echo) == 5
    events = TestProbe(b.system)
    b.system.event_stream.subscribe(events.ref, PeerDown)
    await a.stop()
    await events.expect_message(PeerDown, within=30)
    assert await echo.ask("after") == "after"  # handled after the unwatches
    assert _watchers(b, echo) == 0


async def test_an_ask_to_a_node_that_never_existed_fails_fast() -> None:
    system, _ = await start_node("a", NodeConfig(heartbeat_interval=0.1, down_after=60))
    try:
        import socket

        with socket.socket() as probe:  # a port with nobody listening
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ghost = system.resolve(ActorAddress(NodeId("ghost", "127.0.0.1", port, 7), "/user/x", 1))
        with pytest.raises(NodeUnreachable):  # at once, or once the first dial failed
            await ghost.ask("anyone?", timeout=60)
        with pytest.raises(NodeUnreachable):  # the link is suspect now: at once
            await ghost.ask("anyone?", timeout=60)
    finally:
        await system.shutdown()


async def test_fail_overflow_from_threads_loses_nothing_silently(
    two_nodes: tuple[Node, Node],
) -> None:
    config = NodeConfig(heartbeat_interval=0.1, send_queue=10, send_overflow=Overflow.FAIL)
    a_system, a = await start_node("fa", config)
    try:
        b = two_nodes[1]
        b.system.spawn(Sequence, name="seq")
        remote = await a.lookup(b.node_id, "/user/seq")
        assert remote is not None
        link = a.link(b.node_id)
        assert link is not None
        raised = 0
        gate = threading.Event()

        def tell_from_thread() -> None:
            nonlocal raised
            gate.wait()
            for _ in range(2000):
                try:
                    remote.tell(Payload(0, b""))
                except MailboxFull:
                    raised += 1

        thread = threading.Thread(target=tell_from_thread)
        thread.start()
        gate.set()
        await asyncio.to_thread(thread.join)
        await link.drained()
        delivered = await remote.ask("count", timeout=60)
        assert delivered + raised + link.dropped == 2000
    finally:
        await a_system.shutdown()


def test_node_config_refuses_bad_values() -> None:
    for bad in (
        {"reconnect_min": 0},
        {"reconnect_max": 0.01, "reconnect_min": 0.05},
        {"heartbeat_interval": float("nan")},
        {"min_std_deviation": 0},
        {"phi_threshold": -1},
        {"acceptable_pause": -1},
        {"write_high_water": -5},
        {"batch_bytes": 2**20, "max_frame": 2**20},
        {"send_overflow": Overflow.BLOCK},
    ):
        with pytest.raises(ValueError):
            NodeConfig(**bad)  # type: ignore[arg-type]
    assert FAST.down_after > 0


async def test_fault_delays_keep_order_across_heal(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    b.system.spawn(Sequence, name="seq2")
    remote = await a.lookup(b.node_id, "/user/seq2")
    assert remote is not None
    from tests.integration.nodes.actors import Count, Counted

    probe = TestProbe(a.system)
    a.faults.delay("b", 0.5)
    for seq in range(5):
        remote.tell(Count(seq, 10, probe.ref))
    a.faults.heal("b")
    for seq in range(5, 10):
        remote.tell(Count(seq, 10, probe.ref))
    assert await probe.expect_message(Counted, within=30) == Counted(10, True)
    assert isinstance(NodeDown("x"), NodeUnreachable)
    assert ActorRef


def _watchers(node: Node, ref: ActorRef[Any]) -> int:
    statistics = node.system.actor_statistics(ref)
    assert statistics is not None
    return statistics.watchers


async def test_an_ask_after_sends_that_filled_the_queue_is_not_dropped() -> None:
    config = NodeConfig(heartbeat_interval=0.1, send_queue=50)
    a_system, a = await start_node("qa", config)
    b_system, b = await start_node("qb", config)
    try:
        b_system.spawn(Sequence, name="seq")
        remote = await a.lookup(b.node_id, "/user/seq")
        assert remote is not None
        for _ in range(5000):
            await remote.send(Payload(0, b"x" * 100))  # waits while the queue is full
        assert await remote.ask("count", timeout=60) == 5000  # admitted past the bound
        link = a.link(b.node_id)
        assert link is not None and link.dropped == 0
    finally:
        await a_system.shutdown()
        await b_system.shutdown()
