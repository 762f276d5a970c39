"""Failures across nodes are explicit: a killed node's watchers get
Terminated(NodeDown) within the down timeout and asks fail fast; a restarted
node is a new incarnation that old refs never reach; a partition takes both
sides down for each other, for good (quarantine), and delivers nothing twice;
a receiver that stops reading does not grow the sender's memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from hewitt import ActorSystem, NodeDown, NodeUnreachable
from hewitt.node import (
    HandshakeRefused,
    LinkState,
    NodeConfig,
    PeerDown,
    PeerSuspect,
    PeerUp,
    partition,
)
from hewitt.testing import TestProbe
from tests.integration.nodes.actors import Count, Counted, Payload, Ping, Sequence
from tests.integration.nodes.conftest import NodeProcess, start_node


async def _events(system: ActorSystem, *types: type[Any]) -> TestProbe:
    probe = TestProbe(system)
    for event_type in types:
        system.event_stream.subscribe(probe.ref, event_type)
    return probe


async def test_killed_node_watchers_get_node_down_and_asks_fail_fast(
    node_process: Callable[..., NodeProcess],
) -> None:
    system, a = await start_node("a")
    try:
        child = node_process("b")
        b = await a.connect(child.node.host, child.node.port)
        assert b == child.node
        echo = await a.lookup(b, "/user/echo")
        assert echo is not None and await echo.ask(Ping(1)) == Ping(1)
        watcher = TestProbe(system)
        watcher.watch(echo)
        assert await echo.ask("sync") == "sync"  # the watch is registered over there
        events = await _events(system, PeerSuspect, PeerDown)
        child.kill()
        assert await events.expect_message(PeerSuspect, within=30) == PeerSuspect(b)
        with pytest.raises(NodeUnreachable):
            await echo.ask(Ping(2), timeout=60)  # fails at once, not after 60 s
        down = await events.expect_message(PeerDown, within=a.config.down_after + 30)
        assert down.node == b
        terminated = await watcher.expect_terminated(echo, within=30)
        assert isinstance(terminated.reason, NodeDown)
        with pytest.raises(NodeDown):
            await echo.ask(Ping(3))
    finally:
        await system.shutdown()


async def test_a_restarted_node_is_a_new_incarnation_that_old_refs_never_reach(
    node_process: Callable[..., NodeProcess],
) -> None:
    system, a = await start_node("a")
    try:
        first = node_process("b")
        old = await a.connect(first.node.host, first.node.port)
        old_sequence = await a.lookup(old, "/user/sequence")
        assert old_sequence is not None and await old_sequence.ask("count") == 0
        events = await _events(system, PeerDown, PeerUp)
        first.kill()
        second = node_process("b", port=old.port)
        new = await a.connect(second.node.host, second.node.port)
        assert new != old and new.incarnation != old.incarnation
        assert (new.system, new.host, new.port) == (old.system, old.host, old.port)
        while True:  # the new incarnation's PeerUp, and the old one's PeerDown
            event = await events.receive_message(within=30)
            if isinstance(event, PeerDown) and event.node == old:
                break
        assert a.links[old] is LinkState.DOWN
        probe = TestProbe(system)
        old_sequence.tell(Count(0, 1, probe.ref))  # a dead letter: never the new one
        with pytest.raises(NodeDown):
            await old_sequence.ask("count")
        new_sequence = await a.lookup(new, "/user/sequence")
        assert new_sequence is not None and new_sequence != old_sequence
        assert await new_sequence.ask("count") == 0
        await probe.expect_no_message(within=0.2)
    finally:
        await system.shutdown()


async def test_partition_downs_both_sides_for_good_and_delivers_nothing_twice() -> None:
    a_system, a = await start_node("a")
    b_system, b = await start_node("b")
    try:
        sequence = b_system.spawn(Sequence, name="sequence")
        remote = await a.lookup(b.node_id, "/user/sequence")
        assert remote is not None
        done = TestProbe(a_system)
        for seq in range(1000):
            remote.tell(Count(seq, 1000, done.ref))
        assert await done.expect_message(Counted, within=30) == Counted(1000, True)
        a_events = await _events(a_system, PeerDown)
        b_events = await _events(b_system, PeerDown)
        partition(a, b)
        for seq in range(1000, 2000):
            remote.tell(Count(seq, 2000, done.ref))  # lost in the partition
        a_down = await a_events.expect_message(PeerDown, within=a.config.down_after + 30)
        b_down = await b_events.expect_message(PeerDown, within=b.config.down_after + 30)
        assert (a_down.node, b_down.node) == (b.node_id, a.node_id)
        a.faults.heal()
        b.faults.heal()
        with pytest.raises(HandshakeRefused) as refused:
            await b.connect(a.node_id.host, a.node_id.port)
        assert refused.value.code == "quarantined"
        with pytest.raises(NodeDown):
            await remote.ask("state")
        state = await sequence.ask("state")
        assert state.in_order and state.received >= 1000  # nothing twice, nothing out of order
        await done.expect_no_message(within=0.2)
    finally:
        await a_system.shutdown()
        await b_system.shutdown()


async def test_a_receiver_that_stops_reading_does_not_grow_the_senders_memory(
    node_process: Callable[..., NodeProcess],
) -> None:
    config = NodeConfig(heartbeat_interval=0.1, down_after=600.0, send_queue=2000)
    system, a = await start_node("a", config)
    try:
        child = node_process("b", down_after=600.0)
        b = await a.connect(child.node.host, child.node.port)
        sequence = await a.lookup(b, "/user/sequence")
        assert sequence is not None
        link = a.link(b)
        assert link is not None
        process = psutil.Process()
        data = b"x" * 1024
        warm = 1000
        for seq in range(warm):
            sequence.tell(Payload(seq, data))
        assert await sequence.ask("count", timeout=60) == warm
        before = process.memory_info().rss
        child.pause()
        sent = 200_000  # 200 MB if the sender kept them all
        for seq in range(sent):
            sequence.tell(Payload(seq, data))
            if seq % 2000 == 0:
                # Not a wait: a producer that yields to its loop now and then,
                # as a real one does, so the link writes until the socket is full.
                await asyncio.sleep(0)
        grown = process.memory_info().rss - before
        assert link.dropped > 0
        assert grown < 60 * 1024 * 1024, f"the sender grew by {grown / 2**20:.0f} MiB"
        ups = await _events(system, PeerUp)
        child.resume()
        await asyncio.wait_for(link.drained(), 120)
        while True:
            try:
                delivered = await sequence.ask("count", timeout=60) - warm
                break
            except NodeUnreachable:  # still suspect after the pause: fails fast until it is up
                await ups.expect_message(PeerUp, within=120)
        assert delivered + link.dropped == sent  # each one delivered or dropped, none lost
        assert a.links[b] in (LinkState.UP, LinkState.SUSPECT)  # never down: it came back
    finally:
        await system.shutdown()


async def test_a_saturated_ordinary_lane_causes_no_suspicion() -> None:
    a_system, a = await start_node("a")
    b_system, b = await start_node("b")
    try:
        b_system.spawn(Sequence, name="sequence")
        remote = await a.lookup(b.node_id, "/user/sequence")
        assert remote is not None
        suspicions = await _events(a_system, PeerSuspect)
        other_side = await _events(b_system, PeerSuspect)
        done = TestProbe(a_system)
        total = 100_000
        for seq in range(total):
            await remote.send(Count(seq, total, done.ref))  # waits only while the queue is full
        assert await done.expect_message(Counted, within=120) == Counted(total, True)
        await suspicions.expect_no_message(within=0.1)
        await other_side.expect_no_message(within=0.1)
    finally:
        await a_system.shutdown()
        await b_system.shutdown()


async def test_100k_tells_to_another_process_arrive_in_order(
    node_process: Callable[..., NodeProcess],
) -> None:
    system, a = await start_node("a")
    try:
        child = node_process("b")
        b = await a.connect(child.node.host, child.node.port)
        sequence = await a.lookup(b, "/user/sequence")
        assert sequence is not None
        done = TestProbe(system)
        total = 100_000
        for seq in range(total):
            await sequence.send(Count(seq, total, done.ref))  # waits only while the queue is full
        assert await done.expect_message(Counted, within=120) == Counted(total, True)
    finally:
        await system.shutdown()
