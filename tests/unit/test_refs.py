"""ActorRef as a value: immutable, hashable, serializable (docs/semantics.md §11)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from hewitt import Actor, ActorAddress, ActorRef, ActorSystem, DeadLetter
from hewitt.testing import TestProbe


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.reply(message)


async def test_refs_are_hashable_and_compare_by_path_and_incarnation(
    actor_system: ActorSystem,
) -> None:
    a = actor_system.spawn(Echo, name="a")
    same = actor_system.lookup("/user/a")
    assert same == a and hash(same) == hash(a)
    assert len({a, same, actor_system.spawn(Echo)}) == 2
    assert copy.deepcopy(a) is a


async def test_refs_are_immutable(actor_system: ActorSystem) -> None:
    a = actor_system.spawn(Echo)
    with pytest.raises(AttributeError):
        a.path = "/user/other"  # type: ignore[misc]


async def test_address_round_trips_through_msgpack(actor_system: ActorSystem) -> None:
    a = actor_system.spawn(Echo, name="addr")
    data = msgspec.msgpack.encode(a.address)
    address = msgspec.msgpack.decode(data, type=ActorAddress)
    assert address == ActorAddress(actor_system.node, "/user/addr", a.uid)
    assert address.system == actor_system.name
    resolved = actor_system.resolve(address)
    assert resolved == a
    assert await resolved.ask("hi") == "hi"


async def test_stale_address_resolves_to_dead_letters(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    actor_system.event_stream.subscribe(probe.ref, DeadLetter)
    a = actor_system.spawn(Echo, name="stale")
    address = a.address
    a.stop()
    await a.wait_terminated(timeout=1)
    actor_system.spawn(Echo, name="stale")  # new incarnation, same path
    stale = actor_system.resolve(address)
    assert not stale.is_alive
    with pytest.raises(Exception, match="no such actor"):
        await stale.ask("x", timeout=1)


async def test_refs_refuse_pickle(actor_system: ActorSystem) -> None:
    a = actor_system.spawn(Echo)
    with pytest.raises(TypeError, match="address"):
        pickle.dumps(a)


@dataclass(frozen=True, slots=True)
class Request:
    reply_to: ActorRef[str]


async def test_refs_travel_inside_messages(actor_system: ActorSystem) -> None:
    class Greeter(Actor[Request]):
        def receive(self, message: Request) -> None:
            message.reply_to.tell("hello")

    probe = TestProbe(actor_system)
    actor_system.spawn(Greeter).tell(Request(probe.ref))
    assert await probe.expect_message("hello")
