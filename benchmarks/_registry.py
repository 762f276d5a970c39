"""The impls and benches the runner knows about. Impl modules are imported lazily."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from benchmarks._common import LOOP_ENV, Metrics

BenchFn = Callable[[int], Metrics]


@dataclass(frozen=True)
class ImplSpec:
    """Where an impl lives: ``"module"`` or ``"module:attribute"`` holding the ``bench_*``
    functions, plus environment variables the cell sets before importing it."""

    target: str
    description: str
    env: Mapping[str, str] = field(default_factory=dict)
    default: bool = True  # run when --impl is not given
    features: frozenset[str] = frozenset()  # what benches with ``requires`` need
    #: features the impl has only once the code under test provides them: feature ->
    #: ``"module:attribute"``, present when that attribute exists (see :func:`features`)
    probed: Mapping[str, str] = field(default_factory=dict)
    #: a plain-Python floor: the reference of the ratios, never held to the targets
    floor: bool = False


@dataclass(frozen=True)
class BenchSpec:
    function: str  # the impl's function to call, with n, once per repetition
    n_full: int
    n_quick: int
    reps_full: int
    reps_quick: int
    metrics: tuple[str, ...]  # the metrics every impl returns, in display order
    fresh_process_per_rep: bool = False  # memory- or heap-size-sensitive benches
    #: a feature the impl must have (see ImplSpec.features); the others show "—"
    requires: str | None = None
    #: False: no ``gc.collect()`` between the repetitions of one process (only before
    #: the first), so that a repetition pays for the garbage the one before it left for
    #: the cyclic GC, as it would in a long-running program, and a slowdown shows
    collect_between_reps: bool = True


@dataclass(frozen=True)
class Comparison:
    """``bench`` against ``baseline`` on the same impl, on ``metric``: the runner
    prints ``bench / baseline`` under the table for every impl that ran both,
    with its target (``|ratio - 1| <= tolerance``; ``None``: no target, the ratio
    is only shown). When both benches run, their repetitions run in alternation,
    one per process, so that both see the same machine conditions (with every
    other bench compared with the same baseline: tell, tell-supervised,
    tell-bounded, tell, ...)."""

    bench: str
    baseline: str
    metric: str
    tolerance: float | None


#: The floors every ratio is computed against: for each bench and metric, the better
#: median of those that ran (the same plain asyncio program on the stock loop and on
#: uvloop; a user would pick the faster loop for the work). See README, "The reference".
REFERENCE_FLOORS: Final = ("floor-asyncio", "floor-uvloop")
#: How the table and the reports name that reference.
BASELINE: Final = "floor"

#: Supervision: restarts, supervisor strategies (the floors have none).
SUPERVISION: Final = "supervision"
#: Bounded mailboxes with an overflow policy, and ``send`` that waits for room (floors: none).
BOUNDED_MAILBOXES: Final = "bounded-mailboxes"
#: Per-actor timers (floors: none).
TIMERS: Final = "timers"
#: Routers (floors: none).
ROUTING: Final = "routing"
#: Persistent (event-sourced) actors, a journal and snapshots (floors: none).
PERSISTENCE: Final = "persistence"
#: The PostgreSQL journal (floors: none). Its benches also need a server: the runner
#: starts a private one unless HEWITT_BENCH_POSTGRES_DSN names one, and shows them as
#: not run when it cannot (PostgreSQL not installed).
POSTGRES: Final = "postgres"
#: Cross-system tell through the kernel codec's bytes test double: two ActorSystems in
#: one process joined only by bytes (encode -> decode -> deliver). The hewitt impls have
#: this feature when ``CODEC_PROBE`` exists (``impl_hewitt.bench_tell_codec``).
CODEC: Final = "codec"
#: The bytes test double.
CODEC_PROBE: Final = "hewitt.testing:BytesNetwork"
#: Cross-node messaging: two (or more) processes over TCP on 127.0.0.1. The hewitt
#: impls have it when ``NODES_PROBE`` exists (``node_benches.py``); ``floor-asyncio``
#: and ``floor-uvloop`` have it (their node benches are floor_nodes.py: the plain
#: asyncio TCP program); ``floor-deque`` has no event loop, hence no sockets.
NODES: Final = "nodes"
#: The node API (issue 12).
NODES_PROBE: Final = "hewitt.node:Node"

_HEWITT_FEATURES: Final = frozenset(
    {SUPERVISION, BOUNDED_MAILBOXES, TIMERS, ROUTING, PERSISTENCE, POSTGRES}
)

IMPLS: Final[dict[str, ImplSpec]] = {
    "hewitt": ImplSpec(
        "benchmarks.impl_hewitt",
        "hewitt on uvloop (hewitt.run)",
        env={LOOP_ENV: "uvloop"},
        features=_HEWITT_FEATURES,
        probed={CODEC: CODEC_PROBE, NODES: NODES_PROBE},
    ),
    "floor-asyncio": ImplSpec(
        "benchmarks.floor_asyncio",
        "plain asyncio program (tasks, asyncio.Queue, futures), stock loop",
        env={LOOP_ENV: "asyncio"},
        features=frozenset({NODES}),
        floor=True,
    ),
    "floor-uvloop": ImplSpec(
        "benchmarks.floor_asyncio",
        "the same plain asyncio program on uvloop",
        env={LOOP_ENV: "uvloop"},
        features=frozenset({NODES}),
        floor=True,
    ),
    "floor-deque": ImplSpec(
        "benchmarks.floor_deque",
        "synchronous deque-mailbox dispatcher, no event loop",
        floor=True,
    ),
    "hewitt-asyncio": ImplSpec(
        "benchmarks.impl_hewitt",
        "hewitt on the stock asyncio loop",
        env={LOOP_ENV: "asyncio"},
        default=False,
        features=_HEWITT_FEATURES,
        probed={CODEC: CODEC_PROBE, NODES: NODES_PROBE},
    ),
}

_LATENCY: Final = ("rt_per_s", "p50_us", "p99_us")

BENCHES: Final[dict[str, BenchSpec]] = {
    "tell": BenchSpec("bench_tell", 3_000_000, 500_000, 5, 3, ("msgs_per_s",)),
    "tell-supervised": BenchSpec(
        "bench_tell_supervised", 3_000_000, 500_000, 5, 3, ("msgs_per_s",), requires=SUPERVISION
    ),
    "tell-bounded": BenchSpec(
        "bench_tell_bounded", 3_000_000, 500_000, 5, 3, ("msgs_per_s",), requires=BOUNDED_MAILBOXES
    ),
    "tell-router": BenchSpec(
        "bench_tell_router", 3_000_000, 500_000, 5, 3, ("msgs_per_s",), requires=ROUTING
    ),
    "send-block": BenchSpec(
        "bench_send_block", 3_000_000, 500_000, 5, 3, ("msgs_per_s",), requires=BOUNDED_MAILBOXES
    ),
    "restart": BenchSpec(
        "bench_restart",
        200_000,
        20_000,
        5,
        3,
        ("restarts_per_s", "restart_us"),
        requires=SUPERVISION,
    ),
    "timers": BenchSpec(
        "bench_timers", 200_000, 20_000, 5, 3, ("timers_per_s", "fire_per_s"), requires=TIMERS
    ),
    "ask": BenchSpec("bench_ask", 300_000, 50_000, 5, 3, _LATENCY),
    "ask-nodirect": BenchSpec("bench_ask_nodirect", 300_000, 50_000, 5, 3, _LATENCY),
    "ask-actor": BenchSpec("bench_ask_actor", 300_000, 50_000, 5, 3, _LATENCY),
    "spawn": BenchSpec(
        "bench_spawn",
        100_000,
        50_000,
        5,
        1,
        ("spawn_per_s", "stop_per_s", "kib_per_actor"),
        fresh_process_per_rep=True,
    ),
    "fanout": BenchSpec("bench_fanout", 10_000, 10_000, 7, 3, ("secs",)),
    "skynet-1e5": BenchSpec(
        "bench_skynet", 100_000, 100_000, 5, 3, ("secs",), collect_between_reps=False
    ),
    "skynet-1e6": BenchSpec(
        "bench_skynet", 1_000_000, 1_000_000, 5, 3, ("secs",), collect_between_reps=False
    ),
    "tell-codec": BenchSpec(
        "bench_tell_codec", 1_000_000, 100_000, 5, 3, ("msgs_per_s", "codec_us"), requires=CODEC
    ),
    "node-ask": BenchSpec("bench_node_ask", 100_000, 20_000, 5, 3, _LATENCY, requires=NODES),
    "node-tell": BenchSpec(
        "bench_node_tell", 2_000_000, 300_000, 5, 3, ("msgs_per_s",), requires=NODES
    ),
    "node-scale": BenchSpec(
        "bench_node_scale",
        2_000_000,
        300_000,
        5,
        3,
        ("msgs_per_s", "per_pair_ratio", "pair_msgs_per_s"),
        requires=NODES,
    ),
    "persist-1": BenchSpec(
        "bench_persist_1", 5_000, 1_000, 5, 3, ("events_per_s",), requires=PERSISTENCE
    ),
    "persist-1000": BenchSpec(
        "bench_persist_1000", 100_000, 10_000, 5, 3, ("events_per_s",), requires=PERSISTENCE
    ),
    "persist-1000-thread": BenchSpec(
        "bench_persist_1000_thread", 100_000, 10_000, 5, 3, ("events_per_s",), requires=PERSISTENCE
    ),
    "persist-1-pg": BenchSpec(
        "bench_persist_1_pg", 5_000, 1_000, 5, 1, ("events_per_s",), requires=POSTGRES
    ),
    "persist-1000-pg": BenchSpec(
        "bench_persist_1000_pg", 100_000, 10_000, 5, 1, ("events_per_s",), requires=POSTGRES
    ),
    "recovery-replay": BenchSpec(
        "bench_recovery_replay", 1_000_000, 100_000, 5, 3, ("secs",), requires=PERSISTENCE
    ),
    "recovery-snapshots": BenchSpec(
        "bench_recovery_snapshots", 1_000_000, 100_000, 5, 3, ("secs",), requires=PERSISTENCE
    ),
}

#: Metrics where a lower value is better; their ratios are inverted (baseline / impl).
LOWER_IS_BETTER: Final = frozenset(
    {"p50_us", "p99_us", "kib_per_actor", "secs", "restart_us", "codec_us"}
)

#: Printed under the table: supervision must cost nothing while nothing fails (5%);
#: what a bounded mailbox costs a tell (no target: its admission check is Python code);
#: a tell through a round-robin router must keep >= 70% of a direct tell (|r - 1| <= 0.3);
#: what group commit gives 1,000 actors persisting at once over one (no target);
#: SQLite's thread writer against its writer process (the default), 1,000 actors (no target);
#: PostgreSQL against SQLite, 1,000 actors at once (no target);
#: what snapshots every 1,000 events take off a recovery (no target: see TARGETS);
#: what the direct ask hand-off gives (no target; on a floor both run the same program).
COMPARISONS: Final = (
    Comparison("ask-nodirect", "ask", "rt_per_s", tolerance=None),
    Comparison("tell-supervised", "tell", "msgs_per_s", tolerance=0.05),
    Comparison("tell-bounded", "tell", "msgs_per_s", tolerance=None),
    Comparison("tell-router", "tell", "msgs_per_s", tolerance=0.30),
    Comparison("persist-1000", "persist-1", "events_per_s", tolerance=None),
    Comparison("persist-1000-thread", "persist-1000", "events_per_s", tolerance=None),
    Comparison("persist-1000-pg", "persist-1000", "events_per_s", tolerance=None),
    Comparison("recovery-snapshots", "recovery-replay", "secs", tolerance=None),
)


@dataclass(frozen=True)
class Target:
    """A target for ``metric`` of ``bench`` on every impl under test (not the
    floors) that runs it: at least ``at_least`` or at most ``at_most``. With
    ``vs_floor`` the bound is on the ratio against the reference floor measured
    in the same run (see :data:`REFERENCE_FLOORS`), oriented so that ``>1`` is
    better (floor / impl for the lower-is-better metrics); else on the median
    itself. The runner prints each with the measured value, ``ok`` or
    ``OFF TARGET``, under the table."""

    bench: str
    metric: str
    at_least: float | None = None
    at_most: float | None = None
    vs_floor: bool = False

    def met(self, value: float) -> bool:
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most


#: Issue 11, section 4, against the lean floor in the same run (2 cores): skynet-1e6
#: >= 2x faster, tell >= 2x, spawn (creation) >= 8x, fanout >= 4x, ask >= 2x with the
#: direct hand-off on and >= 1.5x with it off; <= 0.6 KiB per idle actor.
#: 1,000 actors persisting at once on SQLite, fully durable: >= 50k events/s;
#: recovering an actor of 1e6 events with snapshots every 1,000: <= 0.2 s
#: (full mode; quick mode recovers 1e5 events).
#: Issue 12 (nodes), across two processes on one machine: an ask's median round trip
#: < 200 us; a tell pipe >= 1M messages/s and >= 0.5x the batched floor; pairs of
#: nodes at once keep >= 0.8 of a pair's throughput each.
TARGETS: Final = (
    Target("skynet-1e6", "secs", at_least=2.0, vs_floor=True),
    Target("tell", "msgs_per_s", at_least=2.0, vs_floor=True),
    Target("spawn", "spawn_per_s", at_least=8.0, vs_floor=True),
    Target("fanout", "secs", at_least=4.0, vs_floor=True),
    Target("ask", "rt_per_s", at_least=2.0, vs_floor=True),
    Target("ask-nodirect", "rt_per_s", at_least=1.5, vs_floor=True),
    Target("spawn", "kib_per_actor", at_most=0.6),
    Target("persist-1000", "events_per_s", at_least=50_000),
    Target("recovery-snapshots", "secs", at_most=0.2),
    Target("node-ask", "p50_us", at_most=200.0),
    Target("node-tell", "msgs_per_s", at_least=1_000_000),
    Target("node-tell", "msgs_per_s", at_least=0.5, vs_floor=True),
    Target("node-scale", "per_pair_ratio", at_least=0.8),
)

_SRC: Final = Path(__file__).resolve().parent.parent / "src"


def use_working_tree() -> None:
    """Put the checkout's ``src/`` first on ``sys.path``: the working tree's hewitt
    is what gets measured (and probed)."""
    if _SRC.is_dir() and str(_SRC) not in sys.path:
        sys.path.insert(0, str(_SRC))


@functools.cache
def _exists(target: str) -> bool:
    module_name, _, attribute = target.partition(":")
    use_working_tree()
    try:
        module = importlib.import_module(module_name)
    except Exception:  # missing, or the code under test does not import: not there
        return False
    return not attribute or hasattr(module, attribute)


def features(impl: str) -> frozenset[str]:
    """What ``impl`` has: its fixed features and those whose probe finds its target."""
    spec = IMPLS[impl]
    found = {feature for feature, target in spec.probed.items() if _exists(target)}
    return spec.features | found


def runs(impl: str, bench: str) -> bool:
    """Whether ``impl`` has what ``bench`` requires (else its cell is not run)."""
    required = BENCHES[bench].requires
    return required is None or required in features(impl)


def load_bench(impl: str, bench: str) -> BenchFn:
    """Import ``impl`` and return its function for ``bench`` (raises on any failure)."""
    module_name, _, attribute = IMPLS[impl].target.partition(":")
    target: object = importlib.import_module(module_name)
    if attribute:
        target = getattr(target, attribute)
    function = getattr(target, BENCHES[bench].function, None)
    if not callable(function):
        raise NotImplementedError(f"{impl} has no {BENCHES[bench].function}()")
    fn: BenchFn = function
    return fn
