"""Timing helpers: medians of repeated calls, interleaved so that machine drift spreads over all candidates."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_samples(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times in seconds of each zero-argument callable, ``repeats`` per callable. Each round calls every
    function once, the order rotating between rounds; ``warmup`` untimed rounds come first (JIT, caches)."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(max(1, repeats)):
        k = i % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[n]()
            samples[n].append(time.perf_counter() - t0)
    return samples


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time in seconds of each callable, timed by :func:`interleaved_samples`."""
    return {n: statistics.median(s) for n, s in interleaved_samples(fns, repeats, warmup).items()}
