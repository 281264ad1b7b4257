"""Backward pass of tile compositing (numba kernels), plain and with image-space derivatives.

Given upstream gradients of the forward outputs (colour, final transmittance and, with derivatives,
dC/dx, dC/dy, d2C/dxdy), these kernels produce per list entry (tile, Gaussian) the gradient row

    [d/dmx, d/dmy, d/da, d/db, d/dc, d/dopacity, d/dr, d/dg, d/db_colour]      ([M, 9] float32)

and :func:`sum_rows_by_gaussian` sums the rows per Gaussian. Each tile writes only its own rows, so the
``prange`` over tiles is race-free.

Maths: the derivative recurrence as jet arithmetic
-------------------------------------------------
Write every per-pixel quantity as a truncated jet X = X0 + Xx ex + Xy ey + Xxy ex ey with ex^2 = ey^2 = 0.
The forward recurrence of DESIGN.md is then exactly ordinary compositing in this commutative ring:

    alpha~_i = (alpha, alpha_x, alpha_y, alpha_xy)_i,   T~_{i+1} = T~_i (1 - alpha~_i),
    C~ = sum_i col_i alpha~_i T~_i + bg T~_end         (C~ = (C, C_x, C_y, C_xy) per channel)

so the classic 3DGS backward carries over with ring products in place of real ones. The loss is
linear in the jet coefficients; pair it through the "dual" jet of the upstream gradients,
G~ = (gC_xy, gC_y, gC_x, gC), so that <G, X> = [ex ey](G~ X). With the per-entry contraction
U~_i = sum_ch col_i,ch G~_ch and the contracted colour behind entry i, D~_i (a single jet per pixel):

    D~_end = sum_ch bg_ch G~_ch + (0, 0, 0, g_trans)
    back to front over the contributing entries:  V~ = U~_i - D~,  E~_i = T~_i V~,  D~ <- D~ + alpha~_i V~

E~_i is the dual of dL/d alpha~_i: dL/dalpha = E_xy, dL/dalpha_x = E_y, dL/dalpha_y = E_x,
dL/dalpha_xy = E_0. The colour gradient is sum of g . (alpha~ T~) over the four planes. Finally
alpha = o exp(power), alpha_x = alpha q_x, alpha_y = alpha q_y, alpha_xy = alpha (q_x q_y - b) with
q_x = -(a dx + b dy), q_y = -(b dx + c dy), d = pixel - mean; with h = dL/dalpha + dL/dalpha_x q_x +
dL/dalpha_y q_y + dL/dalpha_xy (q_x q_y - b), H_x = dL/dalpha_x + dL/dalpha_xy q_y, H_y = dL/dalpha_y +
dL/dalpha_xy q_x:

    dL/dmx = alpha (-h q_x + H_x a + H_y b),          dL/dmy = alpha (-h q_y + H_x b + H_y c)
    dL/da  = alpha (-h dx^2 / 2 - H_x dx),            dL/dc  = alpha (-h dy^2 / 2 - H_y dy)
    dL/db  = alpha (-h dx dy - H_x dy - H_y dx - dL/dalpha_xy),         dL/do = alpha h / o

(the plain mode is the special case with all x / y parts zero: h = dL/dalpha). A clamped entry
(o exp(power) >= 0.99) has the constant alpha~ = (0.99, 0, 0, 0): it still scales what lies behind it
and its colour still gets a gradient, but its own opacity, mean and conic get none. Skipped
(alpha < 1/255) and stopped entries have alpha~ = 0 and get nothing.

Why replay instead of inverting the recurrence
----------------------------------------------
The 3DGS CUDA backward walks each pixel back to front recovering T_i = T_{i+1} / (1 - alpha_i) from the
saved final T. Here that would also need T_x,i = (T_x,i+1 + T_i alpha_x,i) / (1 - alpha_i) and the like
for T_y, T_xy: differences divided by (1 - alpha) >= 0.01, so float32 rounding is amplified up to 100x
per opaque entry, and the error grows along the list. It would also need the forward to record where
each pixel stopped, and it would still re-decide skip and clamp from a recomputed alpha.

These kernels instead *replay* the forward for one 16-pixel tile row at a time, front to back, with
the same float32 expressions, the same ``fexp`` and the same decision rule as the forward kernels in
``composite.py`` (written out identically; compare them line by line when either changes). The replay
stores, per list entry and lane, the used alpha (0 when skipped or stopped; 0.99 exactly when clamped)
and the state before the entry (T, and T_x, T_y, T_xy with derivatives) in a per-thread buffer of
[L, 2 | 5, 16] floats (L = the tile's list length), and notes which entries some lane of the row used.
The adjoint sweep then runs back to front over those entries only; D~ is accumulated by
convex-combination updates, with no subtraction of large totals and no division. The replay also
rebuilds the final transmittance (1 - sum of weights, as the forward) into ``replay_trans``.

Consistency is tested, not assumed (tests/test_composite_backward.py): for every (pixel, Gaussian) the
forward's weight alpha T, isolated through the colour channels, equals the replay's bit for bit, also on
a scene whose opacities put alpha on the 1/255 and 0.99 thresholds to within rounding (where float64
decides differently from float32 in dozens of places).

Cost (2 threads, random scenes, see the report): each backward kernel takes about 1.2-1.3x its forward
kernel. In the plain sweep dy is constant along the row, so the mean and conic gradients need only
three lane reductions (the moments sum k dx^m, m = 0, 1, 2).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .composite import ALPHA_MAX, ALPHA_MIN, LANES, T_MIN
from .fastexp import fexp

f32 = np.float32
_ONE = f32(1.0)
_ZERO = f32(0.0)
_HALF = f32(0.5)
NGRAD = 9  # mx, my, a, b, c, opacity, r, g, b
NPACK_B = 9  # mx, my, a, b, c, opacity, r, g, b


@njit(inline="always")
def _gather_tile9(s, e, gids, means2d, conics, opac, colors):
    """Copy a tile's entries into a contiguous [L, 9] buffer."""
    n = e - s
    P = np.empty((n, NPACK_B), np.float32)
    for k in range(n):
        g = gids[s + k]
        P[k, 0] = means2d[g, 0]
        P[k, 1] = means2d[g, 1]
        P[k, 2] = conics[g, 0]
        P[k, 3] = conics[g, 1]
        P[k, 4] = conics[g, 2]
        P[k, 5] = opac[g]
        P[k, 6] = colors[g, 0]
        P[k, 7] = colors[g, 1]
        P[k, 8] = colors[g, 2]
    return P


@njit(parallel=True, fastmath=True, cache=True)
def composite_backward(means2d, conics, opac, colors, offsets, gids, width, height, tiles_x, bg,
                       g_color, g_trans, grad_rows, replay_trans):
    """Backward of :func:`composite.composite_forward`.

    Inputs as the forward (float32 means2d [N, 2], conics [N, 3], opac [N], colors [N, 3]; int64 offsets
    [T + 1]; int32 gids [M]; bg [3]); upstream g_color [H, W, 3] and g_trans [H, W]. Outputs:
    grad_rows [M, 9] (every row written), replay_trans [H, W] the replayed final transmittance.
    """
    n_tiles = offsets.shape[0] - 1
    for t in prange(n_tiles):
        s = offsets[t]
        e = offsets[t + 1]
        n = e - s
        tx = t % tiles_x
        ty = t // tiles_x
        Gt = grad_rows[s:e]
        for j in range(n):
            for k in range(NGRAD):
                Gt[j, k] = _ZERO
        P = _gather_tile9(s, e, gids, means2d, conics, opac, colors)
        S = np.empty((n, 2, LANES), np.float32)  # used alpha (0 = skipped / stopped), T before the entry
        used = np.empty(n, np.int64)  # entries some lane of the row used, in list order
        fxl = np.empty(LANES, np.float32)
        T = np.empty(LANES, np.float32)
        ca = np.empty(LANES, np.float32)
        gl = np.empty((4, LANES), np.float32)  # upstream dL/dC (3 channels), dL/dT_final
        D = np.empty(LANES, np.float32)
        for l in range(LANES):
            fxl[l] = f32(tx * LANES + l) + _HALF
        for ly in range(LANES):
            py = ty * LANES + ly
            if py >= height:
                break
            fy = f32(py) + _HALF
            # ---- replay (the expressions of composite_forward, verbatim)
            for l in range(LANES):
                T[l] = _ONE
                ca[l] = _ZERO
            nu = 0
            for j in range(n):
                mx = P[j, 0]
                dy = fy - P[j, 1]
                a = P[j, 2]
                b2dy = f32(2.0) * P[j, 3] * dy
                cdy2 = P[j, 4] * dy * dy
                o = P[j, 5]
                tsum = _ZERO
                asum = _ZERO
                for l in range(LANES):
                    dx = fxl[l] - mx
                    pw = -_HALF * (a * dx * dx + b2dy * dx + cdy2)
                    alpha = min(ALPHA_MAX, o * fexp(pw))
                    Tl = T[l]
                    Tn = Tl * (_ONE - alpha)
                    valid = alpha >= ALPHA_MIN
                    use = valid and (Tn >= T_MIN)
                    w = alpha * Tl if use else _ZERO
                    ca[l] += w
                    S[j, 0, l] = alpha if use else _ZERO
                    asum += w
                    S[j, 1, l] = Tl
                    Tnew = Tn if use else (_ZERO if valid else Tl)
                    T[l] = Tnew
                    tsum += Tnew
                used[nu] = j  # branch-free: kept only if some lane used entry j
                nu += 1 if asum > _ZERO else 0
                if tsum == _ZERO:
                    break
            # ---- upstream gradients of this row (0 outside the image)
            for l in range(LANES):
                px = tx * LANES + l
                if px < width:
                    replay_trans[py, px] = _ONE - ca[l]
                    for k in range(3):
                        gl[k, l] = g_color[py, px, k]
                    gl[3, l] = g_trans[py, px]
                else:
                    for k in range(4):
                        gl[k, l] = _ZERO
                D[l] = bg[0] * gl[0, l] + bg[1] * gl[1, l] + bg[2] * gl[2, l] + gl[3, l]
            # ---- adjoint sweep, back to front
            # dy is constant along the row, so the geometric gradients need only the moments
            # K0, K1, K2 = sum over lanes of k dx^m with k = dL/dpower = alpha dL/dalpha (0 where clamped):
            # dL/dmx = a K1 + b dy K0, dL/dmy = b K1 + c dy K0, dL/da = -K2 / 2, dL/db = -dy K1,
            # dL/dc = -dy^2 K0 / 2, dL/do = K0 / o.
            for u in range(nu - 1, -1, -1):  # entries no lane used change nothing: skip them
                j = used[u]
                mx = P[j, 0]
                r = P[j, 6]
                g = P[j, 7]
                bb = P[j, 8]
                k0 = _ZERO
                k1 = _ZERO
                k2 = _ZERO
                s_r = _ZERO
                s_g = _ZERO
                s_bb = _ZERO
                for l in range(LANES):
                    al = S[j, 0, l]
                    Tl = S[j, 1, l]
                    V = r * gl[0, l] + g * gl[1, l] + bb * gl[2, l] - D[l]
                    D[l] += al * V
                    w = al * Tl
                    s_r += gl[0, l] * w
                    s_g += gl[1, l] * w
                    s_bb += gl[2, l] * w
                    k = w * V if al < ALPHA_MAX else _ZERO
                    dx = fxl[l] - mx
                    k0 += k
                    k1 += k * dx
                    k2 += k * dx * dx
                dy = fy - P[j, 1]
                a = P[j, 2]
                b = P[j, 3]
                c = P[j, 4]
                o = P[j, 5]
                Gt[j, 0] += a * k1 + b * dy * k0
                Gt[j, 1] += b * k1 + c * dy * k0
                Gt[j, 2] -= _HALF * k2
                Gt[j, 3] -= dy * k1
                Gt[j, 4] -= _HALF * dy * dy * k0
                Gt[j, 5] += k0 / o if o > _ZERO else _ZERO
                Gt[j, 6] += s_r
                Gt[j, 7] += s_g
                Gt[j, 8] += s_bb


@njit(parallel=True, fastmath=True, cache=True)
def composite_backward_derivatives(means2d, conics, opac, colors, offsets, gids, width, height, tiles_x, bg,
                                   g_color, g_trans, g_dx, g_dy, g_dxy, grad_rows, replay_trans):
    """Backward of :func:`composite.composite_forward_derivatives`.

    As :func:`composite_backward`, plus the upstream gradients g_dx, g_dy, g_dxy [H, W, 3] of dC/dx,
    dC/dy and d2C/dxdy (see the module docstring for the jet formulation).
    """
    n_tiles = offsets.shape[0] - 1
    for t in prange(n_tiles):
        s = offsets[t]
        e = offsets[t + 1]
        n = e - s
        tx = t % tiles_x
        ty = t // tiles_x
        Gt = grad_rows[s:e]
        for j in range(n):
            for k in range(NGRAD):
                Gt[j, k] = _ZERO
        P = _gather_tile9(s, e, gids, means2d, conics, opac, colors)
        S = np.empty((n, 5, LANES), np.float32)  # used alpha, then T, Tx, Ty, Txy before the entry
        used = np.empty(n, np.int64)  # entries some lane of the row used, in list order
        fxl = np.empty(LANES, np.float32)
        st = np.empty((4, LANES), np.float32)  # T (0 when done), Tx, Ty, Txy
        ca = np.empty(LANES, np.float32)
        # upstream: gC (0..2), gCx (3..5), gCy (6..8), gCxy (9..11), g_trans (12)
        gl = np.empty((13, LANES), np.float32)
        D = np.empty((4, LANES), np.float32)  # dual jet of the contracted colour behind: D0, Dx, Dy, Dxy
        for l in range(LANES):
            fxl[l] = f32(tx * LANES + l) + _HALF
        for ly in range(LANES):
            py = ty * LANES + ly
            if py >= height:
                break
            fy = f32(py) + _HALF
            # ---- replay (the expressions of composite_forward_derivatives, verbatim)
            for l in range(LANES):
                st[0, l] = _ONE
                st[1, l] = _ZERO
                st[2, l] = _ZERO
                st[3, l] = _ZERO
                ca[l] = _ZERO
            nu = 0
            for j in range(n):
                mx = P[j, 0]
                dy = fy - P[j, 1]
                a = P[j, 2]
                b = P[j, 3]
                c = P[j, 4]
                o = P[j, 5]
                bdy = b * dy
                cdy = c * dy
                tsum = _ZERO
                asum = _ZERO
                for l in range(LANES):
                    dx = fxl[l] - mx
                    qx = -(a * dx + bdy)
                    qy = -(b * dx + cdy)
                    pw = _HALF * (dx * qx + dy * qy)
                    araw = o * fexp(pw)
                    alpha = min(ALPHA_MAX, araw)
                    T = st[0, l]
                    Tx = st[1, l]
                    Ty = st[2, l]
                    Txy = st[3, l]
                    Tn = T * (_ONE - alpha)
                    valid = alpha >= ALPHA_MIN
                    use = valid and (Tn >= T_MIN)
                    al = alpha if use else _ZERO
                    du = use and (araw < ALPHA_MAX)
                    ax = alpha * qx if du else _ZERO
                    ay = alpha * qy if du else _ZERO
                    axy = alpha * (qx * qy - b) if du else _ZERO
                    om = _ONE - al
                    ca[l] += al * T
                    S[j, 0, l] = al
                    asum += al
                    S[j, 1, l] = T
                    S[j, 2, l] = Tx
                    S[j, 3, l] = Ty
                    S[j, 4, l] = Txy
                    st[3, l] = Txy * om - Tx * ay - Ty * ax - T * axy
                    st[1, l] = Tx * om - T * ax
                    st[2, l] = Ty * om - T * ay
                    Tnew = Tn if use else (_ZERO if valid else T)
                    st[0, l] = Tnew
                    tsum += Tnew
                used[nu] = j  # branch-free: kept only if some lane used entry j
                nu += 1 if asum > _ZERO else 0
                if tsum == _ZERO:
                    break
            # ---- upstream gradients of this row (0 outside the image); D~ starts at the background
            for l in range(LANES):
                px = tx * LANES + l
                if px < width:
                    replay_trans[py, px] = _ONE - ca[l]
                    for k in range(3):
                        gl[k, l] = g_color[py, px, k]
                        gl[3 + k, l] = g_dx[py, px, k]
                        gl[6 + k, l] = g_dy[py, px, k]
                        gl[9 + k, l] = g_dxy[py, px, k]
                    gl[12, l] = g_trans[py, px]
                else:
                    for k in range(13):
                        gl[k, l] = _ZERO
                D[0, l] = bg[0] * gl[9, l] + bg[1] * gl[10, l] + bg[2] * gl[11, l]
                D[1, l] = bg[0] * gl[6, l] + bg[1] * gl[7, l] + bg[2] * gl[8, l]
                D[2, l] = bg[0] * gl[3, l] + bg[1] * gl[4, l] + bg[2] * gl[5, l]
                D[3, l] = bg[0] * gl[0, l] + bg[1] * gl[1, l] + bg[2] * gl[2, l] + gl[12, l]
            # ---- adjoint sweep, back to front
            for u in range(nu - 1, -1, -1):  # entries no lane used change nothing: skip them
                j = used[u]
                mx = P[j, 0]
                dy = fy - P[j, 1]
                a = P[j, 2]
                b = P[j, 3]
                c = P[j, 4]
                r = P[j, 6]
                g = P[j, 7]
                bb = P[j, 8]
                bdy = b * dy
                cdy = c * dy
                s_mx = _ZERO
                s_my = _ZERO
                s_a = _ZERO
                s_b = _ZERO
                s_c = _ZERO
                s_o = _ZERO
                s_r = _ZERO
                s_g = _ZERO
                s_bb = _ZERO
                for l in range(LANES):
                    al = S[j, 0, l]
                    T = S[j, 1, l]
                    Tx = S[j, 2, l]
                    Ty = S[j, 3, l]
                    Txy = S[j, 4, l]
                    dx = fxl[l] - mx
                    qx = -(a * dx + bdy)
                    qy = -(b * dx + cdy)
                    qxy = qx * qy - b
                    ad = al if al < ALPHA_MAX else _ZERO  # smooth alpha (0 when clamped or unused)
                    ax = ad * qx
                    ay = ad * qy
                    axy = ad * qxy
                    # V~ = U~ - D~ with U~ = sum_ch col_ch G~_ch (dual order: xy, y, x, value)
                    V0 = r * gl[9, l] + g * gl[10, l] + bb * gl[11, l] - D[0, l]
                    Vx = r * gl[6, l] + g * gl[7, l] + bb * gl[8, l] - D[1, l]
                    Vy = r * gl[3, l] + g * gl[4, l] + bb * gl[5, l] - D[2, l]
                    Vxy = r * gl[0, l] + g * gl[1, l] + bb * gl[2, l] - D[3, l]
                    # E~ = T~ V~: dual of dL/dalpha~
                    g_axy = T * V0
                    g_ay = T * Vx + Tx * V0
                    g_ax = T * Vy + Ty * V0
                    g_a0 = T * Vxy + Tx * Vy + Ty * Vx + Txy * V0
                    # D~ <- D~ + alpha~ V~
                    D[0, l] += al * V0
                    D[1, l] += al * Vx + ax * V0
                    D[2, l] += al * Vy + ay * V0
                    D[3, l] += al * Vxy + ax * Vy + ay * Vx + axy * V0
                    # colour: g . (alpha~ T~) over the four planes
                    w0 = al * T
                    wx = ax * T + al * Tx
                    wy = ay * T + al * Ty
                    wxy = axy * T + ax * Ty + ay * Tx + al * Txy
                    s_r += gl[0, l] * w0 + gl[3, l] * wx + gl[6, l] * wy + gl[9, l] * wxy
                    s_g += gl[1, l] * w0 + gl[4, l] * wx + gl[7, l] * wy + gl[10, l] * wxy
                    s_bb += gl[2, l] * w0 + gl[5, l] * wx + gl[8, l] * wy + gl[11, l] * wxy
                    # chain rule through alpha, alpha_x, alpha_y, alpha_xy to (mean, conic, opacity)
                    h = g_a0 + g_ax * qx + g_ay * qy + g_axy * qxy
                    Hx = g_ax + g_axy * qy
                    Hy = g_ay + g_axy * qx
                    ah = ad * h
                    aHx = ad * Hx
                    aHy = ad * Hy
                    s_mx += aHx * a + aHy * b - ah * qx
                    s_my += aHx * b + aHy * c - ah * qy
                    s_a -= (_HALF * ah * dx + aHx) * dx
                    s_b -= ah * dx * dy + aHx * dy + aHy * dx + ad * g_axy
                    s_c -= (_HALF * ah * dy + aHy) * dy
                    s_o += ah
                o = P[j, 5]
                Gt[j, 0] += s_mx
                Gt[j, 1] += s_my
                Gt[j, 2] += s_a
                Gt[j, 3] += s_b
                Gt[j, 4] += s_c
                Gt[j, 5] += s_o / o if o > _ZERO else _ZERO
                Gt[j, 6] += s_r
                Gt[j, 7] += s_g
                Gt[j, 8] += s_bb


@njit(parallel=True, fastmath=True, cache=True)
def sum_rows_by_gaussian(gids, rows, n_chunks, g_means, g_conics, g_opac, g_colors):
    """Per-Gaussian sums of the gradient rows [M, 9] of the list entries gids int32 [M].

    Race-free without sorting: ``prange`` over ``n_chunks`` contiguous ranges of Gaussian ids; each range
    streams through all of ``gids`` and sums the rows of its own Gaussians (rows are read in order, and
    the written rows stay cache-resident). Writes every row of g_means [N, 2], g_conics [N, 3],
    g_opac [N] and g_colors [N, 3]."""
    n = g_opac.shape[0]
    m = gids.shape[0]
    for ch in prange(n_chunks):
        lo = ch * n // n_chunks
        hi = (ch + 1) * n // n_chunks
        acc = np.zeros((hi - lo, NGRAD), np.float32)
        for k in range(m):
            g = gids[k] - lo
            if g >= 0 and g < hi - lo:
                for q in range(NGRAD):
                    acc[g, q] += rows[k, q]
        for i in range(hi - lo):
            g = lo + i
            g_means[g, 0] = acc[i, 0]
            g_means[g, 1] = acc[i, 1]
            g_conics[g, 0] = acc[i, 2]
            g_conics[g, 1] = acc[i, 3]
            g_conics[g, 2] = acc[i, 4]
            g_opac[g] = acc[i, 5]
            g_colors[g, 0] = acc[i, 6]
            g_colors[g, 1] = acc[i, 7]
            g_colors[g, 2] = acc[i, 8]
