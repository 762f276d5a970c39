"""Supervision, one test per rule of docs/supervision.md.

The oracle is Erlang/OTP's supervisor (strategies, restart types, intensity per
supervisor) with Akka's directives; each test writes the expected sequence of
lifecycle events down. Children log events to a probe as (event, name, ...).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorInitializationError,
    ActorRef,
    ActorSystem,
    Backoff,
    ChildSpec,
    DeadLetter,
    Directive,
    Exit,
    InvalidChildSpec,
    InvalidSupervisorStrategy,
    LinkedActorFailed,
    RestartIntensityExceeded,
    RestartType,
    Supervisor,
    SupervisorStrategy,
    SystemConfig,
    Terminated,
)
from hewitt.supervision import ChildAlreadyStarted, StartChild, TerminateChild, WhichChildren
from hewitt.testing import TestProbe


class Worker(Actor[Any]):
    """Counts messages; 'fail:<ExcName>' raises; 'get' replies the count; 'stop' stops."""

    def __init__(self, log: ActorRef[Any]) -> None:
        self.log = log
        self.count = 0

    def pre_start(self) -> None:
        self.log.tell(("start", self.context.self.name))

    def pre_restart(self, exc: BaseException, message: Any) -> None:
        self.log.tell(("pre_restart", self.context.self.name, type(exc).__name__, message))

    def post_restart(self, exc: BaseException) -> None:
        self.log.tell(("post_restart", self.context.self.name, type(exc).__name__))

    def post_stop(self) -> None:
        self.log.tell(("stop", self.context.self.name))

    def receive(self, message: Any) -> None:
        if isinstance(message, str) and message.startswith("fail:"):
            raise {
                "ValueError": ValueError,
                "KeyError": KeyError,
                "RuntimeError": RuntimeError,
                "LookupError": LookupError,
            }[message[5:]](message)
        if message == "get":
            self.context.reply(self.count)
        elif message == "stop":
            self.context.stop()
        else:
            self.count += 1


def specs(
    log: ActorRef[Any], *names: str, restart: RestartType = RestartType.PERMANENT
) -> list[ChildSpec]:
    return [ChildSpec(name=n, factory=Worker, args=(log,), restart=restart) for n in names]


async def started(
    system: ActorSystem,
    probe: TestProbe,
    strategy: SupervisorStrategy,
    *names: str,
    restart: RestartType = RestartType.PERMANENT,
) -> ActorRef[Any]:
    sup = system.spawn(Supervisor, specs(probe.ref, *names, restart=restart), strategy, name="sup")
    assert await probe.receive_messages(len(names)) == [("start", n) for n in names]
    return sup


async def child(system: ActorSystem, name: str) -> ActorRef[Any]:
    ref = system.lookup(f"/user/sup/{name}")
    assert ref is not None
    return ref


@pytest.fixture(autouse=True)
def quiet_failure_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hewitt")


# --- strategies -------------------------------------------------------------


async def test_one_for_one_restarts_only_the_failed_child(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(), "a", "b")
    a, b = await child(actor_system, "a"), await child(actor_system, "b")
    b.tell("x")
    a.tell("x")
    a.tell("fail:RuntimeError")
    assert await probe.receive_messages(2) == [
        ("pre_restart", "a", "RuntimeError", "fail:RuntimeError"),
        ("post_restart", "a", "RuntimeError"),
    ]
    # The failed message was retried on the new instance (poison threshold 3):
    # it fails twice more, then goes to dead letters.
    await probe.receive_messages(4)
    assert await a.ask("get") == 0  # fresh state
    assert await b.ask("get") == 1  # untouched
    assert a == await child(actor_system, "a")  # same ref: a restart keeps the ref


async def test_one_for_all_restarts_every_child_in_otp_order(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    strategy = SupervisorStrategy.one_for_all(poison_threshold=1)
    await started(actor_system, probe, strategy, "a", "b", "c")
    (await child(actor_system, "b")).tell("fail:RuntimeError")
    # OTP: the others are terminated in reverse start order, then all restart in
    # start order. The failed one gets its message in pre_restart.
    assert await probe.receive_messages(6) == [
        ("pre_restart", "c", "RuntimeError", None),
        ("pre_restart", "b", "RuntimeError", "fail:RuntimeError"),
        ("pre_restart", "a", "RuntimeError", None),
        ("post_restart", "a", "RuntimeError"),
        ("post_restart", "b", "RuntimeError"),
        ("post_restart", "c", "RuntimeError"),
    ]
    assert actor_system.statistics().restarts == 3


async def test_rest_for_one_restarts_the_failed_and_later_children(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    strategy = SupervisorStrategy.rest_for_one(poison_threshold=1)
    await started(actor_system, probe, strategy, "a", "b", "c")
    a = await child(actor_system, "a")
    a.tell("x")
    (await child(actor_system, "b")).tell("fail:RuntimeError")
    assert await probe.receive_messages(4) == [
        ("pre_restart", "c", "RuntimeError", None),
        ("pre_restart", "b", "RuntimeError", "fail:RuntimeError"),
        ("post_restart", "b", "RuntimeError"),
        ("post_restart", "c", "RuntimeError"),
    ]
    assert await a.ask("get") == 1  # started before b: untouched


# --- directives by exception type -------------------------------------------

DECIDER = {
    ValueError: Directive.RESUME,
    KeyError: Directive.STOP,
    RuntimeError: Directive.RESTART,
    LookupError: Directive.ESCALATE,
}


async def test_resume_keeps_state_and_dead_letters_the_message(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(decider=DECIDER), "a")
    a = await child(actor_system, "a")
    a.tell("x")
    a.tell("fail:ValueError")
    a.tell("x")
    assert await a.ask("get") == 2
    letter = await letters.expect_message(DeadLetter)
    assert letter.message == "fail:ValueError" and "resume" in letter.reason
    await probe.expect_no_message(within=0.05)  # no restart events


async def test_stop_directive_stops_with_the_exception_as_reason(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(decider=DECIDER), "a")
    a = await child(actor_system, "a")
    probe.watch(a)
    a.tell("fail:KeyError")
    assert await probe.expect_message(("stop", "a"))
    terminated = await probe.expect_message(Terminated)
    assert isinstance(terminated.reason, KeyError)
    assert actor_system.lookup("/user/sup/a") is None  # a stop directive is final


async def test_most_specific_exception_class_decides(actor_system: ActorSystem) -> None:
    strategy = SupervisorStrategy(decider={LookupError: Directive.STOP, KeyError: Directive.RESUME})
    assert strategy.decide(KeyError("k")) is Directive.RESUME
    assert strategy.decide(IndexError("i")) is Directive.STOP
    assert strategy.decide(OSError("o")) is Directive.RESTART


async def test_escalate_fails_the_supervisor_which_restarts_its_children(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(decider=DECIDER), "a", "b")
    sup = actor_system.lookup("/user/sup")
    (await child(actor_system, "a")).tell("fail:LookupError")
    # The guardian restarts the supervisor: OTP stops its children, and the
    # new supervisor instance starts them again from its specs.
    events = await probe.receive_messages(4)
    assert sorted(events[:2]) == [("stop", "a"), ("stop", "b")]
    assert events[2:] == [("start", "a"), ("start", "b")]
    assert actor_system.lookup("/user/sup") == sup


# --- restart types ----------------------------------------------------------


async def test_permanent_child_is_restarted_after_a_normal_stop(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(), "a")
    old = await child(actor_system, "a")
    old.tell("stop")
    assert await probe.receive_messages(2) == [("stop", "a"), ("start", "a")]
    new = await child(actor_system, "a")
    assert new.path == old.path and new.uid != old.uid  # a new incarnation
    assert not old.is_alive


async def test_transient_child_stays_stopped_after_a_normal_stop(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    await started(
        actor_system, probe, SupervisorStrategy.one_for_one(), "a", restart=RestartType.TRANSIENT
    )
    a = await child(actor_system, "a")
    a.tell("stop")
    assert await probe.expect_message(("stop", "a"))
    await a.wait_terminated(timeout=1)
    await probe.expect_no_message(within=0.05)
    assert actor_system.lookup("/user/sup/a") is None


async def test_transient_child_is_restarted_after_a_failure(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    await started(
        actor_system,
        probe,
        SupervisorStrategy.one_for_one(poison_threshold=1),
        "a",
        restart=RestartType.TRANSIENT,
    )
    (await child(actor_system, "a")).tell("fail:RuntimeError")
    assert (await probe.receive_messages(2))[1] == ("post_restart", "a", "RuntimeError")


async def test_temporary_child_is_never_restarted(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    await started(
        actor_system, probe, SupervisorStrategy.one_for_one(), "a", restart=RestartType.TEMPORARY
    )
    a = await child(actor_system, "a")
    probe.watch(a)
    a.tell("fail:RuntimeError")
    assert await probe.expect_message(("stop", "a"))
    assert isinstance((await probe.expect_message(Terminated)).reason, RuntimeError)
    assert actor_system.statistics().restarts == 0


async def test_supervisor_stop_of_a_permanent_child_is_final(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    sup = await started(actor_system, probe, SupervisorStrategy.one_for_one(), "a", "b")
    assert await sup.ask(TerminateChild("a")) is True
    assert await probe.expect_message(("stop", "a"))
    await probe.expect_no_message(within=0.05)
    assert [name for name, _ in await sup.ask(WhichChildren())] == ["b"]
    ref = await sup.ask(StartChild(ChildSpec(name="c", factory=Worker, args=(probe.ref,))))
    assert await probe.expect_message(("start", "c"))
    assert ref.path == "/user/sup/c"


async def test_a_duplicate_start_child_is_idempotent_or_refused_and_restarts_nothing(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    sup = await started(actor_system, probe, SupervisorStrategy.one_for_one(), "a")
    spec = ChildSpec(name="c", factory=Worker, args=(probe.ref,))
    first = await sup.ask(StartChild(spec))
    assert await probe.expect_message(("start", "c"))
    assert await sup.ask(StartChild(spec)) == first  # the same spec: the same child
    other = ChildSpec(name="c", factory=Worker, args=(probe.ref,), restart=RestartType.TEMPORARY)
    with pytest.raises(ChildAlreadyStarted, match="'c'"):
        await sup.ask(StartChild(other))
    transient_a = ChildSpec(
        name="a", factory=Worker, args=(probe.ref,), restart=RestartType.TRANSIENT
    )
    with pytest.raises(ChildAlreadyStarted):
        await sup.ask(StartChild(transient_a))  # a static child, another spec
    await probe.expect_no_message(within=0.05)  # nothing restarted, nothing started again
    assert actor_system.statistics().restarts == 0
    assert [name for name, _ in await sup.ask(WhichChildren())] == ["a", "c"]


async def test_a_restarted_supervisor_keeps_its_dynamic_children(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)

    class Top(Actor[Any]):
        """Supervises the Supervisor: one-for-all, so a failing sibling restarts it."""

        supervisor_strategy = SupervisorStrategy.one_for_all()

        def pre_start(self) -> None:
            specs = [ChildSpec(name="a", factory=Worker, args=(probe.ref,))]
            self.context.spawn(Supervisor, specs, name="sup")
            self.context.spawn(Worker, probe.ref, name="sibling")

        def receive(self, message: Any) -> None:
            pass

    actor_system.spawn(Top, name="top")
    await probe.receive_messages(2)  # a and sibling started
    sup = actor_system.lookup("/user/top/sup")
    assert sup is not None
    await sup.ask(StartChild(ChildSpec(name="dyn", factory=Worker, args=(probe.ref,))))
    assert await probe.expect_message(("start", "dyn"))
    sibling = actor_system.lookup("/user/top/sibling")
    assert sibling is not None
    sibling.tell("fail:RuntimeError")  # one-for-all: the supervisor restarts too
    seen: set[str] = set()
    for _ in range(12):  # the restart's stops, pre_/post_restart and starts, in some order
        message = await probe.expect_message(tuple, within=5)
        if message[0] == "start":
            seen.add(message[1])
        if seen >= {"a", "dyn"}:
            break
    assert seen >= {"a", "dyn"}
    sup = actor_system.lookup("/user/top/sup")
    assert sup is not None
    assert [name for name, _ in await sup.ask(WhichChildren())] == ["a", "dyn"]
    # Terminated for good, a dynamic child is not brought back by the next restart.
    assert await sup.ask(TerminateChild("dyn")) is True
    sibling.tell("fail:RuntimeError")
    for _ in range(12):
        if await probe.expect_message(tuple, within=5) == ("start", "a"):
            break
    sup = actor_system.lookup("/user/top/sup")
    assert sup is not None
    names = [name for name, _ in await sup.ask(WhichChildren())]
    assert names == ["a"]


# --- restart intensity and escalation to the guardian -------------------------


@pytest.mark.hewitt_config(guardian_strategy=SupervisorStrategy(max_restarts=1, within=60))
async def test_crash_loop_trips_intensity_and_escalates(actor_system: ActorSystem) -> None:
    """A permanently broken child: 2 restarts allowed within 60 s; the 3rd failure
    makes the supervisor give up (its children stopped, it fails with
    RestartIntensityExceeded); the /user guardian restarts it once (its own
    intensity is 1), the loop repeats, and then the guardian gives up with its
    policy "stop_subtree": the supervisor's subtree is stopped."""

    class Broken(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        def pre_start(self) -> None:
            self.log.tell("child start")
            self.context.self.tell("go")

        def receive(self, message: Any) -> None:
            raise RuntimeError("broken")

    probe = TestProbe(actor_system)
    strategy = SupervisorStrategy.one_for_one(max_restarts=2, within=60, poison_threshold=100)
    sup = actor_system.spawn(
        Supervisor,
        [ChildSpec(name="broken", factory=Broken, args=(probe.ref,))],
        strategy,
        name="sup",
    )
    probe.watch(sup)
    # Round 1: start + 2 restarts, then the supervisor gives up. Guardian
    # restarts the supervisor (1 allowed): round 2 is the same. Then it stops.
    for _ in range(2):
        assert await probe.receive_messages(3) == ["child start"] * 3
    terminated = await probe.expect_message(Terminated, within=5)
    assert isinstance(terminated.reason, RestartIntensityExceeded)
    assert terminated.reason.supervisor == "/user"  # the guardian gave up on /user/sup
    await probe.expect_no_message(within=0.05)
    assert actor_system.statistics().restarts == 2 + 1 + 2


@pytest.mark.hewitt_config(
    guardian_strategy=SupervisorStrategy(max_restarts=0, within=60), guardian_policy="stop_system"
)
async def test_guardian_policy_stop_system(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    worker = actor_system.spawn(Worker, probe.ref, name="w")
    await probe.expect_message(("start", "w"))
    worker.tell("fail:RuntimeError")
    await asyncio.wait_for(actor_system.wait_terminated(), 5)
    assert not actor_system.is_running
    assert isinstance(actor_system.termination_reason, RestartIntensityExceeded)


# --- hooks, mailbox, children --------------------------------------------------


@pytest.mark.hewitt_config(guardian_strategy=SupervisorStrategy(poison_threshold=1))
async def test_restart_keeps_mailbox_and_stops_children_of_the_restarted_actor(
    actor_system: ActorSystem,
) -> None:
    """The parent's own supervisor (here the /user guardian) decides its restart."""

    class Parent(Actor[Any]):
        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log
            self.seen: list[Any] = []

        def pre_start(self) -> None:
            self.context.spawn(Worker, self.log, name="kid")

        def receive(self, message: Any) -> None:
            if message == "boom":
                raise RuntimeError("boom")
            if message == "seen":
                self.context.reply(self.seen)
            else:
                self.seen.append(message)

    probe = TestProbe(actor_system)
    parent = actor_system.spawn(Parent, probe.ref, name="parent")
    assert await probe.expect_message(("start", "kid"))
    parent.tell("boom")
    parent.tell("kept-1")
    parent.tell("kept-2")
    assert await probe.receive_messages(2) == [("stop", "kid"), ("start", "kid")]
    assert await parent.ask("seen") == ["kept-1", "kept-2"]


async def test_failure_is_logged_once_with_path_message_type_and_traceback(
    actor_system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hewitt")
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(poison_threshold=1), "a")
    (await child(actor_system, "a")).tell("fail:RuntimeError")
    await probe.receive_messages(2)
    failures = [r for r in caplog.records if "failed handling" in r.getMessage()]
    assert len(failures) == 1
    record = failures[0]
    assert "/user/sup/a" in record.getMessage() and "str" in record.getMessage()
    assert "fail:RuntimeError" not in record.getMessage()  # the type, never the payload
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


async def test_init_failure_stops_the_actor(actor_system: ActorSystem) -> None:
    class BadInit(Actor[Any]):
        def pre_start(self) -> None:
            raise OSError("no disk")

        def receive(self, message: Any) -> None:
            pass

    probe = TestProbe(actor_system)
    ref = actor_system.spawn(BadInit)
    terminated = await probe.expect_terminated(ref)
    assert isinstance(terminated.reason, ActorInitializationError)


# --- poison messages -------------------------------------------------------------


async def test_poison_message_goes_to_dead_letters_after_k_failures(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    letters = TestProbe(actor_system)
    actor_system.event_stream.subscribe(letters.ref, DeadLetter)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(poison_threshold=3), "a")
    a = await child(actor_system, "a")
    a.tell("fail:RuntimeError")
    a.tell("x")
    letter = await letters.expect_message(DeadLetter)
    assert letter.message == "fail:RuntimeError"
    assert "poison" in letter.reason and "3 times" in letter.reason
    assert await a.ask("get") == 1  # went on with the next message
    assert actor_system.statistics().failures == 3
    assert actor_system.statistics().restarts == 3


async def test_ask_of_a_poison_message_fails_with_the_exception(
    actor_system: ActorSystem,
) -> None:
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(), "a")
    with pytest.raises(KeyError):
        await (await child(actor_system, "a")).ask("fail:KeyError")


async def test_retried_message_that_succeeds_is_processed_once(
    actor_system: ActorSystem,
) -> None:
    class Flaky(Actor[Any]):
        attempts = 0

        def receive(self, message: Any) -> None:
            type(self).attempts += 1  # survives restarts: counts attempts
            if type(self).attempts < 3:
                raise RuntimeError("flaky")
            self.context.reply(("done", message))

    flaky = actor_system.spawn(Flaky)
    assert await flaky.ask("job") == ("done", "job")
    assert actor_system.statistics().restarts == 2


# --- backoff ------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped() -> None:
    import random

    backoff = Backoff(min_delay=0.1, max_delay=1.0, factor=2.0, jitter=0.0)
    rng = random.Random(1)
    assert [backoff.delay(n, rng) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    jittered = Backoff(min_delay=1.0, max_delay=10.0, jitter=0.2)
    delays = [jittered.delay(0, rng) for _ in range(200)]
    assert min(delays) >= 0.8 and max(delays) <= 1.2 and len(set(delays)) > 100


async def test_restart_waits_for_the_backoff_delay(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    strategy = SupervisorStrategy.one_for_one(
        poison_threshold=1, backoff=Backoff(min_delay=0.05, max_delay=1.0, jitter=0.0)
    )
    await started(actor_system, probe, strategy, "a")
    loop = asyncio.get_running_loop()
    a = await child(actor_system, "a")
    times = []
    for _ in range(2):
        failed_at = loop.time()
        a.tell("fail:RuntimeError")
        await probe.expect_message(tuple)  # pre_restart
        await probe.expect_message(("post_restart", "a", "RuntimeError"))
        times.append(loop.time() - failed_at)
    assert times[0] >= 0.05 and times[1] >= 0.1  # 0.05, then 0.05 * 2


# --- links ----------------------------------------------------------------------------


class Linker(Actor[Any]):
    def __init__(self, log: ActorRef[Any], trap: bool = False) -> None:
        self.log = log
        self.trapping = trap

    def pre_restart(self, exc: BaseException, message: Any) -> None:
        self.log.tell(("restarted", self.context.self.name, type(exc).__name__))

    def receive(self, message: Any) -> None:
        if isinstance(message, ActorRef):
            self.context.link(message)
            self.context.reply("linked")
        elif isinstance(message, Exit):
            self.log.tell(("exit", message.ref.name, type(message.reason).__name__))
        elif message == "crash":
            raise KeyError("crash")
        elif message == "stop":
            self.context.stop()


class Trapper(Linker):
    trap_exits = True


async def test_abnormal_exit_propagates_through_links(actor_system: ActorSystem) -> None:
    class Top(Actor[Any]):
        supervisor_strategy = SupervisorStrategy.one_for_one(
            decider={KeyError: Directive.STOP}, poison_threshold=1
        )

        def __init__(self, log: ActorRef[Any]) -> None:
            self.log = log

        def receive(self, message: Any) -> None:
            self.context.reply(self.context.spawn(Linker, self.log, name=message))

    probe = TestProbe(actor_system)
    top = actor_system.spawn(Top, probe.ref)
    a = await top.ask("a")
    b = await top.ask("b")
    assert await a.ask(b) == "linked"
    b.tell("crash")  # b is stopped (KeyError -> STOP), a fails with LinkedActorFailed
    assert await probe.expect_message(("restarted", "a", "LinkedActorFailed"))


async def test_trap_exits_turns_link_failures_into_messages(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    strategy = SupervisorStrategy.one_for_one(decider={KeyError: Directive.STOP})

    class Top(Actor[Any]):
        supervisor_strategy = strategy

        def receive(self, message: Any) -> None:
            cls = Trapper if message == "trapper" else Linker
            self.context.reply(self.context.spawn(cls, probe.ref, name=message))

    top = actor_system.spawn(Top)
    trapper = await top.ask("trapper")
    other = await top.ask("other")
    assert await trapper.ask(other) == "linked"
    other.tell("crash")
    assert await probe.expect_message(("exit", "other", "KeyError"))
    await probe.expect_no_message(within=0.05)  # the trapper did not fail


async def test_normal_exit_does_not_propagate(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    a = actor_system.spawn(Linker, probe.ref, name="a")
    b = actor_system.spawn(Linker, probe.ref, name="b")
    assert await a.ask(b) == "linked"
    b.tell("stop")
    await b.wait_terminated(timeout=1)
    await probe.expect_no_message(within=0.05)
    assert a.is_alive


def test_linked_actor_failed_names_the_actor() -> None:
    error = LinkedActorFailed("/user/b", KeyError("x"))
    assert "/user/b" in str(error) and "KeyError" in str(error)


# --- validation -------------------------------------------------------------------------


def test_child_specs_are_validated() -> None:
    with pytest.raises(InvalidChildSpec, match="name"):
        ChildSpec(name="a/b", factory=Worker)
    with pytest.raises(InvalidChildSpec, match=r"'w'.*args"):
        ChildSpec(name="w", factory=Worker, args=[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidChildSpec, match="reserved"):
        ChildSpec(name="w", factory=Worker, kwargs={"name": "x"})
    with pytest.raises(InvalidChildSpec, match="restart"):
        ChildSpec(name="w", factory=Worker, restart="permanent")  # type: ignore[arg-type]
    with pytest.raises(InvalidChildSpec, match="duplicate"):
        Supervisor([ChildSpec(name="w", factory=Worker)] * 2)


def test_strategies_are_validated() -> None:
    with pytest.raises(InvalidSupervisorStrategy, match="max_restarts"):
        SupervisorStrategy(max_restarts=-1)
    with pytest.raises(InvalidSupervisorStrategy, match="within"):
        SupervisorStrategy(within=0)
    with pytest.raises(InvalidSupervisorStrategy, match="decider"):
        SupervisorStrategy(decider={ValueError: "resume"})  # type: ignore[dict-item]
    with pytest.raises(InvalidSupervisorStrategy, match="jitter"):
        Backoff(jitter=1.5)
    with pytest.raises(ValueError, match="guardian_policy"):
        SystemConfig(guardian_policy="explode")  # type: ignore[arg-type]


# --- regressions --------------------------------------------------------------------


async def test_async_handler_failure_then_restart_keeps_one_message_at_a_time(
    actor_system: ActorSystem,
) -> None:
    """After a restart, the retried message and the next ones still run one at a
    time (a restarted cell is queued once, and never runs while suspended)."""

    class SlowFlaky(Actor[Any]):
        failed = False
        active = 0
        overlap = False

        async def receive(self, message: Any) -> None:
            cls = type(self)
            cls.active += 1
            cls.overlap = cls.overlap or cls.active > 1
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            cls.active -= 1
            if not cls.failed:
                cls.failed = True
                raise RuntimeError("once")
            self.context.reply(message)

    actor = actor_system.spawn(SlowFlaky)
    replies = await asyncio.gather(*(actor.ask(i, timeout=2) for i in range(5)))
    assert replies == list(range(5))  # the failed first ask was retried and answered
    assert not SlowFlaky.overlap


async def test_watching_a_crashed_actor_reports_its_reason(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(decider=DECIDER), "a")
    a = await child(actor_system, "a")
    a.tell("fail:KeyError")
    await a.wait_terminated(timeout=1)
    assert await probe.expect_message(("stop", "a"))
    assert isinstance((await probe.expect_terminated(a)).reason, KeyError)


@pytest.mark.hewitt_config(lifecycle_events=True)
async def test_lifecycle_events_are_published(actor_system: ActorSystem) -> None:
    from hewitt import ActorRestarted, ActorStarted, ActorStopped

    events = TestProbe(actor_system)
    for kind in (ActorStarted, ActorRestarted, ActorStopped):
        actor_system.event_stream.subscribe(events.ref, kind)
    probe = TestProbe(actor_system)
    await started(actor_system, probe, SupervisorStrategy.one_for_one(poison_threshold=1), "a")
    a = await child(actor_system, "a")
    a.tell("fail:RuntimeError")
    await probe.receive_messages(2)
    a.tell("stop")
    await a.wait_terminated(timeout=1)
    expected = {
        ("ActorStarted", "/user/sup/a"),
        ("ActorRestarted", "/user/sup/a"),
        ("ActorStopped", "/user/sup/a"),
    }
    seen: set[tuple[str, str]] = set()
    while not expected <= seen:
        event = await events.receive_message(within=2)
        seen.add((type(event).__name__, event.ref.path))


async def test_post_stop_runs_only_on_instances_that_started(actor_system: ActorSystem) -> None:
    """A child rebuilt by a restart and stopped (its supervisor gave up) before
    its post_restart ran gets no post_stop: there is nothing of it to clean up."""
    log: list[tuple[str, str, int]] = []

    class Child(Actor[str]):
        def pre_start(self) -> None:
            log.append(("started", self.context.self.name, id(self)))

        def post_restart(self, exc: BaseException) -> None:
            log.append(("started", self.context.self.name, id(self)))

        def post_stop(self) -> None:
            log.append(("post_stop", self.context.self.name, id(self)))

        def receive(self, message: str) -> None:
            raise RuntimeError("boom")

    class Parent(Actor[str]):
        supervisor_strategy = SupervisorStrategy.one_for_one(
            max_restarts=1, within=60, poison_threshold=1
        )

        def pre_start(self) -> None:
            self.children = [self.context.spawn(Child, name=n) for n in ("a", "b")]

        def receive(self, message: str) -> None:
            for child in self.children:
                child.tell("x")  # both fail in the same dispatcher run

    parent = actor_system.spawn(Parent, name="p", restart=RestartType.TEMPORARY)
    parent.tell("go")
    await parent.wait_terminated(timeout=2)  # a gave up -> p failed -> p stopped
    started = {(name, ident) for kind, name, ident in log if kind == "started"}
    stopped = {(name, ident) for kind, name, ident in log if kind == "post_stop"}
    assert stopped and stopped <= started
