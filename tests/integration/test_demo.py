"""``hewitt demo``: the bank conserves money, in-process and as the real command,
also while its supervised audit service keeps crashing, and across restarts on
the same store (its accounts are persistent)."""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import hewitt
from hewitt import ActorRef, ActorSystem
from hewitt.cli import main
from hewitt.demo import DemoOptions, DemoResult, _run, run_demo
from hewitt.demo._bank import (
    DEPOSITED,
    GET_AUDIT_TALLY,
    INSUFFICIENT_FUNDS,
    WITHDRAWN,
    Account,
    AccountEvent,
    AccountMessage,
    AccountRegister,
    AccountState,
    AccountStatus,
    AuditJournal,
    AuditMessage,
    AuditService,
    AuditTally,
    BankBooks,
    Deposit,
    FaultInjector,
    FundsDeposited,
    GetBalance,
    GetBooks,
    InjectedFault,
    Open,
    RegisterAccounts,
    TransferDesk,
    TransferOrder,
    Withdraw,
    account_id,
    bank_codec,
)
from hewitt.demo._display import ProgressDisplay, Sample
from hewitt.persistence import (
    Effect,
    InMemoryJournal,
    InMemorySnapshotStore,
    Persistence,
    SqliteJournal,
    StoredEvent,
)
from tests.integration.persistence.pgserver import PostgresServer

SMALL_RUN = DemoOptions(accounts=200, concurrency=50, duration=1.5, seed=7, crash_rate=0.0)
# One audit in five fails: a few thousand restarts, and some audits fail three
# times in a row (0.2 ** 3 of them) and go to dead letters as poison messages.
CRASHING_RUN = DemoOptions(accounts=200, concurrency=50, duration=1.5, seed=7, crash_rate=0.2)
SHORT_RUN = DemoOptions(accounts=200, concurrency=50, duration=0.5, seed=11, crash_rate=0.0)
CONSERVED_200 = "money conserved: yes (total 200,000 = capital of 200 accounts, as at the start)"
CONSERVED_100 = "money conserved: yes (total 100,000 = capital of 100 accounts, as at the start)"
COMMAND_TIMEOUT = 60.0


def on_db(options: DemoOptions, path: Path) -> DemoOptions:
    return dataclasses.replace(options, db=str(path))


@pytest.fixture
async def bank_system(actor_system: ActorSystem) -> AsyncIterator[ActorSystem]:
    """The test's actor system, with the bank's persistence kept in memory."""
    persistence = Persistence.install(
        actor_system, InMemoryJournal(), InMemorySnapshotStore(), bank_codec()
    )
    yield actor_system
    await persistence.close()


# ----------------------------------------------------------------------
# The bank's protocol


async def _opened(system: ActorSystem, number: int, balance: int) -> ActorRef[AccountMessage]:
    account: ActorRef[AccountMessage] = system.spawn(Account, number)
    assert await account.ask(Open(balance)) == AccountStatus(balance, balance)
    return account


async def test_account_refuses_a_withdrawal_it_cannot_cover(bank_system: ActorSystem) -> None:
    account = await _opened(bank_system, 0, 100)

    assert await account.ask(Withdraw(101)) == INSUFFICIENT_FUNDS
    assert await account.ask(GetBalance()) == 100
    assert await account.ask(Withdraw(100)) == WITHDRAWN
    assert await account.ask(GetBalance()) == 0


async def test_account_acknowledges_deposits(bank_system: ActorSystem) -> None:
    account = await _opened(bank_system, 0, 100)

    assert await account.ask(Deposit(5)) == DEPOSITED
    account.tell(Deposit(7))  # no reply-to: no receipt, and no dead letter
    assert await account.ask(GetBalance()) == 112
    assert bank_system.statistics().dead_letters == 0


async def test_account_is_opened_once_and_recovered_from_its_events(
    bank_system: ActorSystem,
) -> None:
    account = await _opened(bank_system, 3, 100)
    assert await account.ask(Withdraw(30)) == WITHDRAWN
    assert await account.ask(Deposit(5)) == DEPOSITED
    # Opening again changes nothing, whatever the balance asked.
    assert await account.ask(Open(999)) == AccountStatus(100, 75)
    account.stop()
    await account.wait_terminated(5.0)

    # A new instance of the same account recovers from the journal.
    again: ActorRef[AccountMessage] = bank_system.spawn(Account, 3)
    assert await again.ask(GetBalance()) == 75
    events = Persistence.of(bank_system).journal.read_events(account_id(3))
    assert [(e.sequence_nr, e.type_name) async for e in events] == [
        (1, "demo.AccountOpened"),
        (2, "demo.FundsWithdrawn"),
        (3, "demo.FundsDeposited"),
    ]


async def test_register_records_the_accounts_and_their_capital(bank_system: ActorSystem) -> None:
    register = bank_system.spawn(AccountRegister)

    assert await register.ask(GetBooks()) == BankBooks(0, 0)
    assert await register.ask(RegisterAccounts(10, 1_000)) == BankBooks(10, 1_000)
    # Accounts registered already bring no new capital.
    assert await register.ask(RegisterAccounts(5, 500)) == BankBooks(10, 1_000)
    assert await register.ask(RegisterAccounts(12, 30)) == BankBooks(12, 1_030)


class _AuditSupervisor(hewitt.Actor[AuditMessage]):
    """The audit under the desk's strategy, without the desk's tellers."""

    supervisor_strategy = TransferDesk.supervisor_strategy

    def __init__(self, journal: AuditJournal, faults: FaultInjector) -> None:
        self.audit = self.context.spawn(AuditService, journal, faults, name="audit")

    def receive(self, message: AuditMessage) -> None:
        self.context.forward(self.audit, message)


async def test_audit_records_survive_its_restarts(bank_system: ActorSystem) -> None:
    supervisor = bank_system.spawn(_AuditSupervisor, AuditJournal(), FaultInjector(0.5, seed=3))
    account = await _opened(bank_system, 0, 100)
    order = TransferOrder(account, account, 1)

    for _ in range(1_000):
        supervisor.tell(order)
    tally: AuditTally = await supervisor.ask(GET_AUDIT_TALLY)

    stats = bank_system.statistics()
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
    with pytest.raises(ValueError, match="negative"):
        Open(-1)


# ----------------------------------------------------------------------
# The demo, in-process


async def test_demo_conserves_money(actor_system: ActorSystem, tmp_path: Path) -> None:
    out = io.StringIO()

    result = await run_demo(on_db(SMALL_RUN, tmp_path / "bank.db"), out, system=actor_system)

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
    assert (result.recovered, result.opened, result.capital) == (0, 200, 200_000)
    assert result.balances_at_start == (1_000,) * 200
    assert f"store:               SQLite {tmp_path / 'bank.db'}: " in out.getvalue()
    # Two events per completed transfer, one per account opened, one registration.
    assert result.events == 2 * result.completed + 200 + 1
    # The demo leaves no actor behind on a system it was given, nor its persistence.
    assert actor_system.statistics().live_actors == 0
    assert Persistence not in actor_system.extensions


async def test_demo_conserves_money_while_the_audit_keeps_crashing(
    bank_system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hewitt")
    out = io.StringIO()

    # On the system's own (in-memory) persistence.
    result = await run_demo(CRASHING_RUN, out, system=bank_system)

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
    assert "store:               the system's InMemoryJournal: " in output
    assert bank_system.statistics().live_actors == 0


# ----------------------------------------------------------------------
# Across restarts


def _run_on(path: Path, options: DemoOptions = SHORT_RUN) -> tuple[DemoResult, str]:
    out = io.StringIO()
    result = hewitt.run(run_demo(on_db(options, path), out))
    return result, out.getvalue()


def test_a_second_run_goes_on_from_the_balances_the_first_left(tmp_path: Path) -> None:
    first, _ = _run_on(tmp_path / "bank.db")
    second, output = _run_on(tmp_path / "bank.db", dataclasses.replace(SHORT_RUN, seed=12))

    assert first.conserved and second.conserved
    assert first.completed > 0 and second.completed > 0
    assert first.balances != first.balances_at_start  # money moved
    # Stopped and started again: the balances are what they were.
    assert second.balances_at_start == first.balances
    assert (second.recovered, second.opened) == (200, 0)
    assert second.capital == first.capital == second.total == 200_000
    assert second.events == 2 * second.completed
    assert "bank: SQLite " in output and ": recovered 200 accounts; total 200,000" in output
    assert CONSERVED_200 in output


def test_a_run_with_more_accounts_opens_the_missing_ones(tmp_path: Path) -> None:
    first, _ = _run_on(tmp_path / "bank.db")
    more, output = _run_on(tmp_path / "bank.db", dataclasses.replace(SHORT_RUN, accounts=300))
    fewer, _ = _run_on(tmp_path / "bank.db", dataclasses.replace(SHORT_RUN, accounts=100))

    assert more.conserved and fewer.conserved
    assert (more.recovered, more.opened, more.capital) == (200, 100, 300_000)
    assert more.balances_at_start == first.balances + (1_000,) * 100
    assert "recovered 200 accounts, opened 100 of 1,000; total 300,000" in output
    # Every account holds money: a run asking for fewer still keeps the books of all.
    assert (fewer.accounts, fewer.recovered, fewer.capital) == (300, 300, 300_000)
    assert fewer.balances_at_start == more.balances


def test_money_created_in_the_store_between_runs_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bank.db"
    first, _ = _run_on(db)
    hewitt.run(_deposit_behind_the_banks_back(db, account_id(0), 500))

    code = main(["demo", "--accounts", "200", "--duration", "0.3", "--db", str(db)])

    assert code == 1
    output = capsys.readouterr().out
    assert f"total {first.total + 500:,}" in output
    assert "money conserved: NO (total 200,500, 200,500 at the start, capital " in output


async def _deposit_behind_the_banks_back(db: Path, pid: str, amount: int) -> None:
    journal = SqliteJournal(db)
    try:
        highest = await journal.highest_sequence_nr(pid)
        name, version, payload = bank_codec().encode(FundsDeposited(amount))
        event = StoredEvent(pid, highest + 1, name, version, payload)
        await journal.append(pid, highest, [event])
    finally:
        await journal.close()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a new, empty database on the session's private PostgreSQL server."""
    dsn = postgres_server.dsn
    name = f"hewitt_demo_{time.time_ns()}"
    hewitt.run(_administer(dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    finally:
        hewitt.run(_administer(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _administer(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def test_demo_on_postgresql_conserves_money_across_restarts(
    postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["demo", "--accounts", "100", "--duration", "0.5", "--dsn", postgres_database]

    assert main([*arguments, "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert main([*arguments, "--seed", "2"]) == 0
    second = capsys.readouterr().out

    assert ": opened 100 of 1,000; total 100,000" in first
    assert ": recovered 100 accounts; total 100,000" in second
    for output in (first, second):
        assert "bank: PostgreSQL " in output
        assert CONSERVED_100 in output


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://bob:secret@db:5432/bank", "postgresql://bob@db:5432/bank"),
        ("postgresql://bob@db/bank", "postgresql://bob@db/bank"),
        ("host=db password=secret dbname=bank", "host=db dbname=bank"),
        ("host=db password='a secret' dbname=bank", "host=db dbname=bank"),
    ],
)
def test_the_dsn_is_shown_without_its_password(dsn: str, shown: str) -> None:
    assert _run.without_password(dsn) == shown


def test_main_runs_the_demo_and_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = str(tmp_path / "bank.db")
    code = main(
        ["demo", "--accounts", "100", "--concurrency", "20", "--duration", "0.5", "--db", db]
    )

    assert code == 0
    output = capsys.readouterr().out
    assert "transfers completed:" in output
    assert "supervision:" in output
    assert CONSERVED_100 in output


class _LeakyAccount(Account):
    """Loses one unit on every deposit: the audit must notice."""

    def on_command(self, state: AccountState, command: AccountMessage) -> Effect[AccountEvent]:
        if isinstance(command, Deposit) and command.amount > 1:
            command = Deposit(command.amount - 1)
        return super().on_command(state, command)


def test_main_exits_1_when_money_is_not_conserved(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_run, "Account", _LeakyAccount)

    code = main(
        ["demo", "--accounts", "100", "--duration", "0.3", "--seed", "1", "--db", ":memory:"]
    )

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
        ["--db"],
        ["--dsn"],
        ["--db", "x.db", "--dsn", "postgresql://localhost/x"],
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


# What a fresh interpreter has imported after running ``code``: one module name a line
# on stderr, so that stdout is what the code printed.
_LIST_MODULES = "\nimport sys\nprint(*sorted(sys.modules), sep='\\n', file=sys.stderr)"

# The heavy parts the command loads only for a subcommand that needs them.
_HEAVY = (
    "hewitt.demo",
    "hewitt.persistence",
    "hewitt.routing",
    "asyncpg",
    "sqlite3",
    "importlib.metadata",
)


def _modules_after(code: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", code + _LIST_MODULES],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
    )
    return done.stdout, set(done.stderr.split())


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_the_library_never_imports_the_demo() -> None:
    _, modules = _modules_after(
        "import hewitt, hewitt.cli, hewitt.persistence, hewitt.routing, hewitt.supervision, "
        "hewitt.testing, hewitt.testing.pytest_plugin, hewitt.node, hewitt.cluster"
    )
    assert "hewitt.persistence" in modules  # the check can see a package imported
    assert _loaded(modules, ("hewitt.demo",)) == []


def test_help_and_version_import_no_subcommand() -> None:
    run_main = "from hewitt.cli import main\ntry:\n    main({})\nexcept SystemExit:\n    pass"

    out, modules = _modules_after(run_main.format(["--help"]))
    assert "demo  run a live bank of account actors" in out
    assert _loaded(modules, _HEAVY) == []

    out, modules = _modules_after(run_main.format(["--version"]))
    assert out.startswith("hewitt ")
    assert "importlib.metadata" in modules  # the version is read only when asked for
    assert _loaded(modules, _HEAVY[:-1]) == []

    out, modules = _modules_after(run_main.format(["demo", "--help"]))
    assert "--accounts N" in out
    assert {"hewitt.demo", "hewitt.persistence"} <= modules


def test_command_without_a_known_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for arguments in ([], ["bank"], ["--accounts", "5"]):
        with pytest.raises(SystemExit) as exit_info:
            main(arguments)
        assert exit_info.value.code == 2
        assert "usage: hewitt [-h] [--version] COMMAND ..." in capsys.readouterr().err


def _demo_command(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), "demo", *arguments],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        cwd=cwd,
    )


def test_command_demo_exits_0_with_money_conserved_across_restarts(tmp_path: Path) -> None:
    # The bank is kept in ./hewitt-demo.db by default.
    first = _demo_command(["--duration", "1", "--accounts", "100"], tmp_path)
    second = _demo_command(["--duration", "0.5", "--accounts", "100"], tmp_path)

    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert CONSERVED_100 in done.stdout
        assert "| restarts " in done.stdout
        # Not a terminal: plain progress lines, no cursor movement.
        assert "\x1b" not in done.stdout
        assert done.stderr == ""
    assert (tmp_path / "hewitt-demo.db").is_file()
    assert "bank: SQLite hewitt-demo.db: opened 100 of 1,000; total 100,000" in first.stdout
    assert "bank: SQLite hewitt-demo.db: recovered 100 accounts; total 100,000" in second.stdout


def test_command_demo_in_memory_keeps_nothing(tmp_path: Path) -> None:
    done = _demo_command(["--duration", "0.3", "--accounts", "100", "--db", ":memory:"], tmp_path)

    assert done.returncode == 0, done.stderr
    assert "bank: in memory (not kept): opened 100 of 1,000" in done.stdout
    assert CONSERVED_100 in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = shutil.which("hewitt", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the hewitt console script is not installed next to this Python")

    done = subprocess.run(
        [script, "demo", "--duration", "0.5", "--accounts", "100", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert CONSERVED_100 in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_ctrl_c_ends_the_transfers_early_and_still_checks_the_books(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*_command(), "demo", "--duration", "600", "--accounts", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        assert header.startswith("hewitt demo:")
        assert process.stdout.readline().startswith("bank: SQLite hewitt-demo.db: opened 100")
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


def test_the_bank_on_a_cluster_of_two_nodes_conserves_money_across_runs(tmp_path: Path) -> None:
    """``hewitt demo --nodes 2``: the accounts on two worker processes, the
    tellers here; the second run recovers every account on its node."""
    from hewitt.demo._run import run_demo_interruptible

    db = tmp_path / "bank.db"
    options = dataclasses.replace(on_db(SHORT_RUN, db), accounts=100, concurrency=20)
    out = io.StringIO()
    first = hewitt.run(run_demo_interruptible(options, out, nodes=2))
    assert "cluster: 2 worker nodes" in out.getvalue()
    assert first.conserved and first.completed > 0
    assert first.balances != first.balances_at_start  # money moved across the nodes
    second = hewitt.run(run_demo_interruptible(dataclasses.replace(options, seed=5), out, nodes=2))
    assert second.conserved and (second.recovered, second.opened) == (100, 0)
    assert second.balances_at_start == first.balances
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "bank-hewitt-demo-1.db",
        "bank-hewitt-demo-2.db",
        "bank.db",
    ]
