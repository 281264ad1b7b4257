"""Classic (value-only) resamplers, the baselines of the gradient-aware upscaler.

All share the half-pixel geometry of DESIGN.md: output pixel X samples the input at the continuous index
x = (X + 0.5) n_in / n_out - 0.5 (input pixel i at index i), and the image border is replicated (taps
outside the image read the edge pixel, as cv2 BORDER_REPLICATE and torch ``interpolate`` do).

Methods (kernels per axis, separable; d = distance in input pixels):

* ``nearest``: the pixel floor(x + 0.5) = floor((X + 0.5) n_in / n_out) (torch "nearest-exact", PIL NEAREST;
  not cv2 INTER_NEAREST, which uses floor(X n_in / n_out)).
* ``bilinear``: tent kernel (cv2 INTER_LINEAR, torch bilinear align_corners=False).
* ``bicubic``: Keys cubic convolution with a = -0.75 (cv2 INTER_CUBIC, torch bicubic antialias=False).
* ``bicubic-pil``: Keys with a = -0.5 (PIL BICUBIC, torch bicubic antialias=True when upsampling).
* ``lanczos``: Lanczos-3, sinc(d) sinc(d / 3) on 6 taps, weights normalised to sum 1 (PIL LANCZOS when
  upsampling; cv2 INTER_LANCZOS4 is a different, 8-tap kernel).
* ``fd-hermite``: the Hermite patch of :func:`splatup.upscale.hermite.upscale` fed with finite-difference
  derivatives (see :func:`finite_difference_derivatives`).

PIL drops taps outside the image and renormalises, so PIL and torch-antialias results differ from these
(and from cv2) within a few pixels of the border; the interior is the same. Downscaling applies no
antialiasing: every method point-samples its interpolant (like cv2 and torch with antialias=False, unlike
PIL, whose kernels widen with the reduction factor).

Kernels: per output row, a y pass mixes the T input rows of the row's taps (contiguous, vectorised) into a
row padded by T/2 replicated pixels on each side, then an x pass in the periodic form of ``geometry.py``.
With uint8 output (``dtype=torch.uint8``) each row is evaluated into a float scratch row and quantised into the
output as in the Hermite kernel. The backward is the adjoint; output rows are grouped by their first y tap, and
groups whose first taps differ by a multiple of T write disjoint input rows, so T passes of parallel groups are
race-free.
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
from .hermite import upscale
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

METHODS = ("nearest", "bilinear", "bicubic", "bicubic-pil", "lanczos", "fd-hermite")
TAPS = {"nearest": 1, "bilinear": 2, "bicubic": 4, "bicubic-pil": 4, "lanczos": 6}


def keys_cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel W(d) with parameter a (float64)."""
    d = np.abs(np.asarray(d, np.float64))
    inner = ((a + 2) * d - (a + 3)) * d * d + 1
    outer = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, inner, np.where(d < 2, outer, 0.0))


def lanczos3(d: np.ndarray) -> np.ndarray:
    """sinc(d) sinc(d / 3) for |d| < 3, else 0; exactly 1 at d = 0 and 0 at the other integers."""
    d = np.asarray(d, np.float64)
    w = np.where(np.abs(d) < 3, np.sinc(d) * np.sinc(d / 3), 0.0)
    integer = d == np.round(d)
    return np.where(integer, (d == 0).astype(np.float64), w)


def classic_axis(n_out: int, n_in: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel of one axis: the first tap (input index, not clamped) [n_out] int64 and the tap
    weights [n_out, T] float64; tap t reads input pixel first + t (clamped to the image = replicate)."""
    fl, rem = source_index(n_out, n_in)
    u = rem / (2 * n_out)  # x - floor(x), exact fraction rounded once
    if method == "nearest":
        X = np.arange(n_out, dtype=np.int64)
        return ((2 * X + 1) * n_in) // (2 * n_out), np.ones((n_out, 1))
    if method == "bilinear":
        return fl, np.stack([1 - u, u], axis=-1)
    if method in ("bicubic", "bicubic-pil"):
        a = -0.75 if method == "bicubic" else -0.5
        d = u[:, None] - np.arange(-1, 3)[None, :]  # x - tap
        return fl - 1, keys_cubic(d, a)
    if method == "lanczos":
        d = u[:, None] - np.arange(-2, 4)[None, :]
        w = lanczos3(d)
        return fl - 2, w / w.sum(axis=1, keepdims=True)
    raise ValueError(method)


@dataclass(frozen=True)
class ClassicPlan:
    """Tables of one (input size, output size, method, dtype): y taps per output row (clamped rows),
    output rows grouped by first y tap (for the backward), and the x phase table on padded rows."""

    yrows: np.ndarray  # [H_out, T] int64, clamped
    yw: np.ndarray  # [H_out, T]
    row_lo: np.ndarray  # [n_groups] first output row of each first-tap group
    row_hi: np.ndarray  # [n_groups]
    pad: int  # replicated pixels on each side of a padded row
    xt: PhaseTable  # start indices in padded coordinates


@lru_cache(maxsize=64)
def classic_plan(h_out: int, w_out: int, h_in: int, w_in: int, method: str, dtype: str) -> ClassicPlan:
    """Cached :class:`ClassicPlan` (``dtype`` "float32" or "float64")."""
    T = TAPS[method]
    pad = T // 2
    yfirst, yw = classic_axis(h_out, h_in, method)
    yrows = np.clip(yfirst[:, None] + np.arange(T)[None, :], 0, h_in - 1)
    groups = np.arange(yfirst.min(), yfirst.max() + 1)
    row_lo = np.searchsorted(yfirst, groups, "left")
    row_hi = np.searchsorted(yfirst, groups, "right")
    # the backward's colouring: groups g, g + T, g + 2T, ... must write disjoint input rows
    used = row_hi > row_lo
    for colour in range(T):
        sel = np.flatnonzero(used & (np.arange(len(groups)) % T == colour))
        lo_rows, hi_rows = yrows[row_lo[sel], 0], yrows[row_lo[sel], T - 1]
        if np.any(lo_rows[1:] <= hi_rows[:-1]):
            raise AssertionError("classic_plan: backward colouring is not race-free")
    xfirst, xw = classic_axis(w_out, w_in, method)
    if xfirst.min() + pad < 0 or xfirst.max() + T - 1 >= w_in + 2 * pad:
        raise AssertionError("classic_plan: x taps leave the padded row")
    return ClassicPlan(
        yrows=yrows.astype(np.int64), yw=np.ascontiguousarray(yw, dtype), row_lo=row_lo.astype(np.int64),
        row_hi=row_hi.astype(np.int64), pad=pad,
        xt=phase_table(xfirst + pad, xw, np.ones(w_out, bool), w_in, dtype),
    )


# ----------------------------------------------------------------------------------------------- kernels
@njit(inline="always", fastmath=FASTMATH)
def _x_row(a, o, t, C, P, Q, st, pw, lo, hi, planar):
    """One output row from the padded row a: o[X*C + c] = sum_k w_k(X) a[(start(X) + k)*C + c].
    planar / direct as in :func:`splatup.upscale.hermite._x_row`."""
    T = pw.shape[1]
    o2 = o.reshape(o.shape[0] // (P * C), P * C)  # [m, (r, c)]
    for r in range(P):
        m0 = lo[r]
        n = hi[r] - m0
        if n <= 0:
            continue
        s = st[r]
        if planar:
            k0 = (Q * m0 + s) * C
            nt = (Q * (n - 1) + 1) * C
            a_ = a[k0:]
            w0 = pw[r, 0]
            for k in range(nt):
                t[k] = w0 * a_[k]
            for tap in range(1, T):
                a_ = a[k0 + tap * C:]
                wt = pw[r, tap]
                for k in range(nt):
                    t[k] += wt * a_[k]
            phase_to_pixels(t, o2, m0, n, r, C, Q)
        else:  # one pass per tap, its weight in a register; the first pass writes, the others add
            w0 = pw[r, 0]
            for m in range(m0, hi[r]):
                ob = (P * m + r) * C
                ab = (Q * m + s) * C
                for c in range(C):
                    o[ob + c] = w0 * a[ab + c]
            for tap in range(1, T):
                wt = pw[r, tap]
                for m in range(m0, hi[r]):
                    ob = (P * m + r) * C
                    ab = (Q * m + s + tap) * C
                    for c in range(C):
                        o[ob + c] += wt * a[ab + c]


def _make_forward(n_channels: int, quantized: bool = False):
    """Forward kernel with the channel count fixed at compile time (0: any) and, with ``quantized``, uint8 output
    quantised per row (see hermite._make_forward)."""

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def kernel(img, yrows, yw, pad, P, Q, st, pw, lo, hi, planar, out, nchunk, check):
        """Resample img [B, h, w, C] into out [B, H, W, C] (out uint8 when quantized); check[chunk] as in the
        Hermite kernel."""
        B, h, w, C = img.shape
        CC = n_channels if n_channels else C
        H = out.shape[1]
        T = yrows.shape[1]
        L = w * C
        p0 = pad * C
        ff = img.reshape(B, h, L)
        oo = out.reshape(B * H, out.shape[2] * C)
        nrows = B * H
        for ch in prange(nchunk):
            a = np.zeros(L + 2 * p0, img.dtype)
            t = np.empty(L + 2 * p0, img.dtype)
            orow = np.empty(out.shape[2] * C if quantized else 0, img.dtype)
            acc = a[0]
            mid = a[p0:p0 + L]
            for row in range(ch * nrows // nchunk, (ch + 1) * nrows // nchunk):
                bi = row // H
                Y = row - bi * H
                src = ff[bi, yrows[Y, 0]]
                wt = yw[Y, 0]
                for k in range(L):
                    mid[k] = wt * src[k]
                for tap in range(1, T):
                    src = ff[bi, yrows[Y, tap]]
                    wt = yw[Y, tap]
                    for k in range(L):
                        mid[k] += wt * src[k]
                for k in range(L):
                    acc += mid[k]
                for q in range(pad):  # replicate the edge pixels into the padding
                    for c in range(CC):
                        a[q * CC + c] = a[p0 + c]
                        a[p0 + L + q * CC + c] = a[p0 + L - CC + c]
                if quantized:
                    _x_row(a, orow, t, CC, P, Q, st, pw, lo, hi, planar)
                    o8 = oo[row]
                    for k in range(orow.shape[0]):
                        o8[k] = quantize_u8(orow[k])
                else:
                    _x_row(a, oo[row], t, CC, P, Q, st, pw, lo, hi, planar)
            check[ch] = acc

    return kernel


@njit(inline="always", fastmath=FASTMATH)
def _x_row_adjoint(g, ga, t, C, P, Q, st, pw, lo, hi, planar):
    """Adjoint of :func:`_x_row`: add one output row g into the padded row ga (one thread owns it)."""
    T = pw.shape[1]
    g2 = g.reshape(g.shape[0] // (P * C), P * C)
    for r in range(P):
        m0 = lo[r]
        n = hi[r] - m0
        if n <= 0:
            continue
        s = st[r]
        if planar:
            nt = (Q * (n - 1) + 1) * C
            pixels_to_phase(g2, t, m0, n, r, C, Q)
            k0 = (Q * m0 + s) * C
            for tap in range(T):  # one loop per tap: taps of neighbouring pixels overlap
                ga_ = ga[k0 + tap * C:]
                wt = pw[r, tap]
                for k in range(nt):
                    ga_[k] += wt * t[k]
        else:
            for tap in range(T):
                wt = pw[r, tap]
                for m in range(m0, hi[r]):
                    ob = (P * m + r) * C
                    ab = (Q * m + s + tap) * C
                    for c in range(C):
                        ga[ab + c] += wt * g[ob + c]


def _make_backward(n_channels: int):
    """Backward kernel with the channel count fixed at compile time (0: any)."""

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def kernel(g, yrows, yw, row_lo, row_hi, pad, P, Q, st, pw, lo, hi, planar, gimg, nchunk):
        """Adjoint of the forward: g [B, H, W, C] -> gimg [B, h, w, C] (zeroed by the caller). Output rows
        are grouped by first y tap; groups of one colour (index mod T) write disjoint rows and run in
        parallel, the T colours one after the other."""
        B, h, w, C = gimg.shape
        CC = n_channels if n_channels else C
        H = g.shape[1]
        T = yrows.shape[1]
        L = w * C
        p0 = pad * C
        gg = g.reshape(B, H, g.shape[2] * C)
        gi = gimg.reshape(B, h, L)
        n_groups = row_lo.shape[0]
        for colour in range(T):
            n_col = (n_groups - colour + T - 1) // T
            tasks = B * n_col
            if tasks <= 0:
                continue
            nch = min(nchunk, tasks)
            for ch in prange(nch):
                ga = np.zeros(L + 2 * p0, gimg.dtype)
                t = np.empty(L + 2 * p0, gimg.dtype)
                mid = ga[p0:p0 + L]
                for task in range(ch * tasks // nch, (ch + 1) * tasks // nch):
                    bi = task // n_col
                    grp = colour + T * (task - bi * n_col)
                    for Y in range(row_lo[grp], row_hi[grp]):
                        ga[:] = 0.0
                        _x_row_adjoint(gg[bi, Y], ga, t, CC, P, Q, st, pw, lo, hi, planar)
                        for q in range(pad):  # the padding replicated the edge pixels: fold it back
                            for c in range(CC):
                                ga[p0 + c] += ga[q * CC + c]
                                ga[p0 + L - CC + c] += ga[p0 + L + q * CC + c]
                        for tap in range(T):
                            dst = gi[bi, yrows[Y, tap]]
                            wt = yw[Y, tap]
                            for k in range(L):
                                dst[k] += wt * mid[k]

    return kernel


_FORWARD: dict = {}  # compiled kernels by channel key (util.kernel_for)
_BACKWARD: dict = {}


def _xt_args(xt: PhaseTable) -> tuple:
    return (xt.period, xt.stride, xt.start, xt.weights, xt.lo, xt.hi, xt.period <= PLANAR_MAX_PERIOD)


def classic_forward(img: np.ndarray, size: tuple[int, int], method: str,
                    out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """numpy entry: [B, h, w, C] C-contiguous float array -> ([B, H, W, C], finite). ``out`` (optional) of the
    input dtype, or uint8 for the display output (clamped and quantised per row, :mod:`splatup._quantize`).
    finite: every input value was seen and finite; False when one was not, or when downscaling in y skipped rows
    (then check the inputs)."""
    B, h, w, C = img.shape
    H, W = size
    plan = classic_plan(H, W, h, w, method, img.dtype.name)
    if out is None:
        out = np.empty((B, H, W, C), img.dtype)
    nch = n_chunks(B * H)
    check = np.zeros(nch, img.dtype)
    with dynamic_chunks():
        kernel_for(_FORWARD, _make_forward, C, out.dtype == np.uint8)(img, plan.yrows, plan.yw, plan.pad,
                                                                     *_xt_args(plan.xt), out, nch, check)
    # downscaling in y skips input rows, which the kernel's check does not see
    return out, bool(np.isfinite(check).all()) and H >= h


def classic_backward(g: np.ndarray, in_shape: tuple[int, int, int, int], method: str) -> np.ndarray:
    """numpy entry: the adjoint. g [B, H, W, C] C-contiguous -> gradient of the image [B, h, w, C]."""
    B, h, w, C = in_shape
    H, W = g.shape[1], g.shape[2]
    plan = classic_plan(H, W, h, w, method, g.dtype.name)
    grad = np.zeros(in_shape, g.dtype)
    with dynamic_chunks():
        kernel_for(_BACKWARD, _make_backward, C)(g, plan.yrows, plan.yw, plan.row_lo, plan.row_hi, plan.pad,
                                              *_xt_args(plan.xt), grad, n_chunks(B * len(plan.row_lo)))
    return grad


def run_forward(image: torch.Tensor, size: tuple[int, int], method: str, dtype: torch.dtype) -> torch.Tensor:
    """Checked [B, h, w, C] image -> a new [B, H, W, C] tensor of ``dtype`` (the image's dtype, or uint8: quantised
    in the kernel); non-finite input raises SplatupInputError naming ``image``."""
    arr = image.detach().contiguous().numpy()
    out = torch.empty((image.shape[0], size[0], size[1], image.shape[3]), dtype=dtype)
    _, finite = classic_forward(arr, size, method, out=out.numpy())
    if not finite:
        raise_non_finite("upscale_classic", ("image",), (arr,))
    return out


class ClassicResample(torch.autograd.Function):
    """image [B, h, w, C] -> [B, H, W, C] with a fixed separable kernel; the backward is the adjoint."""

    @staticmethod
    def forward(ctx, image, size, method):
        ctx.in_shape = tuple(image.shape)
        ctx.method = method
        return run_forward(image, size, method, image.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        return torch.from_numpy(classic_backward(g.detach().contiguous().numpy(), ctx.in_shape, ctx.method)), None, None


def central_difference(f: torch.Tensor, dim: int) -> torch.Tensor:
    """Derivative estimate along ``dim`` in pixel units: (f[i+1] - f[i-1]) / 2 inside, one-sided
    differences f[1] - f[0] and f[n-1] - f[n-2] at the two ends, 0 along an axis of size 1."""
    n = f.shape[dim]
    if n == 1:
        return torch.zeros_like(f)
    d = torch.empty_like(f)
    if n > 2:
        d.narrow(dim, 1, n - 2).copy_((f.narrow(dim, 2, n - 2) - f.narrow(dim, 0, n - 2)) * 0.5)
    d.narrow(dim, 0, 1).copy_(f.narrow(dim, 1, 1) - f.narrow(dim, 0, 1))
    d.narrow(dim, n - 1, 1).copy_(f.narrow(dim, n - 1, 1) - f.narrow(dim, n - 2, 1))
    return d


def finite_difference_derivatives(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f_x, f_y, f_xy) of f [B, h, w, C] by :func:`central_difference` (f_xy = D_y D_x f: inside the image
    (f(+1,+1) - f(+1,-1) - f(-1,+1) + f(-1,-1)) / 4). Exact for quadratics away from the border and for
    linear functions everywhere. Differentiable (torch ops)."""
    fx = central_difference(f, 2)
    return fx, central_difference(f, 1), central_difference(fx, 1)


def upscale_classic(image: torch.Tensor, size: tuple[int, int], method: str = "bicubic",
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """Resample ``image`` [h, w, C] or [B, h, w, C] (float32/float64) to ``size`` = (H, W) with a classic
    kernel: "nearest", "bilinear", "bicubic" (Keys a = -0.75, = cv2 INTER_CUBIC / torch bicubic),
    "bicubic-pil" (a = -0.5, = PIL BICUBIC), "lanczos" (Lanczos-3, = PIL LANCZOS) or "fd-hermite" (the
    Hermite patch with finite-difference derivatives). Half-pixel geometry, replicated border, no
    antialiasing when downscaling (see the module docstring). Differentiable w.r.t. ``image``. Returns the
    input's layout, and its dtype for ``dtype`` None; torch.uint8: 8-bit display output, each row clamped to
    [0, 1] and quantised by floor(255 v + 0.5) in the kernel as it is evaluated (every method; not
    differentiable)."""
    fn = "upscale_classic"
    if method not in METHODS:
        raise SplatupInputError(f"{fn}: method must be one of {', '.join(METHODS)}; got {method!r}")
    x = check_image(image, "image", fn)
    H, W = check_size(size, fn)
    out_dtype = check_out_dtype(dtype, x.dtype, fn)
    if method == "fd-hermite":
        # the differences would spread a NaN into the derivatives, reported under the wrong name
        raise_non_finite(fn, ("image",), (x.detach().numpy(),))
        out = upscale(x, *finite_difference_derivatives(x), size=(H, W), dtype=out_dtype)
    elif out_dtype == torch.uint8:
        out = run_forward(x, (H, W), method, torch.uint8)
    else:
        out = ClassicResample.apply(x, (H, W), method)
    return out if image.dim() == 4 else out[0]
