"""become / unbecome and stash / unstash_all (docs/semantics.md §8)."""

from __future__ import annotations

from typing import Any

import pytest

from hewitt import Actor, ActorSystem, StashOverflow


class Door(Actor[str]):
    """Closed: 'open' opens; other messages are stashed until opened."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def receive(self, message: str) -> None:  # closed
        if message == "open":
            self.log.append("opened")
            self.context.become(self.opened)
            self.context.unstash_all()
        elif message == "log":
            self.context.reply(list(self.log))
        else:
            self.context.stash()

    def opened(self, message: str) -> None:
        if message == "close":
            self.log.append("closed")
            self.context.unbecome()
        elif message == "log":
            self.context.reply(list(self.log))
        else:
            self.log.append(f"walk {message}")


async def test_stash_until_become_then_unstash_in_order(actor_system: ActorSystem) -> None:
    door = actor_system.spawn(Door)
    for who in ("a", "b", "c"):
        door.tell(who)
    door.tell("open")
    door.tell("d")
    door.tell("close")
    door.tell("e")  # stashed again: closed
    assert await door.ask("log") == ["opened", "walk a", "walk b", "walk c", "walk d", "closed"]
    door.tell("open")
    assert await door.ask("log") == [
        "opened",
        "walk a",
        "walk b",
        "walk c",
        "walk d",
        "closed",
        "opened",
        "walk e",
    ]


async def test_become_stack_with_discard_old_false(actor_system: ActorSystem) -> None:
    class Stack(Actor[str]):
        def receive(self, message: str) -> None:
            if message == "push":
                self.context.become(self.second, discard_old=False)
            else:
                self.context.reply("first")

        def second(self, message: str) -> None:
            if message == "pop":
                self.context.unbecome()
            elif message == "push":
                self.context.become(self.third, discard_old=False)
            else:
                self.context.reply("second")

        def third(self, message: str) -> None:
            if message == "pop":
                self.context.unbecome()
            else:
                self.context.reply("third")

    actor = actor_system.spawn(Stack)
    assert await actor.ask("who") == "first"
    actor.tell("push")
    actor.tell("push")
    assert await actor.ask("who") == "third"
    actor.tell("pop")
    assert await actor.ask("who") == "second"
    actor.tell("pop")
    assert await actor.ask("who") == "first"


@pytest.mark.hewitt_config(stash_capacity=3)
async def test_stash_overflow_is_a_clear_failure(actor_system: ActorSystem) -> None:
    class Hoarder(Actor[Any]):
        def __init__(self) -> None:
            self.errors: list[str] = []

        def receive(self, message: Any) -> None:
            if message == "errors":
                self.context.reply(self.errors)
                return
            try:
                self.context.stash()
            except StashOverflow as exc:
                self.errors.append(str(exc))

    actor = actor_system.spawn(Hoarder, name="hoarder")
    for i in range(4):
        actor.tell(i)
    errors = await actor.ask("errors")
    assert len(errors) == 1
    assert "/user/hoarder" in errors[0] and "3 messages" in errors[0] and "int" in errors[0]
