"""Front-to-back alpha compositing of depth-sorted 2D Gaussians in tiles (numba kernels).

Per pixel at the continuous point (i + 0.5, j + 0.5), with d = pixel - mean and conic (a, b, c):

    power = -1/2 (a dx^2 + 2 b dx dy + c dy^2),  alpha = min(0.99, o exp(power))
    skip if alpha < 1/255;  stop (without adding) if T (1 - alpha) < 1e-4
    C += col alpha T,  T <- T (1 - alpha);  finally C += T bg

With derivatives the same pass also carries dT/dx, dT/dy, d2T/dxdy and accumulates dC/dx, dC/dy,
d2C/dxdy by the recurrence in DESIGN.md (alpha derivatives zero where alpha is clamped at 0.99; the
derivative images follow exactly the Gaussians the colour used; the background adds bg * (T_x, T_y, T_xy)).

Loop shape (research/kernels.md): ``prange`` over tiles; each tile's list is first gathered into a small
contiguous buffer; a tile row of 16 pixels then advances as 16 SIMD lanes over the list with branch-free
masked updates. A finished lane is marked by T = 0 (its next T (1 - alpha) is 0 < 1e-4, so it never
contributes again) and the row stops when every lane is done; the final transmittance is recovered as
1 - sum(alpha_i T_i), which telescopes to T_final.

Work skipping that leaves every pixel unchanged (a skipped entry is one that every lane would skip, alpha < 1/255):
``reach`` [N] is each Gaussian's vertical reach in pixels (see :func:`splatup.render.tiles.contribution_extents`);
each tile first buckets its list by the rows the reach covers, so a row visits only the Gaussians that can touch
it, in depth order; a row then skips an entry whose alpha >= 1/255 chord (on that row) misses its 16 pixels.

All kernels take and return float32 numpy arrays (zero-copy views of torch tensors).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .fastexp import fexp

f32 = np.float32
ALPHA_MIN = f32(1.0 / 255.0)
ALPHA_MAX = f32(0.99)
T_MIN = f32(1e-4)
_ONE = f32(1.0)
_ZERO = f32(0.0)
_HALF = f32(0.5)
LANES = 16  # = tile size
NPACK = 15  # mx, my, a, b, c, opacity, r, g, b, depth, vertical reach, k2, 1/a, b/a, c - b^2/a
K2_MARGIN = f32(0.999)  # alpha threshold margin of the chord test, as tiles.REACH_MARGIN


N_CHUNKS = 64  # tiles are dealt round-robin to this many parallel chunks; scratch is allocated once per chunk


@njit(inline="always")
def _max_list(offsets):
    m = 1
    for t in range(offsets.shape[0] - 1):
        m = max(m, offsets[t + 1] - offsets[t])
    return m


@njit(inline="always")
def _gather_tile(P, s, e, gids, means2d, conics, opac, colors, depths, reach):
    """Copy a tile's entries into the first L rows of the chunk's [maxlen, NPACK] buffer ``P``."""
    n = e - s
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
        P[k, 9] = depths[g]
        P[k, 10] = reach[g]
        # chord data: on a row at offset dy, alpha >= 1/255 needs a dx^2 + 2 b dx dy + c dy^2 <= k2 with
        # k2 = 2 ln(255 o), i.e. dx in -b dy / a +- sqrt((k2 - dy^2 (c - b^2 / a)) / a)
        a = conics[g, 0]
        b = conics[g, 1]
        o = opac[g]
        P[k, 11] = f32(2.0) * np.log(max(o, f32(1e-30)) * f32(255.0) / K2_MARGIN)
        P[k, 12] = _ONE / a
        P[k, 13] = b / a
        P[k, 14] = conics[g, 2] - b * b / a


@njit(inline="always")
def _bucket_rows(P, n, ty, rowcnt, rowidx):
    """rowidx[ly, :rowcnt[ly]] = the entries (in depth order) whose vertical reach covers tile row ly, so a row
    visits only the Gaussians that can touch it instead of testing the whole tile list."""
    for ly in range(LANES):
        rowcnt[ly] = 0
    base = f32(ty * LANES) + _HALF  # centre of the tile's first pixel row
    top = f32(LANES - 1)
    for k in range(n):
        my = P[k, 1] - base
        rch = P[k, 10]
        r0 = int(np.ceil(min(max(my - rch, _ZERO), f32(LANES))))
        r1 = int(np.floor(max(min(my + rch, top), f32(-1.0))))
        for ly in range(r0, r1 + 1):
            rowidx[ly, rowcnt[ly]] = k
            rowcnt[ly] += 1


@njit(inline="always")
def _chord(P, j, dy):
    """The x interval [lo, hi] of a row at offset dy where entry j can reach alpha >= 1/255 (lo > hi: none),
    with a margin far above float32 round-off; lanes outside it would all skip the entry."""
    q = P[j, 11] - dy * dy * P[j, 14]
    if q < _ZERO:
        return _ONE, _ZERO
    hw = np.sqrt(q * P[j, 12]) * f32(1.001) + f32(1e-3)
    xc = P[j, 0] - P[j, 13] * dy
    return xc - hw, xc + hw


@njit(inline="always")
def _fill_empty_tile(tx, ty, width, height, bg, out_color, out_alpha, out_depth):
    """A tile with no Gaussians: background, alpha 0, depth 0."""
    for py in range(ty * LANES, min(height, ty * LANES + LANES)):
        for px in range(tx * LANES, min(width, tx * LANES + LANES)):
            out_color[py, px, 0] = bg[0]
            out_color[py, px, 1] = bg[1]
            out_color[py, px, 2] = bg[2]
            out_alpha[py, px] = _ZERO
            out_depth[py, px] = _ZERO


@njit(inline="always", fastmath=True)
def _lanes_plain(P, j, dy, fxl, T, c0, c1, c2, cz, ca):
    """Composite entry j over the 16 lanes of a row; True when all of them are done."""
    mx = P[j, 0]
    a = P[j, 2]
    b2dy = f32(2.0) * P[j, 3] * dy
    cdy2 = P[j, 4] * dy * dy
    o = P[j, 5]
    r = P[j, 6]
    g = P[j, 7]
    bb = P[j, 8]
    z = P[j, 9]
    tsum = _ZERO
    for l in range(LANES):
        dx = fxl[l] - mx
        pw = -_HALF * (a * dx * dx + b2dy * dx + cdy2)
        alpha = min(ALPHA_MAX, o * fexp(pw))
        Tl = T[l]
        Tn = Tl * (_ONE - alpha)
        valid = alpha >= ALPHA_MIN
        use = valid and (Tn >= T_MIN)
        w = alpha * Tl if use else _ZERO
        c0[l] += r * w
        c1[l] += g * w
        c2[l] += bb * w
        cz[l] += z * w
        ca[l] += w
        # stop: T = 0 marks the lane done (its next T (1 - alpha) is 0 < T_MIN)
        Tnew = Tn if use else (_ZERO if valid else Tl)
        T[l] = Tnew
        tsum += Tnew
    return tsum == _ZERO


@njit(parallel=True, fastmath=True, cache=True)
def composite_forward(means2d, conics, opac, colors, depths, reach, offsets, gids, width, height, tiles_x, bg,
                      out_color, out_alpha, out_depth):
    """Plain forward. Outputs: out_color [H, W, 3] (background included), out_alpha [H, W] = 1 - final
    transmittance, out_depth [H, W] expected depth sum(w_i z_i) / alpha (0 where alpha = 0)."""
    n_tiles = offsets.shape[0] - 1
    maxlen = _max_list(offsets)
    for chunk in prange(N_CHUNKS):
      P = np.empty((maxlen, NPACK), np.float32)
      fxl = np.empty(LANES, np.float32)
      T = np.empty(LANES, np.float32)
      c0 = np.empty(LANES, np.float32)
      c1 = np.empty(LANES, np.float32)
      c2 = np.empty(LANES, np.float32)
      cz = np.empty(LANES, np.float32)
      ca = np.empty(LANES, np.float32)  # sum of weights = 1 - T_final (T is zeroed when a lane stops)
      rowcnt = np.empty(LANES, np.int64)
      rowidx = np.empty((LANES, maxlen), np.int32)
      for t in range(chunk, n_tiles, N_CHUNKS):
        s = offsets[t]
        e = offsets[t + 1]
        tx = t % tiles_x
        ty = t // tiles_x
        n = e - s
        if n == 0:
            _fill_empty_tile(tx, ty, width, height, bg, out_color, out_alpha, out_depth)
            continue
        _gather_tile(P, s, e, gids, means2d, conics, opac, colors, depths, reach)
        _bucket_rows(P, n, ty, rowcnt, rowidx)
        for l in range(LANES):
            fxl[l] = f32(tx * LANES + l) + _HALF
        for ly in range(LANES):
            py = ty * LANES + ly
            if py >= height:
                break
            fy = f32(py) + _HALF
            for l in range(LANES):
                T[l] = _ONE
                c0[l] = _ZERO
                c1[l] = _ZERO
                c2[l] = _ZERO
                cz[l] = _ZERO
                ca[l] = _ZERO
            for q in range(rowcnt[ly]):
                j = rowidx[ly, q]
                dy = fy - P[j, 1]
                lo, hi = _chord(P, j, dy)
                if lo > fxl[LANES - 1] or hi < fxl[0]:
                    continue  # no lane of this row can reach alpha >= 1/255
                if _lanes_plain(P, j, dy, fxl, T, c0, c1, c2, cz, ca):
                    break  # every lane of the row is done
            for l in range(LANES):
                px = tx * LANES + l
                if px < width:
                    Tf = _ONE - ca[l]
                    out_color[py, px, 0] = c0[l] + Tf * bg[0]
                    out_color[py, px, 1] = c1[l] + Tf * bg[1]
                    out_color[py, px, 2] = c2[l] + Tf * bg[2]
                    out_alpha[py, px] = ca[l]
                    out_depth[py, px] = cz[l] / ca[l] if ca[l] > _ZERO else _ZERO


@njit(inline="always", fastmath=True)
def _lanes_deriv(P, j, dy, fxl, st, acc):
    """Composite entry j, with derivatives, over the 16 lanes of a row; True when all of them are done."""
    mx = P[j, 0]
    a = P[j, 2]
    b = P[j, 3]
    c = P[j, 4]
    o = P[j, 5]
    r = P[j, 6]
    g = P[j, 7]
    bb = P[j, 8]
    z = P[j, 9]
    bdy = b * dy
    cdy = c * dy
    tsum = _ZERO
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
        wgt = al * T
        wx = ax * T + al * Tx
        wy = ay * T + al * Ty
        wxy = axy * T + ax * Ty + ay * Tx + al * Txy
        acc[0, l] += r * wgt
        acc[1, l] += g * wgt
        acc[2, l] += bb * wgt
        acc[3, l] += r * wx
        acc[4, l] += g * wx
        acc[5, l] += bb * wx
        acc[6, l] += r * wy
        acc[7, l] += g * wy
        acc[8, l] += bb * wy
        acc[9, l] += r * wxy
        acc[10, l] += g * wxy
        acc[11, l] += bb * wxy
        acc[12, l] += z * wgt
        acc[13, l] += wgt
        st[3, l] = Txy * om - Tx * ay - Ty * ax - T * axy
        st[1, l] = Tx * om - T * ax
        st[2, l] = Ty * om - T * ay
        Tnew = Tn if use else (_ZERO if valid else T)
        st[0, l] = Tnew
        tsum += Tnew
    return tsum == _ZERO


@njit(parallel=True, fastmath=True, cache=True)
def composite_forward_derivatives(means2d, conics, opac, colors, depths, reach, offsets, gids, width, height,
                                  tiles_x, bg, out_color, out_alpha, out_depth, out_dx, out_dy, out_dxy, out_tder):
    """Forward with image-space derivatives. As :func:`composite_forward`, plus out_dx, out_dy, out_dxy
    [H, W, 3] (dC/dx, dC/dy, d2C/dxdy in this image's pixel units, background terms included) and
    out_tder [H, W, 3] the final (dT/dx, dT/dy, d2T/dxdy)."""
    n_tiles = offsets.shape[0] - 1
    maxlen = _max_list(offsets)
    for chunk in prange(N_CHUNKS):
      P = np.empty((maxlen, NPACK), np.float32)
      fxl = np.empty(LANES, np.float32)
      st = np.empty((4, LANES), np.float32)  # T (0 when done), Tx, Ty, Txy
      acc = np.empty((14, LANES), np.float32)  # C, Cx, Cy, Cxy per channel, depth, sum of weights
      rowcnt = np.empty(LANES, np.int64)
      rowidx = np.empty((LANES, maxlen), np.int32)
      for t in range(chunk, n_tiles, N_CHUNKS):
        s = offsets[t]
        e = offsets[t + 1]
        tx = t % tiles_x
        ty = t // tiles_x
        n = e - s
        if n == 0:
            _fill_empty_tile(tx, ty, width, height, bg, out_color, out_alpha, out_depth)
            for py in range(ty * LANES, min(height, ty * LANES + LANES)):
                for px in range(tx * LANES, min(width, tx * LANES + LANES)):
                    for k in range(3):
                        out_dx[py, px, k] = _ZERO
                        out_dy[py, px, k] = _ZERO
                        out_dxy[py, px, k] = _ZERO
                        out_tder[py, px, k] = _ZERO
            continue
        _gather_tile(P, s, e, gids, means2d, conics, opac, colors, depths, reach)
        _bucket_rows(P, n, ty, rowcnt, rowidx)
        for l in range(LANES):
            fxl[l] = f32(tx * LANES + l) + _HALF
        for ly in range(LANES):
            py = ty * LANES + ly
            if py >= height:
                break
            fy = f32(py) + _HALF
            for l in range(LANES):
                st[0, l] = _ONE
                st[1, l] = _ZERO
                st[2, l] = _ZERO
                st[3, l] = _ZERO
                for q in range(14):
                    acc[q, l] = _ZERO
            for q in range(rowcnt[ly]):
                j = rowidx[ly, q]
                dy = fy - P[j, 1]
                lo, hi = _chord(P, j, dy)
                if lo > fxl[LANES - 1] or hi < fxl[0]:
                    continue  # no lane of this row can reach alpha >= 1/255
                if _lanes_deriv(P, j, dy, fxl, st, acc):
                    break  # every lane of the row is done
            for l in range(LANES):
                px = tx * LANES + l
                if px < width:
                    Tf = _ONE - acc[13, l]
                    Tx = st[1, l]
                    Ty = st[2, l]
                    Txy = st[3, l]
                    for k in range(3):
                        out_color[py, px, k] = acc[k, l] + Tf * bg[k]
                        out_dx[py, px, k] = acc[3 + k, l] + Tx * bg[k]
                        out_dy[py, px, k] = acc[6 + k, l] + Ty * bg[k]
                        out_dxy[py, px, k] = acc[9 + k, l] + Txy * bg[k]
                    out_alpha[py, px] = acc[13, l]
                    out_depth[py, px] = acc[12, l] / acc[13, l] if acc[13, l] > _ZERO else _ZERO
                    out_tder[py, px, 0] = Tx
                    out_tder[py, px, 1] = Ty
                    out_tder[py, px, 2] = Txy
