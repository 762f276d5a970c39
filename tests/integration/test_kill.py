"""Kill test: persistent accounts under load, killed with SIGKILL at random points of their work.

A child process (kill_worker.py) runs persistent bank accounts under load and
writes every acknowledged event on stdout. The parent kills it with SIGKILL at
a random (seeded) point, 20+ times on the same store, and after each kill
opens the store in-process and checks:

* every acknowledged event is in the journal, with its sequence number;
* the sequence numbers of every account are contiguous from 1, every stored
  event decodes, and no command's events are there only in part (no
  half-written event or append is visible);
* the replay of the journal never overdraws an account, and recovering each
  account (snapshot + tail, in a fresh actor system) gives the replay's state.

The kill points are points of the worker's work, never delays, so that the
test means the same on a fast machine and on a slow one: under load, the
kill comes right after the parent has read the Nth acknowledged event (N
drawn from the seeded generator); in one round in KILL_EARLY_EVERY it comes
during recovery, right after the worker reported that recovery started, or
that its kth account recovered (k drawn too).
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

import hewitt
from hewitt import ActorRef, ActorSystem
from hewitt.persistence import Persistence
from tests.integration.kill_worker import (
    READY,
    RECOVERED,
    RECOVERING,
    Account,
    Balance,
    Command,
    Event,
    GetState,
    account_id,
    ack_decoder,
    apply,
    make_codec,
    open_stores,
)
from tests.integration.persistence.pgserver import PostgresServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

WORKER = Path(__file__).with_name("kill_worker.py")
SEED = 20_240_917
ROUNDS = 24
ACCOUNTS = 16
CLIENTS = 12
#: Under load, the kill comes right after the Nth acknowledged event, N drawn
#: from MIN_ACKS..MAX_ACKS; in one round in KILL_EARLY_EVERY it comes instead
#: during recovery (see the module docstring).
MIN_ACKS = 1
MAX_ACKS = 120
KILL_EARLY_EVERY = 6
#: Bounds for what must happen anyway (a broken worker fails, it does not hang).
STEP_TIMEOUT = 60.0
EOF_TIMEOUT = 30.0

#: Acknowledged events: persistence id -> sequence number -> event.
Acked = dict[str, dict[int, Event]]


class _Output:
    """The worker's stdout, read without blocking past a deadline."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._fd = stream.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        self.data = bytearray()
        self.eof = False

    def read_until(self, done: Callable[[bytes], bool], deadline: float) -> bool:
        """Read until ``done(data)`` (then True), end of file or ``deadline``."""
        while not done(bytes(self.data)):
            remaining = deadline - time.monotonic()
            if self.eof or remaining <= 0:
                return False
            if self._selector.select(remaining):
                chunk = os.read(self._fd, 1 << 16)
                self.data += chunk
                self.eof = not chunk
        return True

    def read_to_end(self, deadline: float) -> None:
        self.read_until(lambda _: False, deadline)

    def close(self) -> None:
        self._selector.close()


def _acks(data: bytes) -> list[bytes]:
    """The complete lines after the ready line: one acknowledged event each."""
    _, ready, after = data.partition(READY)
    return after.split(b"\n")[:-1] if ready else []


class _KillPoint:
    """What the kill waits for in the worker's output."""

    def __init__(self, rng: random.Random, kill_early: bool) -> None:
        self.acks = 0  # acknowledged events to wait for (under load)
        self.recovered = 0  # accounts to wait for (early; 0: the start of recovery)
        if kill_early:
            self.recovered = rng.randrange(ACCOUNTS)
        else:
            self.acks = rng.randint(MIN_ACKS, MAX_ACKS)

    def __str__(self) -> str:
        if self.acks:
            return f"{self.acks} acknowledged events"
        if self.recovered:
            return f"account {self.recovered} of {ACCOUNTS} recovered"
        return "the start of recovery"

    def reached(self, data: bytes) -> bool:
        if self.acks:
            return len(_acks(data)) >= self.acks
        return RECOVERING in data and data.count(RECOVERED) >= self.recovered


def _run_and_kill(command: list[str], point: _KillPoint, stderr: Path) -> tuple[bool, list[bytes]]:
    """Start the worker, kill it at ``point`` of its work; return whether it
    was ready and the acknowledged lines it wrote."""
    what, reached = str(point), point.reached
    with stderr.open("wb") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
    assert process.stdout is not None
    output = _Output(process.stdout)
    try:
        waited = output.read_until(reached, time.monotonic() + STEP_TIMEOUT)
        assert waited, _failure(f"never got to {what}", process, stderr)
        assert process.poll() is None, _failure("died before the kill", process, stderr)
        process.send_signal(signal.SIGKILL)
        output.read_to_end(time.monotonic() + EOF_TIMEOUT)
        assert output.eof, "the worker's stdout stayed open after SIGKILL"
        assert process.wait(EOF_TIMEOUT) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
        process.stdout.close()
    data = bytes(output.data)
    # Each line is one write() of less than PIPE_BUF: never cut by the kill.
    assert not data or data.endswith(b"\n"), f"a partial line: {data[-200:]!r}"
    assert reached(data)
    return READY in data, _acks(data)


def _failure(what: str, process: subprocess.Popen[bytes], stderr: Path) -> str:
    process.poll()
    return f"the worker {what} (exit status {process.returncode}):\n{stderr.read_text()}"


async def _check_store(backend: str, target: str, acked: Acked) -> int:
    """Check the store against the acknowledged events (see the module
    docstring); return how many events it holds."""
    journal, snapshots = open_stores(backend, target)
    codec = make_codec()
    replayed: dict[str, Balance] = {}
    total = 0
    try:
        for index in range(ACCOUNTS):
            pid = account_id(index)
            stored = [event async for event in journal.read_events(pid)]
            numbers = [event.sequence_nr for event in stored]
            assert numbers == list(range(1, len(stored) + 1)), f"{pid}: not contiguous"
            assert await journal.highest_sequence_nr(pid) == len(stored)
            events: list[Event] = [
                codec.decode(event.type_name, event.version, event.payload) for event in stored
            ]
            for number, event in acked.get(pid, {}).items():
                assert number <= len(events), f"acknowledged event {pid} #{number} is missing"
                assert events[number - 1] == event, f"{pid} #{number} is not what was acked"
            for command, written in _by_command(events).items():
                parts = [event.part for event in written]
                whole = list(range(written[0].parts))
                assert parts == whole, f"{pid}: {command} is in the journal only in part"
            state = Balance()
            for event in events:
                state = apply(state, event)
                assert state.balance >= 0, f"{pid} overdrawn at #{state.version}"
            replayed[pid] = state
            total += len(events)
        async with ActorSystem("kill-check") as system:
            Persistence.install(system, journal, snapshots, codec)
            refs: list[ActorRef[Command]] = [
                system.spawn(Account, account_id(i)) for i in range(ACCOUNTS)
            ]
            for index, ref in enumerate(refs):
                recovered = await ref.ask(GetState(), timeout=30.0)
                assert recovered == replayed[account_id(index)], f"recovery of {index}"
    finally:
        await journal.close()
        await snapshots.close()
    return total


def _by_command(events: list[Event]) -> dict[str, list[Event]]:
    """The events of each command (every event names its command and how many
    events that command writes)."""
    by_command: dict[str, list[Event]] = {}
    for event in events:
        by_command.setdefault(event.command, []).append(event)
    return by_command


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend, target) of an empty store: a new SQLite file, or a new schema
    on the session's private PostgreSQL server."""
    backend: str = request.param
    if backend == "sqlite":
        return backend, str(tmp_path / "bank.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return backend, f"{server.dsn}#kill_{time.time_ns()}"


def test_acknowledged_events_survive_sigkill(store: tuple[str, str], tmp_path: Path) -> None:
    backend, target = store
    rng = random.Random(SEED)
    acked: Acked = {}
    killed_under_load = 0
    awaited_acks = 0
    stored = 0
    for round_number in range(ROUNDS):
        command = [sys.executable, str(WORKER), backend, target, str(SEED + round_number)]
        command += ["--accounts", str(ACCOUNTS), "--clients", str(CLIENTS)]
        point = _KillPoint(rng, round_number % KILL_EARLY_EVERY == KILL_EARLY_EVERY - 1)
        ready, lines = _run_and_kill(command, point, tmp_path / f"worker-{round_number}.err")
        if point.acks:
            assert ready and len(lines) >= point.acks
            killed_under_load += 1
            awaited_acks += point.acks
        for line in lines:
            ack = ack_decoder.decode(line)
            events = acked.setdefault(ack.persistence_id, {})
            assert ack.sequence_nr not in events, f"{ack} acknowledged twice"
            events[ack.sequence_nr] = ack.event
        stored = hewitt.run(_check_store(backend, target, acked))

    acknowledged = sum(len(events) for events in acked.values())
    assert killed_under_load == ROUNDS - ROUNDS // KILL_EARLY_EVERY
    assert acknowledged >= awaited_acks  # each acknowledged once (checked above)
    # Everything acknowledged was stored; the rest of what is stored was in
    # flight at a kill: each client has one command (two events at most) in
    # flight at a time.
    assert acknowledged <= stored <= acknowledged + ROUNDS * CLIENTS * 2
