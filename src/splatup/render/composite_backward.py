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

These kernels instead *replay* the forward, front to back, with the same float32 alpha expression, the same
``fexp`` and the same decision rule as the forward kernels in ``composite.py`` (written out again here; compare
them line by line when either changes). Per pixel the replay makes the forward's decisions and computes its
weights alpha T bit for bit (tested, below). The forward fences some products against fast-math rewrites and
orders the derivative-state updates as explicit FMAs; the replay writes those updates plainly, so its T_x, T_y,
T_xy agree with the forward's to float32 rounding, not bit for bit. The replay
stores, per visited entry and lane, the used alpha (0 when skipped or stopped; 0.99 exactly when clamped)
and the state before the entry (T, and T_x, T_y, T_xy with derivatives) in a per-thread buffer of
[L, 2 | 5, 16] floats (L = the longest tile list), and notes which entries some lane used. The adjoint
sweep then runs back to front over those entries only; D~ is accumulated by convex-combination updates,
with no subtraction of large totals and no division. The replay also rebuilds the final transmittance
(1 - sum of weights, as the forward) into ``replay_trans``.

Loop shape and work skipping
----------------------------
``prange`` over N_CHUNKS chunks of tiles dealt round-robin (as the forward), with all scratch allocated
once per chunk; an empty tile costs nothing but writing its transmittance 1. The 16 lanes are a 4 x 4 pixel
block, as in the forward: the Gaussians are small next to a tile (on a real scene a used entry covers a few
pixels of a row), so a square block wastes fewer lanes than a 16-pixel row. Each block visits only the entries of its
bucket (:func:`_bucket_blocks`): those whose vertical reach covers some of its rows and whose alpha >= 1/255
chords on those rows meet its columns. Every entry left out is one that every lane of the block skips
(alpha < 1/255), in the forward as in the replay, so leaving it out changes nothing. With dy varying across
the block's lanes, the mean and conic gradients of the plain sweep are the lane moments sum k dx^m dy^n
(m + n <= 2) of k = dL/dpower. The gather, the bucket rule and the replay are written out here rather than
imported from ``composite.py``: numba's on-disk cache is keyed by each file alone, so a kernel here that
inlined a helper of ``composite.py`` would keep a stale copy of it after that file changed.

Consistency is tested, not assumed (tests/test_composite_backward.py): for every (pixel, Gaussian) the
forward's weight alpha T, isolated through the colour channels, equals the replay's bit for bit, also on
a scene whose opacities put alpha on the 1/255 and 0.99 thresholds to within rounding (where float64
decides differently from float32 in dozens of places); and every entry that reaches alpha >= 1/255 (float64)
at a pixel of a block is in that block's bucket, on plant.splat among others.

Cost: measured against the forward kernels of revision 09848b8 (16-pixel rows) the backward took 0.78-0.88x
their time on plant.splat; the forward has since become about 2x faster (benchmarks/bench_composite_kernels.py),
and the backward was not re-measured against it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .composite import ALPHA_MAX, ALPHA_MIN, LANES, N_CHUNKS, T_MIN
from .fastexp import fexp

f32 = np.float32
_ONE = f32(1.0)
_ZERO = f32(0.0)
_HALF = f32(0.5)
NGRAD = 9  # mx, my, a, b, c, opacity, r, g, b
BLK = 4  # the backward's lane block: 4 x 4 pixels (16 lanes), 16 blocks per 16 x 16 tile
NBLK = (LANES // BLK) ** 2
NPACK = 14  # gathered per entry: mx, my, a, b, c, opacity, r, g, b, vertical reach, k2, 1/a, b/a, c - b^2/a
# Own helpers, not composite.py's: numba's on-disk cache is keyed by this file alone, so a kernel that inlined
# another file's helper would keep a stale copy of it after that file changed.
CHORD_MARGIN = f32(0.999)  # alpha threshold margin of the chord bound (k2 = 2 ln(255 o / 0.999))


@njit(inline="always")
def _max_list(offsets):
    m = 1
    for t in range(offsets.shape[0] - 1):
        m = max(m, offsets[t + 1] - offsets[t])
    return m


@njit(inline="always")
def _gather_tile(P, s, e, gids, means2d, conics, opac, colors, reach):
    """Copy a tile's entries into the first e - s rows of the chunk's [maxlen, NPACK] buffer ``P``, with the
    chord data: on a row at offset dy, alpha >= 1/255 needs a dx^2 + 2 b dx dy + c dy^2 <= k2 = 2 ln(255 o),
    i.e. dx in -b dy / a +- sqrt((k2 - dy^2 (c - b^2 / a)) / a)."""
    for k in range(e - s):
        g = gids[s + k]
        a = conics[g, 0]
        b = conics[g, 1]
        P[k, 0] = means2d[g, 0]
        P[k, 1] = means2d[g, 1]
        P[k, 2] = a
        P[k, 3] = b
        P[k, 4] = conics[g, 2]
        P[k, 5] = opac[g]
        P[k, 6] = colors[g, 0]
        P[k, 7] = colors[g, 1]
        P[k, 8] = colors[g, 2]
        P[k, 9] = reach[g]
        P[k, 10] = f32(2.0) * np.log(max(opac[g], f32(1e-30)) * f32(255.0) / CHORD_MARGIN)
        P[k, 11] = _ONE / a
        P[k, 12] = b / a
        P[k, 13] = conics[g, 2] - b * b / a


@njit(inline="always")
def _strip_chord(P, k, d0, d1):
    """An x interval [lo, hi] containing the alpha >= 1/255 chords of entry k on every row at vertical offset
    dy in [d0, d1] (lo > hi: none), with the forward's chord margins (threshold 0.999 / 255, half-width
    x 1.001 + 1e-3 px), far above float32 round-off. The chord at dy is centred at
    mx - (b / a) dy, linear in dy, with half-width sqrt((k2 - dy^2 (c - b^2 / a)) / a), largest where |dy| is
    smallest: so [min centre - widest half-width, max centre + widest half-width] holds them all."""
    dm = min(max(_ZERO, d0), d1)  # the offset of the strip nearest the centre row
    q = P[k, 10] - dm * dm * P[k, 13]
    hw = np.sqrt(max(q, _ZERO) * P[k, 11]) * f32(1.001) + f32(1e-3)
    c0 = P[k, 0] - P[k, 12] * d0
    c1 = P[k, 0] - P[k, 12] * d1
    lo = min(c0, c1) - hw
    hi = max(c0, c1) + hw
    return (lo, hi) if q >= _ZERO and d0 <= d1 else (_ONE, _ZERO)


@njit(inline="always")
def _bucket_blocks(P, n, tx, ty, bcnt, bidx):
    """bidx[b, :bcnt[b]] = the entries (in depth order) that can reach alpha >= 1/255 somewhere in 4 x 4 block b
    (b = 4 by + bx): the tile rows the vertical reach covers (the forward's rule, composite._block_masks), then per
    block row the x interval holding those rows' alpha >= 1/255 chords (:func:`_strip_chord`) against the
    blocks' columns. Every other entry is one that every lane of the block skips (alpha < 1/255), in the
    forward as in the replay."""
    for b in range(NBLK):
        bcnt[b] = 0
    base = f32(ty * LANES) + _HALF  # centre of the tile's first pixel row
    top = f32(LANES - 1)
    x0 = f32(tx * LANES) + _HALF  # centre of the tile's first pixel column
    nb = LANES // BLK
    for k in range(n):
        my = P[k, 1] - base
        rch = P[k, 9]
        r0 = int(np.ceil(min(max(my - rch, _ZERO), f32(LANES))))
        r1 = int(np.floor(max(min(my + rch, top), f32(-1.0))))
        for by in range(r0 // BLK, r1 // BLK + 1):
            # the block row's pixel rows within the reach, as offsets from the mean (as the forward computes dy)
            d0 = f32(ty * LANES + max(r0, by * BLK)) + _HALF - P[k, 1]
            d1 = f32(ty * LANES + min(r1, by * BLK + BLK - 1)) + _HALF - P[k, 1]
            lo, hi = _strip_chord(P, k, d0, d1)
            # blocks bx with columns x0 + 4 bx .. x0 + 4 bx + 3 meeting [lo, hi] (1e-3 px slack for the rounding here)
            fb = f32(nb)
            bx0 = int(np.ceil(min(max((lo - x0 - f32(BLK - 1) - f32(1e-3)) / f32(BLK), -_ONE), fb)))
            bx1 = int(np.floor(min(max((hi - x0 + f32(1e-3)) / f32(BLK), -_ONE), fb)))
            for bx in range(nb):
                b = by * nb + bx
                bidx[b, bcnt[b]] = k
                bcnt[b] += 1 if bx0 <= bx and bx <= bx1 else 0


@njit(inline="always")
def _start_tile(t, offsets, tiles_x, width, height, grad_rows, replay_trans):
    """Tile t's list range (s, e) and position (tx, ty); zeroes its gradient rows. An empty tile composited
    nothing: its final transmittance is 1."""
    s = offsets[t]
    e = offsets[t + 1]
    tx = t % tiles_x
    ty = t // tiles_x
    if e == s and replay_trans.shape[0] > 0:
        for py in range(ty * LANES, min(height, ty * LANES + LANES)):
            for px in range(tx * LANES, min(width, tx * LANES + LANES)):
                replay_trans[py, px] = _ONE
    for j in range(s, e):
        for k in range(NGRAD):
            grad_rows[j, k] = _ZERO
    return s, e, tx, ty


@njit(inline="always")
def _block_lanes(b, tx, ty, width, height, fxl, fyl, pix):
    """Pixel centres (fxl, fyl) of block b's 16 lanes and pix [3, 16]: their pixel column and row (clamped
    into the image) and 1 if the lane lies inside the image, else 0. False if the whole block lies outside."""
    x0 = tx * LANES + (b % (LANES // BLK)) * BLK
    y0 = ty * LANES + (b // (LANES // BLK)) * BLK
    if x0 >= width or y0 >= height:
        return False
    for l in range(LANES):
        px = x0 + l % BLK
        py = y0 + l // BLK
        fxl[l] = f32(px) + _HALF
        fyl[l] = f32(py) + _HALF
        pix[0, l] = min(px, width - 1)
        pix[1, l] = min(py, height - 1)
        pix[2, l] = 1 if px < width and py < height else 0
    return True


@njit(inline="always")
def _load_upstream(gl, row, src, pix):
    """gl[row + k, l] = src[py, px, k] of lane l for the 3 channels k (0 outside the image or when ``src`` is
    empty, i.e. a zero gradient)."""
    if src.size == 0:
        for k in range(3):
            for l in range(LANES):
                gl[row + k, l] = _ZERO
        return
    for l in range(LANES):
        for k in range(3):
            v = src[pix[1, l], pix[0, l], k]
            gl[row + k, l] = v if pix[2, l] else _ZERO


@njit(inline="always")
def _load_trans(gl, row, g_trans, pix):
    """gl[row, l] = g_trans[py, px] of lane l (0 outside the image or when ``g_trans`` is empty)."""
    for l in range(LANES):
        v = g_trans[pix[1, l], pix[0, l]] if g_trans.size > 0 else _ZERO
        gl[row, l] = v if pix[2, l] else _ZERO


@njit(inline="always")
def _store_trans(replay_trans, ca, pix):
    """The replayed final transmittance 1 - sum of weights of the block's pixels inside the image (nothing when
    replay_trans is empty: not wanted)."""
    if replay_trans.shape[0] == 0:
        return
    for l in range(LANES):
        if pix[2, l]:
            replay_trans[pix[1, l], pix[0, l]] = _ONE - ca[l]


@njit(inline="always", fastmath=True)
def _replay_plain(P, j, fxl, fyl, T, ca, S, q):
    """Entry j over the block's lanes with the per-lane expressions of composite._lanes_plain, verbatim;
    records the used alpha (0: skipped or stopped) and T before the entry in S[q]. Returns (every lane done,
    some lane used the entry)."""
    mx = P[j, 0]
    my = P[j, 1]
    a = P[j, 2]
    b = P[j, 3]
    c = P[j, 4]
    o = P[j, 5]
    tsum = _ZERO
    anyu = False
    for l in range(LANES):
        dy = fyl[l] - my
        b2dy = f32(2.0) * b * dy
        cdy2 = c * dy * dy
        dx = fxl[l] - mx
        pw = -_HALF * (a * dx * dx + b2dy * dx + cdy2)
        alpha = min(ALPHA_MAX, o * fexp(pw))
        Tl = T[l]
        Tn = Tl * (_ONE - alpha)
        valid = alpha >= ALPHA_MIN
        use = valid and (Tn >= T_MIN)
        w = alpha * Tl if use else _ZERO
        ca[l] += w
        S[q, 0, l] = alpha if use else _ZERO
        S[q, 1, l] = Tl
        Tnew = Tn if use else (_ZERO if valid else Tl)
        T[l] = Tnew
        tsum += Tnew
        anyu |= use
    return tsum == _ZERO, anyu


@njit(inline="always", fastmath=True)
def _replay_deriv(P, j, fxl, fyl, st, ca, S, q):
    """As :func:`_replay_plain` with the per-lane expressions of composite._lanes_deriv; S[q] gets the used
    alpha and T, T_x, T_y, T_xy before the entry."""
    mx = P[j, 0]
    my = P[j, 1]
    a = P[j, 2]
    b = P[j, 3]
    c = P[j, 4]
    o = P[j, 5]
    tsum = _ZERO
    anyu = False
    for l in range(LANES):
        dy = fyl[l] - my
        bdy = b * dy
        cdy = c * dy
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
        S[q, 0, l] = al
        S[q, 1, l] = T
        S[q, 2, l] = Tx
        S[q, 3, l] = Ty
        S[q, 4, l] = Txy
        st[3, l] = Txy * om - Tx * ay - Ty * ax - T * axy
        st[1, l] = Tx * om - T * ax
        st[2, l] = Ty * om - T * ay
        Tnew = Tn if use else (_ZERO if valid else T)
        st[0, l] = Tnew
        tsum += Tnew
        anyu |= use
    return tsum == _ZERO, anyu


@njit(inline="always", fastmath=True)
def _sweep_plain(P, j, fxl, fyl, S, q, gl, D, Gt):
    """Adjoint of entry j (state S[q]) on one block; D (the contracted colour behind, per lane) is updated.

    With k = dL/dpower = alpha dL/dalpha per lane (0 where clamped) and the lane moments K_mn = sum k dx^m dy^n:
    dL/dmx = a K10 + b K01, dL/dmy = b K10 + c K01, dL/da = -K20 / 2, dL/db = -K11, dL/dc = -K02 / 2,
    dL/do = K00 / o."""
    mx = P[j, 0]
    my = P[j, 1]
    r = P[j, 6]
    g = P[j, 7]
    bb = P[j, 8]
    k00 = _ZERO
    k10 = _ZERO
    k01 = _ZERO
    k20 = _ZERO
    k11 = _ZERO
    k02 = _ZERO
    s_r = _ZERO
    s_g = _ZERO
    s_bb = _ZERO
    for l in range(LANES):
        al = S[q, 0, l]
        Tl = S[q, 1, l]
        V = r * gl[0, l] + g * gl[1, l] + bb * gl[2, l] - D[l]
        D[l] += al * V
        w = al * Tl
        s_r += gl[0, l] * w
        s_g += gl[1, l] * w
        s_bb += gl[2, l] * w
        k = w * V if al < ALPHA_MAX else _ZERO
        dx = fxl[l] - mx
        dy = fyl[l] - my
        kdx = k * dx
        kdy = k * dy
        k00 += k
        k10 += kdx
        k01 += kdy
        k20 += kdx * dx
        k11 += kdx * dy
        k02 += kdy * dy
    a = P[j, 2]
    b = P[j, 3]
    c = P[j, 4]
    o = P[j, 5]
    Gt[j, 0] += a * k10 + b * k01
    Gt[j, 1] += b * k10 + c * k01
    Gt[j, 2] -= _HALF * k20
    Gt[j, 3] -= k11
    Gt[j, 4] -= _HALF * k02
    Gt[j, 5] += k00 / o if o > _ZERO else _ZERO
    Gt[j, 6] += s_r
    Gt[j, 7] += s_g
    Gt[j, 8] += s_bb


@njit(inline="always", fastmath=True)
def _sweep_deriv(P, j, fxl, fyl, S, q, gl, D, Gt):
    """Adjoint of entry j (state S[q]) on one block in jet form (module docstring); D~ is updated.

    With ad the smooth alpha (0 where clamped), the lane sums p_x = sum ad (H_x + h dx), p_y = sum ad (H_y + h dy):
    dL/dmx = a p_x + b p_y, dL/dmy = b p_x + c p_y, dL/da = -sum ad dx (H_x + h dx / 2),
    dL/dc = -sum ad dy (H_y + h dy / 2), dL/db = -sum ad (h dx dy + H_x dy + H_y dx + dL/dalpha_xy),
    dL/do = sum ad h / o."""
    mx = P[j, 0]
    my = P[j, 1]
    a = P[j, 2]
    b = P[j, 3]
    c = P[j, 4]
    r = P[j, 6]
    g = P[j, 7]
    bb = P[j, 8]
    k_h = _ZERO
    k_px = _ZERO
    k_py = _ZERO
    k_a = _ZERO
    k_b = _ZERO
    k_c = _ZERO
    s_r = _ZERO
    s_g = _ZERO
    s_bb = _ZERO
    for l in range(LANES):
        al = S[q, 0, l]
        T = S[q, 1, l]
        Tx = S[q, 2, l]
        Ty = S[q, 3, l]
        Txy = S[q, 4, l]
        dx = fxl[l] - mx
        dy = fyl[l] - my
        qx = -(a * dx + b * dy)
        qy = -(b * dx + c * dy)
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
        Hx = ad * (g_ax + g_axy * qy)
        Hy = ad * (g_ay + g_axy * qx)
        ah = ad * h
        ahdx = ah * dx
        ahdy = ah * dy
        k_h += ah
        k_px += Hx + ahdx
        k_py += Hy + ahdy
        k_a += dx * (Hx + _HALF * ahdx)
        k_c += dy * (Hy + _HALF * ahdy)
        k_b += ahdx * dy + Hx * dy + Hy * dx + ad * g_axy
    o = P[j, 5]
    Gt[j, 0] += a * k_px + b * k_py
    Gt[j, 1] += b * k_px + c * k_py
    Gt[j, 2] -= k_a
    Gt[j, 3] -= k_b
    Gt[j, 4] -= k_c
    Gt[j, 5] += k_h / o if o > _ZERO else _ZERO
    Gt[j, 6] += s_r
    Gt[j, 7] += s_g
    Gt[j, 8] += s_bb


@njit(parallel=True, fastmath=True, cache=True)
def composite_backward(means2d, conics, opac, colors, reach, offsets, gids, width, height, tiles_x, bg, g_color,
                       g_trans, grad_rows, replay_trans):
    """Backward of :func:`composite.composite_forward`.

    Inputs as the forward's (float32 means2d [N, 2], conics [N, 3], opac [N], colors [N, 3], reach [N]; int64
    offsets [T + 1]; int32 gids [M]; bg [3]; no depths); upstream g_color [H, W, 3] and g_trans [H, W]
    (either may be empty, shape (0, 0[, 0]), meaning zero). Outputs: grad_rows [M, 9] (every row written),
    replay_trans [H, W] the replayed final transmittance, or an empty [0, 0] array when not wanted.
    """
    n_tiles = offsets.shape[0] - 1
    maxlen = _max_list(offsets)
    for chunk in prange(N_CHUNKS):
      P = np.empty((maxlen, NPACK), np.float32)
      bcnt = np.empty(NBLK, np.int64)
      bidx = np.empty((NBLK, maxlen), np.int32)
      S = np.empty((maxlen, 2, LANES), np.float32)  # per visited entry of the block: used alpha, T before it
      used = np.empty(maxlen, np.int64)  # the visited entries some lane used, in order
      fxl = np.empty(LANES, np.float32)
      fyl = np.empty(LANES, np.float32)
      pix = np.empty((3, LANES), np.int64)  # lanes' pixel column, row, inside the image
      T = np.empty(LANES, np.float32)
      ca = np.empty(LANES, np.float32)
      gl = np.empty((4, LANES), np.float32)  # upstream dL/dC (3 channels), dL/dT_final
      D = np.empty(LANES, np.float32)
      for t in range(chunk, n_tiles, N_CHUNKS):
        s, e, tx, ty = _start_tile(t, offsets, tiles_x, width, height, grad_rows, replay_trans)
        if e == s:
            continue
        Gt = grad_rows[s:e]
        _gather_tile(P, s, e, gids, means2d, conics, opac, colors, reach)
        _bucket_blocks(P, e - s, tx, ty, bcnt, bidx)
        for blk in range(NBLK):
            if not _block_lanes(blk, tx, ty, width, height, fxl, fyl, pix):
                continue
            # ---- replay: the forward's decisions, lane by lane
            for l in range(LANES):
                T[l] = _ONE
                ca[l] = _ZERO
            if bcnt[blk] == 0:  # nothing reaches the block: T stays 1, no gradient
                _store_trans(replay_trans, ca, pix)
                continue
            nu = 0
            for q in range(bcnt[blk]):
                j = bidx[blk, q]
                done, anyu = _replay_plain(P, j, fxl, fyl, T, ca, S, q)
                used[nu] = q  # branch-free: kept only if some lane used the entry
                nu += 1 if anyu else 0
                if done:
                    break
            # ---- upstream gradients of the block (0 outside the image)
            _store_trans(replay_trans, ca, pix)
            _load_upstream(gl, 0, g_color, pix)
            _load_trans(gl, 3, g_trans, pix)
            for l in range(LANES):
                D[l] = bg[0] * gl[0, l] + bg[1] * gl[1, l] + bg[2] * gl[2, l] + gl[3, l]
            # ---- adjoint sweep, back to front over the used entries
            for u in range(nu - 1, -1, -1):
                q = used[u]
                _sweep_plain(P, bidx[blk, q], fxl, fyl, S, q, gl, D, Gt)


@njit(parallel=True, fastmath=True, cache=True)
def composite_backward_derivatives(means2d, conics, opac, colors, reach, offsets, gids, width, height, tiles_x,
                                   bg, g_color, g_trans, g_dx, g_dy, g_dxy, grad_rows, replay_trans):
    """Backward of :func:`composite.composite_forward_derivatives`.

    As :func:`composite_backward`, plus the upstream gradients g_dx, g_dy, g_dxy [H, W, 3] of dC/dx,
    dC/dy and d2C/dxdy (each may be empty, meaning zero; see the module docstring for the jet formulation).
    """
    n_tiles = offsets.shape[0] - 1
    maxlen = _max_list(offsets)
    for chunk in prange(N_CHUNKS):
      P = np.empty((maxlen, NPACK), np.float32)
      bcnt = np.empty(NBLK, np.int64)
      bidx = np.empty((NBLK, maxlen), np.int32)
      S = np.empty((maxlen, 5, LANES), np.float32)  # per visited entry: used alpha, then T, Tx, Ty, Txy before it
      used = np.empty(maxlen, np.int64)
      fxl = np.empty(LANES, np.float32)
      fyl = np.empty(LANES, np.float32)
      pix = np.empty((3, LANES), np.int64)  # lanes' pixel column, row, inside the image
      st = np.empty((4, LANES), np.float32)  # T (0 when done), Tx, Ty, Txy
      ca = np.empty(LANES, np.float32)
      # upstream: gC (0..2), gCx (3..5), gCy (6..8), gCxy (9..11), g_trans (12)
      gl = np.empty((13, LANES), np.float32)
      D = np.empty((4, LANES), np.float32)  # dual jet of the contracted colour behind: D0, Dx, Dy, Dxy
      for t in range(chunk, n_tiles, N_CHUNKS):
        s, e, tx, ty = _start_tile(t, offsets, tiles_x, width, height, grad_rows, replay_trans)
        if e == s:
            continue
        Gt = grad_rows[s:e]
        _gather_tile(P, s, e, gids, means2d, conics, opac, colors, reach)
        _bucket_blocks(P, e - s, tx, ty, bcnt, bidx)
        for blk in range(NBLK):
            if not _block_lanes(blk, tx, ty, width, height, fxl, fyl, pix):
                continue
            # ---- replay: the forward's decisions, lane by lane
            for l in range(LANES):
                st[0, l] = _ONE
                st[1, l] = _ZERO
                st[2, l] = _ZERO
                st[3, l] = _ZERO
                ca[l] = _ZERO
            if bcnt[blk] == 0:  # nothing reaches the block: T stays 1, no gradient
                _store_trans(replay_trans, ca, pix)
                continue
            nu = 0
            for q in range(bcnt[blk]):
                j = bidx[blk, q]
                done, anyu = _replay_deriv(P, j, fxl, fyl, st, ca, S, q)
                used[nu] = q  # branch-free: kept only if some lane used the entry
                nu += 1 if anyu else 0
                if done:
                    break
            # ---- upstream gradients of the block (0 outside the image); D~ starts at the background
            _store_trans(replay_trans, ca, pix)
            _load_upstream(gl, 0, g_color, pix)
            _load_upstream(gl, 3, g_dx, pix)
            _load_upstream(gl, 6, g_dy, pix)
            _load_upstream(gl, 9, g_dxy, pix)
            _load_trans(gl, 12, g_trans, pix)
            for l in range(LANES):
                D[0, l] = bg[0] * gl[9, l] + bg[1] * gl[10, l] + bg[2] * gl[11, l]
                D[1, l] = bg[0] * gl[6, l] + bg[1] * gl[7, l] + bg[2] * gl[8, l]
                D[2, l] = bg[0] * gl[3, l] + bg[1] * gl[4, l] + bg[2] * gl[5, l]
                D[3, l] = bg[0] * gl[0, l] + bg[1] * gl[1, l] + bg[2] * gl[2, l] + gl[12, l]
            # ---- adjoint sweep, back to front over the used entries
            for u in range(nu - 1, -1, -1):
                q = used[u]
                _sweep_deriv(P, bidx[blk, q], fxl, fyl, S, q, gl, D, Gt)


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
