"""hewitt on a real Ray cluster (two raylets on loopback addresses): nodes
hosted by NodeHost actors, a client in this driver, the coordinator's
membership; a host killed, the coordinator killed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.nodes.actors import Echo, Forwarder, Ping, register
from tests.integration.ray.conftest import HEAD_IP, RayCluster

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

ray = pytest.importorskip("ray")
hewitt_ray = pytest.importorskip("hewitt.ray")

SETUP = "tests.integration.nodes.actors:register"


@pytest.fixture(scope="module")
def client(ray_cluster: RayCluster) -> Iterator[Any]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    namespace = f"hewitt-test-{os.getpid()}"
    ray.init(
        address=ray_cluster.address,
        _node_ip_address=HEAD_IP,
        namespace=namespace,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": ray_cluster.env["PYTHONPATH"]}},
    )
    try:
        client = hewitt_ray.start(2, namespace=namespace, setup=SETUP, down_after=3.0)
        register(client.system)
        yield client
    finally:
        hewitt_ray.shutdown(namespace)
        ray.shutdown()


def _events(client: Any, *types: type[Any]) -> Any:
    from hewitt.testing import TestProbe

    async def make() -> TestProbe:
        probe = TestProbe(client.system)
        for event_type in types:
            client.system.event_stream.subscribe(probe.ref, event_type)
        return probe

    return client.member.run(make())


def test_spawn_on_each_host_and_ask_across(client: Any) -> None:
    hosts = client.wait_for_hosts(2)
    assert {node.host for node in hosts} == {"127.0.0.2", "127.0.0.3"}  # one per raylet
    echoes = [client.spawn(Echo, placement=hewitt_ray.Pinned(node)) for node in hosts]
    assert [echo.node for echo in echoes] == hosts
    assert [echo.ask_blocking(Ping(i), timeout=30) for i, echo in enumerate(echoes)] == [
        Ping(0),
        Ping(1),
    ]
    # An actor on the first host forwards to the echo on the second one.
    forwarder = client.spawn(Forwarder, echoes[1], placement=hewitt_ray.Pinned(hosts[0]))
    assert forwarder.ask_blocking(Ping(7), timeout=30) == Ping(7)


def test_placement_by_resource_and_by_load(client: Any) -> None:
    hosts = client.wait_for_hosts(2)
    on_cpu = client.spawn(Echo, placement=hewitt_ray.OnResource("CPU"))
    assert on_cpu.node in hosts and on_cpu.ask_blocking(Ping(1), timeout=30) == Ping(1)
    with pytest.raises(LookupError, match="GPU"):
        client.spawn(Echo, placement=hewitt_ray.OnResource("GPU"))  # no Ray node has one
    for _ in range(10):
        client.spawn(Echo, placement=hewitt_ray.Pinned(hosts[0]))
    emptier = client.spawn(Echo, placement=hewitt_ray.LeastLoaded())
    assert emptier.node == hosts[1]


def test_plain_ray_code_can_hold_and_use_a_ref(client: Any) -> None:
    echo = client.spawn(Echo)
    portable = hewitt_ray.PortableRef(echo, namespace=client.member.namespace)

    @ray.remote(num_cpus=0)  # the raylets' CPUs are the hosts'
    def use(ref: Any) -> Any:
        from tests.integration.nodes.actors import Ping

        return ref.ask(Ping(42), timeout=30)

    assert ray.get(use.remote(portable), timeout=120) == Ping(42)


def test_a_killed_host_is_down_then_rejoins_as_a_new_incarnation(client: Any) -> None:
    from hewitt import NodeUnreachable
    from hewitt.cluster import MemberDown, MemberUp

    hosts = client.wait_for_hosts(2)
    victim_node = hosts[0]
    echo = client.spawn(Echo, placement=hewitt_ray.Pinned(victim_node))
    assert echo.ask_blocking("sync", timeout=30) == "sync"
    events = _events(client, MemberDown, MemberUp)
    watcher = _events(client)
    client.member.run(_watch(watcher, echo))
    handle = next(
        h
        for h in hewitt_ray.host_handles(client.member.namespace)
        if ray.get(h.describe.remote(), timeout=30)[1][0] == victim_node.system
    )
    ray.kill(handle, no_restart=False)  # Ray restarts it: a new process
    terminated = client.member.run(watcher.expect_terminated(echo, within=60))
    assert isinstance(terminated.reason, NodeUnreachable)
    with pytest.raises(NodeUnreachable):
        echo.ask_blocking("anyone?", timeout=30)
    seen: dict[type[Any], Any] = {}
    deadline = time.monotonic() + 120
    while len(seen) < 2 and time.monotonic() < deadline:
        event = client.member.run(events.receive_message(within=120))
        if event.node.system == victim_node.system:
            seen.setdefault(type(event), event)
    down, up = seen[MemberDown], seen[MemberUp]
    assert down.node == victim_node
    assert up.node.system == victim_node.system and up.node.incarnation != victim_node.incarnation
    fresh = client.spawn(Echo, placement=hewitt_ray.Pinned(up.node))
    assert fresh.ask_blocking(Ping(3), timeout=30) == Ping(3)


def test_messaging_goes_on_while_the_coordinator_restarts(client: Any) -> None:
    hosts = client.wait_for_hosts(2)
    echo = client.spawn(Echo, placement=hewitt_ray.Pinned(hosts[1]))
    epoch = client.member.epoch
    coordinator = ray.get_actor(hewitt_ray.COORDINATOR_NAME, namespace=client.member.namespace)
    ray.kill(coordinator, no_restart=False)
    for i in range(50):  # while it is down and restarting
        assert echo.ask_blocking(i, timeout=30) == i
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        client.member.epoch > epoch and len(client.member.hosts) == 2
    ):
        assert echo.ask_blocking("still", timeout=30) == "still"
    assert client.member.epoch > epoch and len(client.member.hosts) == 2  # rebuilt


async def _watch(probe: Any, ref: Any) -> None:
    probe.watch(ref)


def test_the_model_server_keeps_serving_through_a_killed_host(client: Any) -> None:
    import sys

    from tests.integration.examples_loader import EXAMPLES

    sys.path.insert(0, str(EXAMPLES))  # as the hosts and tasks import it: model_server
    try:
        import model_server
    finally:
        sys.path.remove(str(EXAMPLES))
    report = model_server.main(client, tasks=2, per_task=200, kill_after=50)
    assert report.lost == 0  # every request answered or failed explicitly
    assert report.answered + report.failed == 600 and report.answered >= 150
    assert report.killed.startswith("hewitt-host-") and report.rejoined
    assert len(report.by_host) == 2
    assert report.served_after == 50  # the router serves again, with the new incarnation
