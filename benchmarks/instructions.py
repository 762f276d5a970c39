"""Instructions per unit of work, counted by callgrind: a deterministic figure.

``python -m benchmarks.instructions [--only NAME[,NAME]]`` runs each small
program below under ``valgrind --tool=callgrind`` twice, with 1 unit and with
N units, and prints (instructions(N) - instructions(1)) / (N - 1): what one
unit costs, start-up excluded. Unlike the timings of ``python -m benchmarks``
it does not drift with the load of a shared machine (the same program gives
the same count), so it is the figure for before/after comparisons of the
kernel; it does not count time spent in the operating system (the event
loop's system calls), so it is no substitute for the timings. Needs valgrind.
The checkout's ``src/`` is put first on the path, so this checkout's hewitt is
counted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]

_HEWITT: Final = """
import asyncio, sys, hewitt
N = int(sys.argv[1])
class Echo(hewitt.Actor):
    def receive(self, m): self.context.reply(m)
class Counter(hewitt.Actor):
    def __init__(self, n, done): self.n, self.c, self.done = n, 0, done
    def receive(self, m):
        self.c += 1
        if self.c == self.n: self.done.set_result(None)
class Pinger(hewitt.Actor):
    def __init__(self, echo, n, done): self.echo, self.n, self.done, self.i = echo, n, done, 0
    def receive(self, m):
        self.i += 1
        if self.i == self.n: self.done.set_result(None); return
        self.echo.tell(self.i, self.context.self)
class Node(hewitt.Actor):
    def __init__(self, reply_to): self.reply_to, self.total, self.pending = reply_to, 0, 10
    def receive(self, message):
        if type(message) is tuple:
            num, size = message
            if size == 1:
                self.reply_to.tell(num); self.context.stop(); return
            size //= 10
            for k in range(10):
                self.context.spawn(Node, self.context.self).tell((num + k * size, size))
            return
        self.total += message; self.pending -= 1
        if not self.pending:
            self.reply_to.tell(self.total); self.context.stop()
class Result(hewitt.Actor):
    def __init__(self, f): self.f = f
    def receive(self, m): self.f.set_result(m)
async def main():
    direct = 0 if WORK == "ask-nodirect" else 32
    async with hewitt.ActorSystem("i", config=hewitt.SystemConfig(direct_asks=direct)) as s:
        done = asyncio.get_running_loop().create_future()
        if WORK == "tell":
            c = s.spawn(Counter, N, done); tell = c.tell
            for _ in range(N): tell("m")
            await done
        elif WORK in ("ask", "ask-nodirect"):
            ask = s.spawn(Echo).ask
            for i in range(N): await ask(i)
        elif WORK == "ping-pong":
            s.spawn(Pinger, s.spawn(Echo), N, done).tell(0); await done
        elif WORK == "skynet":
            s.spawn(Node, s.spawn(Result, done)).tell((0, N)); await done
        elif WORK == "spawn":
            refs = [s.spawn(Echo) for _ in range(N)]
            await refs[-1].ask(0)
hewitt.run(main())
"""

_FLOOR: Final = """
import asyncio, sys, uvloop
N = int(sys.argv[1])
async def count(q, n):
    get = q.get
    for _ in range(n): await get()
async def answer(q):
    get = q.get
    while True:
        i, f = await get(); f.set_result(i)
async def node(num, size, parent):
    if size == 1:
        parent.put_nowait(num); return
    results = asyncio.Queue(); size //= 10
    create_task = asyncio.get_running_loop().create_task
    for k in range(10): create_task(node(num + k * size, size, results))
    get = results.get; total = 0
    for _ in range(10): total += await get()
    parent.put_nowait(total)
async def main():
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    if WORK == "tell":
        t = loop.create_task(count(q, N)); await asyncio.sleep(0)
        put = q.put_nowait
        for _ in range(N): put("m")
        await t
    elif WORK == "ask":
        loop.create_task(answer(q)); await asyncio.sleep(0)
        put, new = q.put_nowait, loop.create_future
        for i in range(N):
            f = new(); put((i, f)); await f
    elif WORK == "skynet":
        loop.create_task(node(0, N, q)); await q.get()
asyncio.Runner(loop_factory=uvloop.new_event_loop).run(main())
"""

#: name -> (program, WORK, N, units of work for N): skynet's N is its leaves,
#: its units are its nodes.
WORKS: Final[dict[str, tuple[str, str, int, int]]] = {
    "hewitt tell": (_HEWITT, "tell", 100_000, 100_000),
    "hewitt ask (direct hand-off)": (_HEWITT, "ask", 20_000, 20_000),
    "hewitt ask-nodirect": (_HEWITT, "ask-nodirect", 20_000, 20_000),
    "hewitt ping-pong (round trip)": (_HEWITT, "ping-pong", 20_000, 20_000),
    "hewitt spawn (from outside)": (_HEWITT, "spawn", 20_000, 20_000),
    "hewitt skynet (per node)": (_HEWITT, "skynet", 10_000, 11_111),
    "floor-uvloop tell": (_FLOOR, "tell", 100_000, 100_000),
    "floor-uvloop ask": (_FLOOR, "ask", 20_000, 20_000),
    "floor-uvloop skynet (per node)": (_FLOOR, "skynet", 10_000, 11_111),
}


def _instructions(program: str, work: str, n: int) -> int:
    code = f"WORK = {work!r}\n" + program
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    done = subprocess.run(
        [*command, sys.executable, "-c", code, str(n)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--only", help="comma-separated names (substrings) to run")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    chosen = [w for w in WORKS if args.only is None or any(o in w for o in args.only.split(","))]
    print(f"{'work':34} {'instructions per unit':>22}")
    for name in chosen:
        program, work, n, units = WORKS[name]
        one = _instructions(program, work, 1)
        many = _instructions(program, work, n)
        per_unit = (many - one) / (units - 1)  # (skynet with 1 leaf is 1 node)
        print(f"{name:34} {per_unit:>22,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
