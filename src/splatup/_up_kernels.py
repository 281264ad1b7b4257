"""Numba kernel of the support-plane cue of :func:`splatup.viewpoints.estimate_up`."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def support_scores(pos, normals, flat_w, round_w, dirs, k, slab, out):  # pragma: no cover - numba
    """For each direction u = dirs[j]: the heights h = pos . u, the floor = their (k+1)-th smallest value, and
    out[j] = sum over Gaussians with h <= floor + slab of round_w + flat_w (normal . u)^4, divided by N.

    pos, normals: [N, 3] float32; flat_w, round_w: [N] float32; dirs: [D, 3] float64; out: [D] float64."""
    n = pos.shape[0]
    for j in prange(dirs.shape[0]):
        ux, uy, uz = np.float32(dirs[j, 0]), np.float32(dirs[j, 1]), np.float32(dirs[j, 2])
        h = np.empty(n, dtype=np.float32)
        for i in range(n):
            h[i] = pos[i, 0] * ux + pos[i, 1] * uy + pos[i, 2] * uz
        top = np.partition(h, k)[k] + np.float32(slab)
        s = 0.0
        for i in range(n):
            if h[i] <= top:
                c = normals[i, 0] * ux + normals[i, 1] * uy + normals[i, 2] * uz
                c2 = c * c
                s += round_w[i] + flat_w[i] * c2 * c2
        out[j] = s / n
