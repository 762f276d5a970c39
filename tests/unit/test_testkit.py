"""The test kit itself: probe expectations fail when they should, and the
``actor_system`` fixture fails a test whose system does not stop cleanly."""

from __future__ import annotations

from typing import Any

import pytest

from hewitt import Actor, ActorSystem
from hewitt.testing import ProbeTimeout, TestProbe


class Echo(Actor[Any]):
    def receive(self, message: Any) -> None:
        self.context.reply(message)


async def test_expect_message_checks_type_and_value(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    echo = actor_system.spawn(Echo)
    echo.tell(5, probe.ref)
    assert await probe.expect_message(int) == 5
    assert probe.last_sender == echo
    echo.tell("x", probe.ref)
    with pytest.raises(AssertionError, match="expected int, got 'x'"):
        await probe.expect_message(int)
    echo.tell(6, probe.ref)
    with pytest.raises(AssertionError, match="expected 7, got 6"):
        await probe.expect_message(7)


async def test_expect_message_times_out(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    with pytest.raises(ProbeTimeout, match=r"expected int within 0.05 s"):
        await probe.expect_message(int, within=0.05)


async def test_expect_no_message_fails_when_one_arrives(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    probe.ref.tell("surprise")
    with pytest.raises(AssertionError, match="expected no message, got 'surprise'"):
        await probe.expect_no_message(within=0.05)


async def test_probe_reply_answers_the_last_sender(actor_system: ActorSystem) -> None:
    probe = TestProbe(actor_system)
    other = TestProbe(actor_system)
    probe.ref.tell("question", other.ref)
    await probe.expect_message("question")
    probe.reply("answer")
    assert await other.expect_message("answer")


def test_fixture_fails_a_test_whose_system_does_not_stop_cleanly(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(
        """
        import asyncio
        from typing import Any
        import pytest
        from hewitt import Actor

        class Stuck(Actor[Any]):
            async def receive(self, message: Any) -> None:
                await asyncio.Event().wait()  # never finishes

        @pytest.mark.hewitt_config(shutdown_timeout=0.2)
        async def test_leaves_a_stuck_actor(actor_system):
            actor_system.spawn(Stuck).tell("go")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*did not stop cleanly*cancelled:*/user/$1*"])
