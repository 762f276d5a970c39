"""A cluster on one machine: the seed holds the membership, every node agrees
on who is up, a killed worker is restarted as a new incarnation that joins
again, and old refs to it are dead."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hewitt import NodeDown, NodeId
from hewitt.cluster import (
    GetView,
    LeastLoaded,
    LocalCluster,
    MemberDown,
    MemberUp,
    Pinned,
    local,
    register_types,
)
from hewitt.node import NodeConfig
from hewitt.testing import TestProbe
from tests.integration.nodes.actors import Echo, Ping
from tests.integration.nodes.conftest import ROOT, SECRET, start_node

SETUP = "tests.integration.nodes.actors:register"
CONFIG = NodeConfig(heartbeat_interval=0.1, acceptable_pause=0.5, down_after=2.0)


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers import the tests' actors (SETUP, remote spawns)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))


async def _views_agree(cluster: LocalCluster) -> None:
    seed_view = await cluster.system.lookup("/system/membership").ask(GetView())  # type: ignore[union-attr]
    for member in cluster.worker_nodes:
        agent = await cluster.node.lookup(member, "/system/membership-agent")
        assert agent is not None
        view = await agent.ask(GetView())
        if view.epoch == seed_view.epoch:
            assert sorted(view.up, key=str) == sorted(seed_view.up, key=str)


async def test_a_local_cluster_spawns_across_its_workers_and_restarts_a_killed_one() -> None:
    async with local(2, setup=SETUP, node_config=CONFIG) as cluster:
        assert len(cluster.members) == 3 and len(cluster.worker_nodes) == 2
        refs = [await cluster.spawn(Echo) for _ in range(4)]
        assert {ref.node for ref in refs} == set(cluster.worker_nodes)  # round robin
        assert [await ref.ask(Ping(i)) for i, ref in enumerate(refs)] == [Ping(i) for i in range(4)]
        await _views_agree(cluster)

        events = TestProbe(cluster.system)
        cluster.system.event_stream.subscribe(events.ref, MemberUp)
        cluster.system.event_stream.subscribe(events.ref, MemberDown)
        killed = cluster.kill(0)
        down = await events.expect_message(MemberDown, within=60)
        assert down.node == killed
        up = await events.expect_message(MemberUp, within=120)
        assert up.node != killed and up.node.system == killed.system  # a new incarnation
        assert up.node.incarnation != killed.incarnation and up.epoch > down.epoch
        assert killed not in cluster.members and up.node in cluster.members

        old = next(ref for ref in refs if ref.node == killed)
        with pytest.raises(NodeDown):
            await old.ask(Ping(0))
        fresh = await cluster.spawn(Echo, placement=Pinned(up.node))
        assert fresh.node == up.node and await fresh.ask(Ping(5)) == Ping(5)
        await _views_agree(cluster)


async def test_least_loaded_placement_picks_the_emptier_worker() -> None:
    async with local(2, setup=SETUP, node_config=CONFIG) as cluster:
        busy, idle = cluster.worker_nodes
        for _ in range(20):
            await cluster.spawn(Echo, placement=Pinned(busy))
        chosen = await cluster.spawn(Echo, placement=LeastLoaded())
        assert chosen.node == idle
        with pytest.raises(LookupError):
            await cluster.spawn(Echo, placement=Pinned(cluster.node.node_id))  # not a worker


@pytest.fixture
def cli_nodes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _cli_node(started: list[subprocess.Popen[str]], *arguments: str) -> list[str]:
    env = dict(os.environ, HEWITT_CLUSTER_SECRET=SECRET)
    process = subprocess.Popen(
        [sys.executable, "-m", "hewitt.cli", "node", "--cluster", "test", *arguments],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        env=env,
    )
    started.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("ready "), line
    return line.split()


async def test_hewitt_node_runs_a_seed_and_a_member(cli_nodes: list[subprocess.Popen[str]]) -> None:
    seed = _cli_node(cli_nodes, "--name", "seed")
    _cli_node(cli_nodes, "--name", "member", "--seed", f"{seed[2]}:{seed[3]}", "--setup", SETUP)
    system, node = await start_node("observer")
    register_types(system)
    try:
        seed_node = await node.connect(seed[2], int(seed[3]))
        membership = await node.lookup(seed_node, "/system/membership")
        assert membership is not None
        view = await membership.ask(GetView())  # the member printed "ready" once it had joined
        assert sorted(member.system for member in view.up) == ["member", "seed"]
        member = next(m for m in view.up if m.system == "member")
        echo = await node.spawn(member, Echo)
        assert await echo.ask(Ping(1)) == Ping(1)
    finally:
        await system.shutdown()


async def test_a_worker_declared_down_is_replaced_and_placement_passes_it_over() -> None:
    import signal

    async with local(2, setup="tests.integration.nodes.actors:register_noisily",
                     node_config=CONFIG) as cluster:  # fmt: skip
        events = TestProbe(cluster.system)
        cluster.system.event_stream.subscribe(events.ref, MemberUp)
        cluster.system.event_stream.subscribe(events.ref, MemberDown)
        frozen_worker = cluster.workers[0]
        frozen, healthy = frozen_worker.node, cluster.workers[1].node
        assert frozen is not None and frozen_worker.process is not None
        os.kill(frozen_worker.process.pid, signal.SIGSTOP)  # alive, but not answering
        chosen = await cluster.spawn(Echo, placement=LeastLoaded(timeout=1.0))
        assert chosen.node == healthy  # the frozen one does not answer for its load
        down = await events.expect_message(MemberDown, within=60)
        assert down.node == frozen
        up = await events.expect_message(MemberUp, within=120)  # killed and started again
        assert up.node.system == frozen.system and up.node != frozen


async def test_membership_is_final_for_a_down_incarnation() -> None:
    from hewitt.cluster import MembershipAgent, View

    system, node = await start_node("agent")
    try:
        other = NodeId("b", "127.0.0.1", 1, 7)
        events = TestProbe(system)
        system.event_stream.subscribe(events.ref, MemberUp)
        system.event_stream.subscribe(events.ref, MemberDown)
        agent = system.spawn_system_actor(MembershipAgent, node, None, "")
        me = node.node_id
        for epoch, up, down in ((1, [me, other], []), (2, [me], [other]), (3, [me, other], [])):
            agent.tell(View(epoch, up, down))
        received = [await events.receive_message() for _ in range(3)]
        assert [type(event).__name__ for event in received] == [
            "MemberUp",
            "MemberUp",
            "MemberDown",
        ]
        await events.expect_no_message(within=0.3)  # no MemberUp again for the down incarnation
    finally:
        await system.shutdown()
