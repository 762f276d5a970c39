"""Any actor can spawn a top-level actor: ``self.context.system.spawn(...)`` from
inside a handler (issue 11, API). The actor is created under ``/user``, as if
spawned from outside: supervised by the ``/user`` guardian, not a child of the
actor that spawned it, and it outlives that actor. Public API only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from hewitt import Actor, ActorRef, ActorSystem

#: Far beyond what any ask here takes: only a hang would reach it.
TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Where:
    """Asked of a spawned Echo: replies (its path, its parent's path)."""


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        if isinstance(message, Where):
            self.context.reply((self.context.self.path, self.context.parent.path))
        elif message == "fail":
            raise RuntimeError("asked to fail")
        else:
            self.context.reply(message)


class Spawner(Actor[Any]):
    """Spawns a top-level Echo named ``name``, where ``place`` says, and replies
    its ref to "spawned"; counts what else it gets (its state must survive
    what happens to the Echo)."""

    def __init__(self, place: str, name: str) -> None:
        self.place = place
        self.name = name
        self.spawned: ActorRef[Any] | None = None
        self.count = 0

    def pre_start(self) -> None:
        if self.place == "pre_start":
            self.spawned = self.context.system.spawn(Echo, name=self.name)

    def receive(self, message: Any) -> None:
        if message == "spawned":
            if self.spawned is None:
                self.spawned = self.context.system.spawn(Echo, name=self.name)
            self.context.reply(self.spawned)
        elif message == "children":
            self.context.reply(self.context.children())
        else:
            self.count += 1
            self.context.reply(self.count)


class AsyncSpawner(Spawner):
    async def receive(self, message: Any) -> None:  # type: ignore[override]
        await asyncio.sleep(0)  # spawns after an await, from the resumed handler
        Spawner.receive(self, message)


class BlockingSpawner(Spawner):
    blocking = True  # the handler runs on the system's thread pool


SPAWNERS = {
    "handler": Spawner,
    "pre_start": Spawner,
    "async_handler": AsyncSpawner,
    "blocking_handler": BlockingSpawner,
}


@pytest.mark.parametrize(
    "place",
    [
        *SPAWNERS,
        # The ask that reaches the handler is not run by the asker (direct hand-off off).
        pytest.param(
            "handler", id="handler-dispatched", marks=pytest.mark.hewitt_config(direct_asks=0)
        ),
    ],
)
async def test_an_actor_spawns_a_top_level_actor(actor_system: ActorSystem, place: str) -> None:
    spawner = actor_system.spawn(SPAWNERS[place], place, "top", name="spawner")

    top: ActorRef[Any] = await spawner.ask("spawned", timeout=TIMEOUT)

    assert top.path == "/user/top"
    assert actor_system.lookup("/user/top") == top
    assert await top.ask(Where(), timeout=TIMEOUT) == ("/user/top", "/user")
    assert await spawner.ask("children", timeout=TIMEOUT) == []


async def test_a_top_level_actor_outlives_the_actor_that_spawned_it(
    actor_system: ActorSystem,
) -> None:
    spawner = actor_system.spawn(Spawner, "handler", "top")
    top: ActorRef[Any] = await spawner.ask("spawned", timeout=TIMEOUT)

    spawner.stop()
    await spawner.wait_terminated(timeout=TIMEOUT)

    assert top.is_alive
    assert await top.ask("still here", timeout=TIMEOUT) == "still here"


async def test_a_top_level_actor_is_supervised_by_the_user_guardian(
    actor_system: ActorSystem,
) -> None:
    spawner = actor_system.spawn(Spawner, "handler", "top")
    assert await spawner.ask("one", timeout=TIMEOUT) == 1
    top: ActorRef[Any] = await spawner.ask("spawned", timeout=TIMEOUT)

    top.tell("fail")

    # Restarted by the guardian (same ref, answers again; the failed message is
    # handed to each new instance up to the poison threshold, so there may be
    # several restarts). The spawner is not its supervisor: it was not
    # restarted, its state goes on.
    assert await top.ask("back", timeout=TIMEOUT) == "back"
    stats = actor_system.statistics()
    assert stats.failures == stats.restarts > 0
    assert await spawner.ask("two", timeout=TIMEOUT) == 2


def test_an_actor_spawns_a_top_level_actor_in_a_threaded_system() -> None:
    with ActorSystem.start_in_thread("top-level-spawn") as system:
        spawner = system.spawn(Spawner, "handler", "top")
        top: ActorRef[Any] = spawner.ask_blocking("spawned", timeout=TIMEOUT)
        assert top.ask_blocking(Where(), timeout=TIMEOUT) == ("/user/top", "/user")
