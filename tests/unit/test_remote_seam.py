"""The kernel's seams for nodes: two actor systems in one process that reach
each other only through bytes (hewitt.testing.BytesNetwork: kernel codec,
encode -> decode -> deliver by address). docs/semantics.md §13."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

import hewitt
from hewitt import (
    Actor,
    ActorAddress,
    ActorRef,
    ActorSystem,
    CodecError,
    DeadLetter,
    DeliveryError,
    Exit,
    NodeId,
    NodeUnreachable,
    RemoteError,
    Terminated,
)
from hewitt.testing import BytesNetwork, TestProbe


@dataclass(frozen=True, slots=True)
class Ping:
    n: int
    reply_to: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Pong:
    n: int
    by: ActorRef[Any]


class Order(msgspec.Struct, frozen=True):
    item: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Unregistered:
    x: int


class Ponger(Actor[Any]):
    def receive(self, message: Any) -> None:
        match message:
            case Ping(n, reply_to):
                reply_to.tell(Pong(n, self.context.self))
            case Order(item, quantity):
                self.context.reply(f"{quantity} x {item}")
            case int():
                self.context.reply(message * 2)
            case "boom":
                raise ValueError("boom")
            case "stop":
                self.context.stop()


class Trapper(Actor[Any]):
    trap_exits = True

    def __init__(self, probe: ActorRef[Any]) -> None:
        self.probe = probe

    def receive(self, message: Any) -> None:
        match message:
            case ("link", ref):
                self.context.link(ref)
                self.context.reply("linked")
            case Exit():
                self.probe.tell(message)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[BytesNetwork, ActorSystem, ActorSystem]]:
    network = BytesNetwork()
    async with ActorSystem("node-a") as a, ActorSystem("node-b") as b:
        for system in (a, b):
            network.join(system)
            system.codec.register(Ping, Pong, Order)
        yield network, a, b


def remote_of(local: ActorSystem, ref: ActorRef[Any]) -> ActorRef[Any]:
    """The ref another system gets for ``ref``: from its address, as it
    would arrive in a message."""
    return local.resolve(ref.address)


async def test_tell_and_ask_cross_by_bytes(pair: Any) -> None:
    network, a, b = pair
    ponger = remote_of(a, b.spawn(Ponger, name="ponger"))
    assert ponger.node == b.node and ponger.node != a.node
    assert await ponger.ask(21, timeout=5) == 42
    assert await ponger.ask(Order("tea", 2), timeout=5) == "2 x tea"
    assert network.frames >= 4  # two requests, two replies: all as bytes


async def test_refs_inside_messages_are_resolved_on_arrival(pair: Any) -> None:
    _, a, b = pair
    local_ponger = b.spawn(Ponger, name="ponger")
    ponger = remote_of(a, local_ponger)
    probe = TestProbe(a)
    ponger.tell(Ping(7, probe.ref))
    pong = await probe.expect_message(Pong, within=5)
    assert pong.n == 7
    # The ponger's own ref came back through the codec as a ref that works:
    assert pong.by == ponger and pong.by.path == "/user/ponger"
    assert await pong.by.ask(1, timeout=5) == 2


async def test_a_handler_failure_reaches_the_asker_as_a_remote_error(pair: Any) -> None:
    _, a, b = pair
    ponger = remote_of(a, b.spawn(Ponger))
    with pytest.raises(RemoteError) as failed:
        await ponger.ask("boom", timeout=5)
    assert failed.value.type_name == "builtins.ValueError"
    assert "boom" in str(failed.value)


async def test_watch_and_stop_across(pair: Any) -> None:
    _, a, b = pair
    ponger = remote_of(a, b.spawn(Ponger))
    probe = TestProbe(a)
    probe.watch(ponger)
    ponger.stop()
    terminated = await probe.expect_message(Terminated, within=5)
    assert terminated.ref == ponger and terminated.reason is None


async def test_an_abnormal_exit_crosses_a_link(pair: Any) -> None:
    _, a, b = pair
    probe = TestProbe(a)
    trapper = a.spawn(Trapper, probe.ref)
    ponger = remote_of(a, b.spawn(Ponger))
    assert await trapper.ask(("link", ponger), timeout=5) == "linked"
    # The link is established on b before the failure: b's actor learned of
    # it from a control frame, then the failing message follows on the same wire.
    ponger.tell("boom")
    exit_message = await probe.expect_message(Exit, within=5)
    assert exit_message.ref == ponger
    assert isinstance(exit_message.reason, RemoteError)


async def test_an_unregistered_type_is_refused_at_the_sender(pair: Any) -> None:
    _, a, b = pair
    ponger = remote_of(a, b.spawn(Ponger))
    with pytest.raises(CodecError, match=r"Unregistered.*not registered"):
        ponger.tell(Unregistered(1))
    with pytest.raises(CodecError):
        await ponger.ask(Unregistered(1), timeout=5)


async def test_a_type_the_receiver_does_not_know_is_refused_there(pair: Any) -> None:
    _, a, b = pair

    @dataclass(frozen=True, slots=True)
    class OnlyOnA:
        x: int

    a.codec.register(OnlyOnA)
    ponger = remote_of(a, b.spawn(Ponger))
    dead = TestProbe(b)
    b.event_stream.subscribe(dead.ref, DeadLetter)
    with pytest.raises(DeliveryError, match="unknown message type"):
        await ponger.ask(OnlyOnA(1), timeout=5)  # fails fast, not by timeout
    letter = await dead.expect_message(DeadLetter, within=5)
    assert "unknown message type" in letter.reason


async def test_malformed_bytes_are_a_codec_error(pair: Any) -> None:
    _, a, _ = pair
    for garbage in (b"", b"\xc1", b"\x93\x00\x01", msgspec.msgpack.encode([0, "x"])):
        with pytest.raises(CodecError, match="malformed frame from peer-x"):
            a.codec.receive(garbage, "peer-x")


async def test_nothing_is_pickled(pair: Any) -> None:
    _, a, _ = pair
    ref = a.spawn(Ponger)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ref)


async def test_a_stale_incarnation_is_dead_letters_not_the_new_actor(pair: Any) -> None:
    _, a, b = pair
    first = b.spawn(Ponger, name="p")
    address = first.address
    first.stop()
    await first.wait_terminated(timeout=5)
    second = b.spawn(Ponger, name="p")
    stale = remote_of(a, first)
    assert stale.address == address and stale != remote_of(a, second)
    with pytest.raises(DeliveryError, match="no such actor"):
        await stale.ask(1, timeout=5)
    assert await remote_of(a, second).ask(1, timeout=5) == 2


async def test_an_ask_reply_ref_is_an_addressable_temporary_ref(pair: Any) -> None:
    _, a, _ = pair

    class Recorder(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply(self.context.sender.address if self.context.sender else None)

    address = await a.spawn(Recorder).ask("who", timeout=5)
    assert address.path.startswith("/temp/") and address.node == a.node


async def test_watching_a_ref_on_an_unreachable_node_answers_at_once() -> None:
    async with ActorSystem("alone") as system:
        nowhere = NodeId("elsewhere", "10.9.9.9", 25520, 1)
        ghost = system.resolve(ActorAddress(nowhere, "/user/ghost", 5))
        probe = TestProbe(system)
        probe.watch(ghost)
        terminated = await probe.expect_message(Terminated, within=5)
        assert terminated.ref == ghost
        assert isinstance(terminated.reason, NodeUnreachable)
        with pytest.raises(DeliveryError, match="unreachable"):
            await ghost.ask(1, timeout=5)


async def test_a_cut_link_terminates_the_watches_across_it_on_both_sides(pair: Any) -> None:
    network, a, b = pair
    on_b = b.spawn(Ponger)
    on_a = a.spawn(Ponger)
    watcher_a, watcher_b = TestProbe(a), TestProbe(b)
    watcher_a.watch(remote_of(a, on_b))
    watcher_b.watch(remote_of(b, on_a))
    assert await remote_of(a, on_b).ask(1, timeout=5) == 2  # the watch frames went first
    assert await remote_of(b, on_a).ask(1, timeout=5) == 2
    network.disconnect(a, b)
    for probe in (watcher_a, watcher_b):
        terminated = await probe.expect_message(Terminated, within=5)
        assert isinstance(terminated.reason, NodeUnreachable)
    with pytest.raises(DeliveryError, match="unreachable"):
        await remote_of(a, on_b).ask(1, timeout=5)
    # Both actors are still alive at home.
    assert await on_b.ask(1, timeout=5) == 2 and await on_a.ask(1, timeout=5) == 2


async def test_systems_on_different_threads_talk_through_bytes() -> None:
    network = BytesNetwork()
    with ActorSystem.start_in_thread("left") as left, ActorSystem.start_in_thread("right") as right:
        for system in (left, right):
            network.join(system)
        ponger = right.spawn(Ponger)
        assert left.resolve(ponger.address).ask_blocking(5, timeout=5) == 10
        assert hewitt.DEFAULT_TIMEOUT is not None
