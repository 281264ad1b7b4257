"""Numba kernels of the EWA projection: forward (with SH colour and the binning data) and backward.

:func:`project_forward` and :func:`project_backward` take small named tuples: the scene (:class:`SceneArrays`,
numpy views of its tensors, float32 or float64: numba compiles one specialisation per dtype), the camera
(:class:`Pose`, :class:`View`), the projection's :class:`Settings`, the binning grid (:class:`BinRule`), the
outputs (:class:`Projection`) and the upstream gradients (:class:`Upstream`). Semantics, culling rules and
placeholders are those of :mod:`splatup.render.project` (see its docstring). All arithmetic is float64 (values
are widened when loaded and rounded when stored): that is why huge but finite covariances are kept, since their
2x2 determinant, inverse and eigenvalue would overflow in float32. The backward pass recomputes the forward's
intermediate values per Gaussian, takes its decisions (culled, visible, colour clamped) from the status bits the
forward wrote, and applies the chain rule by hand.

Per Gaussian (camera rotation Rc, translation tc, intrinsics fx, fy, cx, cy):

    p = Rc m + tc = (x, y, z);  zs = z if near < z < far else 1
    u = clamp(x / zs, -lim_x_neg, lim_x_pos),  v likewise;  tx = zs u,  ty = zs v
    J W = [[fx / zs, 0, -fx tx / zs^2], [0, fy / zs, -fy ty / zs^2]] Rc           (rows T0, T1)
    A = J W Rg diag(s)  (2 x 3),  Sigma2D = A A^T = [[sxx, sxy], [sxy, syy]]
    S = Sigma2D + dilation I = [[dxx, sxy], [sxy, dyy]],  det = dxx dyy - sxy^2
    conic = (dyy, -sxy, dxx) / det;  means2d = (fx x / zs + cx, fy y / zs + cy)
    opacity = sigmoid(logit) [* sqrt(max(det(Sigma2D) / det, 1e-12)) antialiased]
    colour = max(SH(normalize(m - centre)) + 0.5, 0)

Gradient conventions (those autograd gives the torch formulation): the clamp of u, v kills the gradient of
the clamped coordinate inside J (the clamped tx = zs u then depends on zs only); rows whose covariance is
culled (``ok`` False) get no gradient through means2d, conics or the antialiasing factor (their factor is
the constant 1e-6); rows not ``visible`` get none through means2d; clamps pass the gradient at equality.

The stage loops are branch-free over flat arrays with unsigned indices, so that LLVM vectorises them (with the
runtime checks :mod:`splatup.render._vectorize` allows; the colour backward stays scalar). The measurements
behind this loop shape (stages, inlined exp and log, the fastmath flags) are in docs/benchmarks.md, "Projection
kernels".
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from splatup.render import _vectorize  # (first: the LLVM limits, before any kernel compiles)

from ._kernel_cache import kernel
from .tiles import tile_range

# without nnan and ninf (the culling rules test finiteness, which those flags would let LLVM fold away) and reassoc
# (it would undo the Cody-Waite range reduction in exp64)
FASTMATH = {"nsz", "arcp", "contract"}
CHUNK = 256  # Gaussians per parallel work item

SIGMA_EXTENT = 3.0
AA_FLOOR = 1e-12  # floor of the antialiasing ratio det(Sigma2D) / det(S) (finite gradient for flat Gaussians)
DIR_EPS = 1e-12  # floor of |mean - centre| in the SH view direction

# SH constants (INRIA 3DGS), as in splatup.gaussians
C0 = 0.28209479177387814
C1 = 0.4886025119029199
C20, C21, C22, C23, C24 = 1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, \
    0.5462742152960396
C30, C31, C32, C33, C34, C35, C36 = -0.5900435899266435, 2.890611442640554, -0.4570457994644658, \
    0.3731763325901154, -0.4570457994644658, 1.445305721320277, -0.5900435899266435

# a Gaussian whose SH coefficients in use have a larger Euclidean norm (all channels) is BAD_INPUT: colours are in
# [0, 1] (trained scenes' coefficients are of order 1), and from about 1e36 on, float32 compositing and the
# gradients overflow; this bound leaves the products of compositing and backpropagation 30 orders of headroom
SH_NORM_MAX = 1e6


class SceneArrays(NamedTuple):
    """The scene as the kernels read it (numpy views, one dtype, float32 or float64, C-contiguous): means [N, 3],
    quats [N, 4] (w, x, y, z, any norm), log_scales [N, 3], opacity_logits [N], sh [N, K, 3]. Also the layout of
    the gradients :func:`project_backward` writes."""

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    sh: np.ndarray


class Pose(NamedTuple):
    """Where the camera is, float64 arrays: rotation [3, 3] and translation [3] (world to camera), centre [3]
    (world)."""

    rotation: np.ndarray
    translation: np.ndarray
    centre: np.ndarray


class View(NamedTuple):
    """The camera's lens and image (float64): focal lengths and principal point (px), the clamp of the Jacobian's
    x / z to [-lim_xn, lim_xp] and of y / z to [-lim_yn, lim_yp], image width and height (px)."""

    fx: float
    fy: float
    cx: float
    cy: float
    lim_xn: float
    lim_xp: float
    lim_yn: float
    lim_yp: float
    width: float
    height: float


class Settings(NamedTuple):
    """dilation (px^2 added to Sigma2D), near and far (camera z culling bounds), cov_max (the scene dtype's largest
    finite value: a larger Sigma2D entry is culled), norm2_min (its smallest normal value: a quaternion whose
    squared norm is smaller is flagged BAD_INPUT), k_act (SH coefficients used, 1, 4, 9 or 16), antialiased."""

    dilation: float
    near: float
    far: float
    cov_max: float
    norm2_min: float
    k_act: int
    antialiased: bool


class BinRule(NamedTuple):
    """The binning rule's constants (float64): :func:`splatup.render.tiles.contribution_extents`' k2_den =
    ALPHA_MIN (1 - margin), k_mul = 1 + margin and k_cap = 3 (1 + margin); tile size (px) and the grid's tiles_x,
    tiles_y for :func:`splatup.render.tiles.tile_range`."""

    k2_den: float
    k_mul: float
    k_cap: float
    tile: float
    tiles_x: float
    tiles_y: float


class Projection(NamedTuple):
    """What :func:`project_forward` writes (C-contiguous; scene dtype unless noted): means2d [N, 2] px,
    conics [N, 3] px^-2, opacities [N], colors [N, 3], depths [N], extents [N, 2] px, radii [N] px, visible bool [N],
    status uint8 [N] (the bits below), bin_extents float32 [N, 2] px, reach float32 [N] px, alive bool [N],
    tile_rects int32 [N, 4]."""

    means2d: np.ndarray
    conics: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray
    depths: np.ndarray
    extents: np.ndarray
    radii: np.ndarray
    visible: np.ndarray
    status: np.ndarray
    bin_extents: np.ndarray
    reach: np.ndarray
    alive: np.ndarray
    tile_rects: np.ndarray


class Upstream(NamedTuple):
    """Gradients of a loss w.r.t. the differentiable outputs (scene dtype, C-contiguous): means2d [N, 2],
    conics [N, 3], opacities [N], colors [N, 3]."""

    means2d: np.ndarray
    conics: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray


# bits of the per-Gaussian status written by the forward and read by the backward
OK = 1  # in the depth range with a finite, positive-definite 2D covariance
VISIBLE = 2  # OK and its 3-sigma box overlaps the image
COLOR_PASS = 4  # COLOR_PASS << c: SH(dir) + 0.5 >= 0 for channel c (the clamp at 0 passes the gradient)
# BAD_INPUT: a value the forward read is NaN or +-Inf, the norm of the SH coefficients it read is above
# SH_NORM_MAX, or the quaternion's squared norm is below norm2_min (zero, or too small to normalise in the dtype)
BAD_INPUT = 32

f8 = np.float64
U1, U2, U3, U4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)  # flat-index strides


# of both kernels; the numpy error model makes a zero quaternion give NaN rotations, hence a culled Gaussian (and the
# BAD_INPUT bit, from which project(validate_as=...) raises after the kernel), instead of raising inside it
OPTIONS = {"parallel": True, "fastmath": FASTMATH, "error_model": "numpy"}


def _projection_kernel(fn):
    """``njit(**OPTIONS)``, cached on disk (keyed on the package's sources: the kernels inline
    :func:`splatup.render.tiles.tile_range`) only with the LLVM limits of :mod:`._vectorize` on. numba's cache key
    ignores LLVM options, so a run that opted out (SPLATUP_LLVM_VECTORIZE=0) must neither load the vectorised
    build nor leave a scalar one for later runs: it compiles afresh."""
    return kernel(**OPTIONS)(fn) if _vectorize.APPLIED else njit(**OPTIONS)(fn)


# ----------------------------------------------------------------------------------------- exp and log (float64)
@intrinsic
def _i64_as_f64(typingctx, n):
    """Reinterpret the bits of an int64 as a float64."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f64_as_i64(typingctx, x):
    """Reinterpret the bits of a float64 as an int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def sqrt64(typingctx, x):
    """IEEE square root of a float64 as the LLVM intrinsic. math.sqrt lowers to a call of libm's sqrt, which LLVM
    turns into the intrinsic only where it can rule out errno; a call left in a loop body stops vectorisation."""
    sig = types.float64(types.float64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.DoubleType()])
        return builder.call(fn, args)

    return sig, codegen


LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * LN2_HI is exact for |k| < 2^20 (fdlibm)
LN2_LO = 1.90821492927058770002e-10
EXP_TABLE = np.array([2.0 ** (j / 64.0) for j in range(64)])  # 2^(j/64), correctly rounded
EXP_LO = -707.0  # below: 0 (exp would be < 2^-1020; subnormal results are flushed)
EXP_HI = 709.782712893384  # above: inf (float64 overflow)


@njit(inline="always")
def exp64(x):
    """exp(x) in float64 to 1 ulp; 0 below -707, inf above the float64 range. Inlined (no libm call).

    x = (64 m + j) ln2 / 64 + r with |r| <= ln2 / 128: exp(x) = 2^m 2^(j/64) exp(r), exp(r) - 1 by its Taylor
    series to r^5 (truncation < 4e-17 relative)."""
    if x < EXP_LO:
        return 0.0
    if x > EXP_HI:
        return math.inf
    fk = math.floor(x * (64.0 / 0.6931471805599453) + 0.5)
    k = np.int64(fk)
    r = (x - fk * (LN2_HI / 64.0)) - fk * (LN2_LO / 64.0)
    r2 = r * r
    p = r + r2 * ((0.5 + r * (1.0 / 6.0)) + r2 * (1.0 / 24.0 + r * (1.0 / 120.0)))
    t = EXP_TABLE[k & 63]
    # 2^m = 2 * 2^(m - 1) keeps the biased exponent in range for m in [-1021, 1024]
    return (t + t * p) * _i64_as_f64(((k >> 6) + 1022) << 52) * 2.0


@njit(inline="always")
def log64(x):
    """Natural log of a positive normal float64 to 2 ulp. Inlined (no libm call).

    x = 2^e m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, by its odd
    series to s^21 (Estrin's scheme: short dependency chains)."""
    bits = _f64_as_i64(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _i64_as_f64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # mantissa in [1, 2)
    big = m > 1.4142135623730951
    m = 0.5 * m if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    t = s * s
    t2 = t * t
    t4 = t2 * t2
    p = (((1.0 / 3.0 + t * (1.0 / 5.0)) + t2 * (1.0 / 7.0 + t * (1.0 / 9.0)))
         + t4 * ((1.0 / 11.0 + t * (1.0 / 13.0)) + t2 * (1.0 / 15.0 + t * (1.0 / 17.0)))
         + t4 * t4 * (1.0 / 19.0 + t * (1.0 / 21.0)))
    fe = f8(e)
    return fe * LN2_HI + (2.0 * s + (2.0 * s * t * p + fe * LN2_LO))


# ----------------------------------------------------------------------------------------- per-Gaussian pieces
# The pieces take scalars and tuples, not arrays: the forward kernel hoists the camera constants into tuples before
# its loops and indexes flat arrays, which lets LLVM vectorise those loops (see project_forward).
@njit(inline="always")
def _entries3x3(a):
    """The 9 entries of a 3 x 3 array, row-major, as a tuple of floats."""
    return (f8(a[0, 0]), f8(a[0, 1]), f8(a[0, 2]), f8(a[1, 0]), f8(a[1, 1]), f8(a[1, 2]),
            f8(a[2, 0]), f8(a[2, 1]), f8(a[2, 2]))


@njit(inline="always")
def _finite(v):
    """math.isfinite(v) as arithmetic that vectorises: v - v is 0 for finite v and NaN for NaN or +-inf (the
    fastmath flags leave out nnan and ninf, so LLVM keeps the subtraction)."""
    return (v - v) == 0.0


@njit(inline="always")
def _camera_point(mx, my, mz, rc, tc3):
    """Camera-space point (x, y, z) of the world point (mx, my, mz); rc = Rc row-major, tc3 = tc."""
    x = rc[0] * mx + rc[1] * my + rc[2] * mz + tc3[0]
    y = rc[3] * mx + rc[4] * my + rc[5] * mz + tc3[1]
    z = rc[6] * mx + rc[7] * my + rc[8] * mz + tc3[2]
    return x, y, z


@njit(inline="always")
def _unit_quat(qw, qx, qy, qz):
    """(w, x, y, z) / |q| and |q|."""
    r = sqrt64(qw * qw + qx * qx + qy * qy + qz * qz)
    return qw / r, qx / r, qy / r, qz / r, r


@njit(inline="always")
def _rotmat(w, x, y, z):
    """Row-major entries of the rotation of the unit quaternion (w, x, y, z)."""
    return (1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y),
            2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x),
            2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y))


@njit(inline="always")
def _clamp_flag(v, lo, hi):
    """(clamp(v, lo, hi), 1.0 if the clamp passes the gradient (lo <= v <= hi) else 0.0)."""
    inside = (v >= lo) & (v <= hi)
    return min(max(v, lo), hi), 1.0 if inside else 0.0


@njit(inline="always")
def _sigmoid(t):
    """1 / (1 + exp(-t)) without overflow."""
    e = exp64(-abs(t))
    return (1.0 if t >= 0.0 else e) / (1.0 + e)


@njit(inline="always")
def _view_dir(mx, my, mz, cen):
    """normalize(m - centre) with the norm floored at DIR_EPS, and the norm; cen = the camera centre (tuple)."""
    dx = mx - cen[0]
    dy = my - cen[1]
    dz = mz - cen[2]
    n = sqrt64(dx * dx + dy * dy + dz * dz)
    nd = max(n, DIR_EPS)
    return dx / nd, dy / nd, dz / nd, n


@njit(inline="always")
def _sq(shf, b, j):
    """shf[b + j] squared, in the array's dtype (b uint64)."""
    v = shf[b + np.uint64(j)]
    return v * v


@njit(inline="always")
def _sh_sum(shf, b, c, k_act, x, y, z):
    """SH(dir) for channel c with the first k_act coefficients (INRIA basis and signs), and the sum of their squares
    (for the SH_NORM_MAX check: computed here, inside the same degree branches, from the values loaded anyway; a
    pass of its own would stop LLVM from vectorising the colour loop). shf is the flat SH array, b (uint64) the
    flat index of the Gaussian's first coefficient: coefficient k of channel c is shf[b + 3 k + c]."""
    v = C0 * f8(shf[b + np.uint64(c)])
    q = _sq(shf, b, c)
    if k_act > 1:
        v += (-C1 * y * f8(shf[b + np.uint64(3 + c)]) + C1 * z * f8(shf[b + np.uint64(6 + c)])
              - C1 * x * f8(shf[b + np.uint64(9 + c)]))
        q += _sq(shf, b, 3 + c) + _sq(shf, b, 6 + c) + _sq(shf, b, 9 + c)
    if k_act > 4:
        xx, yy, zz = x * x, y * y, z * z
        v += (C20 * x * y * f8(shf[b + np.uint64(12 + c)]) + C21 * y * z * f8(shf[b + np.uint64(15 + c)])
              + C22 * (2.0 * zz - xx - yy) * f8(shf[b + np.uint64(18 + c)])
              + C23 * x * z * f8(shf[b + np.uint64(21 + c)]) + C24 * (xx - yy) * f8(shf[b + np.uint64(24 + c)]))
        q += (_sq(shf, b, 12 + c) + _sq(shf, b, 15 + c) + _sq(shf, b, 18 + c) + _sq(shf, b, 21 + c)
              + _sq(shf, b, 24 + c))
        if k_act > 9:
            v += (C30 * y * (3.0 * xx - yy) * f8(shf[b + np.uint64(27 + c)])
                  + C31 * x * y * z * f8(shf[b + np.uint64(30 + c)])
                  + C32 * y * (4.0 * zz - xx - yy) * f8(shf[b + np.uint64(33 + c)])
                  + C33 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * f8(shf[b + np.uint64(36 + c)])
                  + C34 * x * (4.0 * zz - xx - yy) * f8(shf[b + np.uint64(39 + c)])
                  + C35 * z * (xx - yy) * f8(shf[b + np.uint64(42 + c)])
                  + C36 * x * (xx - 3.0 * yy) * f8(shf[b + np.uint64(45 + c)]))
            q += (_sq(shf, b, 27 + c) + _sq(shf, b, 30 + c) + _sq(shf, b, 33 + c) + _sq(shf, b, 36 + c)
                  + _sq(shf, b, 39 + c) + _sq(shf, b, 42 + c) + _sq(shf, b, 45 + c))
    return v, q


@njit(inline="always")
def _sh_dir(mx, my, mz, cen, k_act):
    """The SH view direction and |m - centre| (zeros when only the DC term is used: it needs no direction)."""
    if k_act > 1:
        return _view_dir(mx, my, mz, cen)
    return 0.0, 0.0, 0.0, 0.0


@njit(inline="always")
def _jw_rows(x, y, zs, view, rc):
    """Rows T0, T1 of J W at the clamped direction, with what the backward pass needs (rc = the pose's rotation,
    row-major).

    Returns (T0x, T0y, T0z, T1x, T1y, T1z, tx, ty, pass_x, pass_y, u_c, v_c)."""
    iz = 1.0 / zs
    uc, pass_x = _clamp_flag(x * iz, -view.lim_xn, view.lim_xp)
    vc, pass_y = _clamp_flag(y * iz, -view.lim_yn, view.lim_yp)
    tx = zs * uc
    ty = zs * vc
    jx = view.fx * iz
    jxz = -view.fx * tx * iz * iz
    jy = view.fy * iz
    jyz = -view.fy * ty * iz * iz
    return (jx * rc[0] + jxz * rc[6], jx * rc[1] + jxz * rc[7], jx * rc[2] + jxz * rc[8],
            jy * rc[3] + jyz * rc[6], jy * rc[4] + jyz * rc[7], jy * rc[5] + jyz * rc[8],
            tx, ty, pass_x, pass_y, uc, vc)


@njit(inline="always")
def _sigma2d(t0x, t0y, t0z, t1x, t1y, t1z, r00, r01, r02, r10, r11, r12, r20, r21, r22, s0, s1, s2):
    """B = T Rg (T: rows T0, T1 of J W; Rg row-major), A = B diag(s), Sigma2D = A A^T.

    Returns B (6, row-major), A (6) and sxx, sxy, syy as one flat tuple (numba's parfor analysis rejects nested
    tuples here)."""
    b00 = t0x * r00 + t0y * r10 + t0z * r20
    b01 = t0x * r01 + t0y * r11 + t0z * r21
    b02 = t0x * r02 + t0y * r12 + t0z * r22
    b10 = t1x * r00 + t1y * r10 + t1z * r20
    b11 = t1x * r01 + t1y * r11 + t1z * r21
    b12 = t1x * r02 + t1y * r12 + t1z * r22
    a00, a01, a02 = b00 * s0, b01 * s1, b02 * s2
    a10, a11, a12 = b10 * s0, b11 * s1, b12 * s2
    sxx = a00 * a00 + a01 * a01 + a02 * a02
    sxy = a00 * a10 + a01 * a11 + a02 * a12
    syy = a10 * a10 + a11 * a11 + a12 * a12
    return b00, b01, b02, b10, b11, b12, a00, a01, a02, a10, a11, a12, sxx, sxy, syy


# ----------------------------------------------------------------------------------------- forward stages
# Each stage reads and writes flat arrays indexed with uint64 (numba then emits no negative-index wraparound), so
# each stage loop is a branch-free body over consecutive Gaussians that LLVM vectorises. The stages take arrays and
# scalar-only tuples, never a named tuple of arrays: inside a prange body numba loses writes to arrays reached
# through a named tuple (numba issue 7135), so the kernels unpack theirs before the parallel loop.
@njit(inline="always")
def _forward_geometry(i, m, q, ls, opacity_logits, rc, tc3, view, opts,
                      m2, con, opacities, depths, ext, radii, visible, status):
    """means2d, conics, opacities, depths, extents, radii, visible and status of Gaussian i (uint64)."""
    dil = opts.dilation
    i2, i3, i4 = U2 * i, U3 * i, U4 * i
    wx, wy, wz = f8(m[i3]), f8(m[i3 + U1]), f8(m[i3 + U2])
    q0, q1, q2, q3 = f8(q[i4]), f8(q[i4 + U1]), f8(q[i4 + U2]), f8(q[i4 + U3])
    l0, l1, l2, logit = f8(ls[i3]), f8(ls[i3 + U1]), f8(ls[i3 + U2]), f8(opacity_logits[i])
    finite = (_finite(wx) & _finite(wy) & _finite(wz) & _finite(q0) & _finite(q1) & _finite(q2) & _finite(q3)
              & _finite(l0) & _finite(l1) & _finite(l2) & _finite(logit))
    x, y, z = _camera_point(wx, wy, wz, rc, tc3)
    depths[i] = z
    in_depth = (z > opts.near) & (z < opts.far)
    zs = z if in_depth else 1.0
    t0x, t0y, t0z, t1x, t1y, t1z, _tx, _ty, _px, _py, _uc, _vc = _jw_rows(x, y, zs, view, rc)
    qw, qx, qy, qz, _r = _unit_quat(q0, q1, q2, q3)
    # a zero quaternion, or one whose squared norm underflows the scene dtype (no rotation there), is bad input
    good_input = finite & ((q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3) >= opts.norm2_min)
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotmat(qw, qx, qy, qz)
    sigma = _sigma2d(t0x, t0y, t0z, t1x, t1y, t1z, r00, r01, r02, r10, r11, r12, r20, r21, r22,
                     exp64(l0), exp64(l1), exp64(l2))
    sxx, sxy, syy = sigma[12], sigma[13], sigma[14]
    dxx = sxx + dil
    dyy = syy + dil
    det = dxx * dyy - sxy * sxy
    # the covariance must be representable in the scene dtype (as if computed in it) and S positive definite
    ok = (in_depth & (sxx <= opts.cov_max) & (syy <= opts.cov_max) & (abs(sxy) <= opts.cov_max)
          & _finite(det) & (det > 0.0) & (dxx > 0.0) & (dyy > 0.0))
    # finite placeholders (S = I) for culled rows; selects, not branches (culling is unpredictable)
    dxx = dxx if ok else 1.0
    dyy = dyy if ok else 1.0
    sxy = sxy if ok else 0.0
    det = det if ok else 1.0
    con[i3] = dyy / det
    con[i3 + U1] = -sxy / det
    con[i3 + U2] = dxx / det
    ex = SIGMA_EXTENT * sqrt64(dxx)
    ey = SIGMA_EXTENT * sqrt64(dyy)
    ext[i2] = ex
    ext[i2 + U1] = ey
    mx = view.fx * x / zs + view.cx
    my = view.fy * y / zs + view.cy
    vis = (ok & (mx + ex > 0.0) & (mx - ex < view.width) & (my + ey > 0.0) & (my - ey < view.height)
           & _finite(mx) & _finite(my))
    visible[i] = vis
    status[i] = (OK if ok else 0) | (VISIBLE if vis else 0) | (0 if good_input else BAD_INPUT)
    m2[i2] = mx if vis else 0.0
    m2[i2 + U1] = my if vis else 0.0
    # largest eigenvalue of S, without the cancellation of mid^2 - det
    half = 0.5 * (dxx - dyy)
    rad = SIGMA_EXTENT * sqrt64(0.5 * (dxx + dyy) + sqrt64(half * half + sxy * sxy))
    radii[i] = rad if vis else 0.0
    o = _sigmoid(logit)
    if opts.antialiased:
        ratio = (sxx * syy - sxy * sxy) / det
        o *= sqrt64(max(ratio if ok else 0.0, AA_FLOOR))
    opacities[i] = o


@njit(inline="always")
def _forward_color(i, m, shf, n_coef, k_act, cen, col, status):
    """colors of Gaussian i (uint64) from the flat means m and SH coefficients shf (n_coef = 3 K values per
    Gaussian) into the flat col; adds the COLOR_PASS bits to status, and BAD_INPUT if one of the k_act
    coefficients is NaN or +-Inf or their norm is above SH_NORM_MAX. Each enters SH(dir) multiplied by a finite
    basis value, and float64 sums of float32 values cannot overflow, so the sum is finite exactly when they are (in
    float64 scenes, coefficients near the float64 limit can overflow the sum: such a Gaussian is flagged too). The
    sum of squares is taken in the scene dtype: where it overflows, the norm is above the bound anyway."""
    i3 = U3 * i
    dirx, diry, dirz, _n = _sh_dir(f8(m[i3]), f8(m[i3 + U1]), f8(m[i3 + U2]), cen, k_act)
    b = n_coef * i
    v0, q0 = _sh_sum(shf, b, 0, k_act, dirx, diry, dirz)
    v1, q1 = _sh_sum(shf, b, 1, k_act, dirx, diry, dirz)
    v2, q2 = _sh_sum(shf, b, 2, k_act, dirx, diry, dirz)
    v0 += 0.5
    v1 += 0.5
    v2 += 0.5
    col[i3] = max(v0, 0.0)
    col[i3 + U1] = max(v1, 0.0)
    col[i3 + U2] = max(v2, 0.0)
    good = _finite(v0 + v1 + v2) & (q0 + q1 + q2 <= SH_NORM_MAX * SH_NORM_MAX)
    status[i] |= (((COLOR_PASS if v0 >= 0.0 else 0) | ((COLOR_PASS << 1) if v1 >= 0.0 else 0))
                  | ((COLOR_PASS << 2) if v2 >= 0.0 else 0) | (0 if good else BAD_INPUT))


@njit(inline="always")
def _forward_bins(i, rule, opacities, ext, visible, bext, reach, alive):
    """tiles.contribution_extents' rule applied to the opacity and extents as stored (Gaussian i, uint64)."""
    i2 = U2 * i
    k2 = 2.0 * log64(max(f8(opacities[i]), 1e-30) / rule.k2_den)
    alive[i] = visible[i] & (k2 > 0.0)
    k = sqrt64(max(k2, 0.0)) * rule.k_mul
    sig_x = f8(ext[i2]) / 3.0
    sig_y = f8(ext[i2 + U1]) / 3.0
    kb = min(k, rule.k_cap)
    bext[i2] = sig_x * kb
    bext[i2 + U1] = sig_y * kb
    reach[i] = sig_y * k


@njit(inline="always")
def _forward_rects(i, rule, m2, bext, alive, rects):
    """rects[i] = tiles.tile_range of Gaussian i (uint64) from its means2d and bin_extents as stored;
    (0, -1, 0, -1), no tile, when it is not alive."""
    i2, i4 = U2 * i, U4 * i
    ok = alive[i]
    x0, x1, y0, y1 = tile_range(m2[i2], m2[i2 + U1], bext[i2], bext[i2 + U1], rule.tile, rule.tiles_x, rule.tiles_y)
    rects[i4] = np.int32(x0 if ok else 0.0)
    rects[i4 + U1] = np.int32(x1 if ok else -1.0)
    rects[i4 + U2] = np.int32(y0 if ok else 0.0)
    rects[i4 + U3] = np.int32(y1 if ok else -1.0)


@_projection_kernel
def project_forward(scene, pose, view, settings, rule, out):
    """Project N Gaussians: ``scene`` (:class:`SceneArrays`) seen from ``pose`` (:class:`Pose`) through ``view``
    (:class:`View`) with ``settings`` (:class:`Settings`) into ``out`` (:class:`Projection`, every row written):
    the outputs of :class:`splatup.render.project.Projected`, the status bits (OK, VISIBLE, COLOR_PASS,
    BAD_INPUT), the binning data of :func:`splatup.render.tiles.contribution_extents` (applied to the stored
    opacities and extents) and tile_rects, the (x0, x1, y0, y1) tile ranges of
    :func:`splatup.render.tiles.tile_range` on ``rule``'s grid (empty for Gaussians not alive).

    Each chunk of CHUNK Gaussians runs four stage loops (geometry, colour, binning data, tiles) over flat views."""
    n = scene.means.shape[0]
    n_coef = scene.sh.shape[1] * 3
    m = scene.means.reshape(3 * n)
    q = scene.quats.reshape(4 * n)
    ls = scene.log_scales.reshape(3 * n)
    logits = scene.opacity_logits
    shf = scene.sh.reshape(n_coef * n)
    m2 = out.means2d.reshape(2 * n)
    con = out.conics.reshape(3 * n)
    opac = out.opacities
    col = out.colors.reshape(3 * n)
    depths = out.depths
    ext = out.extents.reshape(2 * n)
    radii = out.radii
    visible = out.visible
    status = out.status
    bext = out.bin_extents.reshape(2 * n)
    reach = out.reach
    alive = out.alive
    rects = out.tile_rects.reshape(4 * n)
    # one statement each: unpacking these tuples from a single call trips numba's parfor array analysis
    rc = _entries3x3(pose.rotation)
    tc3 = (pose.translation[0], pose.translation[1], pose.translation[2])
    cen = (pose.centre[0], pose.centre[1], pose.centre[2])
    k_act = settings.k_act
    un_coef = np.uint64(n_coef)
    for ch in prange((n + CHUNK - 1) // CHUNK):
        lo = np.uint64(ch * CHUNK)
        hi = np.uint64(min(n, ch * CHUNK + CHUNK))
        for i in range(lo, hi):
            _forward_geometry(i, m, q, ls, logits, rc, tc3, view, settings,
                              m2, con, opac, depths, ext, radii, visible, status)
        for i in range(lo, hi):
            _forward_color(i, m, shf, un_coef, k_act, cen, col, status)
        for i in range(lo, hi):
            _forward_bins(i, rule, opac, ext, visible, bext, reach, alive)
        for i in range(lo, hi):
            _forward_rects(i, rule, m2, bext, alive, rects)


# ----------------------------------------------------------------------------------------- backward stages
@njit(inline="always")
def _backward_geometry(i, m, q, ls, opacity_logits, rc, tc3, view, opts, status,
                       gm2, gcon, g_opacities, gm, gq, gls, g_opacity_logits):
    """Gradients through means2d, conics and opacities: writes g_means (this part), g_quats, g_log_scales and
    g_opacity_logits of Gaussian i (uint64). Flat arrays (m = means, gm = g_means, gm2 = g_means2d, gcon = g_conics,
    gq = g_quats, gls = g_log_scales) and branch-free per row, as the forward stages, so the loop vectorises."""
    i2, i3, i4 = U2 * i, U3 * i, U4 * i
    antialiased = opts.antialiased
    dil = opts.dilation
    fx, fy = view.fx, view.fy
    st = status[i]
    ok = (st & OK) != 0
    vis = (st & VISIBLE) != 0
    sig = _sigmoid(f8(opacity_logits[i]))
    go = f8(g_opacities[i])
    f_o = sqrt64(AA_FLOOR) if antialiased else 1.0  # the antialiasing factor of a culled Gaussian
    x, y, z = _camera_point(f8(m[i3]), f8(m[i3 + U1]), f8(m[i3 + U2]), rc, tc3)
    t0x, t0y, t0z, t1x, t1y, t1z, tx, ty, pass_x, pass_y, uc, vc = _jw_rows(x, y, z, view, rc)
    qw, qx, qy, qz, qr = _unit_quat(f8(q[i4]), f8(q[i4 + U1]), f8(q[i4 + U2]), f8(q[i4 + U3]))
    s0, s1, s2 = exp64(f8(ls[i3])), exp64(f8(ls[i3 + U1])), exp64(f8(ls[i3 + U2]))
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotmat(qw, qx, qy, qz)
    b00, b01, b02, b10, b11, b12, a00, a01, a02, a10, a11, a12, sxx, sxy, syy = _sigma2d(  # B = T Rg, A = B diag(s)
        t0x, t0y, t0z, t1x, t1y, t1z, r00, r01, r02, r10, r11, r12, r20, r21, r22, s0, s1, s2)
    dxx = sxx + dil
    dyy = syy + dil
    det = dxx * dyy - sxy * sxy
    det_raw = sxx * syy - sxy * sxy
    g_det_raw = 0.0
    g_det = 0.0
    f_o_ok = f_o
    if antialiased:
        ratio = det_raw / det
        f_o_ok = sqrt64(max(ratio, AA_FLOOR))
        # opacity = sig * sqrt(ratio), ratio = det_raw / det (the floor passes no gradient)
        g_ratio = go * sig * 0.5 / f_o_ok if ratio >= AA_FLOOR else 0.0
        g_det_raw = g_ratio / det
        g_det = -g_ratio * ratio / det
    # ---- conic = (dyy, -sxy, dxx) / det
    gc0, gc1, gc2 = f8(gcon[i3]), f8(gcon[i3 + U1]), f8(gcon[i3 + U2])
    idet = 1.0 / det
    g_det -= (gc0 * dyy - gc1 * sxy + gc2 * dxx) * idet * idet
    g_dyy = gc0 * idet + g_det * dxx
    g_dxx = gc2 * idet + g_det * dyy
    g_sxy = -gc1 * idet - 2.0 * sxy * (g_det + g_det_raw)
    g_sxx = g_dxx + g_det_raw * syy
    g_syy = g_dyy + g_det_raw * sxx
    # ---- Sigma2D = A A^T
    ga00 = 2.0 * g_sxx * a00 + g_sxy * a10
    ga01 = 2.0 * g_sxx * a01 + g_sxy * a11
    ga02 = 2.0 * g_sxx * a02 + g_sxy * a12
    ga10 = 2.0 * g_syy * a10 + g_sxy * a00
    ga11 = 2.0 * g_syy * a11 + g_sxy * a01
    ga12 = 2.0 * g_syy * a12 + g_sxy * a02
    # ---- A = B diag(s), s = exp(log_scale): d/dlog_scale = d/ds * s
    gs0_ok = (ga00 * b00 + ga10 * b10) * s0
    gs1_ok = (ga01 * b01 + ga11 * b11) * s1
    gs2_ok = (ga02 * b02 + ga12 * b12) * s2
    gb00, gb01, gb02 = ga00 * s0, ga01 * s1, ga02 * s2
    gb10, gb11, gb12 = ga10 * s0, ga11 * s1, ga12 * s2
    # ---- B = T Rg: dL/dT = dL/dB Rg^T, dL/dRg[a][k] = gb0k T0[a] + gb1k T1[a]
    gt0x = gb00 * r00 + gb01 * r01 + gb02 * r02
    gt0y = gb00 * r10 + gb01 * r11 + gb02 * r12
    gt0z = gb00 * r20 + gb01 * r21 + gb02 * r22
    gt1x = gb10 * r00 + gb11 * r01 + gb12 * r02
    gt1y = gb10 * r10 + gb11 * r11 + gb12 * r12
    gt1z = gb10 * r20 + gb11 * r21 + gb12 * r22
    G00 = gb00 * t0x + gb10 * t1x
    G01 = gb01 * t0x + gb11 * t1x
    G02 = gb02 * t0x + gb12 * t1x
    G10 = gb00 * t0y + gb10 * t1y
    G11 = gb01 * t0y + gb11 * t1y
    G12 = gb02 * t0y + gb12 * t1y
    G20 = gb00 * t0z + gb10 * t1z
    G21 = gb01 * t0z + gb11 * t1z
    G22 = gb02 * t0z + gb12 * t1z
    # ---- rotation entries -> unit quaternion -> raw quaternion ((I - q q^T) / |q|)
    gw = 2.0 * (-qz * G01 + qy * G02 + qz * G10 - qx * G12 - qy * G20 + qx * G21)
    gx = 2.0 * (qy * G01 + qz * G02 + qy * G10 - 2.0 * qx * G11 - qw * G12 + qz * G20 + qw * G21
                - 2.0 * qx * G22)
    gy = 2.0 * (-2.0 * qy * G00 + qx * G01 + qw * G02 + qx * G10 + qz * G12 - qw * G20 + qz * G21
                - 2.0 * qy * G22)
    gz = 2.0 * (-2.0 * qz * G00 - qw * G01 + qx * G02 + qw * G10 - 2.0 * qz * G11 + qy * G12 + qx * G20
                + qy * G21)
    dotq = qw * gw + qx * gx + qy * gy + qz * gz
    gqw_ok = (gw - qw * dotq) / qr
    gqx_ok = (gx - qx * dotq) / qr
    gqy_ok = (gy - qy * dotq) / qr
    gqz_ok = (gz - qz * dotq) / qr
    # ---- T0 = jx Rc[0] + jxz Rc[2], T1 = jy Rc[1] + jyz Rc[2]
    g_jx = gt0x * rc[0] + gt0y * rc[1] + gt0z * rc[2]
    g_jxz = gt0x * rc[6] + gt0y * rc[7] + gt0z * rc[8]
    g_jy = gt1x * rc[3] + gt1y * rc[4] + gt1z * rc[5]
    g_jyz = gt1x * rc[6] + gt1y * rc[7] + gt1z * rc[8]
    # ---- jx = fx / z, jxz = -fx tx / z^2 (jy, jyz likewise)
    iz = 1.0 / z
    iz2 = iz * iz
    gpz = -(g_jx * fx + g_jy * fy) * iz2 + 2.0 * (g_jxz * fx * tx + g_jyz * fy * ty) * iz2 * iz
    g_tx = -g_jxz * fx * iz2
    g_ty = -g_jyz * fy * iz2
    # ---- tx = z clamp(x / z): d/dx = pass, d/dz = clamp(x / z) - pass x / z
    gpx = g_tx * pass_x
    gpy = g_ty * pass_y
    gpz += g_tx * (uc - pass_x * x * iz) + g_ty * (vc - pass_y * y * iz)
    # ---- means2d = (fx x / z + cx, fy y / z + cy), for visible rows
    gm0, gm1 = f8(gm2[i2]), f8(gm2[i2 + U1])
    gpx = gpx + gm0 * fx * iz if vis else gpx
    gpy = gpy + gm1 * fy * iz if vis else gpy
    gpz = gpz - (gm0 * fx * x + gm1 * fy * y) * iz2 if vis else gpz
    # ---- p = Rc m + tc
    gmx_ok = rc[0] * gpx + rc[3] * gpy + rc[6] * gpz
    gmy_ok = rc[1] * gpx + rc[4] * gpy + rc[7] * gpz
    gmz_ok = rc[2] * gpx + rc[5] * gpy + rc[8] * gpz
    # culled rows (not ok) get no gradient through means2d, conics or the antialiasing factor: selects, not a
    # branch, so the loop vectorises (the values computed for them are discarded, NaN or not)
    gmx = gmx_ok if ok else 0.0
    gmy = gmy_ok if ok else 0.0
    gmz = gmz_ok if ok else 0.0
    gqw = gqw_ok if ok else 0.0
    gqx = gqx_ok if ok else 0.0
    gqy = gqy_ok if ok else 0.0
    gqz = gqz_ok if ok else 0.0
    gs0 = gs0_ok if ok else 0.0
    gs1 = gs1_ok if ok else 0.0
    gs2 = gs2_ok if ok else 0.0
    f_o = f_o_ok if ok else f_o
    g_opacity_logits[i] = go * f_o * sig * (1.0 - sig)
    gls[i3] = gs0
    gls[i3 + U1] = gs1
    gls[i3 + U2] = gs2
    gq[i4] = gqw
    gq[i4 + U1] = gqx
    gq[i4 + U2] = gqy
    gq[i4 + U3] = gqz
    gm[i3] = gmx
    gm[i3 + U1] = gmy
    gm[i3 + U2] = gmz


@njit(inline="always")
def _wsum(sh, i, k, gp0, gp1, gp2, g_sh, basis):
    """g_sh[i, k] = g_pre * basis; returns sum_c g_pre_c sh[i, k, c] (the loss's weight on basis function k)."""
    g_sh[i, k, 0] = gp0 * basis
    g_sh[i, k, 1] = gp1 * basis
    g_sh[i, k, 2] = gp2 * basis
    return gp0 * f8(sh[i, k, 0]) + gp1 * f8(sh[i, k, 1]) + gp2 * f8(sh[i, k, 2])


@njit(inline="always")
def _sh_backward(sh, i, k_act, x, y, z, gp0, gp1, gp2, g_sh):
    """Write g_sh[i, 1:k_act] = g_pre (x) basis and return d loss / d dir (k_act > 1)."""
    e1 = _wsum(sh, i, 1, gp0, gp1, gp2, g_sh, -C1 * y)
    e2 = _wsum(sh, i, 2, gp0, gp1, gp2, g_sh, C1 * z)
    e3 = _wsum(sh, i, 3, gp0, gp1, gp2, g_sh, -C1 * x)
    gx = -C1 * e3
    gy = -C1 * e1
    gz = C1 * e2
    if k_act > 4:
        xx, yy, zz = x * x, y * y, z * z
        e4 = _wsum(sh, i, 4, gp0, gp1, gp2, g_sh, C20 * x * y)
        e5 = _wsum(sh, i, 5, gp0, gp1, gp2, g_sh, C21 * y * z)
        e6 = _wsum(sh, i, 6, gp0, gp1, gp2, g_sh, C22 * (2.0 * zz - xx - yy))
        e7 = _wsum(sh, i, 7, gp0, gp1, gp2, g_sh, C23 * x * z)
        e8 = _wsum(sh, i, 8, gp0, gp1, gp2, g_sh, C24 * (xx - yy))
        gx += C20 * y * e4 - 2.0 * C22 * x * e6 + C23 * z * e7 + 2.0 * C24 * x * e8
        gy += C20 * x * e4 + C21 * z * e5 - 2.0 * C22 * y * e6 - 2.0 * C24 * y * e8
        gz += C21 * y * e5 + 4.0 * C22 * z * e6 + C23 * x * e7
        if k_act > 9:
            e9 = _wsum(sh, i, 9, gp0, gp1, gp2, g_sh, C30 * y * (3.0 * xx - yy))
            e10 = _wsum(sh, i, 10, gp0, gp1, gp2, g_sh, C31 * x * y * z)
            e11 = _wsum(sh, i, 11, gp0, gp1, gp2, g_sh, C32 * y * (4.0 * zz - xx - yy))
            e12 = _wsum(sh, i, 12, gp0, gp1, gp2, g_sh, C33 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy))
            e13 = _wsum(sh, i, 13, gp0, gp1, gp2, g_sh, C34 * x * (4.0 * zz - xx - yy))
            e14 = _wsum(sh, i, 14, gp0, gp1, gp2, g_sh, C35 * z * (xx - yy))
            e15 = _wsum(sh, i, 15, gp0, gp1, gp2, g_sh, C36 * x * (xx - 3.0 * yy))
            gx += (C30 * 6.0 * x * y * e9 + C31 * y * z * e10 - C32 * 2.0 * x * y * e11 - C33 * 6.0 * x * z * e12
                   + C34 * (4.0 * zz - 3.0 * xx - yy) * e13 + C35 * 2.0 * x * z * e14
                   + C36 * 3.0 * (xx - yy) * e15)
            gy += (C30 * 3.0 * (xx - yy) * e9 + C31 * x * z * e10 + C32 * (4.0 * zz - xx - 3.0 * yy) * e11
                   - C33 * 6.0 * y * z * e12 - C34 * 2.0 * x * y * e13 - C35 * 2.0 * y * z * e14
                   - C36 * 6.0 * x * y * e15)
            gz += (C31 * x * y * e10 + C32 * 8.0 * y * z * e11 + C33 * (6.0 * zz - 3.0 * xx - 3.0 * yy) * e12
                   + C34 * 8.0 * x * z * e13 + C35 * (xx - yy) * e14)
    return gx, gy, gz


@njit(inline="always")
def _backward_color(i, means, sh, k_act, cen, status, g_colors, g_means, g_sh):
    """Gradients through colour = max(SH(dir) + 0.5, 0): writes g_sh and adds the view direction's dependence
    on the mean to g_means (after :func:`_backward_geometry` wrote it)."""
    dx, dy, dz, n = _sh_dir(f8(means[i, 0]), f8(means[i, 1]), f8(means[i, 2]), cen, k_act)
    st = status[i]
    gp0 = f8(g_colors[i, 0]) if st & COLOR_PASS else 0.0
    gp1 = f8(g_colors[i, 1]) if st & (COLOR_PASS << 1) else 0.0
    gp2 = f8(g_colors[i, 2]) if st & (COLOR_PASS << 2) else 0.0
    g_sh[i, 0, 0] = C0 * gp0
    g_sh[i, 0, 1] = C0 * gp1
    g_sh[i, 0, 2] = C0 * gp2
    for k in range(k_act, sh.shape[1]):
        for c in range(3):
            g_sh[i, k, c] = 0.0
    if k_act > 1:
        gdx, gdy, gdz = _sh_backward(sh, i, k_act, dx, dy, dz, gp0, gp1, gp2, g_sh)
        # dir = d / max(|d|, eps): (I - dir dir^T) / |d| above the floor, I / eps below it
        if n >= DIR_EPS:
            dot = dx * gdx + dy * gdy + dz * gdz
            g_means[i, 0] += (gdx - dx * dot) / n
            g_means[i, 1] += (gdy - dy * dot) / n
            g_means[i, 2] += (gdz - dz * dot) / n
        else:
            g_means[i, 0] += gdx / DIR_EPS
            g_means[i, 1] += gdy / DIR_EPS
            g_means[i, 2] += gdz / DIR_EPS


@_projection_kernel
def project_backward(scene, pose, view, settings, status, upstream, grads):
    """Gradients of a loss w.r.t. the scene given its gradients w.r.t. the differentiable outputs.

    ``scene``, ``pose``, ``view`` and ``settings`` as given to :func:`project_forward`, ``status`` its status
    bits, ``upstream`` (:class:`Upstream`) the gradients of means2d, conics, opacities and colors. Writes ``grads``
    (:class:`SceneArrays` of the scene's shapes and dtype; its sh is zero beyond the first k_act coefficients).
    The geometry loop is branch-free over flat views (it vectorises); the colour loop stays scalar (it writes
    per-coefficient gradients)."""
    n = scene.means.shape[0]
    # one statement each: unpacking these tuples from a single call trips numba's parfor array analysis
    rc = _entries3x3(pose.rotation)
    tc3 = (pose.translation[0], pose.translation[1], pose.translation[2])
    cen = (pose.centre[0], pose.centre[1], pose.centre[2])
    k_act = settings.k_act
    means = scene.means
    sh = scene.sh
    logits = scene.opacity_logits
    m = means.reshape(3 * n)
    q = scene.quats.reshape(4 * n)
    ls = scene.log_scales.reshape(3 * n)
    gm2 = upstream.means2d.reshape(2 * n)
    gcon = upstream.conics.reshape(3 * n)
    g_opac = upstream.opacities
    g_colors = upstream.colors
    g_means = grads.means
    g_sh = grads.sh
    g_logits = grads.opacity_logits
    gm = g_means.reshape(3 * n)
    gq = grads.quats.reshape(4 * n)
    gls = grads.log_scales.reshape(3 * n)
    for ch in prange((n + CHUNK - 1) // CHUNK):
        lo = ch * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(np.uint64(lo), np.uint64(hi)):
            _backward_geometry(i, m, q, ls, logits, rc, tc3, view, settings, status,
                               gm2, gcon, g_opac, gm, gq, gls, g_logits)
        for i in range(lo, hi):
            _backward_color(i, means, sh, k_act, cen, status, g_colors, g_means, g_sh)
