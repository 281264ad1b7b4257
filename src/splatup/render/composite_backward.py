"""Backward pass of tile compositing: per list entry (tile, Gaussian) the gradient row

    [d/dmx, d/dmy, d/da, d/db, d/dc, d/dopacity, d/dr, d/dg, d/db_colour]      ([M, 9] float32)

from the upstream gradients of colour, final transmittance and (with derivatives) dC/dx, dC/dy, d2C/dxdy;
:func:`sum_rows_by_gaussian` then sums the rows per Gaussian. Each tile writes only its own rows, so the
``prange`` over tiles is race-free, and every sum runs in a fixed order (the same bits on every run).

Maths: the derivative recurrence as jet arithmetic
-------------------------------------------------
Write every per-pixel quantity as a truncated jet X = X0 + Xx ex + Xy ey + Xxy ex ey with ex^2 = ey^2 = 0.
The forward recurrence of DESIGN.md is then ordinary compositing in this commutative ring:

    alpha~_i = (alpha, alpha_x, alpha_y, alpha_xy)_i,   T~_{i+1} = T~_i (1 - alpha~_i),
    C~ = sum_i col_i alpha~_i T~_i + bg T~_end         (C~ = (C, C_x, C_y, C_xy) per channel)

so the classic 3DGS backward carries over with ring products in place of real ones. The loss is linear in
the jet coefficients; pair it through the "dual" jet of the upstream gradients, G~ = (gC_xy, gC_y, gC_x, gC),
so that <G, X> = [ex ey](G~ X). With the per-entry contraction U~_i = sum_ch col_i,ch G~_ch and the contracted
colour behind entry i, D~_i (a single jet per pixel):

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

The plain mode is the special case with all x / y parts zero (h = dL/dalpha); the first-order mode has no
C_xy output, so G~'s ex ey part is 0 and T_xy never enters. A clamped entry (o exp(power) >= 0.99) has the
constant alpha~ = (0.99, 0, 0, 0): it still scales what lies behind it and its colour still gets a gradient,
but its own opacity, mean and conic get none. Skipped (alpha < 1/255) and stopped entries get nothing.

Replay instead of inverting the recurrence: recovering T_i = T_{i+1} / (1 - alpha_i) back to front divides
by (1 - alpha) >= 0.01 at every opaque entry (T_x, T_y, T_xy likewise, as differences), amplifying float32
rounding along the list. These kernels instead replay the forward per block with the very step of
:mod:`.lanes` (same expressions, same bits), record per visited entry the used alpha and the state before it,
and then sweep back to front over the entries some lane used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ._kernel_cache import kernel, variant_named
from .lanes import (
    ALPHA_MAX,
    BH,
    BW,
    LANES,
    N_CHUNKS,
    NBLK,
    NPACK,
    PLAIN,
    SECOND,
    T_,
    TILE,
    TX,
    TXY,
    TY,
    WSUM,
    alpha_terms,
    block_origin,
    bucket_blocks,
    ctz,
    derivative_weights,
    done,
    entry,
    gather_tile,
    initial_state,
    lane_centres,
    max_list,
    pack,
    padded,
    step,
    tile_span,
)
from .lanes import FIRST as FIRST
from .simd import fma, hsum, load_rgb_rows, load_rows, mask_bits, select, splat, store_rows, vload, vstore

NGRAD = 9  # mx, my, a, b, c, opacity, r, g, b
N_UP = 13  # upstream planes of a block: gC (3), gCx (3), gCy (3), gCxy (3), g_trans
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)


class Upstream(NamedTuple):
    """Upstream gradients (float32, C-contiguous): color, dx, dy, dxy [H, W, 3] and trans [H, W] (of the final
    transmittance). An absent one is an empty array ([0, 0, 3] / [0, 0]) and reads as zero."""

    color: np.ndarray
    trans: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    dxy: np.ndarray


@njit(inline="always")
def _load_rgb(src, x0, y0, width, height, full, scratch, row):
    """The block's lanes of an [H, W, 3] image as three vectors (0 outside the image or for an empty ``src``)."""
    if src.size == 0:
        z = splat(_ZERO)
        return z, z, z
    if full:
        return load_rgb_rows(src.reshape(src.size), 3 * (y0 * width + x0), 3 * width)
    for l in range(LANES):
        px = x0 + l % BW
        py = y0 + l // BW
        inside = px < width and py < height
        for k in range(3):
            scratch[row + k, l] = src[py, px, k] if inside else _ZERO
    flat = scratch.reshape(scratch.size)
    return vload(flat, row * LANES), vload(flat, (row + 1) * LANES), vload(flat, (row + 2) * LANES)


@njit(inline="always")
def _load_plane(src, x0, y0, width, height, full, scratch, row):
    """The block's lanes of an [H, W] image as a vector (0 outside the image or for an empty ``src``)."""
    if src.size == 0:
        return splat(_ZERO)
    if full:
        return load_rows(src.reshape(src.size), y0 * width + x0, width)
    for l in range(LANES):
        px = x0 + l % BW
        py = y0 + l // BW
        scratch[row, l] = src[py, px] if px < width and py < height else _ZERO
    return vload(scratch.reshape(scratch.size), row * LANES)


@njit(inline="always")
def _store_trans(replay_trans, trans, x0, y0, width, height, full, scratch):
    """The replayed final transmittance of the block's pixels (nothing when ``replay_trans`` is empty)."""
    if replay_trans.shape[0] == 0:
        return
    if full:
        store_rows(replay_trans.reshape(replay_trans.size), y0 * width + x0, width, trans)
        return
    vstore(scratch.reshape(scratch.size), 0, trans)
    for l in range(LANES):
        px = x0 + l % BW
        py = y0 + l // BW
        if px < width and py < height:
            replay_trans[py, px] = scratch[0, l]


def _make_backward(variant: int):
    """The backward kernel of one variant (PLAIN, FIRST or SECOND)."""
    n_rec = 2 if variant == PLAIN else 5  # recorded per visited entry: used alpha, T (, T_x, T_y, T_xy)

    @njit
    @variant_named(variant)
    def backward_tile(t, G, splats, lists, frame, up, grad_rows, replay_trans, P, Q, words, rec, used, scratch):
        width = frame.width
        height = frame.height
        bg = frame.background
        s, e, tx, ty = tile_span(t, lists.offsets, lists.tiles_x)
        for j in range(s, e):
            for k in range(NGRAD):
                grad_rows[j, k] = _ZERO
        if e == s:  # nothing composited: the final transmittance is 1
            if replay_trans.shape[0] > 0:
                for py in range(ty * TILE, min(height, ty * TILE + TILE)):
                    for px in range(tx * TILE, min(width, tx * TILE + TILE)):
                        replay_trans[py, px] = _ONE
            return
        gather_tile(P, Q, s, e, lists.gids, G)
        bucket_blocks(Q, e - s, tx, ty, words)
        nw = (e - s + 63) // 64
        recf = rec.reshape(rec.size)
        for blk in range(NBLK):
            x0, y0 = block_origin(blk, tx, ty)
            if x0 >= width or y0 >= height:
                continue
            full = x0 + BW <= width and y0 + BH <= height
            fx, fy = lane_centres(x0, y0)
            # ---- replay: the forward's step, recording the used alpha and the state before each entry
            S = initial_state()
            nu = 0
            finished = False
            for w in range(nw):  # the block's entries in depth order: the set bits of its bitset
                bits = words[blk, w]
                while bits != 0:
                    j = 64 * w + ctz(bits)
                    bits &= bits - 1
                    base = nu * n_rec * LANES
                    vstore(recf, base + LANES, S[T_])
                    if variant != PLAIN:
                        vstore(recf, base + 2 * LANES, S[TX])
                        vstore(recf, base + 3 * LANES, S[TY])
                        vstore(recf, base + 4 * LANES, S[TXY])
                    S, al = step(S, entry(P, j), fx, fy, variant)
                    vstore(recf, base, al)
                    used[nu] = j
                    nu += 1 if mask_bits(al > _ZERO) != 0 else 0  # kept only if some lane used the entry
                    if done(S):
                        finished = True
                        break
                if finished:
                    break
            _store_trans(replay_trans, _ONE - S[WSUM], x0, y0, width, height, full, scratch)
            if nu == 0:
                continue
            # ---- upstream gradients of the block; D~ starts at the background's share
            gr, gg, gb = _load_rgb(up.color, x0, y0, width, height, full, scratch, 0)
            gt = _load_plane(up.trans, x0, y0, width, height, full, scratch, 12)
            d3 = fma(gr, bg[0], fma(gg, bg[1], fma(gb, bg[2], gt)))
            zero = splat(_ZERO)
            xr, xg, xb, yr, yg, yb, zr, zg, zb = zero, zero, zero, zero, zero, zero, zero, zero, zero
            d0, d1, d2 = zero, zero, zero
            if variant != PLAIN:
                xr, xg, xb = _load_rgb(up.dx, x0, y0, width, height, full, scratch, 3)
                yr, yg, yb = _load_rgb(up.dy, x0, y0, width, height, full, scratch, 6)
                d1 = fma(yr, bg[0], fma(yg, bg[1], yb * bg[2]))
                d2 = fma(xr, bg[0], fma(xg, bg[1], xb * bg[2]))
                if variant == SECOND:
                    zr, zg, zb = _load_rgb(up.dxy, x0, y0, width, height, full, scratch, 9)
                    d0 = fma(zr, bg[0], fma(zg, bg[1], zb * bg[2]))
            # ---- adjoint sweep, back to front over the used entries
            for u in range(nu - 1, -1, -1):
                j = used[u]
                base = u * n_rec * LANES
                al = vload(recf, base)
                T = vload(recf, base + LANES)
                en = entry(P, j)
                r, g, b_ = en[6], en[7], en[8]
                a, b, c, o = en[2], en[3], en[4], en[5]
                Vxy = fma(gr, r, fma(gg, g, gb * b_)) - d3
                if variant == PLAIN:
                    _, _, _, dx, dy = alpha_terms(en, fx, fy)
                    d3 = fma(al, Vxy, d3)
                    w = al * T
                    k = select(al < ALPHA_MAX, w * Vxy, zero)
                    kdx = k * dx
                    kdy = k * dy
                    k10 = hsum(kdx)
                    k01 = hsum(kdy)
                    grad_rows[s + j, 0] += a * k10 + b * k01
                    grad_rows[s + j, 1] += b * k10 + c * k01
                    grad_rows[s + j, 2] -= _HALF * hsum(kdx * dx)
                    grad_rows[s + j, 3] -= hsum(kdx * dy)
                    grad_rows[s + j, 4] -= _HALF * hsum(kdy * dy)
                    grad_rows[s + j, 5] += hsum(k) / o if o > _ZERO else _ZERO
                    grad_rows[s + j, 6] += hsum(gr * w)
                    grad_rows[s + j, 7] += hsum(gg * w)
                    grad_rows[s + j, 8] += hsum(gb * w)
                    continue
                Tx = vload(recf, base + 2 * LANES)
                Ty = vload(recf, base + 3 * LANES)
                Txy = vload(recf, base + 4 * LANES) if variant == SECOND else zero
                _, qx, qy, dx, dy = alpha_terms(en, fx, fy)
                ad = select(al < ALPHA_MAX, al, zero)  # the smooth alpha (0 when clamped or unused)
                ax, ay, axy, _, _, _, wx, wy, wxy = derivative_weights(al, ad, qx, qy, b, T, Tx, Ty, Txy, variant)
                w0 = al * T
                # V~ = U~ - D~ (dual order: xy, y, x, value); E~ = T~ V~ is the dual of dL/d alpha~
                Vx = fma(yr, r, fma(yg, g, yb * b_)) - d1
                Vy = fma(xr, r, fma(xg, g, xb * b_)) - d2
                g_ay = T * Vx
                g_ax = T * Vy
                g_a0 = fma(T, Vxy, fma(Tx, Vy, Ty * Vx))
                d1 = fma(al, Vx, d1)
                d2 = fma(al, Vy, d2)
                d3 = fma(al, Vxy, fma(ax, Vy, fma(ay, Vx, d3)))
                s_r = fma(gr, w0, fma(xr, wx, yr * wy))
                s_g = fma(gg, w0, fma(xg, wx, yg * wy))
                s_b = fma(gb, w0, fma(xb, wx, yb * wy))
                h = fma(g_ax, qx, fma(g_ay, qy, g_a0))
                Hx = ad * g_ax
                Hy = ad * g_ay
                kb = zero
                if variant == SECOND:
                    qxy = fma(qx, qy, splat(-b))
                    V0 = fma(zr, r, fma(zg, g, zb * b_)) - d0
                    g_axy = T * V0
                    g_ay = fma(Tx, V0, g_ay)
                    g_ax = fma(Ty, V0, g_ax)
                    g_a0 = fma(Txy, V0, g_a0)
                    d0 = fma(al, V0, d0)
                    d1 = fma(ax, V0, d1)
                    d2 = fma(ay, V0, d2)
                    d3 = fma(axy, V0, d3)
                    s_r = fma(zr, wxy, s_r)
                    s_g = fma(zg, wxy, s_g)
                    s_b = fma(zb, wxy, s_b)
                    h = fma(g_ax, qx, fma(g_ay, qy, fma(g_axy, qxy, g_a0)))
                    Hx = ad * fma(g_axy, qy, g_ax)
                    Hy = ad * fma(g_axy, qx, g_ay)
                    kb = ad * g_axy
                ah = ad * h
                ahdx = ah * dx
                ahdy = ah * dy
                k_px = hsum(Hx + ahdx)
                k_py = hsum(Hy + ahdy)
                grad_rows[s + j, 0] += a * k_px + b * k_py
                grad_rows[s + j, 1] += b * k_px + c * k_py
                grad_rows[s + j, 2] -= hsum(dx * fma(ahdx, splat(_HALF), Hx))
                grad_rows[s + j, 3] -= hsum(fma(ahdx, dy, fma(Hx, dy, fma(Hy, dx, kb))))
                grad_rows[s + j, 4] -= hsum(dy * fma(ahdy, splat(_HALF), Hy))
                grad_rows[s + j, 5] += hsum(ah) / o if o > _ZERO else _ZERO
                grad_rows[s + j, 6] += hsum(s_r)
                grad_rows[s + j, 7] += hsum(s_g)
                grad_rows[s + j, 8] += hsum(s_b)

    @kernel(parallel=True)
    @variant_named(variant)
    def backward(splats, lists, frame, up, grad_rows, replay_trans):
        n_tiles = lists.offsets.shape[0] - 1
        maxlen = max_list(lists.offsets)
        n = splats.opacities.shape[0]
        G = np.empty((n, NPACK), np.float32)
        for i in prange(n):
            pack(G, i, splats)
        for chunk in prange(N_CHUNKS):
            P = np.empty((maxlen, NPACK), np.float32)
            Q = np.empty((7, padded(maxlen)), np.float32)
            words = np.empty((NBLK, (maxlen + 63) // 64), np.int64)
            rec = np.empty((maxlen, n_rec, LANES), np.float32)
            used = np.empty(maxlen, np.int64)
            scratch = np.empty((N_UP, LANES), np.float32)
            for t in range(chunk, n_tiles, N_CHUNKS):
                backward_tile(t, G, splats, lists, frame, up, grad_rows, replay_trans, P, Q, words, rec, used,
                              scratch)

    return backward


_BACKWARD = {v: _make_backward(v) for v in (PLAIN, FIRST, SECOND)}


def composite_backward(splats, lists, frame, up: Upstream, grad_rows: np.ndarray, variant: int,
                       replay_trans: np.ndarray | None = None) -> None:
    """Backward of :func:`splatup.render.composite.composite_forward` with the same ``splats``, ``lists``,
    ``frame`` and ``variant``. Writes every row of ``grad_rows`` [M, 9] and, when given, ``replay_trans`` [H, W]
    (the replayed final transmittance, for tests)."""
    if replay_trans is None:
        replay_trans = np.empty((0, 0), np.float32)
    _BACKWARD[variant](splats, lists, frame, up, grad_rows, replay_trans)


@kernel(parallel=True)
def sum_rows_by_gaussian(gids, rows, n_chunks, g_means, g_conics, g_opac, g_colors):
    """Per-Gaussian sums of the gradient rows [M, 9] of the list entries gids int32 [M].

    Race-free without sorting: ``prange`` over ``n_chunks`` contiguous ranges of Gaussian ids; each range
    streams through all of ``gids`` and sums the rows of its own Gaussians in list order (the same bits for any
    thread count given the same n_chunks). Writes every row of g_means [N, 2], g_conics [N, 3], g_opac [N] and
    g_colors [N, 3]."""
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


__all__ = ["NGRAD", "Upstream", "composite_backward", "sum_rows_by_gaussian"]
