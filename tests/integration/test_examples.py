"""Each example of examples/ run as a test: its main() and its script."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from hewitt import ActorSystem
from hewitt.testing import TestProbe
from tests.integration.examples_loader import EXAMPLES, load

EXAMPLE_NAMES = [
    "counter_threads",
    "kv_store",
    "logger_workers",
    "counter_printer",
    "bank_transfer",
]


def test_counter_threads_counts_every_increment() -> None:
    assert load("counter_threads").main() == 10_000


async def test_kv_store_set_get_delete_dump_stop() -> None:
    kv = load("kv_store")
    report = await kv.main()
    assert report.name == "Atharva"
    assert dict(report.dump) == {"name": "Atharva", "language": "Rust"}
    assert report.language_after_delete is None
    assert dict(report.dump_after_delete) == {"name": "Atharva"}
    assert not report.alive_after_stop
    with pytest.raises(TypeError):  # the Dump reply is a read-only snapshot
        report.dump["name"] = "changed"


async def test_logger_workers_process_all_items_then_shut_down_in_order() -> None:
    example = load("logger_workers")
    lines: tuple[str, ...] = await example.main()

    processed = [
        re.fullmatch(r"\[INFO\] Worker (\d) processed (\d+) -> (\d+)", line) for line in lines
    ]
    results = {int(m[2]): (int(m[1]), int(m[3])) for m in processed if m is not None}
    assert sum(m is not None for m in processed) == 20
    # Every item once, squared, by the worker it was dealt to (round-robin).
    assert results == {n: (n % 4, n * n) for n in range(20)}

    # The logger stops last, after every worker logged its shutdown, and each
    # worker's shutdown comes after its own work.
    assert lines[-1] == "[INFO] Logger shutting down"
    for worker_id in range(4):
        shutdown = lines.index(f"[INFO] Worker {worker_id} shutting down")
        own_work = [
            i
            for i, line in enumerate(lines)
            if line.startswith(f"[INFO] Worker {worker_id} processed")
        ]
        assert max(own_work) < shutdown < len(lines) - 1
    assert len(lines) == 20 + 4 + 1


async def test_counter_printer_printer_receives_the_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await load("counter_printer").main() == 10_000
    assert capsys.readouterr().out.splitlines() == ["count: 10000"]


async def test_counter_printer_reply_to_any_int_ref(actor_system: ActorSystem) -> None:
    # The reply-to ref in Get may be any actor accepting ints: here a test probe.
    example = load("counter_printer")
    counter = actor_system.spawn(example.Counter)
    for _ in range(5):
        counter.tell(example.Add(2))
    probe = TestProbe(actor_system)
    counter.tell(example.Get(reply_to=probe.ref))
    assert await probe.expect_message(10, within=2.0) == 10
    assert probe.last_sender == counter


async def test_bank_transfer_moves_100_and_refuses_the_overdraft() -> None:
    bank = load("bank_transfer")
    report = await bank.main()
    assert report.transfer == bank.Ok(400)
    assert report.balances_after_transfer == (1100, 400)
    assert isinstance(report.overdraft, bank.Refused)
    assert report.overdraft.reason == (
        "Insufficient funds in account 2. Balance: 400, needed: 1000"
    )
    assert report.balances_after_overdraft == (1100, 400)
    # One withdrawal from 2, one deposit into 1; the refused one left no trace.
    assert [(t.from_id, t.to_id, t.amount) for t in report.history_2] == [(2, 1, 100)]
    assert [(t.from_id, t.to_id, t.amount) for t in report.history_1] == [(2, 1, 100)]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_runs_as_a_script(name: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout  # every example prints what it did
