"""Refs to actors on another node behave like local ones: tell, ask,
forward, watch, link, routers, pipe_to, refs inside messages, remote spawn.
Two nodes in this process, joined only by a loopback TCP connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorRef,
    CodecError,
    Exit,
    NodeDown,
    Terminated,
)
from hewitt.node import LinkState, Node, RemoteSpawnError
from hewitt.routing import Group, RoundRobin
from hewitt.testing import TestProbe
from tests.integration.nodes.actors import Count, Counted, Echo, Forwarded, Greeter, Ping, Sequence


async def test_tell_and_ask_a_remote_actor(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo, name="echo")
    assert echo.node == b.node_id
    assert echo.path == "/user/echo"
    assert await echo.ask(Ping(7)) == Ping(7)
    assert await echo.ask("text") == "text"
    probe = TestProbe(a.system)
    echo.tell(Ping(8), probe.ref)
    assert await probe.expect_message(Ping) == Ping(8)
    assert a.links[b.node_id] is LinkState.UP


async def test_a_ref_inside_a_message_is_resolved_on_arrival(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)
    echo.tell(Forwarded("hello", probe.ref))
    assert await probe.expect_message(str) == "echo:hello"


async def test_the_sender_of_a_remote_tell_is_the_sending_actor(
    two_nodes: tuple[Node, Node],
) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)

    class Asker(Actor[Any]):
        def receive(self, message: Any) -> None:
            if message == "go":
                echo.tell(Ping(1))  # implicit sender: this actor
            else:
                probe.ref.tell((message, self.context.sender == echo))

    asker = a.system.spawn(Asker)
    asker.tell("go")
    assert await probe.expect_message(tuple) == (Ping(1), True)


async def test_forward_keeps_the_original_sender(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)

    class Forwarder(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.forward(echo, message)

    forwarder = a.system.spawn(Forwarder)
    assert await forwarder.ask(Ping(3)) == Ping(3)


async def test_watch_a_remote_actor(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)
    probe.watch(echo)
    assert await echo.ask("sync") == "sync"  # the watch went first on the control lane
    echo.tell("stop")
    terminated = await probe.expect_terminated(echo)
    assert terminated.ref == echo
    assert not echo.is_alive or a.links[b.node_id] is LinkState.UP


async def test_watch_a_remote_actor_that_is_already_gone(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)
    probe.watch(echo)
    echo.tell("stop")
    await probe.expect_terminated(echo)
    late = TestProbe(a.system)
    late.watch(echo)
    await late.expect_terminated(echo)


async def test_link_with_a_remote_actor(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)

    class Linked(Actor[Any]):
        trap_exits = True

        def pre_start(self) -> None:
            self.context.link(echo)

        def receive(self, message: Any) -> None:
            if isinstance(message, Exit):
                probe.ref.tell(("exit", message.ref == echo, type(message.reason).__name__))
            else:
                self.context.reply("linked")

    linked = a.system.spawn(Linked)
    assert await linked.ask("ready?") == "linked"
    assert await echo.ask("sync") == "sync"
    echo.tell("crash")
    kind, same, reason = await probe.expect_message(tuple)
    assert (kind, same) == ("exit", True)
    assert reason in {"RemoteError", "RuntimeError"}


async def test_a_remote_ask_that_fails_there_fails_here(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes

    class Refuser(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply_failure(ValueError(f"no {message}"))

    b.system.spawn(Refuser, name="refuser")
    refuser = await a.lookup(b.node_id, "/user/refuser")
    assert refuser is not None
    with pytest.raises(Exception, match="no thanks"):
        await refuser.ask("thanks")


async def test_a_group_router_over_remote_routees(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    one = await a.spawn(b.node_id, Sequence, name="one")
    two = await a.spawn(b.node_id, Sequence, name="two")
    router = a.system.spawn(Group, RoundRobin(), [one, two])
    probe = TestProbe(a.system)
    for seq in range(4):
        router.tell(Count(seq, 100, probe.ref))
    assert await one.ask("count") + await two.ask("count") > 0
    counts = sorted([await one.ask("count"), await two.ask("count")])
    assert counts[0] >= 1 and counts[1] >= 1


async def test_pipe_to_a_remote_ref(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)

    async def later() -> Forwarded:
        return Forwarded("piped", probe.ref)

    a.system.pipe_to(later(), echo)
    assert await probe.expect_message(str) == "echo:piped"


async def test_messages_keep_their_order_between_two_actors(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    sequence = await a.spawn(b.node_id, Sequence)
    probe = TestProbe(a.system)
    total = 20_000
    for seq in range(total):
        sequence.tell(Count(seq, total, probe.ref))
    counted = await probe.expect_message(Counted, within=60)
    assert counted == Counted(total, True)


async def test_remote_spawn_with_arguments(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    greeter = await a.spawn(b.node_id, Greeter, "hello", ping=Ping(5), name="greeter")
    assert await greeter.ask("you") == "hello you 5"
    by_path = await a.spawn(b.node_id, "tests.integration.nodes.actors:Greeter", "hi", Ping(1))
    assert await by_path.ask("there") == "hi there 1"


async def test_remote_spawn_errors_reach_the_caller(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    with pytest.raises(RemoteSpawnError, match="has no 'Missing'"):
        await a.spawn(b.node_id, "tests.integration.nodes.actors:Missing")
    with pytest.raises(RemoteSpawnError, match="cannot be imported"):
        await a.spawn(b.node_id, "no_such_module_here:Actor")
    with pytest.raises(RemoteSpawnError, match="not an Actor subclass"):
        await a.spawn(b.node_id, "tests.integration.nodes.actors:NOT_AN_ACTOR")
    with pytest.raises(RemoteSpawnError, match="refuses to start"):
        await a.spawn(b.node_id, "tests.integration.nodes.actors:Failing")
    await a.spawn(b.node_id, Echo, name="taken")
    with pytest.raises(RemoteSpawnError, match="taken"):
        await a.spawn(b.node_id, Echo, name="taken")

    @dataclass
    class OnlyHere:
        x: int

    with pytest.raises(CodecError, match="not registered"):
        await a.spawn(b.node_id, Greeter, "hi", OnlyHere(1))
    a.system.codec.register(OnlyHere, name="only-here")
    with pytest.raises(RemoteSpawnError, match="do not decode"):
        await a.spawn(b.node_id, Greeter, "hi", OnlyHere(1))


async def test_an_unregistered_message_is_refused_at_the_sender(
    two_nodes: tuple[Node, Node],
) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)

    @dataclass
    class Unregistered:
        x: int

    with pytest.raises(CodecError, match="Unregistered"):
        echo.tell(Unregistered(1))
    with pytest.raises(CodecError, match="Unregistered"):
        await echo.ask(Unregistered(1))
    assert await echo.ask("still fine") == "still fine"


async def test_lookup_by_path(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    b.system.spawn(Echo, name="known")
    found = await a.lookup(b.node_id, "/user/known")
    assert found is not None and await found.ask(1) == 1
    assert await a.lookup(b.node_id, "/user/unknown") is None


async def test_a_stopped_node_fails_asks_and_answers_watches(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)
    probe = TestProbe(a.system)
    probe.watch(echo)
    assert await echo.ask("sync") == "sync"
    await b.stop()
    terminated = await probe.expect_terminated(echo, within=30)
    assert isinstance(terminated.reason, NodeDown) or terminated.reason is None
    with pytest.raises(NodeDown):
        await echo.ask("anyone?")
    assert a.links[b.node_id] is LinkState.DOWN
    late = TestProbe(a.system)
    late.watch(echo)
    late_terminated = await late.expect_terminated(echo)
    assert isinstance(late_terminated.reason, NodeDown)


async def test_asks_and_tells_from_another_thread(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo)

    def from_thread() -> Any:
        echo.tell(Ping(1))
        return echo.ask_blocking(Ping(2), timeout=30)

    assert await asyncio.to_thread(from_thread) == Ping(2)


async def test_refs_compare_by_node_and_incarnation(two_nodes: tuple[Node, Node]) -> None:
    a, b = two_nodes
    echo = await a.spawn(b.node_id, Echo, name="same")
    again = await a.lookup(b.node_id, "/user/same")
    assert again == echo and hash(again) == hash(echo)
    local = b.system.lookup("/user/same")
    assert local is not None and local.address == echo.address
    assert isinstance(echo, ActorRef)
    assert Terminated  # the public type the watches above receive
