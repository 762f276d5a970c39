"""Processes for the cross-node benches (``node-ask``, ``node-tell``, ``node-scale``).

The cell process starts its peers as child processes (``python -m MODULE ARGS``,
from the repository root, with the checkout's ``src/`` on ``PYTHONPATH`` and the
cell's environment, so the same ``HEWITT_BENCH_LOOP``). Everything is tied to
events, never to sleeps:

* a child prints ``ready <what>`` on stdout once it listens (on 127.0.0.1 only):
  a port for the floors, a node id as JSON for hewitt; the parent reads that line;
* a child runs until its stdin reaches end of file, which it watches on its event
  loop (:func:`stdin_reader`): the parent closes that pipe to stop it, and the
  kernel closes it if the parent dies (killed on a timeout, crashed), so a child
  never outlives its cell;
* :func:`peer` stops its child on the way out, whatever happened: stdin closed,
  then a kill if it has not exited within :data:`STOP_TIMEOUT`; a child that
  does not get ready within :data:`READY_TIMEOUT` is killed too.

``node-scale`` runs pairs of such children (:func:`scale`): a receiver, then a
sender given the receiver's ``ready`` line, which gets ready once it is connected,
sends its messages when it reads ``go`` on stdin and prints ``done <t0> <t1>``
(``time.monotonic_ns()`` when it started and when the receiver acknowledged the
last message; that clock is the same in every process of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks._common import Metrics

ROOT: Final = Path(__file__).resolve().parent.parent
#: The number of pairs ``node-scale`` runs (default: ``os.cpu_count()``).
PAIRS_ENV: Final = "HEWITT_BENCH_PAIRS"
#: Seconds a child has to print its ``ready`` line (it imports, binds, connects).
READY_TIMEOUT: Final = 60.0
#: Seconds a child has to exit once its stdin is closed before it is killed.
STOP_TIMEOUT: Final = 10.0
HOST: Final = "127.0.0.1"


@dataclass(frozen=True)
class Peer:
    """A running child process and what followed ``ready`` on its first line."""

    process: asyncio.subprocess.Process
    ready: str

    async def line(self) -> str:
        """The next line the child prints (it must print one)."""
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            code = await self.process.wait()
            raise RuntimeError(f"peer {self.process.pid} exited (status {code}) without a line")
        return line.decode().strip()

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")


def _child_env() -> dict[str, str]:
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


async def _launch(command: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=_child_env(),
    )


async def _ready(process: asyncio.subprocess.Process, command: Sequence[str]) -> Peer:
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(f"{' '.join(command)}: not ready after {READY_TIMEOUT:.0f}s") from None
    text = line.decode()
    if not text:
        code = await process.wait()
        raise RuntimeError(f"{' '.join(command)}: exited (status {code}) before it was ready")
    if not text.startswith("ready "):
        raise RuntimeError(f"{' '.join(command)}: expected 'ready ...', got {text!r}")
    return Peer(process, text.removeprefix("ready ").strip())


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        assert process.stdin is not None
        process.stdin.close()  # end of file: the child returns
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def peers(*commands: Sequence[str]) -> AsyncIterator[list[Peer]]:
    """Run ``python -m MODULE ARGS`` for each ``[MODULE, *ARGS]`` of ``commands``, all
    at once; yields them once every one is ready and stops them all when the block
    ends, whatever happened (the ones that started, if another could not)."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        for command in commands:  # one by one: if a launch fails, stop those before it
            processes.append(await _launch(command))  # noqa: PERF401
        found = await asyncio.gather(
            *(_ready(p, c) for p, c in zip(processes, commands, strict=True)),
            return_exceptions=True,
        )
        for item in found:
            if isinstance(item, BaseException):
                raise item
        yield [item for item in found if isinstance(item, Peer)]
    finally:
        await asyncio.gather(*(_stop(process) for process in processes))


@contextlib.asynccontextmanager
async def peer(module: str, *args: str) -> AsyncIterator[Peer]:
    """One child: ``python -m module args`` (see :func:`peers`)."""
    async with peers([module, *args]) as (child,):
        yield child


async def stdin_reader() -> asyncio.StreamReader:
    """In a child: a reader of its stdin on the running loop (end of file: stop)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return reader


def ready(what: object) -> None:
    """In a child: tell the parent it is ready."""
    sys.stdout.write(f"ready {what}\n")
    sys.stdout.flush()


async def serve(what: object) -> None:
    """In a receiving child, once it listens: ready, then wait for the end of stdin."""
    stdin = await stdin_reader()
    ready(what)
    await stdin.read()


async def source(send: Callable[[], Awaitable[None]]) -> None:
    """In a sending child of ``node-scale``, once it is connected: ready; on ``go``,
    ``await send()`` (it returns once the receiver acknowledged its last message) and
    print ``done <t0> <t1>``; then wait for the end of stdin."""
    stdin = await stdin_reader()
    ready("sender")
    if (await stdin.readline()).strip() != b"go":
        return  # the parent is gone
    t0 = time.monotonic_ns()
    sending = asyncio.ensure_future(send())
    closed = asyncio.ensure_future(stdin.read())
    await asyncio.wait((sending, closed), return_when=asyncio.FIRST_COMPLETED)
    if not sending.done():  # the parent is gone
        sending.cancel()
        return
    await sending  # raises if sending failed
    t1 = time.monotonic_ns()
    sys.stdout.write(f"done {t0} {t1}\n")
    sys.stdout.flush()
    await closed


def pair_count() -> int:
    """How many pairs ``node-scale`` runs: ``HEWITT_BENCH_PAIRS``, else the CPU count."""
    value = os.environ.get(PAIRS_ENV)
    pairs = int(value) if value else os.cpu_count() or 1
    if pairs < 1:
        raise ValueError(f"{PAIRS_ENV} must be at least 1, got {value!r}")
    return pairs


async def _pairs(pairs: int, n: int, receiver: Sequence[str], sender: Sequence[str]) -> float:
    """Messages per second of ``pairs`` pairs running at once, each sending ``n``:
    ``pairs * n`` over the time from the first sender's start to the last one's
    acknowledgement. ``receiver`` and ``sender`` are ``[module, *args]``; the
    sender gets the receiver's ``ready`` line as its last argument."""
    async with (
        peers(*([*receiver] for _ in range(pairs))) as receivers,
        peers(*([*sender, r.ready] for r in receivers)) as senders,
    ):
        for s in senders:
            s.send("go")
        lines = await asyncio.gather(*(s.line() for s in senders))
    spans = []
    for line in lines:
        word, t0, t1 = line.split()
        if word != "done":
            raise RuntimeError(f"a sender printed {line!r}, expected 'done <t0> <t1>'")
        spans.append((int(t0), int(t1)))
    elapsed_ns = max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)
    return pairs * n / elapsed_ns * 1e9


async def scale(n: int, receiver: Sequence[str], sender: Sequence[str]) -> Metrics:
    """``node-scale``: one pair alone, then :func:`pair_count` pairs at once, each pair
    sending ``n`` messages; ``receiver`` and ``sender`` as in :func:`_pairs`."""
    pairs = pair_count()
    print(f"node-scale: pairs={pairs} ({PAIRS_ENV}, else os.cpu_count())", file=sys.stderr)
    single = await _pairs(1, n, receiver, sender)
    total = await _pairs(pairs, n, receiver, sender)
    return {
        "msgs_per_s": total,
        "per_pair_ratio": total / (pairs * single),
        "pair_msgs_per_s": single,
    }
