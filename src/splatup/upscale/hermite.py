"""Gradient-aware upscaling: a bicubic Hermite patch per low-res cell, from values and exact derivatives.

On the cell with corners (0,0), (1,0), (0,1), (1,1) of the low-res grid (DESIGN.md)

    p(u, v) = h(u)^T F h(v),   h(t) = (1 - 3t^2 + 2t^3, 3t^2 - 2t^3, t - 2t^2 + t^3, t^3 - t^2),
    F = [[f00, f01, fy00, fy01], [f10, f11, fy10, fy11], [fx00, fx01, fxy00, fxy01], [fx10, fx11, fxy10, fxy11]]

with f_ij the value at corner (i, j), i along x; fx, fy, fxy are derivatives in low-res pixel units
(+x right, +y down). Output pixel (X, Y) samples the low-res continuous index
x = (X + 0.5) W_lr / W_hr - 0.5 (likewise y); the cell index is clamped to [0, W_lr - 2], so at the
border (and for any downscaling overhang) the edge cell's patch extrapolates with u outside [0, 1].
A low-res axis of size 1 has no cell: along it the patch becomes the first-order Taylor expansion
f + u f_x about the single pixel (u = x), which reproduces functions linear along that axis.

The patch is separable. Per output row, a y pass mixes the two low-res rows of the cell into the row of
values a = h(v) . (f, fy) and the row of x-slopes b = h(v) . (fx, fxy) at that y (contiguous, vectorised);
then an x pass evaluates out[X] = h(u) . (a[i], a[i+1], b[i], b[i+1]) in the periodic form of
``geometry.py``: for periods up to PLANAR_MAX_PERIOD (integer and simple fractional factors) each phase is
one vectorised loop over contiguous input pixels followed by a strided copy into place; otherwise each
output pixel is evaluated directly (scalar). The map is linear in (f, fx, fy, fxy); the backward is its
adjoint, made race-free without atomics by running the cells of even and odd y index in two parallel
passes (a cell writes only its own two low-res rows).

Two compile-time switches of the forward kernel: the first-order patch (dxy None: d2f/dxdy = 0, the y pass reads
three images instead of four) and the 8-bit display output (each row is evaluated in the input dtype into a
scratch row, then clamped and quantised into the uint8 output, :mod:`splatup._quantize`: no full-size float
image is made, and the bytes equal the float image quantised).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from numba import njit, prange

from .._quantize import quantize_u8
from ..errors import SplatupInputError
from .geometry import PhaseTable, phase_table, source_index
from .util import (
    FASTMATH,
    PLANAR_MAX_PERIOD,
    check_image,
    check_out_dtype,
    check_size,
    dynamic_chunks,
    kernel_for,
    n_chunks,
    phase_to_pixels,
    pixels_to_phase,
    raise_non_finite,
)

ARG_NAMES = ("color", "dx", "dy", "dxy")


def hermite_basis(t: np.ndarray) -> np.ndarray:
    """Cubic Hermite basis h(t) [..., 4]: weights of f(0), f(1), f'(0), f'(1) at t (float64)."""
    t = np.asarray(t, np.float64)
    t2 = t * t
    t3 = t2 * t
    return np.stack([1 - 3 * t2 + 2 * t3, 3 * t2 - 2 * t3, t - 2 * t2 + t3, t3 - t2], axis=-1)


def hermite_axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output pixel of one axis: cell index [n_out] int64, basis weights h(u) [n_out, 4] float64 and
    whether the cell was not clamped [n_out] bool. For n_in == 1 the weights are (1, 0, u, 0), u = x."""
    fl, rem = source_index(n_out, n_in)
    den = 2 * n_out
    if n_in == 1:
        u = (fl * den + rem) / den
        w = np.stack([np.ones_like(u), np.zeros_like(u), u, np.zeros_like(u)], axis=-1)
        return np.zeros(n_out, np.int64), w, np.ones(n_out, bool)
    cell = np.clip(fl, 0, n_in - 2)
    u = (rem + (fl - cell) * den) / den  # exact numerator, one rounding
    return cell, hermite_basis(u), fl == cell


@dataclass(frozen=True)
class HermitePlan:
    """Everything the kernels need for one (input size, output size, dtype): y cells and weights per
    output row, the output rows of each y cell (for the backward), and the x phase table."""

    ycell: np.ndarray  # [H_out] int64
    yw: np.ndarray  # [H_out, 4]
    ystep: int  # 1, or 0 for a single low-res row
    row_lo: np.ndarray  # [n_cells] first output row of each y cell
    row_hi: np.ndarray  # [n_cells] one past its last output row
    xt: PhaseTable


@lru_cache(maxsize=64)
def hermite_plan(h_out: int, w_out: int, h_in: int, w_in: int, dtype: str) -> HermitePlan:
    """Cached :class:`HermitePlan`; ``dtype`` is "float32" or "float64"."""
    ycell, yw, _ = hermite_axis(h_out, h_in)
    n_cells = max(h_in - 1, 1)
    cells = np.arange(n_cells)
    xcell, xw, xreg = hermite_axis(w_out, w_in)
    return HermitePlan(
        ycell=ycell, yw=np.ascontiguousarray(yw, dtype), ystep=1 if h_in > 1 else 0,
        row_lo=np.searchsorted(ycell, cells, "left").astype(np.int64),
        row_hi=np.searchsorted(ycell, cells, "right").astype(np.int64),
        xt=phase_table(xcell, xw, xreg, w_in, dtype),
    )


# ----------------------------------------------------------------------------------------------- kernels


@njit(inline="always", fastmath=FASTMATH)
def _x_row(a, b, o, t, C, P, Q, st, pw, lo, hi, bx, bst, bw, planar):
    """One output row: o[X*C + c] = h(u_X) . (a[i], a[i+1], b[i], b[i+1]) for channel c, i the cell of X.

    planar: per phase, evaluate the patch for every input pixel of the phase's range into t (contiguous,
    vectorised; with Q > 1 some of it unused), then copy the phase's pixels into place through strided 2-d
    views. Otherwise evaluate each output pixel directly (scalar). Indices are kept provably non-negative
    (views + range counters): numba's negative-index wraparound would otherwise become gathers.
    """
    o2 = o.reshape(o.shape[0] // (P * C), P * C)  # [m, (r, c)]
    for r in range(P):
        w0 = pw[r, 0]
        w1 = pw[r, 1]
        w2 = pw[r, 2]
        w3 = pw[r, 3]
        s = st[r]
        m0 = lo[r]
        n = hi[r] - m0
        if n <= 0:
            continue
        if planar:
            k0 = (Q * m0 + s) * C
            a_ = a[k0:]
            b_ = b[k0:]
            for k in range((Q * (n - 1) + 1) * C):
                t[k] = w0 * a_[k] + w1 * a_[C + k] + w2 * b_[k] + w3 * b_[C + k]
            phase_to_pixels(t, o2, m0, n, r, C, Q)
        else:
            for m in range(m0, hi[r]):
                ob = (P * m + r) * C
                ab = (Q * m + s) * C
                for c in range(C):
                    o[ob + c] = w0 * a[ab + c] + w1 * a[ab + C + c] + w2 * b[ab + c] + w3 * b[ab + C + c]
    for k in range(bx.shape[0]):
        w0 = bw[k, 0]
        w1 = bw[k, 1]
        w2 = bw[k, 2]
        w3 = bw[k, 3]
        ob = bx[k] * C
        ab = bst[k] * C
        for c in range(C):
            o[ob + c] = w0 * a[ab + c] + w1 * a[ab + C + c] + w2 * b[ab + c] + w3 * b[ab + C + c]


def _make_forward(n_channels: int, quantized: bool = False, twist: bool = True):
    """Forward kernel specialised at compile time: the channel count (0: any, read from the shape; a literal count
    lets LLVM unroll the channel loop of the x pass, about 2x faster than a runtime-length loop); ``quantized``: out
    is uint8 and each row, evaluated into a float scratch row, is clamped and quantised into it
    (:func:`splatup._quantize.quantize_u8`); ``twist``: read fxy, else the patch takes d2f/dxdy = 0 (fxy unused)."""

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def kernel(f, fx, fy, fxy, ycell, yw, ystep, P, Q, st, pw, lo, hi, bx, bst, bw, planar, out, nchunk, clamp,
               bounds, check):
        """Upscale [B, h, w, C] values and derivatives into out [B, H, W, C] (all C-contiguous, one float dtype;
        out uint8 when quantized).

        check[chunk] receives the sum of the chunk's y-pass rows: non-finite iff an input value read was
        non-finite (or, harmlessly, the sum overflowed). clamp: clip the output to [bounds[0], bounds[1]].
        """
        B, h, w, C = f.shape
        CC = n_channels if n_channels else C
        H = out.shape[1]
        L = w * C
        ff = f.reshape(B, h, L)
        ffx = fx.reshape(B, h, L)
        ffy = fy.reshape(B, h, L)
        ffxy = fxy.reshape(B, h, L)
        oo = out.reshape(B * H, out.shape[2] * C)
        M = oo.shape[1]
        nrows = B * H
        for ch in prange(nchunk):
            # one extra zero pixel: the right neighbour of a single-pixel row (its weights are 0)
            a = np.zeros(L + C, f.dtype)
            b = np.zeros(L + C, f.dtype)
            t = np.empty(L + C, f.dtype)
            orow = np.empty(M if quantized else 0, f.dtype)
            acc = a[L]
            for row in range(ch * nrows // nchunk, (ch + 1) * nrows // nchunk):
                bi = row // H
                Y = row - bi * H
                j0 = ycell[Y]
                j1 = j0 + ystep
                v0 = yw[Y, 0]
                v1 = yw[Y, 1]
                v2 = yw[Y, 2]
                v3 = yw[Y, 3]
                for k in range(L):  # y pass: the row of values a and of x-slopes b at this output row's y
                    ak = v0 * ff[bi, j0, k] + v1 * ff[bi, j1, k] + v2 * ffy[bi, j0, k] + v3 * ffy[bi, j1, k]
                    if twist:
                        bk = v0 * ffx[bi, j0, k] + v1 * ffx[bi, j1, k] + v2 * ffxy[bi, j0, k] + v3 * ffxy[bi, j1, k]
                    else:
                        bk = v0 * ffx[bi, j0, k] + v1 * ffx[bi, j1, k]
                    a[k] = ak
                    b[k] = bk
                    acc += ak + bk
                if quantized:
                    _x_row(a, b, orow, t, CC, P, Q, st, pw, lo, hi, bx, bst, bw, planar)
                    o8 = oo[row]
                    for k in range(M):
                        o8[k] = quantize_u8(orow[k])
                else:
                    o = oo[row]
                    _x_row(a, b, o, t, CC, P, Q, st, pw, lo, hi, bx, bst, bw, planar)
                    if clamp:
                        for k in range(M):
                            o[k] = min(max(o[k], bounds[0]), bounds[1])
            check[ch] = acc

    return kernel


@njit(inline="always", fastmath=FASTMATH)
def _x_row_adjoint(g, ga, gb, t, C, P, Q, st, pw, lo, hi, bx, bst, bw, planar):
    """Adjoint of :func:`_x_row`: add the contributions of one output row g to ga, gb (one thread owns them).

    planar: gather the phase's pixels of g into t (zeros between them when Q > 1), then add t with the
    four weights in two vectorised loops (one loop would carry a dependency: with Q = 1 the right tap of
    one pixel is the left tap of the next). Otherwise the same per output pixel, scalar.
    """
    g2 = g.reshape(g.shape[0] // (P * C), P * C)  # [m, (r, c)]
    for r in range(P):
        w0 = pw[r, 0]
        w1 = pw[r, 1]
        w2 = pw[r, 2]
        w3 = pw[r, 3]
        s = st[r]
        m0 = lo[r]
        n = hi[r] - m0
        if n <= 0:
            continue
        if planar:
            nt = (Q * (n - 1) + 1) * C
            pixels_to_phase(g2, t, m0, n, r, C, Q)
            k0 = (Q * m0 + s) * C
            ga_ = ga[k0:]
            gb_ = gb[k0:]
            for k in range(nt):
                ga_[k] += w0 * t[k]
                gb_[k] += w2 * t[k]
            ga_ = ga[k0 + C:]
            gb_ = gb[k0 + C:]
            for k in range(nt):
                ga_[k] += w1 * t[k]
                gb_[k] += w3 * t[k]
        else:
            for m in range(m0, hi[r]):
                ob = (P * m + r) * C
                ab = (Q * m + s) * C
                for c in range(C):
                    gg = g[ob + c]
                    ga[ab + c] += w0 * gg
                    gb[ab + c] += w2 * gg
            for m in range(m0, hi[r]):
                ob = (P * m + r) * C
                ab = (Q * m + s + 1) * C
                for c in range(C):
                    gg = g[ob + c]
                    ga[ab + c] += w1 * gg
                    gb[ab + c] += w3 * gg
    for k in range(bx.shape[0]):
        w0 = bw[k, 0]
        w1 = bw[k, 1]
        w2 = bw[k, 2]
        w3 = bw[k, 3]
        ob = bx[k] * C
        ab = bst[k] * C
        for c in range(C):
            gg = g[ob + c]
            ga[ab + c] += w0 * gg
            ga[ab + C + c] += w1 * gg
            gb[ab + c] += w2 * gg
            gb[ab + C + c] += w3 * gg


def _make_backward(n_channels: int):
    """Backward kernel with the channel count fixed at compile time (0: any), as :func:`_make_forward`."""

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def kernel(g, yw, ystep, row_lo, row_hi, P, Q, st, pw, lo, hi, bx, bst, bw, planar, gf, gfx, gfy, gfxy, nchunk):
        """Adjoint of the forward: g [B, H, W, C] -> gf, gfx, gfy, gfxy [B, h, w, C] (zeroed by the caller).
        The output rows of y cell j write only low-res rows j and j + ystep, so the cells of one parity run
        in parallel and the two parities one after the other."""
        B, h, w, C = gf.shape
        CC = n_channels if n_channels else C
        H = g.shape[1]
        L = w * C
        gg = g.reshape(B, H, g.shape[2] * C)
        af = gf.reshape(B, h, L)
        afx = gfx.reshape(B, h, L)
        afy = gfy.reshape(B, h, L)
        afxy = gfxy.reshape(B, h, L)
        n_cells = row_lo.shape[0]
        for parity in range(2):
            n_par = (n_cells - parity + 1) // 2
            tasks = B * n_par
            nch = min(nchunk, tasks)
            for ch in prange(nch):
                ga = np.zeros(L + C, gf.dtype)
                gb = np.zeros(L + C, gf.dtype)
                tmp = np.empty(L + C, gf.dtype)
                for t in range(ch * tasks // nch, (ch + 1) * tasks // nch):
                    bi = t // n_par
                    j0 = parity + 2 * (t - bi * n_par)
                    j1 = j0 + ystep
                    for Y in range(row_lo[j0], row_hi[j0]):
                        ga[:] = 0.0
                        gb[:] = 0.0
                        _x_row_adjoint(gg[bi, Y], ga, gb, tmp, CC, P, Q, st, pw, lo, hi, bx, bst, bw, planar)
                        v0 = yw[Y, 0]
                        v1 = yw[Y, 1]
                        v2 = yw[Y, 2]
                        v3 = yw[Y, 3]
                        for k in range(L):
                            af[bi, j0, k] += v0 * ga[k]
                            afy[bi, j0, k] += v2 * ga[k]
                            afx[bi, j0, k] += v0 * gb[k]
                            afxy[bi, j0, k] += v2 * gb[k]
                        for k in range(L):
                            af[bi, j1, k] += v1 * ga[k]
                            afy[bi, j1, k] += v3 * ga[k]
                            afx[bi, j1, k] += v1 * gb[k]
                            afxy[bi, j1, k] += v3 * gb[k]

    return kernel


_FORWARD: dict = {}  # compiled kernels by channel key (util.kernel_for)
_BACKWARD: dict = {}


def _xt_args(xt: PhaseTable) -> tuple:
    return (xt.period, xt.stride, xt.start, xt.weights, xt.lo, xt.hi, xt.border_x, xt.border_start,
            xt.border_weights, xt.period <= PLANAR_MAX_PERIOD)


def hermite_forward(f: np.ndarray, fx: np.ndarray, fy: np.ndarray, fxy: np.ndarray | None, size: tuple[int, int],
                    clamp: bool = False, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """numpy entry: [B, h, w, C] C-contiguous arrays of one float dtype -> ([B, H, W, C], finite). fxy None: the
    patch takes d2f/dxdy = 0 without reading an array. ``out`` (optional) of the input dtype, or uint8 for the
    display output (clamped and quantised per row, :mod:`splatup._quantize`; ``clamp`` is then implied).
    finite: every input value was seen and finite; False when one was not, or when downscaling in y skipped rows
    (then check the inputs)."""
    B, h, w, C = f.shape
    H, W = size
    plan = hermite_plan(H, W, h, w, f.dtype.name)
    if out is None:
        out = np.empty((B, H, W, C), f.dtype)
    quantized = out.dtype == np.uint8
    twist = fxy is not None
    nch = n_chunks(B * H)
    check = np.zeros(nch, f.dtype)
    bounds = np.array([0.0, 1.0], f.dtype)
    kernel = kernel_for(_FORWARD, _make_forward, C, quantized, twist)
    with dynamic_chunks():
        kernel(f, fx, fy, fxy if twist else f, plan.ycell, plan.yw, plan.ystep, *_xt_args(plan.xt), out, nch,
               bool(clamp), bounds, check)
    # downscaling in y skips low-res rows, which the kernel's check does not see
    return out, bool(np.isfinite(check).all()) and H >= h


def hermite_backward(g: np.ndarray, in_shape: tuple[int, int, int, int]) -> tuple[np.ndarray, ...]:
    """numpy entry: the adjoint. g [B, H, W, C] C-contiguous -> gradients of (f, fx, fy, fxy) [B, h, w, C]."""
    B, h, w, C = in_shape
    H, W = g.shape[1], g.shape[2]
    plan = hermite_plan(H, W, h, w, g.dtype.name)
    grads = tuple(np.zeros(in_shape, g.dtype) for _ in range(4))
    kernel = kernel_for(_BACKWARD, _make_backward, C)
    with dynamic_chunks():
        kernel(g, plan.yw, plan.ystep, plan.row_lo, plan.row_hi, *_xt_args(plan.xt), *grads,
               n_chunks(B * len(plan.row_lo)))
    return grads


# ------------------------------------------------------------------------------------------- autograd + API
def run_forward(color: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, dxy: torch.Tensor | None,
                size: tuple[int, int], clamp: bool, dtype: torch.dtype) -> torch.Tensor:
    """Checked [B, h, w, C] inputs -> a new [B, H, W, C] tensor of ``dtype`` (the inputs' dtype, or uint8:
    quantised in the kernel); non-finite input raises SplatupInputError naming the argument."""
    ins = (color, dx, dy) if dxy is None else (color, dx, dy, dxy)
    arrs = [t.detach().contiguous().numpy() for t in ins]
    out = torch.empty((color.shape[0], size[0], size[1], color.shape[3]), dtype=dtype)
    _, finite = hermite_forward(*arrs[:3], arrs[3] if dxy is not None else None, size, clamp=clamp, out=out.numpy())
    if not finite:
        raise_non_finite("upscale", ARG_NAMES, arrs)
    return out


class HermiteUpscale(torch.autograd.Function):
    """(color, dx, dy, dxy) [B, h, w, C] -> [B, H, W, C]; gradients w.r.t. all four (the adjoint map). dxy may be
    None (taken as zero; no gradient)."""

    @staticmethod
    def forward(ctx, color, dx, dy, dxy, size, clamp):
        ctx.in_shape = tuple(color.shape)
        return run_forward(color, dx, dy, dxy, size, clamp, color.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        grads = hermite_backward(g.detach().contiguous().numpy(), ctx.in_shape)
        return (*(torch.from_numpy(x) if need else None for x, need in zip(grads, ctx.needs_input_grad[:4])),
                None, None)


def upscale(color: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, dxy: torch.Tensor | None, size: tuple[int, int],
            clamp: bool = False, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Gradient-aware bicubic Hermite upscaling (differentiable w.r.t. all four inputs).

    color, dx, dy, dxy: [h, w, C] or [B, h, w, C], one shape, float32 (or float64); dx, dy, dxy are dC/dx,
    dC/dy, d2C/dxdy in low-res pixel units (+x right, +y down), as ``su.rasterize`` returns them. dxy None:
    the first-order patch, d2C/dxdy taken as zero without reading an image (what ``derivatives="first"``
    renders; the same result as passing zeros, cheaper).
    size: (H, W) of the output; any factor per axis (fractional, different per axis, also < 1: then each
    output pixel point-samples the patch, no antialiasing). clamp: clip the result to [0, 1] for display
    (keep False for training). dtype: None (the input dtype) or torch.uint8: 8-bit display output, each row
    clamped and quantised by floor(255 v + 0.5) as it is evaluated (no full-size float image is made; clamp
    is implied; not differentiable). Returns [H, W, C] or [B, H, W, C]. With size equal to the input size
    the float result is exactly ``color``. Non-finite input raises SplatupInputError.
    """
    fn = "upscale"
    c4 = check_image(color, "color", fn)
    others = [check_image(t, n, fn, color, "color") for t, n in zip((dx, dy), ARG_NAMES[1:3])]
    if dxy is not None:
        others.append(check_image(dxy, "dxy", fn, color, "color"))
    H, W = check_size(size, fn)
    if not isinstance(clamp, (bool, np.bool_)):
        raise SplatupInputError(f"{fn}: clamp must be True or False, got {clamp!r}")
    out_dtype = check_out_dtype(dtype, c4.dtype, fn)
    d4 = others[2] if dxy is not None else None
    if out_dtype == torch.uint8:
        out = run_forward(c4, others[0], others[1], d4, (H, W), True, torch.uint8)
    elif torch.is_grad_enabled() and any(t.requires_grad for t in (c4, *others)):
        out = HermiteUpscale.apply(c4, others[0], others[1], d4, (H, W), False)
        if clamp:
            out = out.clamp(0.0, 1.0)  # autograd: zero gradient where clipped
    else:
        out = HermiteUpscale.apply(c4, others[0], others[1], d4, (H, W), bool(clamp))  # clipped inside the kernel
    return out if color.dim() == 4 else out[0]
