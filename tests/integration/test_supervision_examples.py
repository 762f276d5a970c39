"""The supervision examples of examples/ run as tests: their main() and their script.

Each test writes down what OTP / Akka would do in the same situation (the
lifecycle events, in order) and checks that the example observed exactly that.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from hewitt import ActorSystem, ChildSpec, RestartIntensityExceeded, Supervisor
from hewitt.supervision import WhichChildren
from tests.integration.examples_loader import EXAMPLES, load

EXAMPLE_NAMES = ["stock_fetcher", "chat_room", "kv_supervisor"]


@pytest.fixture(autouse=True)
def quiet_failure_logs(caplog: pytest.LogCaptureFixture) -> None:
    # The examples crash on purpose; hewitt logs each failure with its traceback.
    caplog.set_level(logging.CRITICAL, logger="hewitt")


async def test_stock_fetcher_temporary_is_final_transient_restarts_and_retries() -> None:
    example = load("stock_fetcher")
    report = await example.main()

    # 1. restart => temporary (the seed's child spec). OTP: a temporary child is
    # never restarted; the crash ends it, its supervisor forgets it. The call
    # that crashed it fails with the crash reason; a monitor gets the reason.
    temporary = report.temporary
    assert temporary.first == example.Quote("AAPL", Decimal("189.50"), 1)
    assert temporary.error == "TimeoutError: price API did not answer for MSFT"
    assert temporary.terminated.ref.path == "/user/stock_supervisor/stock_fetcher"
    assert isinstance(temporary.terminated.reason, TimeoutError)
    assert temporary.children_after == ()
    assert temporary.lines == (
        "stock_fetcher: started",
        "stock_fetcher: stopped",
        "terminated /user/stock_supervisor/stock_fetcher: "
        "TimeoutError: price API did not answer for MSFT",
    )

    # 2. restart => transient, one_for_one 5 in 10 s (the seed's prose: "the
    # supervisor resets the state and tries again"). Each crash is one restart
    # of a fresh instance (empty cache, same ref); the failed request is
    # retried on it (Akka keeps the mailbox; hewitt retries below the poison
    # threshold), so every caller gets its quote. 2 restarts <= 5: the
    # supervisor keeps going.
    transient = report.transient
    assert [(q.symbol, q.price, q.cached) for q in transient.quotes] == [
        ("AAPL", Decimal("189.50"), 1),
        ("MSFT", Decimal("415.20"), 2),
        ("GOOG", Decimal("142.10"), 1),  # cache reset by the restart
        ("TSLA", Decimal("251.05"), 1),
    ]
    assert transient.api_calls == 6  # 4 quotes + the 2 attempts that crashed
    assert transient.restarts == 2
    assert transient.same_ref
    assert transient.children_after == ("stock_fetcher",)
    assert transient.lines == (
        "stock_fetcher: started",
        "stock_fetcher: crashed on FetchPrice(symbol='GOOG') with "
        "TimeoutError: price API did not answer for GOOG",
        "stock_fetcher: restarted with cache {}",
        "stock_fetcher: crashed on FetchPrice(symbol='TSLA') with "
        "ValueError: not enough values to unpack (expected 2, got 1)",
        "stock_fetcher: restarted with cache {}",
    )


async def test_stock_fetcher_with_an_async_handler_is_retried_after_a_restart(
    actor_system: ActorSystem,
) -> None:
    example = load("stock_fetcher")

    class AsyncStockFetcher(example.StockFetcher):  # type: ignore[name-defined,misc]
        async def receive(self, message: Any) -> None:
            await asyncio.sleep(0)  # the network round trip
            super().receive(message)

    log = actor_system.spawn(example.LifecycleLog)
    api = example.FlakyPriceApi(["timeout"])
    spec = ChildSpec(name="stock_fetcher", factory=AsyncStockFetcher, args=(api, log))
    supervisor = actor_system.spawn(Supervisor, [spec], example.STRATEGY, name="stocks")
    [(_, fetcher)] = await supervisor.ask(WhichChildren())
    # Same expectation as with the sync handler: the restart retries the request.
    quote = await fetcher.ask(example.FetchPrice("AAPL"), timeout=1.0)
    assert quote == example.Quote("AAPL", Decimal("189.50"), 1)


async def test_chat_room_drops_members_that_stop_and_never_sends_to_them() -> None:
    example = load("chat_room")
    report = await example.main()

    # Akka: a watcher gets exactly one Terminated per watched actor that stops
    # (reason: None for a normal stop, the exception for a crash) and none
    # after unwatch. The room turns each into the seed's Leave.
    assert report.online_after_join == ("alice", "bob", "carol", "dave")
    assert report.dave_left == example.Offline("dave", "left")
    assert report.carol_offline == example.Offline(
        "carol", "ConnectionResetError: connection reset by peer"
    )
    assert report.bob_offline == example.Offline("bob", "disconnected")
    assert report.members_at_end == ("alice",)
    assert report.online_at_end == ("alice",)
    assert report.dave_alive  # he left the room; leaving does not stop him

    # What each client received, in order (no order between clients). dave had
    # left, carol's socket was dead, bob had disconnected before the second post.
    received: dict[str, list[str | None]] = {}
    for frame in report.frames:
        received.setdefault(frame.user_id, []).append(frame.text)
    assert received == {
        "alice": ["alice: hello", "alice: anyone here?"],
        "bob": ["alice: hello", None],  # None: bob closed his socket
    }
    # The only dead letter is the Deliver that crashed carol: the room never
    # sent anything to a member that had stopped.
    assert report.dead_letters_after_crash == 1
    assert report.dead_letters_at_end == 1


async def test_kv_supervisor_restarts_five_times_then_gives_up() -> None:
    example = load("kv_supervisor")
    report = await example.main()

    assert report.children == ("kv",)
    assert report.before_crash == 42
    # A restart builds a fresh server: the state is gone, the ref is kept.
    assert report.after_first_crash is None
    assert report.same_ref_after_restart
    # poison_threshold=1, as OTP: the request that crashed the server is not
    # retried; the caller's call fails with the crash reason.
    assert report.crash_errors == ("KeyError 'missing'",) * 6

    # OTP, intensity 5 / period 10: crashes 1-5 each restart the child; crash
    # 6 would be the 6th restart within 10 s, so the supervisor terminates its
    # child (post_stop, no restart) and exits. Its parent (the /user guardian,
    # max_restarts=0) gives up on it at once and, by the "stop_subtree"
    # policy, stops it: the watcher's Terminated carries the guardian's
    # RestartIntensityExceeded.
    assert report.restarts_before_give_up == 5
    assert report.restarts == 5  # the guardian restarted nothing
    crash = [
        "failed /user/kv_sup/kv: KeyError: 'missing'",
        "kv: pre_restart after KeyError 'missing'",
        "kv: post_restart, data={}",
    ]
    assert list(report.lines) == [
        "kv: pre_start",
        *crash * 5,
        "failed /user/kv_sup/kv: KeyError: 'missing'",
        "failed /user/kv_sup: RestartIntensityExceeded: supervisor /user/kv_sup exceeded "
        "its restart intensity: more than 5 restarts within 10 s",
        "kv: post_stop",
        "terminated /user/kv_sup: RestartIntensityExceeded: supervisor /user exceeded "
        "its restart intensity: more than 0 restarts within 10 s",
    ]
    terminated = report.terminated
    assert terminated.ref.path == "/user/kv_sup"
    assert isinstance(terminated.reason, RestartIntensityExceeded)
    assert (terminated.reason.supervisor, terminated.reason.max_restarts) == ("/user", 0)
    assert not report.supervisor_alive
    assert not report.child_alive


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_supervision_example_runs_as_a_script(name: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout  # every example prints what it did
