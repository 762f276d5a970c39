"""The router / worker pool example (seed 000, chapter 3) as a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "worker_pool.py"


async def test_round_robin_and_consistent_hashing_pools() -> None:
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import worker_pool
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    by_turn, by_key = await worker_pool.main()
    # Round-robin: 20 jobs, each of the 4 workers gets every fourth one, in order.
    assert sorted(len(jobs) for jobs in by_turn.per_worker.values()) == [5, 5, 5, 5]
    for jobs in by_turn.per_worker.values():
        numbers = [int(text.split("-")[1]) for text in jobs]
        assert len({n % 4 for n in numbers}) == 1
    # Blocking workers on the thread pool work in parallel: well under the
    # 20 x 20 ms they would take one after another.
    assert by_turn.elapsed < 0.75 * by_turn.sequential
    # Consistent hashing: a repeated text lands on the same worker again.
    for jobs in by_key.per_worker.values():
        for text in jobs:
            assert all(
                text not in other for other in by_key.per_worker.values() if other is not jobs
            )
    assert sum(len(jobs) for jobs in by_key.per_worker.values()) == 28


def test_worker_pool_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "RoundRobin: 20 jobs on 4 workers" in result.stdout
