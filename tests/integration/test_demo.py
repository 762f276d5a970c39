"""``hewitt demo``: the bank conserves money, in-process and as the real command."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hewitt import ActorSystem
from hewitt.cli import _demo, main
from hewitt.cli._bank import (
    DEPOSITED,
    INSUFFICIENT_FUNDS,
    WITHDRAWN,
    Account,
    AccountMessage,
    Deposit,
    GetBalance,
    Withdraw,
)
from hewitt.cli._demo import DemoOptions, run_demo
from hewitt.cli._display import ProgressDisplay, Sample

SMALL_RUN = DemoOptions(accounts=200, concurrency=50, duration=1.5, seed=7)
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
    assert (result.failures, result.dead_letters) == (0, 0)
    assert CONSERVED_200 in out.getvalue()
    # The demo leaves no actor behind on a system it was given.
    assert actor_system.statistics().live_actors == 0


def test_main_runs_the_demo_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--accounts", "100", "--concurrency", "20", "--duration", "0.5"])

    assert code == 0
    output = capsys.readouterr().out
    assert "transfers completed:" in output
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
    [["--accounts", "1"], ["--concurrency", "0"], ["--duration", "0"], ["--balance", "x"]],
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
    display.show(Sample(elapsed=0.50, completed=2_000, refused=20, messages=10_000))
    display.close()

    first, second = out.getvalue().split("\r\x1b[F")
    assert "1,000 completed" in first
    assert "2,000 completed" in second
    assert "4,040/s" in second  # 2,020 transfers settled in 0.5 s
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
