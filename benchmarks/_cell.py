"""Run one (bench, impl) cell in this process and print its result as JSON on stdout.

Usage: ``python -m benchmarks._cell BENCH IMPL N REPS [--no-gc]``

Prints one line: ``{"ok": true, "reps": [{metric: value, ...}, ...], "garbage": G}`` or
``{"ok": false, "error": "..."}`` (the traceback goes to stderr); ``G`` is what a
``gc.collect()`` after the last repetition found unreachable: what that repetition left
for the cyclic GC. Anything the impl prints on stdout is sent to stderr so that stdout
stays parseable.

``gc.collect()`` runs before the first repetition, and before each of the others unless
the bench has ``collect_between_reps=False`` (then a repetition pays for the garbage of
the one before it, as in a long-running program; with ``--no-gc`` it always runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import traceback
from typing import Any

from benchmarks._registry import BENCHES, IMPLS, load_bench, use_working_tree


def run_cell(bench: str, impl: str, n: int, reps: int, *, gc_enabled: bool = True) -> list[Any]:
    """Import the impl (with its environment) and run ``reps`` repetitions of ``bench``."""
    os.environ.update(IMPLS[impl].env)
    use_working_tree()  # benchmark the working tree's hewitt
    function = load_bench(impl, bench)
    collect = BENCHES[bench].collect_between_reps or not gc_enabled
    results: list[Any] = []
    for rep in range(reps):
        if rep == 0 or collect:
            gc.collect()
        if not gc_enabled:
            gc.disable()
        try:
            metrics = function(n)
        finally:
            gc.enable()
        bad = {k: v for k, v in metrics.items() if not math.isfinite(float(v))}
        if bad:
            raise ValueError(f"non-finite metrics: {bad}")
        results.append({k: float(v) for k, v in metrics.items()})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._cell")
    parser.add_argument("bench", choices=sorted(BENCHES))
    parser.add_argument("impl", choices=sorted(IMPLS))
    parser.add_argument("n", type=int)
    parser.add_argument("reps", type=int)
    parser.add_argument("--no-gc", action="store_true", help="gc.disable() during each rep")
    args = parser.parse_args(argv)
    stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        reps = run_cell(args.bench, args.impl, args.n, args.reps, gc_enabled=not args.no_gc)
        out: dict[str, Any] = {"ok": True, "reps": reps, "garbage": gc.collect()}
    except (Exception, SystemExit) as exc:  # SystemExit too: an impl may call sys.exit
        traceback.print_exc()
        message = str(exc).strip().splitlines()
        out = {"ok": False, "error": type(exc).__name__ + (f": {message[0]}" if message else "")}
    finally:
        sys.stdout = stdout
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
