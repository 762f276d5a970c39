"""The event-sourced account examples (seed 003 example 4, seed 000 chapter 3)
run as tests: their main() on a temporary SQLite file, and their scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_examples import EXAMPLES, load


async def test_event_sourced_account_acks_persists_and_recovers(tmp_path: Path) -> None:
    example = load("event_sourced_account")
    db = tmp_path / "accounts.db"

    report = await example.main(db)

    Ack, Nack, AccountState = example.Ack, example.Nack, example.AccountState
    assert report.replies == (Ack(1), Ack(2), Nack("insufficient funds"), Ack(3))
    # The retried deposit gets its first outcome again and writes nothing.
    assert report.retry_reply == Ack(1)
    assert report.before_restart == AccountState(95, 3)
    # A new actor system on the same journal: the same state, and it is the fold.
    assert report.after_restart == report.before_restart == report.replayed
    assert report.journal == (
        (1, "account.Deposited", 100),
        (2, "account.Withdrew", 30),
        (3, "account.Deposited", 25),
    )
    assert report.snapshot_at == 3  # snapshot_every = 3

    # Again on the same file: the account goes on from where it was, and the
    # idempotency key is remembered across restarts: "deposit-1" is not made again.
    again = await example.main(db)
    assert again.replies == (Ack(1), Ack(4), Nack("insufficient funds"), Ack(5))
    assert again.retry_reply == Ack(1)
    assert [entry[0] for entry in again.journal] == [1, 2, 3, 4, 5]
    assert again.after_restart == AccountState(90, 5) == again.replayed


async def test_account_event_stream_is_rebuilt_after_a_crash(tmp_path: Path) -> None:
    example = load("account_event_stream")

    report = await example.main(tmp_path / "accounts.db")

    created = example.AccountCreated(7, 1000)
    deposited = example.Deposited(2, 250)
    withdrawn = example.Withdrawn(3, 400, "withdrawal")
    fee = example.FeeApplied(15, "monthly maintenance")
    # Each command is answered with the events it produced; the uncovered
    # withdrawal produced none.
    assert report.produced == ((created,), (deposited,), (withdrawn,), (), (fee,))
    assert report.before_crash == example.Account(7, 835, (created, deposited, withdrawn, fee))
    assert report.crash_error == "account 7 crashed (on purpose)"
    assert report.restarts == 1
    assert report.same_ref_after_restart
    # The restarted account replayed its journal: same balance, same history.
    assert report.after_restart == report.before_crash
    assert report.journal == ((1, created), (2, deposited), (3, withdrawn), (4, fee))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("event_sourced_account", "state after the restart:  AccountState(balance=95, version=3)"),
        ("account_event_stream", "after the crash and restart: balance 835"),
    ],
)
def test_example_runs_as_a_script(name: str, expected: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), str(tmp_path / "accounts.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert done.stderr == ""
    assert (tmp_path / "accounts.db").is_file()
