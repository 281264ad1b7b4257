"""8-bit display quantisation: the one rule behind every uint8 image splatup makes.

    u8 = floor(255 * clamp(v, 0, 1) + 0.5)      (round half up)

evaluated in float64. For a float32 value v the product 255 v is exact in float64 (24 + 8 significant bits), so
the rule is applied exactly: the result is the nearest 8-bit level, and the only tie, v = 0.5 (127.5), goes to
128, which round-half-even (``np.round``) also gives. The upscalers' fused uint8 output (:func:`quantize_u8`
inlined into their kernels) and :func:`splatup.io.images.to_uint8` (every PNG, JPEG and video frame written
from a float image) both use it, so a float render saved to a file and the uint8 render are the same bytes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_CHUNK = 1 << 15


@njit(inline="always")
def quantize_u8(v):
    """One finite value (float32 or float64) -> np.uint8 by the module's rule (NaN gives an undefined level: the
    callers reject non-finite input). Clamped in the input's dtype with min / max, which compiles to faster code
    than compare-and-select here (measured in the upscaler's row loop); the fused multiply-add that fastmath
    callers may make of 255 x + 0.5 is exact as well."""
    x = min(max(v, 0.0), 1.0)
    return np.uint8(np.int32(np.float64(x) * 255.0 + 0.5))  # x >= 0: truncation is floor


@njit(parallel=True, cache=True)
def _quantize_flat(src, dst):
    """src float [n] -> dst uint8 [n], in chunks over the threads. Each chunk loops over its own slices: indexing
    the whole arrays with the global index instead measured 6x slower (not vectorised)."""
    n = src.shape[0]
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        s = src[c * _CHUNK:min(n, (c + 1) * _CHUNK)]
        d = dst[c * _CHUNK:min(n, (c + 1) * _CHUNK)]
        for i in range(s.shape[0]):
            d[i] = quantize_u8(s[i])


def quantize(arr: np.ndarray) -> np.ndarray:
    """A finite float array of any shape -> uint8 array of the same shape by the module's rule (float32 and float64
    as they are, other float types through float32, exactly)."""
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    src = np.ascontiguousarray(arr).reshape(-1)
    out = np.empty(src.shape[0], np.uint8)
    if src.shape[0]:
        _quantize_flat(src, out)
    return out.reshape(arr.shape)


__all__ = ["quantize", "quantize_u8"]
