"""Work statistics of a frame: how many Gaussian-pixel evaluations compositing really needs.

``exact`` counts, per pixel, the list entries a scalar kernel visits before it stops (the entry that trips the
T < 1e-4 stop included); ``lanes`` counts what the lane-blocked kernels evaluate, where the 16 pixels of a tile row
advance together until all of them are done. Scalar numba loops: this is for benchmarks, not the render path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..render.lanes import ALPHA_MAX, ALPHA_MIN, T_MIN
from ..render.lanes import TILE as LANES

# flop-equivalents per Gaussian-pixel evaluation of the blocked kernels, counted in research/kernels.md
FLOPS_PER_EVAL = {"plain": 48, "derivatives": 104}
# the best 2-thread FMA peak measured there (GFLOP/s, FP32, FMA = 2 flops); optimistic by construction
PEAK_GFLOPS = 181.0


@njit(parallel=True, cache=True)
def _count(means2d, conics, opac, offsets, gids, width, height, tiles_x, exact_out, lanes_out):
    n_tiles = offsets.shape[0] - 1
    for t in prange(n_tiles):
        s = offsets[t]
        e = offsets[t + 1]
        tx = t % tiles_x
        ty = t // tiles_x
        ex = 0
        ln = 0
        for ly in range(LANES):
            py = ty * LANES + ly
            if py >= height:
                break
            row_max = 0
            for lx in range(LANES):
                px = tx * LANES + lx
                x = px + 0.5
                y = py + 0.5
                T = 1.0
                visited = 0
                for j in range(s, e):
                    g = gids[j]
                    dx = x - means2d[g, 0]
                    dy = y - means2d[g, 1]
                    pw = -0.5 * (conics[g, 0] * dx * dx + 2.0 * conics[g, 1] * dx * dy + conics[g, 2] * dy * dy)
                    alpha = min(ALPHA_MAX, opac[g] * math.exp(pw))
                    visited += 1
                    if alpha < ALPHA_MIN:
                        continue
                    Tn = T * (1.0 - alpha)
                    if Tn < T_MIN:
                        break
                    T = Tn
                if px < width:
                    ex += visited
                row_max = max(row_max, visited)
            ln += row_max * LANES
        exact_out[t] = ex
        lanes_out[t] = ln


def count_evaluations(means2d: np.ndarray, conics: np.ndarray, opacities: np.ndarray, offsets: np.ndarray,
                      gids: np.ndarray, width: int, height: int, tiles_x: int) -> dict[str, int]:
    """{'exact': scalar-kernel evaluations, 'lanes': lane-blocked evaluations} of one frame."""
    n_tiles = offsets.shape[0] - 1
    exact = np.zeros(n_tiles, np.int64)
    lanes = np.zeros(n_tiles, np.int64)
    _count(means2d.astype(np.float64), conics.astype(np.float64), opacities.astype(np.float64), offsets, gids,
           width, height, tiles_x, exact, lanes)
    return {"exact": int(exact.sum()), "lanes": int(lanes.sum())}
