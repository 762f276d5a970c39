"""spawn, names, lookup, hooks, stop, PoisonPill, watch (docs/semantics.md §5-§7)."""

from __future__ import annotations

from typing import Any

import pytest

from hewitt import (
    POISON_PILL,
    Actor,
    ActorInitializationError,
    ActorNameTaken,
    ActorRef,
    ActorSystem,
    DeadLetter,
    InvalidActorName,
    Terminated,
)
from hewitt.testing import TestProbe

from .messages import Get


class Child(Actor[Any]):
    def __init__(self, log: ActorRef[Any]) -> None:
        self.log = log

    def receive(self, message: Any) -> None:
        self.context.reply(message)

    def post_stop(self) -> None:
        self.log.tell(("stopped", self.context.self.name))


class Parent(Actor[Any]):
    def __init__(self, log: ActorRef[Any], children: int) -> None:
        self.log = log
        self.n = children

    def pre_start(self) -> None:
        for i in range(self.n):
            self.context.spawn(Child, self.log, name=f"child-{i}")
        self.log.tell(("started", self.context.self.name))

    def receive(self, message: Any) -> None:
        if message == "children":
            self.context.reply([ref.name for ref in self.context.children()])

    def post_stop(self) -> None:
        self.log.tell(("stopped", self.context.self.name))


async def test_spawn_names_paths_and_lookup(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    parent = actor_system.spawn(Parent, probe.ref, 3, name="bank")
    await probe.expect_message(("started", "bank"))
    assert parent.path == "/user/bank"
    assert await parent.ask("children") == ["child-0", "child-1", "child-2"]
    child = actor_system.lookup("/user/bank/child-1")
    assert child is not None and child.path == "/user/bank/child-1"
    assert await child.ask("ping") == "ping"
    assert actor_system.lookup("/user/bank/nope") is None
    assert actor_system.lookup("/user/nope/child-1") is None


async def test_generated_names_are_unique(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    refs = [actor_system.spawn(Child, probe.ref) for _ in range(1000)]
    assert len({ref.path for ref in refs}) == 1000
    assert all(ref.name.startswith("$") for ref in refs)


async def test_duplicate_name_is_refused_until_the_first_stops(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    first = actor_system.spawn(Child, probe.ref, name="unique")
    with pytest.raises(ActorNameTaken, match=r"/user.*'unique'"):
        actor_system.spawn(Child, probe.ref, name="unique")
    first.stop()
    await first.wait_terminated(timeout=1)
    second = actor_system.spawn(Child, probe.ref, name="unique")
    assert second != first and second.path == first.path and second.uid != first.uid


@pytest.mark.parametrize("name", ["", "a/b", "$reserved", "sp ace"])
async def test_invalid_names_are_refused(actor_system: ActorSystem, name: str) -> None:
    with pytest.raises(InvalidActorName, match="/user"):
        actor_system.spawn(Child, None, name=name)


async def test_factory_error_names_actor(actor_system: ActorSystem) -> None:
    class Broken(Actor[Any]):
        def __init__(self) -> None:
            raise RuntimeError("no database")

        def receive(self, message: Any) -> None:
            pass

    with pytest.raises(ActorInitializationError, match=r"/user/broken.*no database"):
        actor_system.spawn(Broken, name="broken")
    assert actor_system.lookup("/user/broken") is None


async def test_children_stop_before_parent_post_stop(actor_system: ActorSystem) -> None:
    """semantics.md §6: children stop first, then the parent's post_stop, then Terminated."""
    probe = TestProbe(actor_system)
    parent = actor_system.spawn(Parent, probe.ref, 2, name="p")
    await probe.expect_message(("started", "p"))
    probe.watch(parent)
    parent.stop()
    events = await probe.receive_messages(4)
    assert sorted(events[:2]) == [("stopped", "child-0"), ("stopped", "child-1")]
    assert events[2] == ("stopped", "p")
    assert events[3] == Terminated(parent)
    assert actor_system.lookup("/user/p/child-0") is None


async def test_stop_lets_current_message_finish_and_dead_letters_the_rest(
    actor_system: ActorSystem,
) -> None:
    """semantics.md §5: stop() in a handler: this message finishes, queued ones are dead letters."""

    class StopsOnFirst(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        def receive(self, message: Any) -> None:
            self.context.stop()
            self.log.tell(("handled", message))  # after stop(): still runs

    probe = TestProbe(actor_system)
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    actor = actor_system.spawn(StopsOnFirst, probe.ref)
    for i in range(5):
        actor.tell(i)
    assert await probe.expect_message(("handled", 0))
    dead = [letter.message for letter in await letters.receive_messages(4)]
    assert dead == [1, 2, 3, 4]
    await probe.expect_no_message(within=0.05)
    await actor.wait_terminated(timeout=1)


async def test_poison_pill_processes_messages_before_it(actor_system: ActorSystem) -> None:
    class Log(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        def receive(self, message: Any) -> None:
            self.log.tell(message)

    probe = TestProbe(actor_system)
    actor = actor_system.spawn(Log, probe.ref)
    actor.tell(1)
    actor.tell(2)
    actor.tell(POISON_PILL)
    actor.tell(3)
    assert await probe.receive_messages(2) == [1, 2]
    await actor.wait_terminated(timeout=1)
    await probe.expect_no_message(within=0.05)


async def test_watch_delivers_one_terminated(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    child = actor_system.spawn(Child, probe.ref)
    probe.watch(child)
    probe.watch(child)  # watching twice still gives one Terminated
    child.stop()
    await probe.expect_message(tuple)  # the child's post_stop log comes first
    assert await probe.expect_message(Terminated) == Terminated(child)
    await probe.expect_no_message(within=0.05)


async def test_watch_of_dead_actor_terminates_at_once(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    child = actor_system.spawn(Child, probe.ref)
    child.stop()
    await child.wait_terminated(timeout=1)
    await probe.expect_message(tuple)
    assert await probe.expect_terminated(child) == Terminated(child)


async def test_unwatch_prevents_terminated(actor_system: ActorSystem) -> None:
    class Watcher(Actor[Any]):
        def __init__(self, target: ActorRef[Any], log: ActorRef[Any]) -> None:
            self.target = target
            self.log = log

        def receive(self, message: Any) -> None:
            if message == "watch":
                self.context.watch(self.target)
            elif message == "unwatch":
                self.context.unwatch(self.target)
            self.log.tell(message)

    probe = TestProbe(actor_system)
    silent = TestProbe(actor_system)
    target = actor_system.spawn(Child, silent.ref)
    watcher = actor_system.spawn(Watcher, target, probe.ref)
    watcher.tell("watch")
    watcher.tell("unwatch")
    await probe.receive_messages(2)
    target.stop()
    await target.wait_terminated(timeout=1)
    watcher.tell("done")
    assert await probe.expect_message("done")


async def test_actor_watching_child_gets_terminated(actor_system: ActorSystem) -> None:
    class Supervisor(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        def pre_start(self) -> None:
            child = self.context.spawn(Child, self.log, name="worker")
            self.context.watch(child)

        def receive(self, message: Any) -> None:
            if message == "kill":
                child = self.context.child("worker")
                assert child is not None
                self.context.stop(child)
            elif isinstance(message, Terminated):
                self.log.tell(("terminated", message.ref.name))

    probe = TestProbe(actor_system)
    supervisor = actor_system.spawn(Supervisor, probe.ref)
    supervisor.tell("kill")
    assert await probe.expect_message(("stopped", "worker"))
    assert await probe.expect_message(("terminated", "worker"))


async def test_async_hooks(actor_system: ActorSystem) -> None:
    class AsyncHooks(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log
            self.ready = False

        async def pre_start(self) -> None:
            self.ready = True

        def receive(self, message: Any) -> None:
            self.context.reply(self.ready)

        async def post_stop(self) -> None:
            self.log.tell("post_stop")

    probe = TestProbe(actor_system)
    actor = actor_system.spawn(AsyncHooks, probe.ref)
    assert await actor.ask(Get()) is True
    actor.stop()
    assert await probe.expect_message("post_stop")
    await actor.wait_terminated(timeout=1)


async def test_pre_start_failure_stops_the_actor(actor_system: ActorSystem) -> None:
    class FailsToStart(Actor[Any]):
        def pre_start(self) -> None:
            raise RuntimeError("cannot start")

        def receive(self, message: Any) -> None:
            pass

    actor = actor_system.spawn(FailsToStart)
    await actor.wait_terminated(timeout=1)
    assert not actor.is_alive


async def test_failure_restarts_with_fresh_state_and_keeps_mailbox(
    actor_system: ActorSystem,
) -> None:
    class Fragile(Actor[Any]):
        def __init__(self) -> None:
            self.count = 0

        def receive(self, message: Any) -> None:
            if message == "boom":
                raise RuntimeError("boom")
            if message == "get":
                self.context.reply(self.count)
            else:
                self.count += 1

    actor = actor_system.spawn(Fragile)
    actor.tell("inc")
    actor.tell("inc")
    actor.tell("boom")  # retried twice on fresh instances, then a poison dead letter
    actor.tell("inc")  # queued behind the failure: kept
    assert await actor.ask("get") == 1
    assert actor_system.statistics().restarts == 3


async def test_system_shutdown_stops_everything(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    for i in range(3):
        actor_system.spawn(Parent, probe.ref, 5, name=f"p{i}")
    await probe.receive_messages(3)
    assert actor_system.statistics().live_actors == 3 + 15 + 1  # + the probe
    await actor_system.shutdown()
    assert actor_system.statistics().live_actors == 0
    assert not actor_system.is_running
