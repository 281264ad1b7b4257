"""Where each output pixel samples the input, per axis, and the periodic layout the fast kernels use.

Half-pixel geometry ("align_corners=False", DESIGN.md): output pixel X of an axis with ``n_out`` pixels
samples the input at the continuous index

    x = (X + 0.5) * n_in / n_out - 0.5 = ((2X + 1) n_in - n_out) / (2 n_out),

where input pixel i sits at index i. The numerator is an integer, so ``floor(x)`` and the fraction are
computed exactly in integer arithmetic and the fraction is rounded once (factor 1 gives x = X exactly).

Periodic layout: with g = gcd(n_out, n_in), P = n_out / g and Q = n_in / g, output pixel X = P m + r
samples x(r) + Q m. Every output pixel of phase r therefore has the same fraction (hence the same
interpolation weights, bit for bit) and its taps start Q m pixels after those of X = r. The kernels
loop over phases with the weights held in registers and over m with affine indices; the few pixels
whose taps had to be clamped at the image border (Hermite edge cells) are listed separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def source_index(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """floor(x) [n_out] int64 and the remainder [n_out] int64 with x = floor + rem / (2 n_out) exactly."""
    X = np.arange(n_out, dtype=np.int64)
    num = (2 * X + 1) * n_in - n_out
    den = 2 * n_out
    fl = num // den  # floor division: exact for negative numerators too
    return fl, num - fl * den


@dataclass(frozen=True)
class PhaseTable:
    """Per-axis taps of a separable resampler in periodic form (see the module docstring).

    Output pixel X = P m + r (m in [lo[r], hi[r])) reads input pixels start[r] + Q m + t, t < T, with
    weights weights[r, t]. The remaining output pixels (border) read border_start[k] + t with weights
    border_weights[k, t]. ``start`` may be offset by the padding the caller adds around its rows.
    """

    n_out: int
    n_in: int
    period: int  # P
    stride: int  # Q
    start: np.ndarray  # [P] int64
    weights: np.ndarray  # [P, T]
    lo: np.ndarray  # [P] int64
    hi: np.ndarray  # [P] int64
    border_x: np.ndarray  # [nb] int64
    border_start: np.ndarray  # [nb] int64
    border_weights: np.ndarray  # [nb, T]

    @property
    def taps(self) -> int:
        return int(self.weights.shape[1])


def phase_table(start: np.ndarray, weights: np.ndarray, regular: np.ndarray, n_in: int, dtype) -> PhaseTable:
    """Build a :class:`PhaseTable` from per-pixel first taps ``start`` [n_out], ``weights`` [n_out, T] and
    the mask ``regular`` [n_out] of pixels that follow the periodic rule (False where taps were clamped).

    The regular pixels of one phase must form a contiguous run of m (true when clamping happens only at
    the two ends of the axis); their weights must be identical, which the exact fraction guarantees.
    """
    n_out = int(start.shape[0])
    g = math.gcd(n_out, n_in)
    P, Q = n_out // g, n_in // g
    reg = regular.reshape(g, P)  # [m, r]
    anyreg = reg.any(axis=0)
    lo = np.where(anyreg, np.argmax(reg, axis=0), 0).astype(np.int64)
    hi = np.where(anyreg, g - np.argmax(reg[::-1], axis=0), 0).astype(np.int64)
    if not np.array_equal(reg.sum(axis=0), hi - lo):
        raise AssertionError("phase_table: regular pixels of a phase are not contiguous")
    r = np.arange(P)
    X0 = np.where(anyreg, lo * P + r, r)  # a representative regular pixel of each phase
    st = np.where(anyreg, start[X0] - Q * lo, 0).astype(np.int64)
    w = np.where(anyreg[:, None], weights[X0], 0.0)
    m = np.arange(g)[:, None]
    same = (start.reshape(g, P) == st[None] + Q * m) & (weights.reshape(g, P, -1) == w[None]).all(axis=2)
    if not same[reg].all():
        raise AssertionError("phase_table: pixels of one phase do not share their taps")
    bx = np.flatnonzero(~regular).astype(np.int64)
    return PhaseTable(
        n_out=n_out, n_in=n_in, period=P, stride=Q, start=st, weights=np.ascontiguousarray(w, dtype), lo=lo, hi=hi,
        border_x=bx, border_start=start[bx].astype(np.int64), border_weights=np.ascontiguousarray(weights[bx], dtype),
    )
