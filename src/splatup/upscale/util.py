"""Shared pieces of the upscalers: argument checks, the fastmath flags, parallel chunking."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import numba
import numpy as np
import torch
from numba import njit

from .._checks import all_finite
from ..errors import SplatupInputError

# fastmath without nnan/ninf: the kernels' finiteness check (a running sum of the y pass) must not be folded away
FASTMATH = {"contract", "reassoc", "arcp", "nsz", "afn"}


PLANAR_MAX_PERIOD = 8  # phase-planar x pass for periods up to this; direct evaluation beyond
SPECIALISED_CHANNELS = (3,)  # RGB gets kernels with the channel count compiled in; other counts share one kernel


def kernel_for(table: dict, make, C: int, *variant):
    """The kernel ``make(c, *variant)`` for C channels from the cache ``table``: c = C for a specialised count,
    else 0 (read the count from the shape); ``variant``: the factory's further compile-time switches."""
    key = (C if C in SPECIALISED_CHANNELS else 0, *variant)
    if key not in table:
        table[key] = make(*key)
    return table[key]


@njit(inline="always")
def phase_to_pixels(t, o2, m0, n, r, C, Q):
    """Planar x pass, forward: the phase-r values computed at stride Q in t (every Q-th pixel of t[:n Q C]) into
    output pixels m0 .. m0 + n - 1 of phase r of the row viewed as o2 [m, (phase, channel)]."""
    o_r = o2[m0:m0 + n, r * C:(r + 1) * C]
    t_r = t[:n * Q * C].reshape(n, Q * C)
    for i in range(n):
        for c in range(C):
            o_r[i, c] = t_r[i, c]


@njit(inline="always")
def pixels_to_phase(g2, t, m0, n, r, C, Q):
    """Adjoint of :func:`phase_to_pixels`: output pixels m0 .. m0 + n - 1 of phase r into t at stride Q, zeros
    between them (t[:(Q (n - 1) + 1) C] is written)."""
    if Q > 1:
        t[:(Q * (n - 1) + 1) * C] = 0.0
    g_r = g2[m0:m0 + n, r * C:(r + 1) * C]
    t_r = t[:n * Q * C].reshape(n, Q * C)
    for i in range(n):
        for c in range(C):
            t_r[i, c] = g_r[i, c]


def n_chunks(n: int) -> int:
    """How many pieces a parallel loop over n items is cut into (a few per thread, for balance)."""
    return max(1, min(n, 4 * numba.get_num_threads()))


@contextmanager
def dynamic_chunks():
    """Let the next parallel loops hand out one chunk at a time: on a shared machine a descheduled thread
    then delays only its current chunk, not a fixed share of the work."""
    old = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(old)


def check_size(size, fn: str) -> tuple[int, int]:
    """size (H, W) as two positive Python ints, or SplatupInputError naming ``size``."""
    try:
        H, W = size
        ok = all(isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) for s in (H, W))
    except (TypeError, ValueError):
        ok = False
    if not ok or H <= 0 or W <= 0:
        raise SplatupInputError(f"{fn}: size must be (height, width), two positive integers; got {size!r}")
    return int(H), int(W)


def check_image(x, name: str, fn: str, like: torch.Tensor | None = None, like_name: str = "") -> torch.Tensor:
    """x as a 4-d [B, h, w, C] view (a leading batch axis of 1 added to [h, w, C]); errors name the argument.
    With ``like``, x must also have its shape and dtype."""
    if x is None:
        raise SplatupInputError(f"{fn}: {name} is None (render with derivatives=True to get dx, dy, dxy)")
    if not isinstance(x, torch.Tensor):
        raise SplatupInputError(f"{fn}: {name} must be a torch.Tensor [H, W, C] or [B, H, W, C], "
                                f"got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise SplatupInputError(f"{fn}: {name} must be [H, W, C] or [B, H, W, C], got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise SplatupInputError(f"{fn}: {name} must be float32 or float64, got {x.dtype}")
    if x.device.type != "cpu":
        raise SplatupInputError(f"{fn}: {name} must be a CPU tensor, got device {x.device}")
    if x.numel() == 0:
        raise SplatupInputError(f"{fn}: {name} is empty (shape {tuple(x.shape)})")
    if like is not None:
        if x.shape != like.shape:
            raise SplatupInputError(f"{fn}: {name} has shape {tuple(x.shape)}, expected {tuple(like.shape)} "
                                    f"(the shape of {like_name})")
        if x.dtype != like.dtype:
            raise SplatupInputError(f"{fn}: {name} is {x.dtype}, expected {like.dtype} (the dtype of {like_name})")
    return x if x.dim() == 4 else x.unsqueeze(0)


def check_out_dtype(dtype, like: torch.dtype, fn: str) -> torch.dtype:
    """The output dtype of an upscaler: None -> ``like`` (the input's float dtype); ``like`` itself; or torch.uint8
    (display output). Anything else raises SplatupInputError naming ``dtype``."""
    if dtype is None:
        return like
    if isinstance(dtype, torch.dtype) and dtype in (like, torch.uint8):
        return dtype
    raise SplatupInputError(f"{fn}: dtype must be None, {like} (the input's dtype) or torch.uint8 (8-bit display "
                            f"output), got {dtype!r}")


def raise_non_finite(fn: str, names: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
    """Raise SplatupInputError naming the first array holding NaN or infinity; return if there is none
    (a kernel's check sum can overflow on huge but finite input)."""
    for name, a in zip(names, arrays):
        if not all_finite(a):
            raise SplatupInputError(f"{fn}: {name} contains NaN or infinite values")
