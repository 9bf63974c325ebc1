"""Timing helpers shared by the speed parts of the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def interleaved_median_ms(fns: dict[str, tuple[Callable[[], object], int]], rounds: int = 5,
                          warmup: int = 1) -> dict[str, float]:
    """Median ms of each ``name -> (fn, calls per round)``, the functions taking turns round by round.

    Taking turns keeps the ratios between rows fair on a machine whose load
    changes while it runs.  Each function is first called ``warmup`` times
    (models loaded, interpreters created, graphs traced).
    """
    for fn, _ in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, (fn, calls) in fns.items():
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}
