"""Single-pass input checks over large float arrays (numba, parallel): is every value finite, is any row zero.

One read of the data, split over the threads; the slower element-wise search that names the first bad entry runs
only when a check fails.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

_CHUNK = 1 << 14


@njit(parallel=True, cache=True)
def _all_finite(flat: np.ndarray) -> bool:
    """flat: 1D float array. x - x is 0 for finite x and NaN for NaN or +-Inf (no fastmath: the subtraction must
    not be folded away). The chunk's test is an AND over the comparisons, an integer reduction that LLVM
    vectorises (a float sum would be one long chain of dependent additions)."""
    n = flat.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    ok = np.zeros(n_chunks, np.bool_)
    for c in prange(n_chunks):
        fine = True
        for i in range(c * _CHUNK, min(n, c * _CHUNK + _CHUNK)):
            fine &= (flat[i] - flat[i]) == 0.0
        ok[c] = fine
    return ok.all()


@njit(parallel=True, cache=True)
def _any_zero_row(rows: np.ndarray) -> bool:
    """rows: 2D float array [N, K]. Whether some row is all zeros."""
    n = rows.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    hit = np.zeros(n_chunks, np.bool_)
    for c in prange(n_chunks):
        found = False
        for i in range(c * _CHUNK, min(n, c * _CHUNK + _CHUNK)):
            z = True
            for k in range(rows.shape[1]):
                z = z and rows[i, k] == 0.0
            found = found or z
        hit[c] = found
    return hit.any()


def _fast_view(a: np.ndarray | torch.Tensor) -> np.ndarray | None:
    """A numpy view of a for the numba checks (CPU float32/float64 only), else None."""
    if isinstance(a, torch.Tensor):
        if a.device.type != "cpu" or a.dtype not in (torch.float32, torch.float64):
            return None
        a = a.detach().numpy()
    return np.ascontiguousarray(a) if a.dtype in (np.float32, np.float64) else None


def all_finite(a: np.ndarray | torch.Tensor) -> bool:
    """Whether every value of the array or tensor a is finite (NaN and +-Inf are not)."""
    v = _fast_view(a)
    if v is None:
        return bool(torch.isfinite(a).all()) if isinstance(a, torch.Tensor) else bool(np.isfinite(a).all())
    return bool(_all_finite(v.reshape(-1)))


def any_zero_row(a: np.ndarray | torch.Tensor) -> bool:
    """Whether some row of the 2D array or tensor a [N, K] is all zeros."""
    v = _fast_view(a)
    if v is None:
        return bool((a == 0).all(-1).any())
    return bool(_any_zero_row(v))
