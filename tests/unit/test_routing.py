"""Routers (hewitt.routing), one test per rule of docs/routing.md.

Everything goes through the public API: routees are probes or small actors,
and a router's own reply (``GetRoutees``, ``Resize``...) is the barrier that
proves it has handled every message sent before (FIFO per sender).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import pytest

from hewitt import (
    POISON_PILL,
    Actor,
    ActorInitializationError,
    ActorRef,
    ActorSystem,
    DeadLetter,
    DeliveryError,
    Mailbox,
    Overflow,
    SupervisorStrategy,
)
from hewitt.routing import (
    NO_ROUTEES,
    AddRoutee,
    Broadcast,
    BroadcastRouting,
    ConsistentHashing,
    GetRoutees,
    Group,
    HashKey,
    HashRing,
    InvalidRouterConfig,
    Pool,
    RandomRouting,
    RemoveRoutee,
    Resize,
    RoundRobin,
    RoutingStrategy,
    SmallestMailbox,
    stable_hash,
)
from hewitt.supervision import ChildSpec, Supervisor, WhichChildren
from hewitt.testing import TestProbe


@dataclass(frozen=True, slots=True)
class Keyed:
    key: str


class Echo(Actor[Any]):
    """Replies (its name, the message); logs what it gets to ``log`` if given."""

    def __init__(self, log: ActorRef[Any] | None = None) -> None:
        self.log = log

    def pre_start(self) -> None:
        if self.log is not None:
            self.log.tell(("start", self.context.self.name))

    def post_stop(self) -> None:
        if self.log is not None:
            self.log.tell(("stop", self.context.self.name))

    def receive(self, message: Any) -> None:
        if message == "fail":
            raise RuntimeError("asked to fail")
        if message == "stop":
            self.context.stop()
            return
        if self.context.sender is not None:
            self.context.reply((self.context.self.name, message))
        elif self.log is not None:
            self.log.tell((self.context.self.name, message))


class Counter(Actor[Any]):
    """Counts messages; replies the count to "count"."""

    def __init__(self) -> None:
        self.count = 0

    def receive(self, message: Any) -> None:
        if message == "count":
            self.context.reply(self.count)
        else:
            self.count += 1


class Blocker(Actor[Any]):
    """On "block": tells ``log`` "blocked" and waits for ``release``; logs the rest."""

    def __init__(self, log: ActorRef[Any], release: asyncio.Event) -> None:
        self.log = log
        self.release = release

    async def receive(self, message: Any) -> None:
        if message == "block":
            self.log.tell("blocked")
            await self.release.wait()
        else:
            self.log.tell((self.context.self.name, message))


class Gated(Actor[Any]):
    """Holds "hold" until ``release`` is set (telling ``log`` "held"), so that what
    comes next waits in its mailbox; replies (its name, the message) to an ask
    and logs the rest."""

    def __init__(self, log: ActorRef[Any], release: asyncio.Event) -> None:
        self.log = log
        self.release = release

    async def receive(self, message: Any) -> None:
        if message == "hold":
            self.log.tell("held")
            await self.release.wait()
        elif self.context.sender is not None:
            self.context.reply((self.context.self.name, message))
        else:
            self.log.tell((self.context.self.name, message))


async def routees_of(router: ActorRef[Any]) -> list[ActorRef[Any]]:
    routees: list[ActorRef[Any]] = await router.ask(GetRoutees())
    return routees


def spawn_echoes(system: ActorSystem, n: int, prefix: str = "echo") -> list[ActorRef[Any]]:
    return [system.spawn(Echo, name=f"{prefix}-{i}") for i in range(n)]


# ----------------------------------------------------------------------------
# Strategies


async def test_round_robin_distributes_evenly_and_in_order(actor_system: ActorSystem) -> None:
    probes = [TestProbe(actor_system) for _ in range(3)]
    router = actor_system.spawn(Group, RoundRobin(), [p.ref for p in probes])
    for i in range(9):
        router.tell(i)
    for k, probe in enumerate(probes):
        assert await probe.receive_messages(3) == [k, k + 3, k + 6]


async def test_round_robin_pool_goes_on_after_a_resize(actor_system: ActorSystem) -> None:
    log = TestProbe(actor_system)
    router = actor_system.spawn(Pool, RoundRobin(), Echo, log.ref, size=2)
    assert await router.ask(Resize(3)) == 3
    await log.receive_messages(3)  # three ("start", name)
    for i in range(6):
        router.tell(i)
    received = await log.receive_messages(6)
    by_routee: dict[str, list[int]] = {}
    for name, message in received:
        by_routee.setdefault(name, []).append(message)
    assert by_routee == {"routee-1": [0, 3], "routee-2": [1, 4], "routee-3": [2, 5]}


async def test_random_is_roughly_uniform(actor_system: ActorSystem) -> None:
    counters = [actor_system.spawn(Counter) for _ in range(3)]
    router = actor_system.spawn(Group, RandomRouting(seed=7), counters)
    for _ in range(3000):
        router.tell("hit")
    await routees_of(router)  # barrier: every hit has been forwarded
    counts = [await counter.ask("count") for counter in counters]
    assert sum(counts) == 3000
    assert all(800 <= count <= 1200 for count in counts), counts


async def test_random_with_a_seed_repeats_its_sequence(actor_system: ActorSystem) -> None:
    refs = tuple(spawn_echoes(actor_system, 5))
    first = RandomRouting(seed=42).create_logic(actor_system)
    second = RandomRouting(seed=42).create_logic(actor_system)
    picks = [first.select(i, refs) for i in range(200)]
    assert picks == [second.select(i, refs) for i in range(200)]
    assert set(picks) == set(refs)


async def test_smallest_mailbox_avoids_the_busy_routee(actor_system: ActorSystem) -> None:
    log = TestProbe(actor_system)
    release = asyncio.Event()
    busy, idle_a, idle_b = (
        actor_system.spawn(Blocker, log.ref, release, name=name) for name in ("busy", "a", "b")
    )
    busy.tell("block")
    await log.expect_message("blocked")
    for i in range(5):  # queued behind the blocked handler: mailbox depth 5
        busy.tell(("direct", i))
    router = actor_system.spawn(Group, SmallestMailbox(), [busy, idle_a, idle_b])
    try:
        for i in range(8):  # a and b fill up to 4 each, still below busy's 5
            router.tell(i)
        received = await log.receive_messages(8)
        assert {name for name, _ in received} == {"a", "b"}
        assert sorted(message for _, message in received) == list(range(8))
    finally:
        release.set()
    assert await log.receive_messages(5) == [("busy", ("direct", i)) for i in range(5)]


async def test_smallest_mailbox_ties_go_to_the_first(actor_system: ActorSystem) -> None:
    refs = tuple(spawn_echoes(actor_system, 3))
    logic = SmallestMailbox().create_logic(actor_system)
    assert logic.select("x", refs) is refs[0]


async def test_ask_of_a_broadcast_returns_the_first_reply(actor_system: ActorSystem) -> None:
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    routees = spawn_echoes(actor_system, 3)
    router = actor_system.spawn(Group, RoundRobin(), routees)
    name, message = await router.ask(Broadcast("hi"))
    assert name in {ref.name for ref in routees} and message == "hi"
    # The other routees' replies come after the ask has completed.
    for letter in await letters.receive_messages(2):
        assert letter.reason == "reply to an expired or completed ask"


async def test_broadcast_strategy_reaches_every_routee(actor_system: ActorSystem) -> None:
    probes = [TestProbe(actor_system) for _ in range(3)]
    router = actor_system.spawn(Group, BroadcastRouting(), [p.ref for p in probes])
    router.tell("one")
    router.tell("two")
    for probe in probes:
        assert await probe.receive_messages(2) == ["one", "two"]


@pytest.mark.parametrize(
    "strategy",
    [
        RoundRobin(),
        RandomRouting(seed=1),
        SmallestMailbox(),
        ConsistentHashing(key=str),
        BroadcastRouting(),
    ],
    ids=lambda s: type(s).__name__,
)
async def test_broadcast_message_reaches_every_routee_whatever_the_strategy(
    actor_system: ActorSystem, strategy: RoutingStrategy
) -> None:
    probes = [TestProbe(actor_system) for _ in range(3)]
    router = actor_system.spawn(Group, strategy, [p.ref for p in probes])
    router.tell(Broadcast("hello"))
    for probe in probes:
        await probe.expect_message("hello")


# ----------------------------------------------------------------------------
# Consistent hashing


async def test_consistent_hashing_sends_a_key_to_the_same_routee(
    actor_system: ActorSystem,
) -> None:
    routees = spawn_echoes(actor_system, 5)
    router = actor_system.spawn(Group, ConsistentHashing(key=lambda m: m.key), routees)
    keys = [f"user-{i}" for i in range(200)]
    first = [(await router.ask(Keyed(key)))[0] for key in keys]
    again = [(await router.ask(Keyed(key)))[0] for key in reversed(keys)]
    assert first == list(reversed(again))
    assert len(set(first)) == 5  # every routee owns some keys


async def owners(router: ActorRef[Any], keys: list[str]) -> list[str]:
    return [(await router.ask(Keyed(key)))[0] for key in keys]


async def test_consistent_hashing_adding_a_routee_moves_only_its_share(
    actor_system: ActorSystem,
) -> None:
    routees = spawn_echoes(actor_system, 10)
    router = actor_system.spawn(Group, ConsistentHashing(key=lambda m: m.key), routees)
    keys = [f"key-{i}" for i in range(10_000)]
    before = await owners(router, keys)

    newcomer = actor_system.spawn(Echo, name="echo-new")
    assert await router.ask(AddRoutee(newcomer)) == 11
    after = await owners(router, keys)
    moved = [i for i in range(len(keys)) if before[i] != after[i]]
    assert 0.05 <= len(moved) / len(keys) <= 0.15, len(moved)
    assert all(after[i] == "echo-new" for i in moved)

    assert await router.ask(RemoveRoutee(routees[3])) == 10
    final = await owners(router, keys)
    for i in range(len(keys)):
        if after[i] != "echo-3":
            assert final[i] == after[i]
        else:
            assert final[i] != "echo-3"


async def test_key_function_that_raises_dead_letters_the_message(
    actor_system: ActorSystem,
) -> None:
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    router = actor_system.spawn(
        Group, ConsistentHashing(key=lambda m: m.key), spawn_echoes(actor_system, 2)
    )
    router.tell("no key attribute")
    letter = await letters.expect_message(DeadLetter)
    assert letter.message == "no key attribute"
    assert letter.recipient == router
    assert letter.reason.startswith("routing failed: AttributeError")
    assert (await router.ask(Keyed("k")))[1] == Keyed("k")  # the router goes on


def test_hash_ring_moves_only_the_segments_a_node_takes_or_gives() -> None:
    keys = [f"k{i}" for i in range(10_000)]
    ring = HashRing([f"node-{i}" for i in range(10)], virtual_nodes=100)
    before = [ring.node_for(key) for key in keys]

    ring.add("node-10")
    after = [ring.node_for(key) for key in keys]
    moved = [i for i in range(len(keys)) if before[i] != after[i]]
    assert 0.05 <= len(moved) / len(keys) <= 0.15
    assert all(after[i] == "node-10" for i in moved)

    ring.remove("node-3")
    final = [ring.node_for(key) for key in keys]
    assert all(final[i] == after[i] for i in range(len(keys)) if after[i] != "node-3")
    assert "node-3" not in final
    assert "node-3" not in ring and len(ring) == 10

    ring.remove("node-10")
    ring.add("node-3")
    assert [ring.node_for(key) for key in keys] == before  # placement depends only on ids


def test_hash_ring_is_stable_across_processes_and_orders() -> None:
    assert stable_hash(b"abc") == int.from_bytes(
        hashlib.blake2b(b"abc", digest_size=8).digest(), "big"
    )
    nodes = [f"n{i}" for i in range(7)]
    forward = HashRing(nodes, virtual_nodes=20)
    backward = HashRing(reversed(nodes), virtual_nodes=20)
    keys: list[HashKey] = ["a", b"a", 1, -5, 10**30, "ключ"]
    for key in keys:
        assert forward.node_for(key) == backward.node_for(key)
    assert forward.node_for("42") == forward.node_for(42)  # an int hashes as its digits
    assert forward.nodes == nodes


def test_hash_ring_rejects_bad_input() -> None:
    with pytest.raises(LookupError):
        HashRing[str]().node_for("k")
    with pytest.raises(InvalidRouterConfig, match="virtual_nodes"):
        HashRing(virtual_nodes=0)
    with pytest.raises(TypeError, match="str, bytes or int"):
        HashRing(["a"]).node_for(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRouterConfig, match="virtual_nodes"):
        ConsistentHashing(key=str, virtual_nodes=0)


# ----------------------------------------------------------------------------
# Pools


async def test_pool_routees_are_children_of_the_router(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(Pool, RoundRobin(), Echo, size=3, name="workers")
    routees = await routees_of(router)
    assert [ref.path for ref in routees] == [f"/user/workers/routee-{i}" for i in (1, 2, 3)]
    assert actor_system.lookup("/user/workers/routee-2") == routees[1]


async def test_ask_through_a_router_is_answered_by_a_routee(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(Pool, RoundRobin(), Echo, size=2)
    assert await router.ask("hi") == ("routee-1", "hi")
    assert await router.ask("hi") == ("routee-2", "hi")


async def test_pool_restarts_a_failing_routee_and_keeps_routing_to_it(
    actor_system: ActorSystem,
) -> None:
    log = TestProbe(actor_system)
    router = actor_system.spawn(
        Pool,
        RoundRobin(),
        Echo,
        log.ref,
        size=2,
        supervisor_strategy=SupervisorStrategy.one_for_one(poison_threshold=1),
    )
    assert await log.receive_messages(2) == [("start", "routee-1"), ("start", "routee-2")]
    routees = await routees_of(router)
    router.tell("fail")  # to routee-1, which is restarted by the router
    await log.expect_message(("start", "routee-1"))
    assert await routees_of(router) == routees
    replies = {await router.ask("who") for _ in range(4)}
    assert replies == {("routee-1", "who"), ("routee-2", "who")}


async def test_resize_grows_by_spawning_and_shrinks_by_stopping_the_newest(
    actor_system: ActorSystem,
) -> None:
    log = TestProbe(actor_system)
    router = actor_system.spawn(Pool, RoundRobin(), Echo, log.ref, size=2)
    assert await router.ask(Resize(4)) == 4
    routees = await routees_of(router)
    assert [ref.name for ref in routees] == ["routee-1", "routee-2", "routee-3", "routee-4"]
    await log.receive_messages(4)

    assert await router.ask(Resize(1)) == 1
    assert await routees_of(router) == routees[:1]
    stopped = await log.receive_messages(3)
    assert sorted(stopped) == [("stop", f"routee-{i}") for i in (2, 3, 4)]
    for ref in routees[1:]:
        await ref.wait_terminated(timeout=1)
    assert routees[0].is_alive

    router.tell(Resize(3))  # told: no reply, still applied
    assert [ref.name for ref in await routees_of(router)] == ["routee-1", "routee-5", "routee-6"]


async def test_pool_past_its_restart_intensity_is_restarted_with_size_fresh_routees(
    actor_system: ActorSystem,
) -> None:
    log = TestProbe(actor_system)
    router = actor_system.spawn(
        Pool,
        RoundRobin(),
        Echo,
        log.ref,
        size=2,
        supervisor_strategy=SupervisorStrategy.one_for_one(
            max_restarts=1, within=60, poison_threshold=1
        ),
    )
    assert await router.ask(Resize(3)) == 3
    await log.receive_messages(3)
    before = await routees_of(router)
    router.tell("fail")  # routee-1: restarted (1 restart allowed)
    await log.expect_message(("start", "routee-1"))
    router.tell("fail")  # routee-2: one too many, the pool gives up and fails
    events = await log.receive_messages(5)
    assert sorted(events) == [
        ("start", "routee-1"),  # the restarted pool's routees: size, not the resized 3
        ("start", "routee-2"),
        ("stop", "routee-1"),
        ("stop", "routee-2"),
        ("stop", "routee-3"),
    ]
    after = await routees_of(router)
    assert [ref.name for ref in after] == ["routee-1", "routee-2"]
    assert not set(after) & set(before)  # new incarnations


async def test_pool_removes_a_routee_that_stops(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(Pool, RoundRobin(), Echo, size=2)
    first, second = await routees_of(router)
    first.tell("stop")
    await first.wait_terminated(timeout=1)
    assert await routees_of(router) == [second]
    assert await router.ask("x") == ("routee-2", "x")


async def test_poison_pill_stops_the_pool_and_its_routees(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(Pool, RoundRobin(), Echo, size=3)
    routees = await routees_of(router)
    router.tell(POISON_PILL)
    await router.wait_terminated(timeout=1)
    assert not any(ref.is_alive for ref in routees)


async def test_broadcast_poison_pill_empties_the_pool(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(Pool, RoundRobin(), Echo, size=3)
    routees = await routees_of(router)
    router.tell(Broadcast(POISON_PILL))
    for ref in routees:
        await ref.wait_terminated(timeout=1)
    assert await routees_of(router) == []
    assert router.is_alive


async def test_pool_validates_its_arguments(actor_system: ActorSystem) -> None:
    with pytest.raises(ActorInitializationError, match="size must be an int >= 0"):
        actor_system.spawn(Pool, RoundRobin(), Echo, size=-1)
    with pytest.raises(ActorInitializationError, match="strategy must be a RoutingStrategy"):
        actor_system.spawn(Pool, "round-robin", Echo, size=1)
    with pytest.raises(ActorInitializationError, match="factory must be callable"):
        actor_system.spawn(Pool, RoundRobin(), "Echo", size=1)
    with pytest.raises(ActorInitializationError, match=r"routee_mailbox must be a hewitt\.Mailbox"):
        actor_system.spawn(Pool, RoundRobin(), Echo, size=1, routee_mailbox=5)
    with pytest.raises(InvalidRouterConfig, match="routee_mailbox"):
        # Built by hand (not through spawn, which takes mailbox= for the router).
        Pool(RoundRobin(), Echo, size=1, mailbox=Mailbox.bounded(1))
    with pytest.raises(InvalidRouterConfig, match=r"Resize\.size"):
        Resize(-1)


async def test_pool_whose_routee_factory_raises_stops(actor_system: ActorSystem) -> None:
    def broken() -> Echo:
        raise RuntimeError("no routee today")

    probe = TestProbe(actor_system)
    router = actor_system.spawn(Pool, RoundRobin(), broken, size=2)
    terminated = await probe.expect_terminated(router)
    assert isinstance(terminated.reason, ActorInitializationError)
    assert "no routee today" in str(terminated.reason)


async def test_subscripted_pool_spawns_like_the_class(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(Pool[Any], RoundRobin(), Echo, size=1)
    assert await router.ask("typed") == ("routee-1", "typed")


# ----------------------------------------------------------------------------
# Groups


async def test_group_removes_a_routee_that_stops(actor_system: ActorSystem) -> None:
    routees = spawn_echoes(actor_system, 3)
    router = actor_system.spawn(Group, RoundRobin(), routees)
    routees[1].stop()
    await routees[1].wait_terminated(timeout=1)
    assert await routees_of(router) == [routees[0], routees[2]]


async def test_group_add_and_remove_routee(actor_system: ActorSystem) -> None:
    a, b, c = spawn_echoes(actor_system, 3)
    router = actor_system.spawn(Group, RoundRobin(), [a, a, b])  # duplicates dropped
    assert await routees_of(router) == [a, b]
    assert await router.ask(AddRoutee(c)) == 3
    assert await router.ask(AddRoutee(c)) == 3  # already there
    assert await routees_of(router) == [a, b, c]
    assert await router.ask(RemoveRoutee(a)) == 2
    assert a.is_alive  # a group does not own its routees
    assert {(await router.ask("m"))[0] for _ in range(4)} == {"echo-1", "echo-2"}


async def test_group_added_routee_is_watched(actor_system: ActorSystem) -> None:
    (a,) = spawn_echoes(actor_system, 1)
    router = actor_system.spawn(Group, RoundRobin(), [])
    router.tell(AddRoutee(a))
    a.stop()
    await a.wait_terminated(timeout=1)
    assert await routees_of(router) == []


async def test_group_leaves_out_a_routee_that_has_stopped_already(
    actor_system: ActorSystem,
) -> None:
    gone, alive, late = spawn_echoes(actor_system, 3)
    gone.stop()
    await gone.wait_terminated(timeout=1)
    router = actor_system.spawn(Group, RoundRobin(), [gone, alive])
    assert await routees_of(router) == [alive]
    late.stop()
    await late.wait_terminated(timeout=1)
    assert await router.ask(AddRoutee(late)) == 1
    assert {(await router.ask("m"))[0] for _ in range(3)} == {alive.name}


async def test_restarted_group_goes_back_to_the_routees_it_was_spawned_with(
    actor_system: ActorSystem,
) -> None:
    a, b, c = spawn_echoes(actor_system, 3)
    log = TestProbe(actor_system)
    # One for all: a failing sibling restarts the group too.
    supervisor = actor_system.spawn(
        Supervisor,
        [
            ChildSpec(name="group", factory=Group, args=(RoundRobin(), [a, b])),
            ChildSpec(name="sibling", factory=Echo, args=(log.ref,)),
        ],
        SupervisorStrategy.one_for_all(poison_threshold=1),
    )
    await log.expect_message(("start", "sibling"))
    children = dict(await supervisor.ask(WhichChildren()))
    group, sibling = children["group"], children["sibling"]
    assert await group.ask(RemoveRoutee(a)) == 1
    assert await group.ask(AddRoutee(c)) == 2
    c.stop()
    await c.wait_terminated(timeout=1)

    sibling.tell("fail")
    await log.expect_message(("start", "sibling"))  # restarted, and the group with it
    assert await routees_of(group) == [a, b]
    assert actor_system.statistics().restarts == 2


async def test_stopping_a_group_leaves_its_routees_running(actor_system: ActorSystem) -> None:
    routees = spawn_echoes(actor_system, 2)
    router = actor_system.spawn(Group, RoundRobin(), routees)
    router.tell(POISON_PILL)
    await router.wait_terminated(timeout=1)
    assert all(ref.is_alive for ref in routees)


# ----------------------------------------------------------------------------
# Dead letters


async def test_no_routees_publishes_a_dead_letter(actor_system: ActorSystem) -> None:
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    sender = TestProbe(actor_system)
    for router in (
        actor_system.spawn(Group, RoundRobin(), []),
        actor_system.spawn(Pool, SmallestMailbox(), Echo, size=0),
    ):
        router.tell("lost", sender.ref)
        assert await letters.expect_message(DeadLetter) == DeadLetter(
            "lost", sender.ref, router, NO_ROUTEES
        )
        router.tell(Broadcast("also lost"))
        assert (await letters.expect_message(DeadLetter)).message == Broadcast("also lost")


async def test_ask_through_a_router_with_no_routees_fails_at_once(
    actor_system: ActorSystem,
) -> None:
    router = actor_system.spawn(Pool, RoundRobin(), Echo, size=0)
    # The timeout is far beyond the test's run: only a hang would reach it.
    with pytest.raises(DeliveryError) as failed:
        await router.ask("anyone?", timeout=60)
    assert (failed.value.recipient, failed.value.reason) == (router.path, NO_ROUTEES)
    with pytest.raises(DeliveryError, match=NO_ROUTEES):
        await router.ask(Broadcast("anyone?"), timeout=60)
    assert actor_system.statistics().dead_letters == 2


async def test_unsupported_command_is_a_dead_letter(actor_system: ActorSystem) -> None:
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    group = actor_system.spawn(Group, RoundRobin(), [])
    group.tell(Resize(3))
    letter = await letters.expect_message(DeadLetter)
    assert letter.reason == "Group routers do not handle Resize"
    pool = actor_system.spawn(Pool, RoundRobin(), Echo, size=1)
    pool.tell(AddRoutee(pool))
    letter = await letters.expect_message(DeadLetter)
    assert letter.reason == "Pool routers do not handle AddRoutee"


# ----------------------------------------------------------------------------
# Routees with bounded mailboxes


async def test_pool_routees_get_the_routee_mailbox(actor_system: ActorSystem) -> None:
    router = actor_system.spawn(
        Pool, RoundRobin(), Echo, size=2, routee_mailbox=Mailbox.bounded(5, Overflow.DROP_OLDEST)
    )
    for ref in await routees_of(router):
        stats = actor_system.actor_statistics(ref)
        assert stats is not None and stats.capacity == 5
    own = actor_system.actor_statistics(router)
    assert own is not None and own.capacity is None  # spawn's mailbox= is the router's own


async def hold_and_fill(routee: ActorRef[Any], log: TestProbe, capacity: int) -> None:
    """Make ``routee`` (a Gated) busy and fill its mailbox to ``capacity``."""
    routee.tell("hold")
    await log.expect_message("held")
    for i in range(capacity):
        routee.tell(f"queued-{i}")


def refused(routee: ActorRef[Any], capacity: int) -> str:
    return f"routee {routee.path} refused it: mailbox full (capacity {capacity})"


async def gated_router(
    system: ActorSystem,
    kind: str,
    strategy: RoutingStrategy,
    mailbox: Mailbox,
    log: TestProbe,
    release: asyncio.Event,
) -> tuple[ActorRef[Any], ActorRef[Any]]:
    """A router of one Gated routee with ``mailbox``: a pool's or a group's."""
    if kind == "pool":
        router = system.spawn(
            Pool, strategy, Gated, log.ref, release, size=1, routee_mailbox=mailbox
        )
        (routee,) = await routees_of(router)
    else:
        routee = system.spawn(Gated, log.ref, release, mailbox=mailbox)
        router = system.spawn(Group, strategy, [routee])
    return router, routee


@pytest.mark.parametrize("overflow", [Overflow.FAIL, Overflow.BLOCK], ids=lambda o: o.name)
@pytest.mark.parametrize(
    "strategy", [RoundRobin(), ConsistentHashing(key=str)], ids=lambda s: type(s).__name__
)
@pytest.mark.parametrize("kind", ["pool", "group"])
@pytest.mark.parametrize("told_from", ["loop", "thread"])
async def test_full_routee_dead_letters_the_message_and_the_router_goes_on(
    actor_system: ActorSystem,
    kind: str,
    strategy: RoutingStrategy,
    overflow: Overflow,
    told_from: str,
) -> None:
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    log, sender = TestProbe(actor_system), TestProbe(actor_system)
    release = asyncio.Event()
    router, routee = await gated_router(
        actor_system, kind, strategy, Mailbox.bounded(2, overflow), log, release
    )
    await hold_and_fill(routee, log, 2)

    # From the loop the router is idle: routed on the sender's side. From a
    # thread: through the router's mailbox and its handler.
    if told_from == "loop":
        router.tell("refused", sender.ref)  # never raises to the sender
    else:
        await asyncio.to_thread(router.tell, "refused", sender.ref)

    assert await letters.expect_message(DeadLetter) == DeadLetter(
        "refused", sender.ref, router, refused(routee, 2)
    )
    release.set()
    assert await log.receive_messages(2) == [(routee.name, "queued-0"), (routee.name, "queued-1")]
    assert await router.ask("after") == (routee.name, "after")  # the router goes on
    assert await routees_of(router) == [routee]  # not restarted
    stats = actor_system.statistics()
    assert (stats.failures, stats.restarts, stats.dead_letters) == (0, 0, 1)


@pytest.mark.parametrize("kind", ["pool", "group"])
async def test_ask_through_a_router_to_a_full_routee_fails_at_once(
    actor_system: ActorSystem, kind: str
) -> None:
    log, release = TestProbe(actor_system), asyncio.Event()
    router, routee = await gated_router(
        actor_system, kind, RoundRobin(), Mailbox.bounded(1), log, release
    )
    await hold_and_fill(routee, log, 1)

    # The timeout is far beyond the test's run: only a hang would reach it.
    with pytest.raises(DeliveryError) as failed:
        await router.ask("refused", timeout=60)

    assert failed.value.recipient == router.path
    assert failed.value.reason == refused(routee, 1)
    release.set()
    await log.receive_messages(1)
    assert actor_system.statistics().failures == 0


async def test_smallest_mailbox_routes_around_a_full_routee(actor_system: ActorSystem) -> None:
    log, release = TestProbe(actor_system), asyncio.Event()
    router = actor_system.spawn(
        Pool, SmallestMailbox(), Gated, log.ref, release, size=2, routee_mailbox=Mailbox.bounded(1)
    )
    first, _ = await routees_of(router)
    await hold_and_fill(first, log, 1)
    assert [(await router.ask(i))[0] for i in range(3)] == ["routee-2"] * 3
    release.set()


@pytest.mark.parametrize("how", ["Broadcast", "BroadcastRouting"])
async def test_broadcast_leaves_out_a_full_routee(actor_system: ActorSystem, how: str) -> None:
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    log, release = TestProbe(actor_system), asyncio.Event()
    strategy = BroadcastRouting() if how == "BroadcastRouting" else RoundRobin()
    router = actor_system.spawn(
        Pool, strategy, Gated, log.ref, release, size=2, routee_mailbox=Mailbox.bounded(1)
    )
    first, second = await routees_of(router)

    def broadcast(message: str) -> Any:
        return Broadcast(message) if how == "Broadcast" else message

    await hold_and_fill(first, log, 1)
    router.tell(broadcast("all"))
    assert await log.expect_message(("routee-2", "all"))
    letter = await letters.expect_message(DeadLetter)
    assert (letter.message, letter.reason) == ("all", refused(first, 1))
    # An ask is answered by a routee that took it, though another refused it.
    assert await router.ask(broadcast("who")) == ("routee-2", "who")
    await letters.expect_message(DeadLetter)

    await hold_and_fill(second, log, 1)
    with pytest.raises(DeliveryError, match="mailbox full"):  # no routee took it
        await router.ask(broadcast("nobody"), timeout=60)
    release.set()
    assert actor_system.statistics().failures == 0


async def test_group_routes_to_an_actor_of_another_system(actor_system: ActorSystem) -> None:
    """A routee of another system is told through its own ref (which hands the
    message to that system's loop), never queued on its cell from this thread."""
    other = ActorSystem.start_in_thread("other")
    try:
        routee = other.spawn(Echo)
        router = actor_system.spawn(Group, RoundRobin(), [routee])
        probe = TestProbe(actor_system)
        # Through the router's handler; then the router is idle and the other
        # system's loop is waiting for work.
        assert await router.ask("first", timeout=30) == (routee.name, "first")
        router.tell("hello", probe.ref)  # routed on the sender's side
        assert await probe.expect_message(tuple) == (routee.name, "hello")
    finally:
        await asyncio.to_thread(other.shutdown_blocking)


async def test_sender_side_routing_keeps_each_senders_order(actor_system: ActorSystem) -> None:
    """Messages that must wait in the router's mailbox (it is busy with a command)
    are never overtaken by later ones routed on the sender's side."""
    import threading

    class Recorder(Actor[Any]):
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def receive(self, message: Any) -> None:
            if message == "dump":
                self.context.reply(self.seen)
            else:
                self.seen.append(message)

    recorder = actor_system.spawn(Recorder)
    router = actor_system.spawn(Group, RoundRobin(), [recorder])
    await router.ask(GetRoutees())

    def from_thread() -> None:
        for i in range(2_000):
            router.tell(("thread", i))

    thread = threading.Thread(target=from_thread)
    thread.start()
    for i in range(2_000):
        router.tell(("loop", i))
        if i % 100 == 0:
            router.tell(GetRoutees())  # makes the router busy now and then
            await asyncio.sleep(0)  # interleave with the thread (not a synchronisation)
    await asyncio.to_thread(thread.join)
    await router.ask(GetRoutees())  # after everything sent before it
    seen = await recorder.ask("dump")
    for source in ("thread", "loop"):
        indexes = [i for kind, i in seen if kind == source]
        assert indexes == list(range(2_000)), source
