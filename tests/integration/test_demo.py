"""``hewitt demo``: the bank conserves money, in-process and as the real command,
also while its supervised audit service keeps crashing."""

from __future__ import annotations

import io
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hewitt import Actor, ActorRef, ActorSystem
from hewitt.cli import _demo, main
from hewitt.cli._bank import (
    DEPOSITED,
    GET_AUDIT_TALLY,
    INSUFFICIENT_FUNDS,
    WITHDRAWN,
    Account,
    AccountMessage,
    AuditJournal,
    AuditMessage,
    AuditService,
    AuditTally,
    Deposit,
    FaultInjector,
    GetBalance,
    InjectedFault,
    TransferDesk,
    TransferOrder,
    Withdraw,
)
from hewitt.cli._demo import DemoOptions, run_demo
from hewitt.cli._display import ProgressDisplay, Sample

SMALL_RUN = DemoOptions(accounts=200, concurrency=50, duration=1.5, seed=7, crash_rate=0.0)
# One audit in five fails: a few thousand restarts, and some audits fail three
# times in a row (0.2 ** 3 of them) and go to dead letters as poison messages.
CRASHING_RUN = DemoOptions(accounts=200, concurrency=50, duration=1.5, seed=7, crash_rate=0.2)
CONSERVED_200 = "money conserved: yes (total 200,000 = 200 accounts x 1,000)"
CONSERVED_100 = "money conserved: yes (total 100,000 = 100 accounts x 1,000)"
COMMAND_TIMEOUT = 60.0


# ----------------------------------------------------------------------
# The bank's protocol


async def test_account_refuses_a_withdrawal_it_cannot_cover(actor_system: ActorSystem) -> None:
    account = actor_system.spawn(Account, 100)

    assert await account.ask(Withdraw(101)) == INSUFFICIENT_FUNDS
    assert await account.ask(GetBalance()) == 100
    assert await account.ask(Withdraw(100)) == WITHDRAWN
    assert await account.ask(GetBalance()) == 0


async def test_account_acknowledges_deposits(actor_system: ActorSystem) -> None:
    account = actor_system.spawn(Account, 100)

    assert await account.ask(Deposit(5)) == DEPOSITED
    account.tell(Deposit(7))  # no reply-to: no receipt, and no dead letter
    assert await account.ask(GetBalance()) == 112
    assert actor_system.statistics().dead_letters == 0


class _AuditSupervisor(Actor[AuditMessage]):
    """The audit under the desk's strategy, without the desk's tellers."""

    supervisor_strategy = TransferDesk.supervisor_strategy

    def __init__(self, journal: AuditJournal, faults: FaultInjector) -> None:
        self.audit = self.context.spawn(AuditService, journal, faults, name="audit")

    def receive(self, message: AuditMessage) -> None:
        self.context.forward(self.audit, message)


async def test_audit_records_survive_its_restarts(actor_system: ActorSystem) -> None:
    supervisor = actor_system.spawn(_AuditSupervisor, AuditJournal(), FaultInjector(0.5, seed=3))
    account: ActorRef[AccountMessage] = actor_system.spawn(Account, 100)
    order = TransferOrder(account, account, 1)

    for _ in range(1_000):
        supervisor.tell(order)
    tally: AuditTally = await supervisor.ask(GET_AUDIT_TALLY)

    stats = actor_system.statistics()
    assert 0 < tally.recorded < 1_000
    # Each crash restarted the audit; each audit is recorded once or dropped as poison.
    assert stats.failures == stats.restarts == tally.faults
    assert tally.recorded + stats.dead_letters == 1_000


def test_fault_rate_must_be_a_fraction() -> None:
    for rate in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fraction"):
            FaultInjector(rate, seed=1)


@pytest.mark.parametrize("message_type", [Deposit, Withdraw])
def test_amounts_must_be_positive(message_type: type[Deposit | Withdraw]) -> None:
    with pytest.raises(ValueError, match="positive"):
        message_type(0)
    with pytest.raises(ValueError, match="positive"):
        message_type(-5)


# ----------------------------------------------------------------------
# The demo, in-process


async def test_demo_conserves_money(actor_system: ActorSystem) -> None:
    out = io.StringIO()

    result = await run_demo(SMALL_RUN, out, system=actor_system)

    assert result.conserved
    assert result.total == 200_000
    assert result.completed > 0
    # Transfers of up to half an opening balance drain accounts: some are refused.
    assert result.refused > 0
    assert result.messages > 4 * result.completed
    assert (result.failures, result.restarts, result.dead_letters) == (0, 0, 0)
    assert result.audited == result.completed
    assert CONSERVED_200 in out.getvalue()
    assert "supervision:         0 failures, 0 restarts, 0 dead letters" in out.getvalue()
    assert "warning:" not in out.getvalue()
    # The demo leaves no actor behind on a system it was given.
    assert actor_system.statistics().live_actors == 0


async def test_demo_conserves_money_while_the_audit_keeps_crashing(
    actor_system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hewitt")
    out = io.StringIO()

    result = await run_demo(CRASHING_RUN, out, system=actor_system)

    assert result.conserved
    assert result.completed > 0
    assert result.restarts > 0
    assert result.restarts == result.failures == result.audit_faults
    # Every completed transfer was audited once, or dropped after three failures.
    assert result.audits_dropped > 0
    assert result.dead_letters == result.audits_dropped
    assert result.audited + result.audits_dropped == result.completed
    output = out.getvalue()
    assert CONSERVED_200 in output
    assert (
        f"supervision:         {result.failures:,} failures, {result.restarts:,} restarts, "
        f"{result.dead_letters:,} dead letters"
    ) in output
    assert f"{result.audits_dropped:,} dropped as poison" in output
    assert "warning:" not in output
    # The live display shows them too.
    assert "| restarts " in output
    # The crashes are counted, not logged one traceback each.
    assert not [r for r in caplog.records if r.exc_info and r.exc_info[0] is InjectedFault]
    assert actor_system.statistics().live_actors == 0


def test_main_runs_the_demo_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--accounts", "100", "--concurrency", "20", "--duration", "0.5"])

    assert code == 0
    output = capsys.readouterr().out
    assert "transfers completed:" in output
    assert "supervision:" in output
    assert CONSERVED_100 in output


class _LeakyAccount(Account):
    """Loses one unit on every deposit: the audit must notice."""

    def receive(self, message: AccountMessage) -> None:
        if isinstance(message, Deposit) and message.amount > 1:
            message = Deposit(message.amount - 1)
        super().receive(message)


def test_main_exits_1_when_money_is_not_conserved(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_demo, "Account", _LeakyAccount)

    code = main(["demo", "--accounts", "100", "--duration", "0.3", "--seed", "1"])

    assert code == 1
    assert "money conserved: NO (total " in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments",
    [
        ["--accounts", "1"],
        ["--concurrency", "0"],
        ["--duration", "0"],
        ["--balance", "x"],
        ["--crash-rate", "1.5"],
    ],
)
def test_demo_rejects_bad_options(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *arguments])

    assert exit_info.value.code == 2
    assert arguments[0] in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_rewritten_in_place() -> None:
    out = _Terminal()
    display = ProgressDisplay(out)

    display.show(Sample(elapsed=0.25, completed=1_000, refused=10, messages=5_000))
    display.show(
        Sample(
            elapsed=0.50,
            completed=2_000,
            refused=20,
            messages=10_000,
            restarts=1_234,
            dead_letters=5,
        )
    )
    display.close()

    first, second = out.getvalue().split("\r\x1b[F\x1b[F")
    assert "1,000 completed" in first
    assert "2,000 completed" in second
    assert "4,040/s" in second  # 2,020 transfers settled in 0.5 s
    assert "1,234 restarts          5 dead letters" in second
    assert second.endswith("\x1b[K\n")
    assert all(len(line) < 80 + len("\x1b[K") for line in out.getvalue().splitlines())


# ----------------------------------------------------------------------
# The real command


def _command() -> list[str]:
    return [sys.executable, "-m", "hewitt.cli"]


def test_command_demo_exits_0_with_money_conserved() -> None:
    done = subprocess.run(
        [*_command(), "demo", "--duration", "1", "--accounts", "100"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert CONSERVED_100 in done.stdout
    assert "| restarts " in done.stdout
    # Not a terminal: plain progress lines, no cursor movement.
    assert "\x1b" not in done.stdout
    assert done.stderr == ""


def test_console_script_is_installed() -> None:
    script = shutil.which("hewitt", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the hewitt console script is not installed next to this Python")

    done = subprocess.run(
        [script, "demo", "--duration", "0.5", "--accounts", "100", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert CONSERVED_100 in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_ctrl_c_ends_the_transfers_early_and_still_checks_the_books() -> None:
    process = subprocess.Popen(
        [*_command(), "demo", "--duration", "600", "--accounts", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        assert header.startswith("hewitt demo:")
        # The first progress line proves the transfers are flowing.
        assert "transfers/s" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, errors
    assert "stopped early at" in rest
    assert CONSERVED_100 in rest
