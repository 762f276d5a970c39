"""``python -m benchmarks``: run every (bench, impl) cell in a fresh subprocess, then
print a comparison table on stdout and optionally write the medians as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from benchmarks._common import POSTGRES_DSN_ENV, Metrics
from benchmarks._registry import (
    BASELINE,
    BENCHES,
    COMPARISONS,
    IMPLS,
    LOWER_IS_BETTER,
    POSTGRES,
    REFERENCE_FLOORS,
    TARGETS,
    Comparison,
    Target,
    features,
    runs,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cell:
    bench: str
    impl: str
    n: int
    reps: list[Metrics] = field(default_factory=list)
    error: str | None = None
    applies: bool = True  # False: the impl lacks what the bench requires; not run
    #: per process: what a gc.collect() after its last repetition found unreachable
    garbage: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.applies and self.error is None and bool(self.reps)

    def medians(self) -> Metrics:
        names = dict.fromkeys(name for rep in self.reps for name in rep)
        return {
            name: statistics.median(rep[name] for rep in self.reps if name in rep) for name in names
        }


def _names(value: str, known: dict[str, object], what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return list(known)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or value!r}; choose from {', '.join(known)}"
        )
    return names


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Compare hewitt with floor implementations."
    )
    parser.add_argument("--quick", action="store_true", help="small N, few repetitions")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write median records here")
    parser.add_argument(
        "--only",
        metavar="BENCH[,BENCH]",
        type=lambda v: _names(v, dict(BENCHES), "bench"),
        default=list(BENCHES),
        help=f"benches to run (default all: {', '.join(BENCHES)})",
    )
    parser.add_argument(
        "--impl",
        metavar="IMPL[,IMPL]",
        type=lambda v: _names(v, dict(IMPLS), "impl"),
        default=[name for name, spec in IMPLS.items() if spec.default],
        help=f"impls to run, or 'all' (registered: {', '.join(IMPLS)})",
    )
    parser.add_argument("--reps", type=_positive, metavar="R", help="repetitions per cell")
    parser.add_argument("--timeout", type=float, metavar="S", help="per-subprocess time limit")
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC in reps")
    parser.add_argument("--list", action="store_true", help="list benches and impls, then exit")
    return parser.parse_args(argv)


def _run_job(cell: Cell, reps: int, timeout: float, no_gc: bool) -> str:
    """Run ``reps`` repetitions of ``cell`` in one fresh subprocess, recording the outcome
    in ``cell``; return what the subprocess wrote on stderr."""
    command = [sys.executable, "-m", "benchmarks._cell", cell.bench, cell.impl, str(cell.n)]
    command += [str(reps), *(["--no-gc"] if no_gc else [])]
    try:
        proc = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        cell.error = f"timed out after {timeout:.0f}s"
        stderr = exc.stderr or ""
        return stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        cell.error = f"no result (exit status {proc.returncode})"
        return proc.stderr
    if result.get("ok"):
        cell.reps.extend(result["reps"])
        if "garbage" in result:
            cell.garbage.append(int(result["garbage"]))
    else:
        cell.error = str(result.get("error", "unknown error"))
    return proc.stderr


#: The value shown for an impl that lacks what a bench requires (e.g. supervision).
NOT_APPLICABLE = "\N{EM DASH}"


def _interleaved(jobs: list[tuple[Cell, int]], group: list[Cell]) -> list[tuple[Cell, int]]:
    """``jobs`` where the jobs of the cells in ``group`` become single repetitions, one
    per process, in turn (a, b, c, a, b, c...), placed where the first job of the
    group's last cell was."""
    members = {id(cell) for cell in group}
    counts = [sum(reps for cell, reps in jobs if cell is member) for member in group]
    turns = zip_longest(*([member] * count for member, count in zip(group, counts, strict=True)))
    alternating = [(cell, 1) for turn in turns for cell in turn if cell is not None]
    position = max(next(i for i, (cell, _) in enumerate(jobs) if cell is m) for m in group)
    before = [job for job in jobs[:position] if id(job[0]) not in members]
    after = [job for job in jobs[position:] if id(job[0]) not in members]
    return before + alternating + after


def _comparison_groups(
    cells: dict[tuple[str, str], Cell], comparisons: list[Comparison], impl: str
) -> list[list[Cell]]:
    """The cells of ``impl`` that comparisons link (directly or through a shared
    bench, e.g. tell with tell-supervised and tell-bounded), as groups whose
    repetitions must alternate; each group in bench order."""
    groups: list[list[str]] = []
    for comparison in comparisons:
        pair = [comparison.baseline, comparison.bench]
        if not all(cells[bench, impl].applies for bench in pair):
            continue
        linked = [group for group in groups if set(group) & set(pair)]
        merged = list(dict.fromkeys([*pair, *(b for group in linked for b in group)]))
        groups = [group for group in groups if group not in linked] + [merged]
    order = list(BENCHES)
    return [[cells[b, impl] for b in sorted(group, key=order.index)] for group in groups]


def _comparisons(
    cells: dict[tuple[str, str], Cell], comparisons: list[Comparison], impls: list[str]
) -> str:
    lines = []
    for comparison in comparisons:
        tolerance = comparison.tolerance
        target = "no target" if tolerance is None else f"target: within {tolerance:.0%}"
        lines.append(
            f"{comparison.bench} / {comparison.baseline} on the same impl, "
            f"{comparison.metric} (repetitions alternated; {target}):"
        )
        for impl in impls:
            bench, baseline = cells[comparison.bench, impl], cells[comparison.baseline, impl]
            if not (bench.ok and baseline.ok):
                continue
            value = bench.medians().get(comparison.metric)
            base = baseline.medians().get(comparison.metric)
            if not value or not base:
                continue
            ratio = value / base
            if tolerance is None:
                lines.append(f"  {impl:<16} {ratio:.3f}x")
                continue
            verdict = "ok" if abs(ratio - 1) <= tolerance else "OFF TARGET"
            lines.append(f"  {impl:<16} {ratio:.3f}x  {verdict}")
    return "\n".join(lines)


def _reference(
    cells: dict[tuple[str, str], Cell], bench: str, metric: str, impls: list[str]
) -> tuple[str, float] | None:
    """The reference floor of ``metric`` of ``bench``: the better median of the
    :data:`REFERENCE_FLOORS` that ran it in this run, with its impl; None if none did."""
    found = []
    for impl in REFERENCE_FLOORS:
        cell = cells.get((bench, impl))
        value = cell.medians().get(metric) if impl in impls and cell and cell.ok else None
        if value:
            found.append((impl, value))
    if not found:
        return None
    lower = metric in LOWER_IS_BETTER
    return min(found, key=lambda item: item[1] if lower else -item[1])


def _targets(cells: dict[tuple[str, str], Cell], targets: list[Target], impls: list[str]) -> str:
    lines = ["targets (impls under test; x: ratio against the reference floor, >1 is better):"]
    for target in targets:
        unit = "x" if target.vs_floor else ""
        bound = (
            f">= {_fmt(target.at_least)}{unit}"
            if target.at_least is not None
            else f"<= {_fmt(target.at_most or 0.0)}{unit}"
        )
        reference = _reference(cells, target.bench, target.metric, impls)
        for impl in impls:
            cell = cells[target.bench, impl]
            value = cell.medians().get(target.metric) if cell.ok else None
            if value is None or IMPLS[impl].floor:
                continue
            shown = _fmt(value)
            if target.vs_floor:
                if reference is None or not value:
                    lines.append(
                        f"  {target.bench} {target.metric} on {impl}: {shown} "
                        f"(target {bound}: no floor ran it)"
                    )
                    continue
                floor, base = reference
                value = base / value if target.metric in LOWER_IS_BETTER else value / base
                shown = f"{value:.2f}x ({shown} vs {_fmt(base)} on {floor})"
            verdict = "ok" if target.met(value) else "OFF TARGET"
            lines.append(
                f"  {target.bench} {target.metric} on {impl}: {shown} "
                f"(n={cell.n}; target {bound})  {verdict}"
            )
    return "\n".join(lines)


def _repetitions(cells: dict[tuple[str, str], Cell], benches: list[str], impls: list[str]) -> str:
    """Each repetition of the benches whose repetitions share a process without a
    ``gc.collect()`` between them, in order: a slowdown from one to the next shows."""
    lines = [
        "repetitions in one process, in order (no gc.collect() between them; "
        "garbage: what the last left for the cyclic GC):"
    ]
    for bench in benches:
        spec = BENCHES[bench]
        if spec.collect_between_reps:
            continue
        metric = spec.metrics[0]
        for impl in impls:
            cell = cells[bench, impl]
            values = [rep[metric] for rep in cell.reps if metric in rep]
            if not cell.ok or not values:
                continue
            trend = " -> ".join(_fmt(v) for v in values)
            drift = f"; last/first {values[-1] / values[0]:.2f}" if len(values) > 1 else ""
            garbage = f"; garbage {cell.garbage[-1]:,}" if cell.garbage else ""
            lines.append(f"  {bench} {impl}: {metric} {trend}{drift}{garbage}")
    return "\n".join(lines) if len(lines) > 1 else ""


def _provide_postgres(stack: contextlib.ExitStack) -> str | None:
    """Make sure the cells have a PostgreSQL server: the one named by
    POSTGRES_DSN_ENV, else a private one started now (stopped when ``stack``
    closes) whose DSN goes into the environment. Returns why there is none, or None."""
    if os.environ.get(POSTGRES_DSN_ENV):
        return None
    try:
        from tests.integration.persistence.pgserver import PostgresServer, PostgresUnavailable
    except ImportError as exc:
        return f"cannot import the test server helper ({exc})"
    try:
        prerequisites = PostgresServer.prerequisites()
    except PostgresUnavailable as exc:
        return str(exc)
    print("starting a private PostgreSQL server ...", end="", file=sys.stderr, flush=True)
    server = stack.enter_context(PostgresServer.started(prerequisites))
    print(f" {server.dsn}", file=sys.stderr)
    os.environ[POSTGRES_DSN_ENV] = server.dsn
    stack.callback(os.environ.pop, POSTGRES_DSN_ENV, None)
    return None


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 999_500:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 999.5:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _ratio(metric: str, value: float | None, base: float | None) -> str:
    if value is None or base is None or value == 0 or base == 0:
        return "-"
    ratio = base / value if metric in LOWER_IS_BETTER else value / base
    return f"{ratio:.2f}x"


def _table(cells: dict[tuple[str, str], Cell], benches: list[str], impls: list[str]) -> str:
    floors = [impl for impl in impls if impl in REFERENCE_FLOORS]
    others = [impl for impl in impls if impl not in REFERENCE_FLOORS] if floors else []
    ratios = ["ref", *(f"{impl}/{BASELINE}" for impl in others)] if floors else []
    header = ["bench", "metric", "n", *impls, *ratios]
    rows = [header]
    for bench in benches:
        medians = {impl: cells[bench, impl].medians() for impl in impls}
        metrics = dict.fromkeys(BENCHES[bench].metrics)
        metrics.update(dict.fromkeys(m for impl in impls for m in medians[impl]))
        for metric in metrics:
            row = [bench, metric, str(cells[bench, impls[0]].n)]
            for impl in impls:
                value = medians[impl].get(metric)
                cell = cells[bench, impl]
                if not cell.applies:
                    row.append(NOT_APPLICABLE)
                elif cell.error is not None:
                    row.append("ERROR")
                else:
                    row.append("-" if value is None else _fmt(value))
            if floors:
                reference = _reference(cells, bench, metric, impls)
                floor, base = reference if reference else ("-", None)
                row.append(floor.removeprefix("floor-"))
                row += [_ratio(metric, medians[impl].get(metric), base) for impl in others]
            rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            text.ljust(w) if i < 2 else text.rjust(w)
            for i, (text, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.list:
        for name, b in BENCHES.items():
            only = f"  (impls with {b.requires})" if b.requires else ""
            print(
                f"bench {name:<15} n={b.n_full} (quick {b.n_quick})  {', '.join(b.metrics)}{only}"
            )
        for name, i in IMPLS.items():
            has = features(name)
            shown = f" [{', '.join(sorted(has))}]" if has else ""
            print(f"impl  {name:<16} {i.target:<28} {i.description}{shown}")
        return 0
    with contextlib.ExitStack() as stack:
        no_postgres = None
        if any(BENCHES[bench].requires == POSTGRES for bench in args.only):
            no_postgres = _provide_postgres(stack)
        return _run(args, no_postgres)


def _run(args: argparse.Namespace, no_postgres: str | None) -> int:
    """Run the cells and print the report; ``no_postgres``: why the benches
    that require PostgreSQL cannot run (None: they can)."""
    benches: list[str] = args.only
    impls: list[str] = args.impl
    timeout = args.timeout or (600.0 if args.quick else 1800.0)
    cells: dict[tuple[str, str], Cell] = {}
    jobs: list[tuple[Cell, int]] = []
    for bench in benches:
        spec = BENCHES[bench]
        n, reps = (spec.n_quick, spec.reps_quick) if args.quick else (spec.n_full, spec.reps_full)
        reps = args.reps or reps
        runnable = no_postgres is None or spec.requires != POSTGRES
        for impl in impls:
            cells[bench, impl] = Cell(bench, impl, n, applies=runnable and runs(impl, bench))
        running = [impl for impl in impls if cells[bench, impl].applies]
        if spec.fresh_process_per_rep:  # one process per rep, impls interleaved
            jobs += [(cells[bench, impl], 1) for _ in range(reps) for impl in running]
        else:
            jobs += [(cells[bench, impl], reps) for impl in running]
    comparisons = [c for c in COMPARISONS if c.bench in benches and c.baseline in benches]
    for impl in impls:
        for group in _comparison_groups(cells, comparisons, impl):
            jobs = _interleaved(jobs, group)

    started = time.perf_counter()
    for index, (cell, reps) in enumerate(jobs, 1):
        if cell.error is not None:
            continue  # a failed cell is not retried
        label = f"[{index:>{len(str(len(jobs)))}}/{len(jobs)}] {cell.bench} {cell.impl} n={cell.n}"
        print(f"{label} x{reps} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        done = len(cell.reps)
        stderr = _run_job(cell, reps, timeout, args.no_gc)
        metric = BENCHES[cell.bench].metrics[0]
        values = " ".join(_fmt(rep[metric]) for rep in cell.reps[done:] if metric in rep)
        outcome = f"ERROR {cell.error}" if cell.error else f"ok {metric} {values}"
        print(f" {time.perf_counter() - t0:.1f}s {outcome}", file=sys.stderr, flush=True)
        for line in stderr.rstrip().splitlines():
            print(f"    | {line}", file=sys.stderr)
    print(f"total {time.perf_counter() - started:.1f}s", file=sys.stderr)

    mode = "quick" if args.quick else "full"
    gc_note = ", cyclic GC disabled in reps" if args.no_gc else ""
    ran_floors = [impl for impl in REFERENCE_FLOORS if impl in impls]
    print(
        f"hewitt benchmarks ({mode}{gc_note}): Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs\n"
        f"values are medians over repetitions; ratio columns are impl vs {BASELINE}, the "
        f"better median of {' and '.join(ran_floors) or ', '.join(REFERENCE_FLOORS)} for "
        f"each row (named under ref): >1 always means the impl is better\n"
        f"(for lower-is-better metrics {', '.join(sorted(LOWER_IS_BETTER))} "
        f"the ratio is {BASELINE}/impl)"
        + ("" if ran_floors else f"; no ratio columns: none of {REFERENCE_FLOORS} was run")
        + "\n"
    )
    print(_table(cells, benches, impls))
    if not all(cell.applies for cell in cells.values()):
        print(f"{NOT_APPLICABLE}: not run, the impl lacks what the bench requires (see --list)")
    if no_postgres is not None and any(BENCHES[b].requires == POSTGRES for b in benches):
        print(f"{NOT_APPLICABLE} for the PostgreSQL benches: no server ({no_postgres})")
    if comparisons:
        print("\n" + _comparisons(cells, comparisons, impls))
    repetitions = _repetitions(cells, benches, impls)
    if repetitions:
        print("\n" + repetitions)
    targets = [t for t in TARGETS if t.bench in benches]
    if targets:
        print("\n" + _targets(cells, targets, impls))
    failed = [cell for cell in cells.values() if cell.error is not None]
    if failed:
        print("\nerrors:")
        for cell in failed:
            print(f"  {cell.bench} {cell.impl}: {cell.error}")

    if args.json:
        records = [
            {
                "bench": cell.bench,
                "impl": cell.impl,
                "metric": metric,
                "value": value,
                "reps": [rep[metric] for rep in cell.reps if metric in rep],
            }
            for cell in cells.values()
            if cell.error is None
            for metric, value in cell.medians().items()
        ]
        args.json.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(records)} records to {args.json}", file=sys.stderr)
    return 1 if failed else 0
