"""Lifecycle and supervision edges of the kernel (docs/semantics.md §5-§7,
docs/supervision.md): stop order, BaseException from handlers, stop-then-raise,
failing re-spawns, per-top-level-actor intensity, runtime errors kept out of
other actors' stop paths, freeing stopped actors by reference counting."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

import hewitt
from hewitt import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorSystem,
    DeadLetter,
    Mailbox,
    Overflow,
    RestartIntensityExceeded,
    RestartType,
    SupervisorStrategy,
    SystemConfig,
    Terminated,
)
from hewitt.testing import TestProbe


class Recorder(Actor[Any]):
    """A child whose (async) post_stop records when it starts and ends."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log

    def receive(self, message: Any) -> None:
        if message == "boom":
            raise RuntimeError("boom")
        self.context.reply(message)

    async def post_stop(self) -> None:
        name = self.context.self.name
        self.log.append(("begin", name))
        await asyncio.sleep(0)  # the cleanup awaits something (the behaviour under test)
        await asyncio.sleep(0)
        self.log.append(("end", name))


class Parent(Actor[Any]):
    supervisor_strategy = SupervisorStrategy.one_for_one(max_restarts=0, within=10)

    def __init__(self, log: list[tuple[str, str]], children: int = 4) -> None:
        self.log = log
        self.n = children

    def pre_start(self) -> None:
        for i in range(self.n):
            self.context.spawn(Recorder, self.log, name=f"c{i}")

    def receive(self, message: Any) -> None:
        if message == "children":
            self.context.reply(self.context.children())


def one_at_a_time_in_reverse(log: list[tuple[str, str]], n: int = 4) -> list[tuple[str, str]]:
    expected: list[tuple[str, str]] = []
    for i in reversed(range(n)):
        expected += [("begin", f"c{i}"), ("end", f"c{i}")]
    return expected


async def test_stop_stops_children_one_at_a_time_in_reverse_start_order(
    actor_system: ActorSystem,
) -> None:
    log: list[tuple[str, str]] = []
    parent = actor_system.spawn(Parent, log)
    await parent.ask("children")
    parent.stop()
    await parent.wait_terminated(timeout=5)
    assert log == one_at_a_time_in_reverse(log)


async def test_shutdown_stops_children_one_at_a_time_in_reverse_start_order() -> None:
    log: list[tuple[str, str]] = []
    system = ActorSystem("shutdown-order")
    await system.start()
    parent = system.spawn(Parent, log)
    await parent.ask("children")
    await system.shutdown()
    assert log == one_at_a_time_in_reverse(log)


async def test_giving_up_stops_children_one_at_a_time_in_reverse_start_order() -> None:
    # The guardian stops a top-level supervisor that gives up (instead of restarting it).
    guardian = SupervisorStrategy(decider={RestartIntensityExceeded: hewitt.Directive.STOP})
    async with ActorSystem("give-up", config=SystemConfig(guardian_strategy=guardian)) as system:
        await _give_up(system)


async def _give_up(system: ActorSystem) -> None:
    log: list[tuple[str, str]] = []
    probe = TestProbe(system)
    parent = system.spawn(Parent, log)
    children: list[ActorRef[Any]] = await parent.ask("children")
    probe.watch(parent)
    children[1].tell("boom")  # max_restarts=0: the parent gives up at once
    terminated = await probe.expect_message(Terminated, within=5)
    assert isinstance(terminated.reason, RestartIntensityExceeded)
    assert sorted(log) == sorted(one_at_a_time_in_reverse(log))
    # The failed child stops first (it is being restarted), then the others in reverse.
    others = [entry for entry in log if entry[1] != "c1"]
    assert others == [e for e in one_at_a_time_in_reverse(log) if e[1] != "c1"]


class CustomAbort(BaseException):
    """A BaseException that is not KeyboardInterrupt or SystemExit."""


class Fragile(Actor[Any]):
    def __init__(self, starts: list[int]) -> None:
        starts.append(1)

    def receive(self, message: Any) -> hewitt.HandlerResult:
        match message:
            case "custom":
                raise CustomAbort("custom")
            case "cancelled":
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                future.cancel()
                future.result()  # raises CancelledError, a BaseException
            case "async-custom":
                return self._fail_later()
            case _:
                self.context.reply(message)
        return None

    async def _fail_later(self) -> None:
        await asyncio.sleep(0)
        raise CustomAbort("later")


@pytest.mark.parametrize("trigger", ["custom", "cancelled", "async-custom"])
async def test_a_base_exception_from_a_handler_is_a_supervised_failure(
    actor_system: ActorSystem, trigger: str
) -> None:
    starts: list[int] = []
    events = TestProbe(actor_system)
    actor_system.event_stream.subscribe(events.ref, ActorFailed)
    ref = actor_system.spawn(Fragile, starts)
    with pytest.raises(BaseException) as raised:
        await ref.ask(trigger, timeout=5)
    assert isinstance(raised.value, CustomAbort | asyncio.CancelledError)
    failed = await events.expect_message(ActorFailed, within=5)
    assert failed.ref == ref
    # Supervised like any failure: restarted (the message retried until it is
    # a poison message), not wedged: the next ask is answered by a fresh instance.
    assert await ref.ask("still here", timeout=5) == "still here"
    assert len(starts) == 1 + SupervisorStrategy().poison_threshold


class StopThenRaise(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.stop()
        raise ValueError("after stop")


async def test_stop_then_raise_fails_the_pending_ask_at_once(actor_system: ActorSystem) -> None:
    dead = TestProbe(actor_system)
    actor_system.event_stream.subscribe(dead.ref, DeadLetter)
    ref = actor_system.spawn(StopThenRaise)
    with pytest.raises(ValueError, match="after stop"):
        await ref.ask("go", timeout=30)  # at once: not after the 30 s
    letter = await dead.expect_message(DeadLetter, within=5)
    assert letter.message == "go" and "stopping" in letter.reason
    await ref.wait_terminated(timeout=5)


class Flaky(Actor[Any]):
    """Builds once; every later build fails (a permanent child that cannot
    come back)."""

    built = 0

    def __init__(self) -> None:
        type(self).built += 1
        if type(self).built > 1:
            raise OSError("resource gone")

    def receive(self, message: Any) -> None:
        self.context.reply(message)


class Holder(Actor[Any]):
    def pre_start(self) -> None:
        self.context.spawn(Flaky, name="flaky", restart=RestartType.PERMANENT)

    def receive(self, message: Any) -> None:
        self.context.reply(self.context.children())


async def test_a_permanent_child_whose_factory_fails_on_respawn_is_a_supervised_failure(
    actor_system: ActorSystem,
) -> None:
    Flaky.built = 0
    events = TestProbe(actor_system)
    actor_system.event_stream.subscribe(events.ref, ActorFailed)
    holder = actor_system.spawn(Holder)
    [child] = await holder.ask("children")
    child.stop()  # a normal stop: PERMANENT restarts it, and the factory fails
    failed = await events.expect_message(ActorFailed, within=5)
    assert failed.ref.path == "/user/$1/flaky" or failed.ref.path.endswith("/flaky")
    assert isinstance(failed.exception, hewitt.ActorInitializationError)
    # Not silently lost: the failure is reported and the holder is fine.
    assert await holder.ask("children", timeout=5) == []
    assert holder.is_alive


class FailsOnce(Actor[Any]):
    def receive(self, message: Any) -> None:
        if message == "boom":
            raise RuntimeError("blip")
        self.context.reply(message)


async def test_each_top_level_actor_has_its_own_restart_intensity() -> None:
    guardian = SupervisorStrategy(max_restarts=1, within=60, poison_threshold=1)
    config = SystemConfig(guardian_strategy=guardian)
    async with ActorSystem("intensity", config=config) as system:
        refs = [system.spawn(FailsOnce) for _ in range(6)]
        for ref in refs:
            ref.tell("boom")  # one blip each: within each actor's own intensity
        for ref in refs:
            assert await ref.ask("ok", timeout=5) == "ok"
        # A second blip for one actor exceeds its own window, and only it stops.
        refs[0].tell("boom")
        refs[0].tell("boom")
        await refs[0].wait_terminated(timeout=5)
        assert all(ref.is_alive for ref in refs[1:])


class Chatty(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.reply(message)


@pytest.mark.parametrize("overflow", [Overflow.FAIL, Overflow.DROP_NEWEST, Overflow.DROP_OLDEST])
async def test_a_dead_letter_subscriber_with_a_full_mailbox_breaks_nothing(
    actor_system: ActorSystem, overflow: Overflow
) -> None:
    gate = asyncio.Event()

    class Slow(Actor[Any]):
        async def receive(self, message: Any) -> None:
            await gate.wait()

    subscriber = actor_system.spawn(Slow, mailbox=Mailbox.bounded(1, overflow))
    actor_system.event_stream.subscribe(subscriber, DeadLetter)
    victim = actor_system.spawn(Chatty)
    await victim.ask("ready")
    victim.stop()
    await victim.wait_terminated(timeout=5)
    for i in range(50):
        victim.tell(i)  # 50 dead letters into a subscriber that holds one
    assert actor_system.statistics().dead_letters >= 50
    gate.set()
    other = actor_system.spawn(Chatty)
    other.stop()
    await other.wait_terminated(timeout=5)


async def test_a_priority_key_is_never_run_on_the_runtime_own_messages(
    actor_system: ActorSystem,
) -> None:
    def by_amount(message: Any) -> int:
        # Written for the messages the user sends (tuples); raises on anything else.
        return 0 if isinstance(message, tuple) else int(message.amount)

    class Watcher(Actor[Any]):
        def receive(self, message: Any) -> None:
            match message:
                case ("watch", ref):
                    self.context.watch(ref)
                    self.context.timers.start_single_timer("t", "tick", 0.001)
                    self.context.reply("watching")
                case Terminated() | "tick":
                    probe.ref.tell(message)

    probe = TestProbe(actor_system)
    watcher = actor_system.spawn(Watcher, mailbox=Mailbox.by_priority(by_amount))
    target = actor_system.spawn(Chatty)
    assert await watcher.ask(("watch", target), timeout=5) == "watching"
    target.stop()  # the watcher's Terminated goes through the priority mailbox
    received = await probe.receive_messages(2, within=5)
    assert {type(m) for m in received} == {Terminated, str}


async def test_a_thread_inbox_item_that_fails_does_not_strand_the_rest() -> None:
    with ActorSystem.start_in_thread("inbox") as system:
        full = system.spawn(Chatty, mailbox=Mailbox.bounded(1, Overflow.DROP_NEWEST))
        plain = system.spawn(Chatty)
        for i in range(1000):
            full.tell(i)  # most become dead letters on arrival
            plain.tell(i)
        assert plain.ask_blocking("last", timeout=10) == "last"
        assert system.statistics().dead_letters > 0


async def test_stopped_actors_are_freed_without_the_cyclic_gc(actor_system: ActorSystem) -> None:
    from hewitt._runtime._cell import Cell  # counting the kernel's own objects

    class Worker(Actor[Any]):
        def receive(self, message: Any) -> None:
            self.context.reply(message)
            self.context.stop()

    def live_cells() -> int:
        return sum(1 for obj in gc.get_objects() if isinstance(obj, Cell))

    gc.collect()
    before = live_cells()
    gc.disable()
    try:
        refs = [actor_system.spawn(Worker) for _ in range(10_000)]
        for ref in refs[:2000]:
            assert await ref.ask("hi", timeout=5) == "hi"  # some handled a message
        for ref in refs[2000:]:
            ref.stop()
        await actor_system.wait_all_terminated(refs, timeout=60)
        del refs, ref
        assert live_cells() - before < 10
    finally:
        gc.enable()


async def test_actor_statistics_show_the_lifecycle_state(actor_system: ActorSystem) -> None:
    gate = asyncio.Event()

    class Waits(Actor[Any]):
        async def pre_start(self) -> None:
            await gate.wait()

        def receive(self, message: Any) -> None:
            self.context.reply(message)

    ref = actor_system.spawn(Waits)
    stats = actor_system.actor_statistics(ref)
    assert stats is not None and stats.state == "starting"
    gate.set()
    await ref.ask("x", timeout=5)
    stats = actor_system.actor_statistics(ref)
    assert stats is not None and stats.state == "running"


async def test_dead_letters_are_logged_at_warning_with_a_rate_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = SystemConfig(dead_letter_log_limit=3, dead_letter_log_window=3600)
    async with ActorSystem("dl-log", config=config) as system:
        ref = system.spawn(Chatty)
        ref.stop()
        await ref.wait_terminated(timeout=5)
        with caplog.at_level(logging.WARNING, logger="hewitt"):
            for i in range(20):
                ref.tell(i)
        lines = [r for r in caplog.records if "dead letter:" in r.getMessage()]
        assert len(lines) == 3 and all(r.levelno == logging.WARNING for r in lines)
        assert system.statistics().dead_letters == 20
