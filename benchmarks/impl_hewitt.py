"""The ``hewitt`` and ``hewitt-asyncio`` impls. Placeholder until written against hewitt.

Contract (see README.md): each ``bench_*(n)`` runs one repetition in this process and
returns its metrics. Honour :data:`benchmarks._common.LOOP_ENV`: run on uvloop via
``hewitt.run`` by default, on :func:`benchmarks._common.asyncio_runner` when
``loop_choice() == "asyncio"``.
"""

from __future__ import annotations

from benchmarks._common import Metrics


def _todo(bench: str) -> Metrics:
    raise NotImplementedError(f"impl_hewitt.{bench} is not written yet")


def bench_tell(n: int) -> Metrics:
    return _todo("bench_tell")


def bench_ask(n: int) -> Metrics:
    return _todo("bench_ask")


def bench_ask_actor(n: int) -> Metrics:
    return _todo("bench_ask_actor")


def bench_spawn(n: int) -> Metrics:
    return _todo("bench_spawn")


def bench_fanout(n: int) -> Metrics:
    return _todo("bench_fanout")


def bench_skynet(n: int) -> Metrics:
    return _todo("bench_skynet")
