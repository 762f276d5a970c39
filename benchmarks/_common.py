"""Helpers shared by the impl modules: metric types, latency stats, RSS, loop runners."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final

#: What every ``bench_*`` function returns: metric name -> value.
Metrics = dict[str, float]

#: Environment variable an impl may read to pick its event loop ("uvloop" or "asyncio").
#: The registry sets it per impl (``hewitt-asyncio`` sets it to "asyncio").
LOOP_ENV: Final = "HEWITT_BENCH_LOOP"

#: Environment variable with the DSN of a PostgreSQL server for the ``-pg`` persistence
#: benches (each repetition writes into a schema of its own, dropped afterwards). Unset,
#: the runner starts a private server for the run and sets it for the cells.
POSTGRES_DSN_ENV: Final = "HEWITT_BENCH_POSTGRES_DSN"

#: Every skynet actor has this many children.
SKYNET_FANOUT: Final = 10


def loop_choice(default: str = "uvloop") -> str:
    """The event loop the current cell asked for (see :data:`LOOP_ENV`)."""
    return os.environ.get(LOOP_ENV, default)


def asyncio_runner() -> asyncio.Runner:
    """A runner on the stock asyncio selector loop, whatever loop policy is installed."""
    return asyncio.Runner(loop_factory=asyncio.SelectorEventLoop)


def loop_runner(default: str = "uvloop") -> asyncio.Runner:
    """A runner on the loop :func:`loop_choice` names: uvloop, else the stock selector loop."""
    if loop_choice(default) == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio_runner()


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty sequence (q in [0, 100])."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return sorted_values[int(rank) - 1]


def latency_metrics(latencies_ns: list[int]) -> Metrics:
    """``p50_us`` and ``p99_us`` of per-round-trip latencies given in nanoseconds."""
    latencies_ns.sort()
    return {
        "p50_us": percentile(latencies_ns, 50) / 1000.0,
        "p99_us": percentile(latencies_ns, 99) / 1000.0,
    }


def rss_bytes() -> int:
    """Resident set size of this process (psutil if installed, else /proc/self/statm)."""
    try:
        psutil = importlib.import_module("psutil")
    except ImportError:
        if not sys.platform.startswith("linux"):
            raise
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


def skynet_expected(n: int) -> int:
    """The sum a skynet over ``n`` leaves numbered 0..n-1 must produce."""
    return n * (n - 1) // 2


def check_skynet_size(n: int) -> None:
    """Skynet needs a power of :data:`SKYNET_FANOUT` leaves."""
    size = n
    while size > 1 and size % SKYNET_FANOUT == 0:
        size //= SKYNET_FANOUT
    if size != 1:
        raise ValueError(f"skynet needs a power of {SKYNET_FANOUT} leaves, got {n}")


def check_skynet(n: int, result: object) -> None:
    """Fail loudly when a skynet run summed to the wrong value."""
    expected = skynet_expected(n)
    if result != expected:
        raise AssertionError(f"skynet({n}) returned {result!r}, expected {expected}")
