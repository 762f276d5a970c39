"""``hewitt demo``: a live bank of thousands of accounts and concurrent transfers.

The accounts are persistent (event-sourced): every deposit and withdrawal is
an event, durable in the bank's store before it is acknowledged. The store is
a SQLite file, ``hewitt-demo.db`` in the current directory by default
(``--db PATH``; ``:memory:`` for none), or a PostgreSQL database (``--dsn``).
A run on an existing store recovers every account from it and goes on from
the balances the last run left.

First the bank opens the accounts it does not have yet (with ``balance``
each) and records them in its register, with the money they brought in: the
bank's capital. The books must balance at the start of every run: the
recovered balances add up to the capital. Then transfers flow for ``duration`` seconds (or until
Ctrl-C) while a progress line shows the counters. Then the desk is closed: no
new transfer starts and the ones in flight finish. Last, every account is
asked for its balance, and the books must balance again: the total is what
it was at the start, and still the capital, whatever the transfers, refusals
and restarts in between. (A process killed with transfers in flight loses
the amounts between a withdrawal and its deposit: the tellers are not
persistent. The next run's opening check shows it. Ctrl-C lets them finish.)

"transfers/s" counts settled transfers, completed or refused: both are a full
round of messages between a transfer and the accounts.

Meanwhile the audit service crashes on a fraction ``crash_rate`` of its
messages and its supervisor, the desk, restarts it (see ``_bank``). The display
and the summary show the system's failures, restarts and dead letters; every
one of them must be accounted for by the crashes injected into the audit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from hewitt import ActorRef, ActorSystem, SystemStatistics
from hewitt.persistence import (
    InMemoryJournal,
    InMemorySnapshotStore,
    Journal,
    Persistence,
    PostgresJournal,
    PostgresSnapshotStore,
    SnapshotStore,
    SqliteJournal,
    SqliteSnapshotStore,
)

from ._bank import (
    GET_AUDIT_TALLY,
    Account,
    AccountMessage,
    AccountRegister,
    AccountStatus,
    AuditTally,
    BankBooks,
    CloseDesk,
    DeskMessage,
    GetBalance,
    GetBooks,
    GetProgress,
    InjectedFault,
    Open,
    OpenDesk,
    Progress,
    RegisterAccounts,
    TransferDesk,
    bank_codec,
)
from ._display import ProgressDisplay, Sample, rate

#: Seconds to wait for the desk's and the accounts' answers; far above what
#: they take, so that a lost reply fails the run instead of hanging it.
ANSWER_TIMEOUT = 30.0

#: The bank's SQLite file when no other is given (in the current directory).
DEFAULT_DB = "hewitt-demo.db"
#: ``--db`` value for a bank kept in memory (nothing survives the run).
IN_MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to run; the defaults are those of ``hewitt demo``."""

    accounts: int = 2000
    concurrency: int = 200
    duration: float = 10.0
    seed: int | None = None
    balance: int = 1000
    #: fraction of the audit service's messages that make it crash
    crash_rate: float = 0.01
    #: the bank's SQLite file (created if missing), or IN_MEMORY
    db: str = DEFAULT_DB
    #: a PostgreSQL database to keep the bank in instead (libpq DSN or URL)
    dsn: str | None = None

    def __post_init__(self) -> None:
        if self.accounts < 2:
            raise ValueError(f"the demo needs at least 2 accounts, got {self.accounts}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if not self.duration > 0:  # also rejects nan
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.balance < 1:
            raise ValueError(f"the opening balance must be at least 1, got {self.balance}")
        if not 0 <= self.crash_rate <= 1:  # also rejects nan
            raise ValueError(f"the crash rate must be from 0 to 1, got {self.crash_rate}")

    @property
    def max_amount(self) -> int:
        # Transfers of up to half an opening balance drain some accounts within
        # seconds, so that refusals are part of every run.
        return max(1, self.balance // 2)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The figures of a finished run."""

    accounts: int
    balance: int
    #: where the bank is kept, e.g. "SQLite hewitt-demo.db"
    store: str
    #: accounts recovered from the store (opened by earlier runs)
    recovered: int
    #: what the bank's accounts were opened with, over every run on its store
    capital: int
    #: every account's balance (account 0 first) at the start and at the end
    balances_at_start: tuple[int, ...]
    balances: tuple[int, ...]
    completed: int
    refused: int
    messages: int
    elapsed: float
    total: int
    failures: int
    restarts: int
    dead_letters: int
    #: completed transfers the audit recorded, and faults injected into it
    audited: int
    audit_faults: int

    @property
    def start_total(self) -> int:
        return sum(self.balances_at_start)

    @property
    def opened(self) -> int:
        """Accounts this run opened."""
        return self.accounts - self.recovered

    @property
    def events(self) -> int:
        """Events this run persisted: two per completed transfer (a withdrawal
        and a deposit), one per account opened, one for the register."""
        return 2 * self.completed + self.opened + (1 if self.opened else 0)

    @property
    def audits_dropped(self) -> int:
        """Completed transfers the audit never recorded: each failed
        ``poison_threshold`` times in a row and went to dead letters."""
        return self.completed - self.audited

    @property
    def audits_retried(self) -> int:
        """Audit failures after which the restarted audit got the transfer again."""
        return self.audit_faults - self.audits_dropped

    @property
    def conserved(self) -> bool:
        """The total is the capital at the start (across restarts) and at the end."""
        return self.total == self.start_total == self.capital


async def run_demo(
    options: DemoOptions,
    out: TextIO,
    *,
    system: ActorSystem | None = None,
    stop: asyncio.Event | None = None,
    place: Callable[[int], Awaitable[ActorRef[AccountMessage]]] | None = None,
) -> DemoResult:
    """Run the demo, printing to ``out``; returns its figures.

    Runs on ``system`` when given (its actors are stopped before returning),
    else on a system of its own. The bank is kept where ``options.db`` says,
    unless the system has a :class:`Persistence` installed already: then in
    that one. Setting ``stop`` ends the transfer phase early. ``place(i)``
    spawns account ``i`` somewhere else (on another node, say) instead of on
    ``system``.
    """
    if stop is None:
        stop = asyncio.Event()
    if system is None:
        async with ActorSystem("hewitt-demo") as own:
            return await _run(own, options, out, stop, place)
    return await _run(system, options, out, stop, place)


async def run_demo_interruptible(options: DemoOptions, out: TextIO, nodes: int = 0) -> DemoResult:
    """:func:`run_demo` where a first Ctrl-C ends the transfers early (and the
    books are still checked); a second one interrupts as usual. With
    ``nodes``, the accounts live on that many worker node processes."""
    stop = asyncio.Event()
    restore = _stop_on_first_interrupt(stop)
    try:
        if nodes:
            from ._cluster import run_cluster_demo

            return await run_cluster_demo(options, nodes, out, stop=stop)
        return await run_demo(options, out, stop=stop)
    finally:
        restore()


async def _run(
    system: ActorSystem,
    options: DemoOptions,
    out: TextIO,
    stop: asyncio.Event,
    place: Callable[[int], Awaitable[ActorRef[AccountMessage]]] | None = None,
) -> DemoResult:
    seed = options.seed if options.seed is not None else random.randrange(1_000_000)
    _say(
        out,
        f"hewitt demo: {options.accounts:,} accounts, "
        f"{options.concurrency:,} transfers in flight, {options.duration:g} s, seed {seed}, "
        f"audit crash rate {options.crash_rate:g}",
    )
    persistence = system.extensions.get(Persistence)
    own_persistence = persistence is None
    if persistence is None:
        journal, snapshots, store = open_store(options.db, options.dsn)
        persistence = Persistence.install(system, journal, snapshots, bank_codec())
    else:
        store = f"the system's {type(persistence.journal).__name__}"
    actors: list[ActorRef[Any]] = []
    try:
        register = system.spawn(AccountRegister, name="bank")
        actors.append(register)
        books: BankBooks = await register.ask(GetBooks(), timeout=ANSWER_TIMEOUT)
        recovered = books.accounts
        count = max(options.accounts, recovered)
        if place is None:
            accounts: list[ActorRef[AccountMessage]] = [
                system.spawn(Account, i, name=f"account-{i}") for i in range(count)
            ]
        else:
            accounts = list(await asyncio.gather(*(place(i) for i in range(count))))
        actors += accounts
        # Opens the accounts the bank does not have yet; recovers every one.
        statuses: list[AccountStatus] = await asyncio.gather(
            *(account.ask(Open(options.balance), timeout=ANSWER_TIMEOUT) for account in accounts)
        )
        books = await register.ask(
            RegisterAccounts(len(accounts), sum(s.opened_with for s in statuses[recovered:])),
            timeout=ANSWER_TIMEOUT,
        )
        balances_at_start = tuple(status.balance for status in statuses)
        _say(out, _bank_line(store, len(accounts), recovered, options.balance, balances_at_start))
        desk: ActorRef[DeskMessage] = system.spawn(
            TransferDesk,
            accounts,
            options.concurrency,
            options.max_amount,
            seed,
            options.crash_rate,
            name="transfer-desk",
        )
        actors.insert(0, desk)
        with _injected_faults_not_logged():
            before = system.statistics()
            started = time.perf_counter()
            desk.tell(OpenDesk())
            await _show_progress(system, desk, options.duration, stop, started, before, out)
            if stop.is_set():
                _say(
                    out,
                    f"stopped early at {time.perf_counter() - started:.1f} s; "
                    "finishing the transfers in flight",
                )
            final: Progress = await desk.ask(CloseDesk(), timeout=ANSWER_TIMEOUT)
            # Asked once no transfer is in flight: every audit has been told, and
            # the audit answers after it has handled them all (retries included).
            audit: AuditTally = await desk.ask(GET_AUDIT_TALLY, timeout=ANSWER_TIMEOUT)
            elapsed = time.perf_counter() - started
            after = system.statistics()
        balances = await _balances(accounts)
    finally:
        await _stop_all(actors)
        if own_persistence:
            await persistence.close()
            system.extensions.pop(Persistence, None)
    result = DemoResult(
        accounts=len(accounts),
        balance=options.balance,
        store=store,
        recovered=recovered,
        capital=books.capital,
        balances_at_start=balances_at_start,
        balances=balances,
        completed=final.completed,
        refused=final.refused,
        messages=after.messages_processed - before.messages_processed,
        elapsed=elapsed,
        total=sum(balances),
        failures=after.failures - before.failures,
        restarts=after.restarts - before.restarts,
        dead_letters=after.dead_letters - before.dead_letters,
        audited=audit.recorded,
        audit_faults=audit.faults,
    )
    _print_summary(result, out)
    return result


def open_store(db: str, dsn: str | None = None) -> tuple[Journal, SnapshotStore, str]:
    """The journal and snapshot store of the bank at ``dsn`` (PostgreSQL) if
    given, else at ``db`` (a SQLite file, or :data:`IN_MEMORY`), and how to name it."""
    if dsn is not None:
        # synchronous_commit=on: an acknowledged event is in the server's flushed WAL.
        return (
            PostgresJournal(dsn, synchronous_commit="on"),
            PostgresSnapshotStore(dsn),
            f"PostgreSQL {without_password(dsn)}",
        )
    if db == IN_MEMORY:
        return InMemoryJournal(), InMemorySnapshotStore(), "in memory (not kept)"
    # Fully durable: an acknowledged withdrawal or deposit survives a power loss.
    return SqliteJournal(db, synchronous="FULL"), SqliteSnapshotStore(db), f"SQLite {db}"


def without_password(dsn: str) -> str:
    """``dsn`` with its password (URL or ``password=`` field) left out, for display."""
    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", dsn)
    return re.sub(r"\s*\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", "", dsn).strip()


def _bank_line(
    store: str, accounts: int, recovered: int, balance: int, balances: tuple[int, ...]
) -> str:
    parts = []
    if recovered:
        parts.append(f"recovered {recovered:,} accounts")
    if accounts > recovered:
        parts.append(f"opened {accounts - recovered:,} of {balance:,}")
    return f"bank: {store}: {', '.join(parts)}; total {sum(balances):,}"


async def _balances(accounts: list[ActorRef[AccountMessage]]) -> tuple[int, ...]:
    # Asked once no transfer is in flight: every deposit has been acknowledged,
    # so no money is in transit between two accounts.
    balances: list[int] = await asyncio.gather(
        *(account.ask(GetBalance(), timeout=ANSWER_TIMEOUT) for account in accounts)
    )
    return tuple(balances)


class _InjectedFaultFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedFault))


@contextmanager
def _injected_faults_not_logged() -> Iterator[None]:
    """hewitt logs every failure with its traceback: for the crashes the demo
    injects on purpose (up to thousands a second) that would only bury any
    other message. They are counted and shown instead; other failures are
    still logged."""
    logger = logging.getLogger("hewitt")
    quiet = _InjectedFaultFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)


async def _show_progress(
    system: ActorSystem,
    desk: ActorRef[DeskMessage],
    duration: float,
    stop: asyncio.Event,
    started: float,
    base: SystemStatistics,
    out: TextIO,
) -> None:
    """Refresh the progress display until ``duration`` has passed or ``stop`` is set."""
    display = ProgressDisplay(out)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        tick = 0
        while not stopped.done():
            elapsed = time.perf_counter() - started
            if elapsed >= duration:
                break
            # Ticks are counted from the start so that late wake-ups (the loop
            # is busy running actors) do not add up into a drift.
            tick += 1
            next_refresh = min(tick * display.interval, duration)
            await asyncio.wait([stopped], timeout=max(0.0, next_refresh - elapsed))
            progress: Progress = await desk.ask(GetProgress(), timeout=ANSWER_TIMEOUT)
            now = system.statistics()
            display.show(
                Sample(
                    elapsed=time.perf_counter() - started,
                    completed=progress.completed,
                    refused=progress.refused,
                    messages=now.messages_processed - base.messages_processed,
                    restarts=now.restarts - base.restarts,
                    dead_letters=now.dead_letters - base.dead_letters,
                )
            )
    finally:
        stopped.cancel()
        display.close()


async def _stop_all(refs: list[ActorRef[Any]]) -> None:
    for ref in refs:
        ref.stop()
    for ref in refs:
        await ref.wait_terminated(ANSWER_TIMEOUT)


def _print_summary(result: DemoResult, out: TextIO) -> None:
    settled = result.completed + result.refused
    lines = [
        f"accounts:            {result.accounts:,} ({result.recovered:,} recovered, "
        f"{result.opened:,} opened)",
        f"store:               {result.store}: {result.events:,} events persisted",
        f"transfers completed: {result.completed:,}",
        f"transfers refused:   {result.refused:,} (insufficient funds)",
        f"messages processed:  {result.messages:,} in {result.elapsed:.2f} s",
        f"throughput:          {rate(settled, result.elapsed):,.0f} transfers/s, "
        f"{rate(result.messages, result.elapsed):,.0f} msgs/s",
        f"audits:              {result.audited:,} recorded; {result.audit_faults:,} crashes: "
        f"{result.audits_retried:,} retried, {result.audits_dropped:,} dropped as poison",
        f"supervision:         {result.failures:,} failures, {result.restarts:,} restarts, "
        f"{result.dead_letters:,} dead letters",
    ]
    # Every failure should be an injected crash, every dead letter a dropped audit.
    unexpected_failures = result.failures - result.audit_faults
    unexpected_dead_letters = result.dead_letters - result.audits_dropped
    if unexpected_failures or unexpected_dead_letters:
        lines.append(
            f"warning:             {unexpected_failures:,} handler failures, "
            f"{unexpected_dead_letters:,} dead letters besides the audit's crashes"
        )
    if result.conserved:
        lines.append(
            f"money conserved: yes (total {result.total:,} = capital of {result.accounts:,} "
            "accounts, as at the start)"
        )
    else:
        lines.append(
            f"money conserved: NO (total {result.total:,}, {result.start_total:,} at the start, "
            f"capital of {result.accounts:,} accounts {result.capital:,})"
        )
    _say(out, "\n".join(lines))


def _stop_on_first_interrupt(stop: asyncio.Event) -> Callable[[], None]:
    """Make the first SIGINT set ``stop``; returns the function that undoes it."""
    loop = asyncio.get_running_loop()
    # Under asyncio.Runner (hewitt.run) this is the runner's handler, which
    # cancels the main task: a second Ctrl-C then still shuts the system down.
    previous = signal.getsignal(signal.SIGINT)

    def restore() -> None:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    def on_interrupt() -> None:
        stop.set()
        # For a user who does not want to wait for the transfers in flight.
        restore()

    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    except (NotImplementedError, RuntimeError, ValueError):
        # No signal handlers on this platform or off the main thread: Ctrl-C
        # then interrupts at once, as it does in any program.
        return lambda: None
    return restore
