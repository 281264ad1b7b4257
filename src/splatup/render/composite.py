"""Front-to-back alpha compositing of depth-sorted 2D Gaussians in tiles (numba kernels).

Per pixel at the continuous point (i + 0.5, j + 0.5), with d = pixel - mean and conic (a, b, c):

    power = -1/2 (a dx^2 + 2 b dx dy + c dy^2),  alpha = min(0.99, o exp(power))
    skip if alpha < 1/255;  stop (without adding) if T (1 - alpha) < 1e-4
    C += col alpha T,  T <- T (1 - alpha);  finally C += T bg

With derivatives the same pass also carries dT/dx, dT/dy, d2T/dxdy and accumulates dC/dx, dC/dy,
d2C/dxdy by the recurrence in DESIGN.md (alpha derivatives zero where alpha is clamped at 0.99; the
derivative images follow exactly the Gaussians the colour used; the background adds bg * (T_x, T_y, T_xy)).

Loop shape (research/kernels.md): ``prange`` over N_CHUNKS chunks of tiles dealt round-robin, scratch allocated
once per chunk; each tile's list is first gathered into a small contiguous buffer; a 4 x 4 pixel block of the
tile then advances as 16 SIMD lanes over the list with branch-free masked updates. A finished lane is marked by
T = 0 (its next T (1 - alpha) is 0 < 1e-4, so it never contributes again) and the block stops when every lane is
done; the final transmittance is recovered as 1 - sum(alpha_i T_i), which telescopes to T_final.

Work skipping that leaves every pixel unchanged (a skipped entry is one that every lane would skip, alpha < 1/255,
and skipping it is then an exact no-op on every lane's state): ``reach`` [N] is each Gaussian's vertical reach in
pixels (see :func:`splatup.render.tiles.contribution_extents`); each tile buckets its list per 4 x 4 block
(:func:`_bucket_blocks`): an entry goes to the blocks whose rows its reach covers and whose columns meet the
alpha >= 1/255 chords of those rows, in depth order. A square block instead of a 16-pixel row: the Gaussians are
small next to a tile, more so in the low-resolution renders that are upscaled (a few pixels wide), so a block
evaluates fewer lanes per useful evaluation (plant.splat at 480 x 270: about half as many lane evaluations).

Per pixel, the entries composited, their order and the float32 expressions are those of the earlier 16-pixel-row
kernels, so the images are bit for bit theirs (benchmarks/bench_composite_kernels.py checks every plane of the
two against each other before timing them). The backward (composite_backward.py) replays these per-lane
expressions with the same lane blocks.

All kernels take and return float32 numpy arrays (zero-copy views of torch tensors).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .fastexp import fexp

f32 = np.float32
ALPHA_MIN = f32(1.0 / 255.0)
ALPHA_MAX = f32(0.99)
T_MIN = f32(1e-4)
_ONE = f32(1.0)
_ZERO = f32(0.0)
_HALF = f32(0.5)
LANES = 16  # = tile size
BW = 4  # the lane block: BW x BH pixels
BH = 4
NL = BW * BH  # lanes of a block
NBX = LANES // BW  # blocks per tile row and column
NBY = LANES // BH
NBLK = NBX * NBY
NPACK = 16  # mx, my, a, b, c, opacity, r, g, b, depth, vertical reach, k2, 1/a, b/a, c - b^2/a, (unused)
K2_MARGIN = f32(0.999)  # alpha threshold margin of the chord bound, as tiles.REACH_MARGIN


N_CHUNKS = 64  # tiles are dealt round-robin to this many parallel chunks; scratch is allocated once per chunk


@intrinsic
def _fence(typingctx, x, zero):
    """x, opaque to fast-math rewrites: its bits OR-ed with ``zero``, an int32 0 that the compiler cannot see
    (one vector integer op). A product that the row kernels computed once per row stays a separately rounded
    value here too, never fused into a later add or reassociated."""
    sig = types.float32(types.float32, types.int32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        bits = builder.or_(builder.bitcast(args[0], i32), args[1])
        return builder.bitcast(bits, ir.FloatType())

    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a b + c, rounded once (llvm.fma: vectorises to vfmadd)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f, [f, f, f]), "llvm.fma.f32")
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Prefetch the cache line holding arr[row, 0] of a C-contiguous 2D array (llvm.prefetch: a hint, no fault)."""
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer2(context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
                                        strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
                                        inds=[r, ir.Constant(r.type, 0)], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _ctz(typingctx, x):
    """Number of trailing zero bits of a nonzero int64 (llvm.cttz)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@njit(inline="always")
def _max_list(offsets):
    m = 1
    for t in range(offsets.shape[0] - 1):
        m = max(m, offsets[t + 1] - offsets[t])
    return m


@njit(inline="always")
def _pack(G, i, means2d, conics, opac, colors, depths, reach):
    """G[i] = Gaussian i's 16 floats (one cache line, so that gathering a tile list touches one line per entry)."""
    a = conics[i, 0]
    b = conics[i, 1]
    G[i, 0] = means2d[i, 0]
    G[i, 1] = means2d[i, 1]
    G[i, 2] = a
    G[i, 3] = b
    G[i, 4] = conics[i, 2]
    G[i, 5] = opac[i]
    G[i, 6] = colors[i, 0]
    G[i, 7] = colors[i, 1]
    G[i, 8] = colors[i, 2]
    G[i, 9] = depths[i]
    G[i, 10] = reach[i]
    # chord data: on a row at offset dy, alpha >= 1/255 needs a dx^2 + 2 b dx dy + c dy^2 <= k2 with
    # k2 = 2 ln(255 o), i.e. dx in -b dy / a +- sqrt((k2 - dy^2 (c - b^2 / a)) / a)
    G[i, 11] = f32(2.0) * np.log(max(opac[i], f32(1e-30)) * f32(255.0) / K2_MARGIN)
    G[i, 12] = _ONE / a
    G[i, 13] = b / a
    G[i, 14] = conics[i, 2] - b * b / a
    G[i, 15] = _ZERO


PREFETCH = 32  # entries ahead that the gather prefetches (the packed Gaussians are read in random order)


@njit(inline="always")
def _gather_tile(P, Q, s, e, gids, G):
    """Copy a tile's entries into the first e - s rows of the chunk's [maxlen, NPACK] buffer ``P``, and the fields
    the bucketing reads (mx, my, reach, k2, 1/a, b/a, c - b^2/a) into the rows of ``Q`` [7, maxlen]. The rows of G
    are read in random order: prefetching them some entries ahead overlaps the cache misses."""
    n = e - s
    for k in range(min(n, PREFETCH)):
        _prefetch_row(G, gids[s + k])
    for k in range(n):
        g = gids[s + k]
        _prefetch_row(G, gids[s + min(k + PREFETCH, n - 1)])
        for f in range(NPACK):
            P[k, f] = G[g, f]
        Q[0, k] = G[g, 0]
        Q[1, k] = G[g, 1]
        Q[2, k] = G[g, 10]
        Q[3, k] = G[g, 11]
        Q[4, k] = G[g, 12]
        Q[5, k] = G[g, 13]
        Q[6, k] = G[g, 14]


@njit(inline="always", fastmath=True)
def _block_masks(Q, n, tx, ty, mask):
    """mask[k] = bit b set for the 4 x 4 blocks b (b = 4 by + bx) where entry k can reach alpha >= 1/255: the tile
    rows its vertical reach covers, then per block row an x interval holding those rows' alpha >= 1/255 chords
    against the blocks' columns. The chord at row offset dy is centred at mx - (b / a) dy, linear in dy, with
    half-width sqrt((k2 - dy^2 (c - b^2 / a)) / a), largest where |dy| is smallest: so [min centre - widest
    half-width, max centre + widest half-width] holds them all. Margins far above float32 round-off: threshold
    0.999 / 255, half-width x 1.001 + 1e-3 px, 1e-3 px on the block edges. Branch-free, vectorised over entries."""
    base = f32(ty * LANES) + _HALF  # centre of the tile's first pixel row
    x0 = f32(tx * LANES) + _HALF  # centre of the tile's first pixel column
    for k in range(n):
        mx = Q[0, k]
        my = Q[1, k]
        rch = Q[2, k]
        myt = my - base
        r0 = np.ceil(min(max(myt - rch, _ZERO), f32(LANES)))  # first and last tile row within the reach
        r1 = np.floor(max(min(myt + rch, f32(LANES - 1)), f32(-1.0)))
        m = np.int64(0)
        for by in range(NBY):
            rlo = max(r0, f32(by * BH))
            rhi = min(r1, f32(by * BH + BH - 1))
            d0 = base + rlo - my  # offsets of the block row's first and last row within the reach
            d1 = base + rhi - my
            dm = min(max(_ZERO, d0), d1)  # the offset nearest the centre row
            q = Q[3, k] - dm * dm * Q[6, k]
            hw = np.sqrt(max(q, _ZERO) * Q[4, k]) * f32(1.001) + f32(1e-3)
            c0 = mx - Q[5, k] * d0
            c1 = mx - Q[5, k] * d1
            lo = min(c0, c1) - hw
            hi = max(c0, c1) + hw
            # blocks bx with columns x0 + 4 bx .. x0 + 4 bx + 3 meeting [lo, hi]
            bx0 = np.int64(min(max(np.ceil((lo - x0 - f32(BW - 1) - f32(1e-3)) * f32(1.0 / BW)), _ZERO), f32(NBX)))
            bx1 = np.int64(min(max(np.floor((hi - x0 + f32(1e-3)) * f32(1.0 / BW)), -_ONE), f32(NBX - 1)))
            hit = q >= _ZERO and rlo <= rhi and bx0 <= bx1
            bits = ((np.int64(2) << bx1) - (np.int64(1) << bx0)) << np.int64(NBX * by)
            m |= bits if hit else np.int64(0)
        mask[k] = m


@njit(inline="always")
def _bucket_blocks(Q, n, tx, ty, mask, bcnt, bidx):
    """bidx[b, :bcnt[b]] = the entries (in depth order) that can reach alpha >= 1/255 somewhere in 4 x 4 block b
    (:func:`_block_masks`). Every other entry is one that every lane of the block skips (alpha < 1/255)."""
    _block_masks(Q, n, tx, ty, mask)
    for b in range(NBLK):
        bcnt[b] = 0
    for k in range(n):
        m = mask[k]
        while m != 0:  # the set bits, lowest first
            b = _ctz(m)
            bidx[b, bcnt[b]] = k
            bcnt[b] += 1
            m &= m - 1


@njit(inline="always")
def _tile_span(t, offsets, tiles_x):
    """Tile t's entries gids[s:e] and its column and row (tx, ty)."""
    return offsets[t], offsets[t + 1], t % tiles_x, t // tiles_x


@njit(inline="always")
def _block_origin(blk, tx, ty):
    """Pixel column and row of the top-left pixel of block ``blk`` of tile (tx, ty)."""
    return tx * LANES + (blk % NBX) * BW, ty * LANES + (blk // NBX) * BH


@njit(inline="always")
def _block_centres(x0, y0, fxl, fyl):
    """Pixel centres of the block's 16 lanes (lane l = pixel (x0 + l % 4, y0 + l // 4))."""
    for l in range(NL):
        fxl[l] = f32(x0 + l % BW) + _HALF
        fyl[l] = f32(y0 + l // BW) + _HALF


@njit(inline="always")
def _row_pattern(value):
    """value [C] repeated LANES times: one tile row of a C-channel image, for :func:`_fill_tile`. float32 [LANES C]."""
    nc = value.shape[0]
    pat = np.empty(LANES * nc, np.float32)
    for j in range(LANES * nc):
        pat[j] = value[j % nc]
    return pat


@njit(inline="always")
def _fill_tile(flat, nc, tx, ty, width, height, pattern):
    """Set tile (tx, ty) of an [H, W, nc] C-contiguous image, given as its flat view, to the row ``pattern``
    (:func:`_row_pattern` of the value). A tile row is one contiguous run of the image, so each row is a plain
    copy that vectorises; unsigned indices spare the negative-index checks."""
    x0 = tx * LANES
    run = np.uint64((min(width, x0 + LANES) - x0) * nc)
    for py in range(ty * LANES, min(height, ty * LANES + LANES)):
        base = np.uint64((py * width + x0) * nc)
        for j in range(run):
            flat[base + j] = pattern[j]


@njit(inline="always")
def _fill_empty_tile(tx, ty, width, height, bg_row, zero_row, out_color, out_alpha, out_depth):
    """A tile with no Gaussians: background, alpha 0, depth 0 (bg_row, zero_row: :func:`_row_pattern` of the
    background and of zeros)."""
    _fill_tile(out_color.reshape(out_color.size), 3, tx, ty, width, height, bg_row)
    _fill_tile(out_alpha.reshape(out_alpha.size), 1, tx, ty, width, height, zero_row)
    _fill_tile(out_depth.reshape(out_depth.size), 1, tx, ty, width, height, zero_row)


@njit(inline="always", fastmath=True)
def _alpha_plain(fx, fy, mx, my, a, b, c, o, zero):
    """alpha = min(0.99, o exp(power)) of an entry at the pixel centre (fx, fy), by the row kernels' expressions."""
    dy = fy - my
    b2dy = _fence(f32(2.0) * b * dy, zero)
    cdy2 = _fence(c * dy * dy, zero)
    dx = fx - mx
    pw = -_HALF * (a * dx * dx + b2dy * dx + cdy2)
    return min(ALPHA_MAX, o * fexp(pw))


@njit(inline="always", fastmath=True)
def _step_plain(l, alpha, r, g, bb, z, T, c0, c1, c2, cz, ca, zero):
    """Composite an entry with this alpha and colour (r, g, bb), depth z into lane l; returns the lane's new T."""
    Tl = T[l]
    Tn = Tl * (_ONE - alpha)
    valid = alpha >= ALPHA_MIN
    use = valid and (Tn >= T_MIN)
    w = alpha * Tl if use else _ZERO
    c0[l] = _fence(c0[l] + r * w, zero)
    c1[l] = _fence(c1[l] + g * w, zero)
    c2[l] = _fence(c2[l] + bb * w, zero)
    cz[l] = _fence(cz[l] + z * w, zero)
    ca[l] = _fence(ca[l] + w, zero)
    # stop: T = 0 marks the lane done (its next T (1 - alpha) is 0 < T_MIN)
    Tnew = _fence(Tn if use else (_ZERO if valid else Tl), zero)
    T[l] = Tnew
    return Tnew


@njit(inline="always", fastmath=True)
def _lanes_plain(P, j, fxl, fyl, T, c0, c1, c2, cz, ca, zero):
    """Composite entry j over the 16 lanes of a block; True when all of them are done."""
    mx, my, a, b, c, o, r, g, bb, z = P[j, 0], P[j, 1], P[j, 2], P[j, 3], P[j, 4], P[j, 5], P[j, 6], P[j, 7], \
        P[j, 8], P[j, 9]
    tsum = _ZERO
    for l in range(NL):
        alpha = _alpha_plain(fxl[l], fyl[l], mx, my, a, b, c, o, zero)
        tsum += _step_plain(l, alpha, r, g, bb, z, T, c0, c1, c2, cz, ca, zero)
    return tsum == _ZERO


@njit(inline="always", fastmath=True)
def _lanes_plain2(P, j, k, fxl, fyl, T, c0, c1, c2, cz, ca, zero):
    """Entries j then k over the 16 lanes of a block in one loop body (one loop and one all-done test for two
    entries; the state between them is fenced, so each is composited exactly as alone); True when all are done."""
    mx, my, a, b, c, o, r, g, bb, z = P[j, 0], P[j, 1], P[j, 2], P[j, 3], P[j, 4], P[j, 5], P[j, 6], P[j, 7], \
        P[j, 8], P[j, 9]
    mx2, my2, a2, b2, c2_, o2, r2, g2, bb2, z2 = P[k, 0], P[k, 1], P[k, 2], P[k, 3], P[k, 4], P[k, 5], P[k, 6], \
        P[k, 7], P[k, 8], P[k, 9]
    tsum = _ZERO
    for l in range(NL):
        alpha = _alpha_plain(fxl[l], fyl[l], mx, my, a, b, c, o, zero)
        alpha2 = _alpha_plain(fxl[l], fyl[l], mx2, my2, a2, b2, c2_, o2, zero)
        _step_plain(l, alpha, r, g, bb, z, T, c0, c1, c2, cz, ca, zero)
        tsum += _step_plain(l, alpha2, r2, g2, bb2, z2, T, c0, c1, c2, cz, ca, zero)
    return tsum == _ZERO


@njit(parallel=True, fastmath=True, cache=True)
def composite_forward(means2d, conics, opac, colors, depths, reach, offsets, gids, width, height, tiles_x, bg,
                      out_color, out_alpha, out_depth):
    """Plain forward. Outputs: out_color [H, W, 3] (background included), out_alpha [H, W] = 1 - final
    transmittance, out_depth [H, W] expected depth sum(w_i z_i) / alpha (0 where alpha = 0)."""
    n_tiles = offsets.shape[0] - 1
    maxlen = _max_list(offsets)
    zero = np.int32(n_tiles < -1)  # 0, but not a constant to the compiler (see _fence)
    G = np.empty((opac.shape[0], NPACK), np.float32)
    for i in prange(opac.shape[0]):
        _pack(G, i, means2d, conics, opac, colors, depths, reach)
    bg_row = _row_pattern(bg)  # read-only tile rows for the empty tiles, shared by the chunks
    zero_row = np.zeros(LANES * 3, np.float32)
    for chunk in prange(N_CHUNKS):
      P = np.empty((maxlen, NPACK), np.float32)
      Q = np.empty((7, maxlen), np.float32)
      mask = np.empty(maxlen, np.int64)
      bcnt = np.empty(NBLK, np.int64)
      bidx = np.empty((NBLK, maxlen), np.int32)
      fxl = np.empty(NL, np.float32)
      fyl = np.empty(NL, np.float32)
      T = np.empty(NL, np.float32)
      c0 = np.empty(NL, np.float32)
      c1 = np.empty(NL, np.float32)
      c2 = np.empty(NL, np.float32)
      cz = np.empty(NL, np.float32)
      ca = np.empty(NL, np.float32)  # sum of weights = 1 - T_final (T is zeroed when a lane stops)
      for t in range(chunk, n_tiles, N_CHUNKS):
        s, e, tx, ty = _tile_span(t, offsets, tiles_x)
        n = e - s
        if n == 0:
            _fill_empty_tile(tx, ty, width, height, bg_row, zero_row, out_color, out_alpha, out_depth)
            continue
        _gather_tile(P, Q, s, e, gids, G)
        _bucket_blocks(Q, n, tx, ty, mask, bcnt, bidx)
        for blk in range(NBLK):
            x0, y0 = _block_origin(blk, tx, ty)
            if x0 >= width or y0 >= height:
                continue
            _block_centres(x0, y0, fxl, fyl)
            for l in range(NL):
                T[l] = _ONE
                c0[l] = _ZERO
                c1[l] = _ZERO
                c2[l] = _ZERO
                cz[l] = _ZERO
                ca[l] = _ZERO
            nq = bcnt[blk]
            done = False
            for q in range(0, nq - 1, 2):  # two entries per step, then the odd one out
                if _lanes_plain2(P, bidx[blk, q], bidx[blk, q + 1], fxl, fyl, T, c0, c1, c2, cz, ca, zero):
                    done = True  # every lane of the block is done
                    break
            if nq % 2 == 1 and not done:
                _lanes_plain(P, bidx[blk, nq - 1], fxl, fyl, T, c0, c1, c2, cz, ca, zero)
            for l in range(NL):
                px = x0 + l % BW
                py = y0 + l // BW
                if px < width and py < height:
                    Tf = _ONE - ca[l]
                    out_color[py, px, 0] = c0[l] + Tf * bg[0]
                    out_color[py, px, 1] = c1[l] + Tf * bg[1]
                    out_color[py, px, 2] = c2[l] + Tf * bg[2]
                    out_alpha[py, px] = ca[l]
                    out_depth[py, px] = cz[l] / ca[l] if ca[l] > _ZERO else _ZERO


@njit(inline="always", fastmath=True)
def _alpha_deriv(fx, fy, mx, my, a, b, c, o, zero):
    """(o exp(power), q_x, q_y) of an entry at the pixel centre (fx, fy), by the row kernels' expressions."""
    dy = fy - my
    bdy = _fence(b * dy, zero)
    cdy = _fence(c * dy, zero)
    dx = fx - mx
    qx = -(a * dx + bdy)
    qy = -(b * dx + cdy)
    pw = _HALF * (dx * qx + dy * qy)
    return o * fexp(pw), qx, qy


@njit(inline="always", fastmath=True)
def _step_deriv(l, araw, qx, qy, b, r, g, bb, z, st, acc, zero):
    """Composite an entry (o exp(power) = araw, q_x, q_y, conic b, colour (r, g, bb), depth z) with derivatives
    into lane l; returns the lane's new T.

    The rounding is spelled out (explicit fused multiply-adds, the products shared by two sums computed once):
    it is the one the row kernels' fast-math code compiled to, which the compiler would otherwise be free to
    choose differently per context. With S = T alpha_xy + Ty alpha_x + Tx alpha_y (alpha_xy T formed as
    alpha (T (q_x q_y - b))): w_xy = al Txy + S, Txy' = om Txy - S, and likewise for x and y."""
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
    om = _ONE - al
    wgt = al * T
    tax = _fence(T * ax, zero)
    tay = _fence(T * ay, zero)
    aytx = _fence(ay * Tx, zero)
    tq = T * _fma(qx, qy, -b)
    s1 = _fma(alpha, tq, aytx) if du else aytx
    sxy = _fma(ax, Ty, s1)
    wx = _fma(al, Tx, tax)
    wy = _fma(al, Ty, tay)
    wxy = _fma(al, Txy, sxy)
    acc[0, l] = _fma(r, wgt, acc[0, l])
    acc[1, l] = _fma(g, wgt, acc[1, l])
    acc[2, l] = _fma(bb, wgt, acc[2, l])
    acc[3, l] = _fma(r, wx, acc[3, l])
    acc[4, l] = _fma(g, wx, acc[4, l])
    acc[5, l] = _fma(bb, wx, acc[5, l])
    acc[6, l] = _fma(r, wy, acc[6, l])
    acc[7, l] = _fma(g, wy, acc[7, l])
    acc[8, l] = _fma(bb, wy, acc[8, l])
    acc[9, l] = _fma(r, wxy, acc[9, l])
    acc[10, l] = _fma(g, wxy, acc[10, l])
    acc[11, l] = _fma(bb, wxy, acc[11, l])
    acc[12, l] = _fma(z, wgt, acc[12, l])
    acc[13, l] = _fence(acc[13, l] + wgt, zero)
    st[3, l] = _fma(om, Txy, -sxy)
    st[1, l] = _fma(om, Tx, -tax)
    st[2, l] = _fma(om, Ty, -tay)
    Tnew = _fence(Tn if use else (_ZERO if valid else T), zero)
    st[0, l] = Tnew
    return Tnew


@njit(inline="always", fastmath=True)
def _lanes_deriv(P, j, fxl, fyl, st, acc, zero):
    """Composite entry j, with derivatives, over the 16 lanes of a block; True when all of them are done."""
    mx, my, a, b, c, o, r, g, bb, z = P[j, 0], P[j, 1], P[j, 2], P[j, 3], P[j, 4], P[j, 5], P[j, 6], P[j, 7], \
        P[j, 8], P[j, 9]
    tsum = _ZERO
    for l in range(NL):
        araw, qx, qy = _alpha_deriv(fxl[l], fyl[l], mx, my, a, b, c, o, zero)
        tsum += _step_deriv(l, araw, qx, qy, b, r, g, bb, z, st, acc, zero)
    return tsum == _ZERO


@njit(inline="always", fastmath=True)
def _lanes_deriv2(P, j, k, fxl, fyl, st, acc, zero):
    """Entries j then k, with derivatives, in one loop body (see :func:`_lanes_plain2`)."""
    mx, my, a, b, c, o, r, g, bb, z = P[j, 0], P[j, 1], P[j, 2], P[j, 3], P[j, 4], P[j, 5], P[j, 6], P[j, 7], \
        P[j, 8], P[j, 9]
    mx2, my2, a2, b2, c2, o2, r2, g2, bb2, z2 = P[k, 0], P[k, 1], P[k, 2], P[k, 3], P[k, 4], P[k, 5], P[k, 6], \
        P[k, 7], P[k, 8], P[k, 9]
    tsum = _ZERO
    for l in range(NL):
        araw, qx, qy = _alpha_deriv(fxl[l], fyl[l], mx, my, a, b, c, o, zero)
        araw2, qx2, qy2 = _alpha_deriv(fxl[l], fyl[l], mx2, my2, a2, b2, c2, o2, zero)
        _step_deriv(l, araw, qx, qy, b, r, g, bb, z, st, acc, zero)
        tsum += _step_deriv(l, araw2, qx2, qy2, b2, r2, g2, bb2, z2, st, acc, zero)
    return tsum == _ZERO


@njit(parallel=True, fastmath=True, cache=True)
def composite_forward_derivatives(means2d, conics, opac, colors, depths, reach, offsets, gids, width, height,
                                  tiles_x, bg, out_color, out_alpha, out_depth, out_dx, out_dy, out_dxy, out_tder):
    """Forward with image-space derivatives. As :func:`composite_forward`, plus out_dx, out_dy, out_dxy
    [H, W, 3] (dC/dx, dC/dy, d2C/dxdy in this image's pixel units, background terms included) and
    out_tder [H, W, 3] the final (dT/dx, dT/dy, d2T/dxdy), or an empty [0, 0, 3] array when not wanted."""
    want_tder = out_tder.shape[0] > 0
    n_tiles = offsets.shape[0] - 1
    maxlen = _max_list(offsets)
    zero = np.int32(n_tiles < -1)  # 0, but not a constant to the compiler (see _fence)
    G = np.empty((opac.shape[0], NPACK), np.float32)
    for i in prange(opac.shape[0]):
        _pack(G, i, means2d, conics, opac, colors, depths, reach)
    bg_row = _row_pattern(bg)  # read-only tile rows for the empty tiles, shared by the chunks
    zero_row = np.zeros(LANES * 3, np.float32)
    for chunk in prange(N_CHUNKS):
      P = np.empty((maxlen, NPACK), np.float32)
      Q = np.empty((7, maxlen), np.float32)
      mask = np.empty(maxlen, np.int64)
      bcnt = np.empty(NBLK, np.int64)
      bidx = np.empty((NBLK, maxlen), np.int32)
      fxl = np.empty(NL, np.float32)
      fyl = np.empty(NL, np.float32)
      st = np.empty((4, NL), np.float32)  # T (0 when done), Tx, Ty, Txy
      acc = np.empty((14, NL), np.float32)  # C, Cx, Cy, Cxy per channel, depth, sum of weights
      for t in range(chunk, n_tiles, N_CHUNKS):
        s, e, tx, ty = _tile_span(t, offsets, tiles_x)
        n = e - s
        if n == 0:
            _fill_empty_tile(tx, ty, width, height, bg_row, zero_row, out_color, out_alpha, out_depth)
            for out in (out_dx, out_dy, out_dxy):
                _fill_tile(out.reshape(out.size), 3, tx, ty, width, height, zero_row)
            if want_tder:
                _fill_tile(out_tder.reshape(out_tder.size), 3, tx, ty, width, height, zero_row)
            continue
        _gather_tile(P, Q, s, e, gids, G)
        _bucket_blocks(Q, n, tx, ty, mask, bcnt, bidx)
        for blk in range(NBLK):
            x0, y0 = _block_origin(blk, tx, ty)
            if x0 >= width or y0 >= height:
                continue
            _block_centres(x0, y0, fxl, fyl)
            for l in range(NL):
                st[0, l] = _ONE
                st[1, l] = _ZERO
                st[2, l] = _ZERO
                st[3, l] = _ZERO
                for q in range(14):
                    acc[q, l] = _ZERO
            nq = bcnt[blk]
            done = False
            for q in range(0, nq - 1, 2):  # two entries per step, then the odd one out
                if _lanes_deriv2(P, bidx[blk, q], bidx[blk, q + 1], fxl, fyl, st, acc, zero):
                    done = True  # every lane of the block is done
                    break
            if nq % 2 == 1 and not done:
                _lanes_deriv(P, bidx[blk, nq - 1], fxl, fyl, st, acc, zero)
            for l in range(NL):
                px = x0 + l % BW
                py = y0 + l // BW
                if px < width and py < height:
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
                    if want_tder:
                        out_tder[py, px, 0] = Tx
                        out_tder[py, px, 1] = Ty
                        out_tder[py, px, 2] = Txy
