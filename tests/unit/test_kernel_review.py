"""Regressions from a hostile review of the kernel: supervision and lifecycle
corners (docs/semantics.md §5-§7, docs/supervision.md). Each test failed
before its fix."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import hewitt
from hewitt import (
    Actor,
    ActorSystem,
    ActorSystemNotRunning,
    Directive,
    Mailbox,
    Overflow,
    RestartType,
    SupervisorStrategy,
    SystemConfig,
    Terminated,
)
from hewitt.testing import TestProbe

HANG = 30.0


class Idle(Actor[Any]):
    def receive(self, message: Any) -> None:
        if message == "boom":
            raise RuntimeError("boom")
        self.context.reply(message)


class Spawner(Actor[Any]):
    def receive(self, message: Any) -> None:
        match message:
            case ("spawn", mailbox):
                ref = self.context.spawn(Idle, restart=RestartType.PERMANENT, mailbox=mailbox)
                self.context.reply(ref)
            case "children":
                self.context.reply(self.context.children())


async def test_an_unnamed_permanent_child_is_replaced_with_its_mailbox(
    actor_system: ActorSystem,
) -> None:
    parent = actor_system.spawn(Spawner)
    child = await parent.ask(("spawn", Mailbox.bounded(5, Overflow.FAIL)))
    assert child.name.startswith("$")
    child.stop()  # a normal stop of a PERMANENT child: a new incarnation takes its place
    await child.wait_terminated(timeout=HANG)
    [replacement] = await parent.ask("children")
    assert replacement.path == child.path and replacement != child
    stats = actor_system.actor_statistics(replacement)
    assert stats is not None and stats.capacity == 5  # its mailbox, as spawned
    assert await replacement.ask("hi", timeout=HANG) == "hi"


async def test_a_top_level_permanent_actor_that_keeps_stopping_hits_its_intensity() -> None:
    starts: list[int] = []

    class Quitter(Actor[Any]):
        def pre_start(self) -> None:
            starts.append(1)
            self.context.stop()

        def receive(self, message: Any) -> None:
            pass

    guardian = SupervisorStrategy(max_restarts=10, within=60)
    config = SystemConfig(guardian_strategy=guardian, direct_asks=0)
    async with ActorSystem("quitter", config=config) as system:
        echo = system.spawn(Idle)
        system.spawn(Quitter, restart=RestartType.PERMANENT, name="quitter")
        for _ in range(10_000):  # each ask is a loop turn: the loop stays responsive
            if system.lookup("/user/quitter") is None:
                break
            assert await echo.ask("tick", timeout=HANG) == "tick"
        assert system.lookup("/user/quitter") is None
        assert len(starts) == 11  # the first incarnation and max_restarts more


async def test_a_stop_during_a_restart_is_not_undone_by_the_rebuild(
    actor_system: ActorSystem,
) -> None:
    gate = asyncio.Event()
    log: list[str] = []
    probe = TestProbe(actor_system)

    class Slow(Actor[Any]):
        def pre_start(self) -> None:
            log.append("pre_start")

        def pre_restart(self, exc: BaseException, message: Any) -> None:
            probe.ref.tell(("pre_restart", self.context.self.name))

        async def receive(self, message: Any) -> None:
            if message == "wait":
                probe.ref.tell("waiting")
                await gate.wait()
            elif message == "boom":
                raise RuntimeError("boom")
            elif message == "ping":
                self.context.reply("pong")
            else:
                log.append(str(message))

    class Parent(Actor[Any]):
        supervisor_strategy = SupervisorStrategy.one_for_all(poison_threshold=1)

        def pre_start(self) -> None:
            self.slow = self.context.spawn(Slow, name="slow")
            self.other = self.context.spawn(Slow, name="other")

        def receive(self, message: Any) -> None:
            self.context.reply((self.slow, self.other))

    parent = actor_system.spawn(Parent)
    slow, other = await parent.ask("refs")
    slow.tell("wait")
    await probe.expect_message("waiting")  # slow's handler is suspended
    other.tell("boom")  # one-for-all: slow restarts too, once its handler is done
    restarting = await probe.receive_messages(2, within=HANG)
    assert sorted(restarting) == [("pre_restart", "other"), ("pre_restart", "slow")]
    slow.stop()
    slow.tell("after stop")
    gate.set()
    await slow.wait_terminated(timeout=HANG)
    assert await other.ask("ping", timeout=HANG) == "pong"  # other no longer waits for slow
    assert "after stop" not in log
    assert log.count("pre_start") == 3  # both started, other rebuilt; slow was not


async def test_spawning_while_restarting_is_refused_not_wedging(actor_system: ActorSystem) -> None:
    gate = asyncio.Event()
    outcome: list[BaseException | str] = []
    probe = TestProbe(actor_system)

    class SpawnsLater(Actor[Any]):
        def pre_restart(self, exc: BaseException, message: Any) -> None:
            probe.ref.tell(("pre_restart", self.context.self.name))

        async def receive(self, message: Any) -> None:
            if message == "spawn later":
                await gate.wait()
                try:
                    self.context.spawn(Idle)
                    outcome.append("spawned")
                except ActorSystemNotRunning as refused:
                    outcome.append(refused)
            elif message == "boom":
                raise RuntimeError("boom")
            else:
                self.context.reply(message)

    class Parent(Actor[Any]):
        supervisor_strategy = SupervisorStrategy.one_for_all()

        def pre_start(self) -> None:
            self.a = self.context.spawn(SpawnsLater, name="a")
            self.b = self.context.spawn(SpawnsLater, name="b")

        def receive(self, message: Any) -> None:
            self.context.reply((self.a, self.b))

    a, b = await actor_system.spawn(Parent).ask("refs")
    a.tell("spawn later")
    assert await b.ask("b is here", timeout=HANG) == "b is here"  # a's handler has begun
    b.tell("boom")  # a restarts while its handler waits
    assert len(await probe.receive_messages(2, within=HANG)) == 2  # the restart has begun
    gate.set()
    assert await a.ask("alive", timeout=HANG) == "alive"  # rebuilt, not wedged
    assert len(outcome) == 1 and isinstance(outcome[0], ActorSystemNotRunning)
    assert "restarting" in str(outcome[0])


class Escalating(Actor[Any]):
    supervisor_strategy = SupervisorStrategy(decider=lambda exc: Directive.ESCALATE)

    def pre_start(self) -> None:
        self.children = [self.context.spawn(Idle, name=f"k{i}") for i in range(2)]

    def receive(self, message: Any) -> None:
        self.context.reply(self.children)


async def test_two_failures_escalated_in_one_batch_are_one_decision() -> None:
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    config = SystemConfig(
        guardian_policy="stop_system",
        guardian_strategy=SupervisorStrategy(decider=lambda exc: Directive.ESCALATE),
    )
    async with ActorSystem("twice", config=config) as system:
        sup = system.spawn(Escalating)
        for child in await sup.ask("children"):
            child.tell("boom")  # both fail in the same dispatcher run
        await system.wait_terminated()
    assert not loop_errors  # no IllegalTransition escaped into the loop


async def test_resume_after_a_two_level_escalation_resumes_the_whole_subtree(
    actor_system: ActorSystem,
) -> None:
    class Middle(Actor[Any]):
        supervisor_strategy = SupervisorStrategy(decider=lambda exc: Directive.ESCALATE)

        def pre_start(self) -> None:
            self.leaf = self.context.spawn(Escalating, name="leafsup")

        def receive(self, message: Any) -> None:
            self.context.reply(self.leaf)

    class Top(Actor[Any]):
        supervisor_strategy = SupervisorStrategy(decider=lambda exc: Directive.RESUME)

        def pre_start(self) -> None:
            self.middle = self.context.spawn(Middle, name="middle")

        def receive(self, message: Any) -> None:
            self.context.reply(self.middle)

    middle = await actor_system.spawn(Top).ask("middle")
    leafsup = await middle.ask("leafsup")
    leaves = await leafsup.ask("children")
    leaves[0].tell("boom")  # leaf -> leafsup escalates -> middle escalates -> top resumes
    assert await leaves[0].ask("after", timeout=5) == "after"  # resumed, not left suspended
    assert await leafsup.ask("again", timeout=HANG) == leaves
    for ref in (middle, leafsup, *leaves):
        stats = actor_system.actor_statistics(ref)
        assert stats is not None and stats.state == "running"


class Abort(BaseException):
    pass


@pytest.mark.parametrize("hook", ["post_stop", "pre_restart"])
async def test_a_base_exception_from_a_hook_never_wedges_the_actor(
    actor_system: ActorSystem, hook: str
) -> None:
    class Hooked(Actor[Any]):
        def receive(self, message: Any) -> None:
            if message == "boom":
                raise RuntimeError("restart")
            self.context.reply(message)

        def post_stop(self) -> None:
            if hook == "post_stop":
                raise Abort

        def pre_restart(self, exc: BaseException, message: Any) -> None:
            if hook == "pre_restart":
                raise Abort

    ref = actor_system.spawn(Hooked, name="hooked")
    if hook == "pre_restart":
        ref.tell("boom")
        assert await ref.ask("after", timeout=HANG) == "after"
    ref.stop()
    await ref.wait_terminated(timeout=HANG)
    assert actor_system.lookup("/user/hooked") is None  # the name is free


async def test_a_message_stashed_then_failed_comes_back_once(actor_system: ActorSystem) -> None:
    seen: list[str] = []

    class StashThenFail(Actor[Any]):
        def __init__(self) -> None:
            self.failed = bool(seen)

        def receive(self, message: Any) -> None:
            seen.append(message)
            if message == "job" and not self.failed:
                self.context.stash()
                raise RuntimeError("after stash")
            if message == "job":
                self.context.reply("done")

    ref = actor_system.spawn(StashThenFail)
    ref.tell("job")
    assert await ref.ask("job", timeout=HANG) == "done"
    assert seen == ["job", "job", "job"]  # the stashed one once, then the ask


class Escalate(Exception):
    pass


async def test_the_guardian_giving_up_stops_only_the_actor_that_escalated() -> None:
    guardian = SupervisorStrategy(
        decider={Escalate: Directive.ESCALATE},
        backoff=hewitt.Backoff(min_delay=60, max_delay=60),
    )
    async with ActorSystem("one", config=SystemConfig(guardian_strategy=guardian)) as system:

        class Fails(Actor[Any]):
            def receive(self, message: Any) -> None:
                if message == "restart":
                    raise RuntimeError("restart, after a 60 s backoff")
                if message == "escalate":
                    raise Escalate("escalate")
                self.context.reply(message)

        waiting = system.spawn(Fails, name="waiting")
        escalating = system.spawn(Fails, name="escalating")
        probe = TestProbe(system)
        probe.watch(escalating)
        waiting.tell("restart")  # restarting: waits out its backoff
        escalating.tell("escalate")  # the guardian gives up on this one
        await probe.expect_message(Terminated, within=HANG)
        stats = system.actor_statistics(waiting)
        assert stats is not None and stats.state == "restarting"


async def test_a_guardian_cannot_be_stopped_through_its_ref(actor_system: ActorSystem) -> None:
    user = actor_system.lookup("/user")
    assert user is not None
    echo = actor_system.spawn(Idle)
    user.stop()
    assert await echo.ask("still", timeout=HANG) == "still"
    assert actor_system.spawn(Idle).is_alive


@pytest.mark.parametrize(
    "mailbox",
    [Mailbox.bounded(8, Overflow.DROP_NEWEST), Mailbox.by_priority(lambda m: 0)],
    ids=["bounded", "priority"],
)
async def test_actors_with_bounded_or_priority_mailboxes_are_freed_without_gc(
    actor_system: ActorSystem, mailbox: Mailbox
) -> None:
    from hewitt._runtime._cell import Cell  # counting the kernel's own objects

    gc.collect()
    before = sum(1 for o in gc.get_objects() if isinstance(o, Cell))
    gc.disable()
    try:
        refs = [actor_system.spawn(Idle, mailbox=mailbox) for _ in range(500)]
        for ref in refs:
            ref.stop()
        await actor_system.wait_all_terminated(refs, timeout=HANG)
        del refs, ref
        assert sum(1 for o in gc.get_objects() if isinstance(o, Cell)) - before < 5
    finally:
        gc.enable()


async def test_actors_starting_in_a_burst_let_the_loop_run() -> None:
    ticks = 0
    seen: set[int] = set()

    class Starts(Actor[Any]):
        def pre_start(self) -> None:
            seen.add(ticks)

        def receive(self, message: Any) -> None:
            self.context.reply(message)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)  # one loop turn per tick (the behaviour under test)

    async with ActorSystem("burst", config=SystemConfig(batch_messages=100)) as system:
        refs = [system.spawn(Starts) for _ in range(1000)]
        task = asyncio.ensure_future(ticker())
        try:
            await refs[-1].ask("after", timeout=HANG)  # answered after every start turn
        finally:
            task.cancel()
        assert len(refs) == 1000
        # 1,000 start turns, at most 100 per loop callback: the ticker ran between them.
        assert len(seen) >= 10


async def test_one_for_all_rebuilds_in_start_order_once_every_sibling_has_stopped(
    actor_system: ActorSystem,
) -> None:
    events: list[str] = []
    probe = TestProbe(actor_system)

    class Grand(Actor[Any]):
        def receive(self, message: Any) -> None:
            pass

        async def post_stop(self) -> None:
            await asyncio.sleep(0)  # a cleanup that awaits (the behaviour under test)
            events.append("a's child stopped")

    class First(Actor[Any]):
        def pre_start(self) -> None:
            events.append("a started")
            self.context.spawn(Grand)

        def receive(self, message: Any) -> None:
            raise ValueError("a fails")

    class Second(Actor[Any]):
        def pre_start(self) -> None:
            events.append("b started")
            probe.ref.tell("b started")

        def receive(self, message: Any) -> None:
            pass

    class Sup(Actor[Any]):
        supervisor_strategy = SupervisorStrategy.one_for_all(poison_threshold=1)

        def pre_start(self) -> None:
            self.a = self.context.spawn(First, name="a")
            self.b = self.context.spawn(Second, name="b")

        def receive(self, message: Any) -> None:
            self.a.tell(message)

    sup = actor_system.spawn(Sup)
    await probe.expect_message("b started", within=HANG)  # both have started
    sup.tell("fail")
    await probe.expect_message("b started", within=HANG)  # rebuilt
    assert events == ["a started", "b started", "a's child stopped", "a started", "b started"]
