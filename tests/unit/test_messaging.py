"""tell, ask, ordering and delivery guarantees (docs/semantics.md, sections 1-4)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hewitt import (
    Actor,
    ActorRef,
    ActorSystem,
    AskTimeout,
    DeadLetter,
    DeliveryError,
    Failure,
    pipe_to,
)
from hewitt.testing import TestProbe

from .messages import Boom, Echo, Get, Inc, Reply, Seq


class Counter(Actor[Inc | Get]):
    def __init__(self) -> None:
        self.value = 0

    def receive(self, message: Inc | Get) -> None:
        match message:
            case Inc(n):
                self.value += n
            case Get():
                self.context.reply(self.value)


class Recorder(Actor[Any]):
    """Records every message; replies with the list on Get."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def receive(self, message: Any) -> None:
        if isinstance(message, Get):
            self.context.reply(list(self.seen))
        else:
            self.seen.append(message)


class EchoActor(Actor[Echo | Boom]):
    def receive(self, message: Echo | Boom) -> None:
        if isinstance(message, Boom):
            raise ValueError("boom")
        self.context.reply(message.value)


class Silent(Actor[Any]):
    def receive(self, message: Any) -> None:
        pass


async def test_tell_then_ask_sees_all_tells(actor_system: ActorSystem) -> None:
    counter = actor_system.spawn(Counter)
    for _ in range(1000):
        counter.tell(Inc())
    assert await counter.ask(Get()) == 1000


async def test_ten_producers_100k_each_nothing_lost_order_kept(actor_system: ActorSystem) -> None:
    """semantics.md §2: FIFO per sender-receiver pair; §3: nothing lost."""
    recorder = actor_system.spawn(Recorder)

    async def produce(p: int) -> None:
        for i in range(100_000):
            recorder.tell(Seq(p, i))
            if i % 1000 == 0:
                await asyncio.sleep(0)  # interleave the producers (not a synchronisation)

    await asyncio.gather(*(produce(p) for p in range(10)))
    seen: list[Seq] = await recorder.ask(Get(), timeout=30)
    assert len(seen) == 1_000_000
    last = [-1] * 10
    for item in seen:
        assert item.index == last[item.producer] + 1, "per-producer order broken"
        last[item.producer] = item.index
    assert last == [99_999] * 10


async def test_producers_on_threads_order_kept(actor_system: ActorSystem) -> None:
    """tell is thread-safe and keeps per-sender FIFO across threads."""
    recorder = actor_system.spawn(Recorder)

    def produce(p: int) -> None:
        for i in range(20_000):
            recorder.tell(Seq(p, i))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    await asyncio.gather(*(asyncio.to_thread(t.run) for t in threads))
    seen: list[Seq] = await recorder.ask(Get(), timeout=30)
    assert len(seen) == 80_000
    last = [-1] * 4
    for item in seen:
        assert item.index == last[item.producer] + 1
        last[item.producer] = item.index


async def test_ask_timeout_names_actor_and_message_type(actor_system: ActorSystem) -> None:
    silent = actor_system.spawn(Silent, name="silent")
    with pytest.raises(AskTimeout) as info:
        await silent.ask(Get(), timeout=0.05)
    assert "/user/silent" in str(info.value)
    assert "Get" in str(info.value)
    assert info.value.timeout == 0.05


async def test_reply_after_expired_ask_goes_to_dead_letters(actor_system: ActorSystem) -> None:
    """semantics.md §4: a late reply is a dead letter, not lost silently."""

    class Late(Actor[Any]):
        def __init__(self) -> None:
            self.pending: ActorRef[Any] | None = None

        def receive(self, message: Any) -> None:
            if message == "hold":
                self.pending = self.context.sender
            elif message == "release" and self.pending is not None:
                self.pending.tell("late reply", self.context.self)

    probe = TestProbe(actor_system)
    actor_system.event_stream.subscribe(probe.ref, DeadLetter)
    late = actor_system.spawn(Late)
    with pytest.raises(AskTimeout):
        await late.ask("hold", timeout=0.05)
    late.tell("release")
    letter = await probe.expect_message(DeadLetter)
    assert letter.message == "late reply"
    assert "expired" in letter.reason


async def test_ask_reraises_handler_exception(actor_system: ActorSystem) -> None:
    echo = actor_system.spawn(EchoActor)
    with pytest.raises(ValueError, match="boom"):
        await echo.ask(Boom())
    assert await echo.ask(Echo(7)) == 7  # restarted, still serving


async def test_ask_to_stopped_actor_fails_fast(actor_system: ActorSystem) -> None:
    echo = actor_system.spawn(EchoActor, name="gone")
    echo.stop()
    await echo.wait_terminated(timeout=1)
    with pytest.raises(DeliveryError, match="/user/gone"):
        await echo.ask(Echo(1), timeout=5)


async def test_ask_with_async_handler(actor_system: ActorSystem) -> None:
    class Slow(Actor[Echo]):
        async def receive(self, message: Echo) -> None:
            await asyncio.sleep(0)
            self.context.reply(message.value * 2)

    slow = actor_system.spawn(Slow)
    assert await asyncio.gather(*(slow.ask(Echo(i)) for i in range(50))) == [
        i * 2 for i in range(50)
    ]


async def test_many_concurrent_asks_each_get_their_reply(actor_system: ActorSystem) -> None:
    echo = actor_system.spawn(EchoActor)
    replies = await asyncio.gather(*(echo.ask(Echo(i)) for i in range(10_000)))
    assert replies == list(range(10_000))


async def test_ask_from_another_event_loop(actor_system: ActorSystem) -> None:
    echo = actor_system.spawn(EchoActor)

    def other_loop() -> Any:
        return asyncio.run(echo.ask(Echo("hi"), timeout=2))

    assert await asyncio.to_thread(other_loop) == "hi"


async def test_forward_keeps_original_sender(actor_system: ActorSystem) -> None:
    class Forwarder(Actor[Echo]):
        def __init__(self, target: ActorRef[Echo | Boom]) -> None:
            self.target = target

        def receive(self, message: Echo) -> None:
            self.context.forward(self.target, message)

    echo = actor_system.spawn(EchoActor)
    forwarder = actor_system.spawn(Forwarder, echo)
    assert await forwarder.ask(Echo("via")) == "via"


async def test_reply_to_ref_carried_in_message(actor_system: ActorSystem) -> None:
    class Replier(Actor[Reply]):
        def receive(self, message: Reply) -> None:
            message.to.tell(message.value)

    probe = TestProbe(actor_system)
    replier = actor_system.spawn(Replier)
    replier.tell(Reply(probe.ref, 42))
    assert await probe.expect_message(42) == 42


async def test_pipe_to_delivers_result_and_failure(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    echo = actor_system.spawn(EchoActor)
    pipe_to(echo.ask(Echo("piped")), probe.ref)
    assert await probe.expect_message("piped") == "piped"
    pipe_to(echo.ask(Boom()), probe.ref)
    failure = await probe.expect_message(Failure)
    assert isinstance(failure.exception, ValueError)


async def test_pipe_to_from_handler_does_not_block(actor_system: ActorSystem) -> None:
    """seeds/004: a handler pipes an ask's result to itself instead of awaiting it."""

    class Aggregator(Actor[Any]):
        def __init__(self, source: ActorRef[Echo | Boom], report: ActorRef[Any]) -> None:
            self.source = source
            self.report = report

        def receive(self, message: Any) -> None:
            if message == "go":
                self.context.pipe_to(self.source.ask(Echo(5)), map_result=lambda v: ("got", v))
            elif isinstance(message, tuple):
                self.report.tell(message)

    probe = TestProbe(actor_system)
    echo = actor_system.spawn(EchoActor)
    actor_system.spawn(Aggregator, echo, probe.ref).tell("go")
    assert await probe.expect_message(("got", 5))


async def test_two_actors_asking_each_other_end_in_timeouts(actor_system: ActorSystem) -> None:
    """seeds/004 deadlock: each awaits an ask of the other inside its handler."""

    class Asker(Actor[Any]):
        def __init__(self, report: ActorRef[Any]) -> None:
            self.report = report
            self.peer: ActorRef[Any] | None = None

        async def receive(self, message: Any) -> None:
            if isinstance(message, ActorRef):
                self.peer = message
            elif message == "start" and self.peer is not None:
                try:
                    await self.peer.ask("question", timeout=0.2)
                except AskTimeout as exc:
                    self.report.tell(exc)

    probe = TestProbe(actor_system)
    a = actor_system.spawn(Asker, probe.ref, name="a")
    b = actor_system.spawn(Asker, probe.ref, name="b")
    a.tell(b)
    b.tell(a)
    a.tell("start")
    b.tell("start")
    errors = await probe.receive_messages(2, within=3)
    assert all(isinstance(e, AskTimeout) for e in errors)
    assert {e.recipient for e in errors} == {"/user/a", "/user/b"}


async def test_direct_handoff_keeps_mailbox_order(actor_system: ActorSystem) -> None:
    """An ask to an actor with queued messages is handled after them."""
    counter = actor_system.spawn(Counter)
    for _ in range(10):
        counter.tell(Inc())
    assert await counter.ask(Get()) == 10
    results = []
    for _ in range(200):  # more than the direct hand-off budget
        counter.tell(Inc())
        results.append(await counter.ask(Get()))
    assert results == list(range(11, 211))


async def test_loop_stays_responsive_during_direct_asks(actor_system: ActorSystem) -> None:
    """A caller doing back-to-back asks still yields to the event loop."""
    echo = actor_system.spawn(EchoActor)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    for i in range(5_000):
        await echo.ask(Echo(i))
    stop.set()
    await task
    assert ticks >= 5_000 // actor_system.config.direct_asks - 1


async def test_tuple_messages_arrive_intact_with_and_without_sender(
    actor_system: ActorSystem,
) -> None:
    """A user's own tuples are never mistaken for the runtime's envelopes."""
    probe = TestProbe(actor_system)

    class Relay(Actor[Any]):
        def receive(self, message: Any) -> None:
            probe.ref.tell((message, self.context.sender))

    relay = actor_system.spawn(Relay)
    shapes: list[tuple[Any, ...]] = [(), (1,), (1, 2), (1, 2, 3), (1, None, None), ("a", probe.ref)]
    for shape in shapes:
        relay.tell(shape)
        relay.tell(shape, probe.ref)
    for shape in shapes:
        assert await probe.expect_message((shape, None))
        assert await probe.expect_message((shape, probe.ref))
