"""``python -m benchmarks``: run every (bench, impl) cell in a fresh subprocess, then
print a comparison table on stdout and optionally write the medians as JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._common import Metrics
from benchmarks._registry import BASELINE, BENCHES, IMPLS, LOWER_IS_BETTER

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cell:
    bench: str
    impl: str
    n: int
    reps: list[Metrics] = field(default_factory=list)
    error: str | None = None

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
    else:
        cell.error = str(result.get("error", "unknown error"))
    return proc.stderr


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
    others = [impl for impl in impls if impl != BASELINE] if BASELINE in impls else []
    header = ["bench", "metric", "n", *impls, *(f"{impl}/{BASELINE}" for impl in others)]
    rows = [header]
    for bench in benches:
        medians = {impl: cells[bench, impl].medians() for impl in impls}
        metrics = dict.fromkeys(BENCHES[bench].metrics)
        metrics.update(dict.fromkeys(m for impl in impls for m in medians[impl]))
        for metric in metrics:
            row = [bench, metric, str(cells[bench, impls[0]].n)]
            for impl in impls:
                value = medians[impl].get(metric)
                error = cells[bench, impl].error is not None
                row.append("ERROR" if error else "-" if value is None else _fmt(value))
            base = medians[BASELINE].get(metric) if others else None
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
            print(f"bench {name:<12} n={b.n_full} (quick {b.n_quick})  {', '.join(b.metrics)}")
        for name, i in IMPLS.items():
            print(f"impl  {name:<16} {i.target:<28} {i.description}")
        return 0
    benches: list[str] = args.only
    impls: list[str] = args.impl
    timeout = args.timeout or (600.0 if args.quick else 1800.0)
    cells: dict[tuple[str, str], Cell] = {}
    jobs: list[tuple[Cell, int]] = []
    for bench in benches:
        spec = BENCHES[bench]
        n, reps = (spec.n_quick, spec.reps_quick) if args.quick else (spec.n_full, spec.reps_full)
        reps = args.reps or reps
        for impl in impls:
            cells[bench, impl] = Cell(bench, impl, n)
        if spec.fresh_process_per_rep:  # one process per rep, impls interleaved
            jobs += [(cells[bench, impl], 1) for _ in range(reps) for impl in impls]
        else:
            jobs += [(cells[bench, impl], reps) for impl in impls]

    started = time.perf_counter()
    for index, (cell, reps) in enumerate(jobs, 1):
        if cell.error is not None:
            continue  # a failed cell is not retried
        label = f"[{index:>{len(str(len(jobs)))}}/{len(jobs)}] {cell.bench} {cell.impl} n={cell.n}"
        print(f"{label} x{reps} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        stderr = _run_job(cell, reps, timeout, args.no_gc)
        outcome = f"ERROR {cell.error}" if cell.error else "ok"
        print(f" {time.perf_counter() - t0:.1f}s {outcome}", file=sys.stderr, flush=True)
        for line in stderr.rstrip().splitlines():
            print(f"    | {line}", file=sys.stderr)
    print(f"total {time.perf_counter() - started:.1f}s", file=sys.stderr)

    mode = "quick" if args.quick else "full"
    gc_note = ", cyclic GC disabled in reps" if args.no_gc else ""
    print(
        f"hewitt benchmarks ({mode}{gc_note}): Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs\n"
        f"values are medians over repetitions; ratio columns are impl vs {BASELINE}: "
        f">1 always means the impl is better\n"
        f"(for lower-is-better metrics {', '.join(sorted(LOWER_IS_BETTER))} "
        f"the ratio is {BASELINE}/impl)"
        + ("" if BASELINE in impls else f"; no ratio columns: {BASELINE} was not run")
        + "\n"
    )
    print(_table(cells, benches, impls))
    failed = [cell for cell in cells.values() if cell.error is not None]
    if failed:
        print("\nerrors:")
        for cell in failed:
            print(f"  {cell.bench} {cell.impl}: {cell.error}")

    if args.json:
        records = [
            {"bench": cell.bench, "impl": cell.impl, "metric": metric, "value": value}
            for cell in cells.values()
            if cell.error is None
            for metric, value in cell.medians().items()
        ]
        args.json.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(records)} records to {args.json}", file=sys.stderr)
    return 1 if failed else 0
