"""Kill test: persistent accounts under load, killed with SIGKILL at random moments.

A child process (kill_worker.py) runs persistent bank accounts under load and
writes every acknowledged event on stdout. The parent kills it with SIGKILL at
a random (seeded) moment, 20+ times on the same store, and after each kill
opens the store in-process and checks:

* every acknowledged event is in the journal, with its sequence number;
* the sequence numbers of every account are contiguous from 1, every stored
  event decodes, and no command's events are there only in part (no
  half-written event or append is visible);
* the replay of the journal never overdraws an account, and recovering each
  account (snapshot + tail, in a fresh actor system) gives the replay's state.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

import hewitt
from hewitt import ActorRef, ActorSystem
from hewitt.persistence import Persistence
from tests.integration.kill_worker import (
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
#: The kill comes at a random moment up to this many seconds after the worker
#: is ready (under load); in one round in KILL_EARLY_EVERY it comes instead
#: at a random moment after the process started (often during its recovery).
MAX_DELAY = 0.35
KILL_EARLY_EVERY = 6
#: Bounds for what must happen anyway (a broken worker fails, it does not hang).
READY_TIMEOUT = 30.0
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

    def read_until(self, deadline: float, *, ready: bool = False) -> None:
        """Read until ``deadline`` or end of file (or, with ``ready``, until the
        ready line is in)."""
        while not self.eof and not (ready and b"ready\n" in self.data):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._selector.select(remaining):
                chunk = os.read(self._fd, 1 << 16)
                self.data += chunk
                self.eof = not chunk

    def close(self) -> None:
        self._selector.close()


def _run_and_kill(
    command: list[str], rng: random.Random, kill_early: bool, stderr: Path
) -> tuple[bool, list[bytes]]:
    """Start the worker, kill it at a random moment; return whether it was
    ready and the complete lines it wrote after ``ready``."""
    with stderr.open("wb") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
    assert process.stdout is not None
    output = _Output(process.stdout)
    try:
        started = time.monotonic()
        if kill_early:
            output.read_until(started + rng.uniform(0, MAX_DELAY))
        else:
            output.read_until(started + READY_TIMEOUT, ready=True)
            assert b"ready\n" in output.data, _failure("never got ready", process, stderr)
            output.read_until(time.monotonic() + rng.uniform(0, MAX_DELAY))
        assert process.poll() is None, _failure("died before the kill", process, stderr)
        process.send_signal(signal.SIGKILL)
        output.read_until(time.monotonic() + EOF_TIMEOUT)
        assert output.eof, "the worker's stdout stayed open after SIGKILL"
        assert process.wait(EOF_TIMEOUT) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
        process.stdout.close()
    data = bytes(output.data)
    ready = data.startswith(b"ready\n")
    # Each line is one write() of less than PIPE_BUF: never cut by the kill.
    assert not data or data.endswith(b"\n"), f"a partial line: {data[-200:]!r}"
    return ready, data.splitlines()[1:] if ready else []


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
    stored = 0
    for round_number in range(ROUNDS):
        command = [sys.executable, str(WORKER), backend, target, str(SEED + round_number)]
        command += ["--accounts", str(ACCOUNTS), "--clients", str(CLIENTS)]
        kill_early = round_number % KILL_EARLY_EVERY == KILL_EARLY_EVERY - 1
        ready, lines = _run_and_kill(
            command, rng, kill_early, tmp_path / f"worker-{round_number}.err"
        )
        killed_under_load += ready and bool(lines)
        for line in lines:
            ack = ack_decoder.decode(line)
            events = acked.setdefault(ack.persistence_id, {})
            assert ack.sequence_nr not in events, f"{ack} acknowledged twice"
            events[ack.sequence_nr] = ack.event
        stored = hewitt.run(_check_store(backend, target, acked))

    acknowledged = sum(len(events) for events in acked.values())
    # The kills came under load, and most of what was written was acknowledged.
    assert killed_under_load >= ROUNDS // 2
    assert acknowledged >= 500
    assert acknowledged <= stored
