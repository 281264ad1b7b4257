"""The compositing rules, once: shared by the forward kernels (plain, first-order, second-order) and the backward.

Per pixel at the continuous point (i + 0.5, j + 0.5), with d = pixel - mean and conic (a, b, c):

    q_x = -(a d_x + b d_y),  q_y = -(b d_x + c d_y),  power = (d_x q_x + d_y q_y) / 2
    alpha = min(0.99, o exp(power));  skip if alpha < 1/255;  stop (without adding) if T (1 - alpha) < 1e-4
    C += col alpha T,  T <- T (1 - alpha);  finally C += T bg

and, with derivatives, the recurrence of DESIGN.md (alpha derivatives zero where alpha is clamped at 0.99; the
derivative images follow exactly the Gaussians the colour used): first order carries T_x, T_y and C_x, C_y;
second order also T_xy and C_xy. Every variant evaluates alpha with the same expression, so the colour is the
same bit for bit whether derivatives are computed or not.

Layout: a tile (16 x 16 pixels) is walked in blocks of 4 x (LANES / 4) pixels, one SIMD vector (:mod:`.simd`)
per block; lane l is pixel (x0 + l % 4, y0 + l // 4). A tile's list is gathered into a contiguous buffer and
bucketed per block (:func:`bucket_blocks`): an entry goes to the blocks whose rows its vertical reach covers and
whose columns meet the alpha >= 1/255 chords of those rows. Every entry left out is one that every lane of the
block would skip, so leaving it out changes nothing. A finished lane is marked by T = 0 (its next
T (1 - alpha) is 0 < 1e-4) and a block stops when all its lanes are finished; the final transmittance is
1 - (sum of weights), which telescopes to T_final.

The power is floored at POWER_FLOOR before the exponential: o exp(-20) < 1/255 for any opacity o <= 1, so no
used alpha changes, and every product of an unused one stays a normal float (subnormal operands make each
instruction that touches them ~100x slower on many x86 CPUs; small Gaussians in low-resolution renders put most
lanes of a block far out on their tails).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .simd import (
    LANES,
    all_zero,
    fma,
    iand,
    inonzero,
    ior,
    iselect,
    ishl,
    izero,
    lane_index,
    mask_bits,
    pow2i,
    select,
    splat,
    store_rgb_rows,
    store_rows,
    to_int,
    vceil,
    vexp,
    vfloor,
    vload,
    vmax,
    vmin,
    vsqrt,
    vstore,
)

f32 = np.float32
ALPHA_MIN = f32(1.0 / 255.0)
ALPHA_MAX = f32(0.99)
T_MIN = f32(1e-4)
POWER_FLOOR = f32(-20.0)
TILE = 16  # tile edge in pixels (the binning's TILE_SIZE)
BW = 4  # block width in pixels
BH = LANES // BW  # block height in pixels
NBX = TILE // BW  # blocks per tile row and column
NBY = TILE // BH
NBLK = NBX * NBY
NPACK = 16  # mx, my, a, b, c, opacity, r, g, b, depth, vertical reach, k2, 1/a, b/a, c - b^2/a, (unused)
K2_MARGIN = f32(0.999)  # alpha threshold margin of the chord bound, as tiles.REACH_MARGIN
N_CHUNKS = 64  # tiles are dealt round-robin to this many parallel chunks; scratch is allocated once per chunk
PREFETCH = 32  # entries ahead that the gather prefetches (the packed Gaussians are read in random order)

# variants (a compile-time switch of the kernels)
PLAIN, FIRST, SECOND = 0, 1, 2
# the block state: a tuple of vectors
T_, TX, TY, TXY, CR, CG, CB, XR, XG, XB, YR, YG, YB, ZR, ZG, ZB, DEPTH, WSUM = range(18)
N_OUT = 14  # planes of write_block's scratch

_ZERO = f32(0.0)
_ONE = f32(1.0)
_HALF = f32(0.5)


# --------------------------------------------------------------------------------------------- intrinsics
@intrinsic
def prefetch_row(typingctx, arr, row):
    """Prefetch the cache line holding arr[row, 0] of a C-contiguous 2-D array (llvm.prefetch: a hint, no fault)."""

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
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, row), codegen


@intrinsic
def ctz(typingctx, x):
    """Number of trailing zero bits of a nonzero int64 (llvm.cttz)."""

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.int64(types.int64), codegen


# ------------------------------------------------------------------------------------- tiles and buckets
@njit(inline="always")
def max_list(offsets):
    """The longest tile list (at least 1)."""
    m = 1
    for t in range(offsets.shape[0] - 1):
        m = max(m, offsets[t + 1] - offsets[t])
    return m


@njit(inline="always")
def tile_span(t, offsets, tiles_x):
    """Tile t's entries gids[s:e] and its column and row (tx, ty)."""
    return offsets[t], offsets[t + 1], t % tiles_x, t // tiles_x


@njit(inline="always")
def pack(G, i, splats):
    """G[i] = Gaussian i's 16 floats (one cache line, so that gathering a tile list touches one line per entry)."""
    a = splats.conics[i, 0]
    b = splats.conics[i, 1]
    c = splats.conics[i, 2]
    o = splats.opacities[i]
    G[i, 0] = splats.means2d[i, 0]
    G[i, 1] = splats.means2d[i, 1]
    G[i, 2] = a
    G[i, 3] = b
    G[i, 4] = c
    G[i, 5] = o
    G[i, 6] = splats.colors[i, 0]
    G[i, 7] = splats.colors[i, 1]
    G[i, 8] = splats.colors[i, 2]
    G[i, 9] = splats.depths[i]
    G[i, 10] = splats.reach[i]
    # chord data: on a row at offset dy, alpha >= 1/255 needs a dx^2 + 2 b dx dy + c dy^2 <= k2 with
    # k2 = 2 ln(255 o), i.e. dx in -b dy / a +- sqrt((k2 - dy^2 (c - b^2 / a)) / a)
    G[i, 11] = f32(2.0) * np.log(max(o, f32(1e-30)) * f32(255.0) / K2_MARGIN)
    G[i, 12] = _ONE / a
    G[i, 13] = b / a
    G[i, 14] = c - b * b / a
    G[i, 15] = _ZERO


@njit(inline="always")
def gather_tile(P, Q, s, e, gids, G):
    """Copy a tile's entries into the first e - s rows of the [maxlen, NPACK] buffer ``P``, and the fields the
    bucketing reads (mx, my, reach, k2, 1/a, b/a, c - b^2/a) into the rows of ``Q`` [7, padded(maxlen)]. The rows of G
    are read in random order: prefetching them some entries ahead overlaps the cache misses."""
    n = e - s
    for k in range(min(n, PREFETCH)):
        prefetch_row(G, gids[s + k])
    for k in range(n):
        g = gids[s + k]
        prefetch_row(G, gids[s + min(k + PREFETCH, n - 1)])
        for f in range(NPACK):
            P[k, f] = G[g, f]
        Q[0, k] = G[g, 0]
        Q[1, k] = G[g, 1]
        Q[2, k] = G[g, 10]
        Q[3, k] = G[g, 11]
        Q[4, k] = G[g, 12]
        Q[5, k] = G[g, 13]
        Q[6, k] = G[g, 14]


@njit(inline="always")
def padded(n):
    """n rounded up to whole SIMD vectors plus one: the length of the per-entry rows that the bucketing reads a
    vector at a time."""
    return (n // LANES + 2) * LANES


@njit(inline="always")
def bucket_blocks(Q, n, tx, ty, words):
    """words[b, :] = the bitset of the tile's entries (bit k % 64 of word k // 64, in depth order) that can reach
    alpha >= 1/255 somewhere in block b (b = NBX by + bx). Every other entry is one that every lane of the block
    skips (alpha < 1/255).

    The rule, per entry: the tile rows its vertical reach covers; then per block row an x interval holding those
    rows' alpha >= 1/255 chords, against the blocks' columns. The chord at row offset dy is centred at
    mx - (b / a) dy, linear in dy, with half-width sqrt((k2 - dy^2 (c - b^2 / a)) / a), largest where |dy| is
    smallest, so [min centre - widest half-width, max centre + widest half-width] holds them all. Margins far
    above float32 round-off: threshold 0.999 / 255, half-width x 1.001 + 1e-3 px, 1e-3 px on the block edges.
    Entries are processed a SIMD vector at a time (``Q`` [7, padded(n)]: mx, my, reach, k2, 1/a, b/a,
    c - b^2/a), with block bits as small exact integers in float32."""
    nw = (n + 63) // 64
    for b in range(NBLK):
        for w in range(nw):
            words[b, w] = 0
    base = f32(ty * TILE) + _HALF  # centre of the tile's first pixel row
    x0 = f32(tx * TILE) + _HALF  # centre of the tile's first pixel column
    q_mx, q_my, q_reach, q_k2, q_ia, q_ba, q_cb = Q[0], Q[1], Q[2], Q[3], Q[4], Q[5], Q[6]
    zero = splat(_ZERO)
    for k0 in range(0, n, LANES):
        mx = vload(q_mx, k0)
        my = vload(q_my, k0)
        myt = my - base
        rch = vload(q_reach, k0)
        k2 = vload(q_k2, k0)
        ia = vload(q_ia, k0)
        ba = vload(q_ba, k0)
        cb = vload(q_cb, k0)
        r0 = vceil(vmin(vmax(myt - rch, _ZERO), f32(TILE)))  # first and last tile row within the reach
        r1 = vfloor(vmax(vmin(myt + rch, f32(TILE - 1)), f32(-1.0)))
        m = izero()
        for by in range(NBY):
            rlo = vmax(r0, f32(by * BH))
            rhi = vmin(r1, f32(by * BH + BH - 1))
            d0 = rlo + base - my  # offsets of the block row's first and last row within the reach
            d1 = rhi + base - my
            dm = vmin(vmax(zero, d0), d1)  # the offset nearest the centre row
            q = k2 - dm * dm * cb
            hw = vsqrt(vmax(q, zero) * ia) * f32(1.001) + f32(1e-3)
            c0 = mx - ba * d0
            c1 = mx - ba * d1
            lo = vmin(c0, c1) - hw
            hi = vmax(c0, c1) + hw
            # blocks bx with columns x0 + BW bx .. x0 + BW bx + BW - 1 meeting [lo, hi]
            bx0 = vmin(vmax(vceil((lo - (x0 + f32(BW - 1) + f32(1e-3))) * f32(1.0 / BW)), zero), f32(NBX))
            bx1 = vmin(vmax(vfloor((hi - x0 + f32(1e-3)) * f32(1.0 / BW)), f32(-1.0)), f32(NBX - 1))
            hit = (q >= _ZERO) & (rlo <= rhi) & (bx0 <= bx1)
            bits = select(hit, pow2i(bx1 + _ONE) - pow2i(bx0), zero)  # blocks bx0 .. bx1, as an exact integer
            m = ior(m, ishl(to_int(bits), NBX * by))
        m = iselect(lane_index() + f32(k0) < f32(n), m, izero())  # no bits for the lanes past the list
        w = k0 // 64
        shift = k0 % 64
        for b in range(NBLK):
            words[b, w] |= mask_bits(inonzero(iand(m, 1 << b))) << shift


@njit(inline="always")
def block_origin(blk, tx, ty):
    """Pixel column and row of the top-left pixel of block ``blk`` of tile (tx, ty)."""
    return tx * TILE + (blk % NBX) * BW, ty * TILE + (blk // NBX) * BH


@njit(inline="always")
def lane_centres(x0, y0):
    """Pixel centres (x, y) of the lanes of the block at pixel (x0, y0), as vectors."""
    li = lane_index()
    ly = vfloor(li * f32(1.0 / BW))
    lx = li - ly * f32(BW)
    return lx + (f32(x0) + _HALF), ly + (f32(y0) + _HALF)


# --------------------------------------------------------------------------------------- the compositing step
@njit(inline="always")
def entry(P, j):
    """Entry j of the gathered tile: (mx, my, a, b, c, opacity, r, g, b, depth) as float32 scalars."""
    return P[j, 0], P[j, 1], P[j, 2], P[j, 3], P[j, 4], P[j, 5], P[j, 6], P[j, 7], P[j, 8], P[j, 9]


@njit(inline="always")
def initial_state():
    """T = 1, everything else 0."""
    z = splat(_ZERO)
    return (splat(_ONE), z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)


@njit(inline="always")
def alpha_terms(e, fx, fy):
    """(o exp(power), q_x, q_y, d_x, d_y) of entry e at the lanes' pixel centres (fx, fy)."""
    dx = fx - e[0]
    dy = fy - e[1]
    qx = -fma(dx, e[2], dy * e[3])
    qy = -fma(dx, e[3], dy * e[4])
    power = fma(dx, qx, dy * qy) * _HALF
    return vexp(power, POWER_FLOOR) * e[5], qx, qy, dx, dy


@njit(inline="always")
def derivative_weights(al, ad, qx, qy, b, T, Tx, Ty, Txy, variant):
    """The jet of the weight alpha~ T~ of an entry: with alpha_x = ad q_x, alpha_y = ad q_y,
    alpha_xy = ad (q_x q_y - b) (ad: the used alpha where it is smooth, 0 where clamped or unused), returns
    (alpha_x, alpha_y, alpha_xy, T alpha_x, T alpha_y, S_xy, w_x, w_y, w_xy) with w_x = alpha T_x + T alpha_x,
    S_xy = alpha_xy T + alpha_x T_y + alpha_y T_x and w_xy = alpha T_xy + S_xy (0 for the xy terms in the
    first-order variant). One expression for the forward and the backward, so both round alike."""
    ax = ad * qx
    ay = ad * qy
    tax = T * ax
    tay = T * ay
    wx = fma(al, Tx, tax)
    wy = fma(al, Ty, tay)
    if variant == SECOND:
        axy = ad * fma(qx, qy, -b)
        sxy = fma(axy, T, fma(ax, Ty, ay * Tx))
        wxy = fma(al, Txy, sxy)
    else:
        axy = splat(_ZERO)
        sxy = axy
        wxy = axy
    return ax, ay, axy, tax, tay, sxy, wx, wy, wxy


@njit(inline="always")
def step(S, e, fx, fy, variant):
    """Composite entry e over the block state S (a tuple of 18 vectors, fields T_, TX, ...); returns the new
    state and the alpha the lanes used (0 where skipped or stopped, 0.99 where clamped). ``variant``: PLAIN, FIRST
    or SECOND (a compile-time constant in the kernels; the state fields a variant does not carry stay 0).

    The derivative updates are written so that each state vector depends on its previous value through one
    fused multiply-add (T_xy' = (1 - alpha) T_xy - S_xy with S_xy = alpha_xy T + alpha_x T_y + alpha_y T_x from
    the previous state), which keeps the loop-carried chains short."""
    T = S[T_]
    Tx = S[TX]
    Ty = S[TY]
    Txy = S[TXY]
    araw, qx, qy, _, _ = alpha_terms(e, fx, fy)
    alpha = vmin(araw, ALPHA_MAX)
    Tn = T * (_ONE - alpha)
    valid = alpha >= ALPHA_MIN
    use = valid & (Tn >= T_MIN)
    zero = splat(_ZERO)
    al = select(use, alpha, zero)
    w = al * T
    r, g, b = e[6], e[7], e[8]
    cr = fma(w, r, S[CR])
    cg = fma(w, g, S[CG])
    cb = fma(w, b, S[CB])
    depth = fma(w, e[9], S[DEPTH])
    wsum = S[WSUM] + w
    xr, xg, xb, yr, yg, yb = S[XR], S[XG], S[XB], S[YR], S[YG], S[YB]
    zr, zg, zb = S[ZR], S[ZG], S[ZB]
    if variant != PLAIN:
        ad = select(araw < ALPHA_MAX, al, zero)  # the smooth alpha: its derivatives are 0 where clamped
        ax, ay, axy, tax, tay, sxy, wx, wy, wxy = derivative_weights(al, ad, qx, qy, e[3], T, Tx, Ty, Txy, variant)
        om = _ONE - al
        xr = fma(wx, r, xr)
        xg = fma(wx, g, xg)
        xb = fma(wx, b, xb)
        yr = fma(wy, r, yr)
        yg = fma(wy, g, yg)
        yb = fma(wy, b, yb)
        if variant == SECOND:
            zr = fma(wxy, r, zr)
            zg = fma(wxy, g, zg)
            zb = fma(wxy, b, zb)
            Txy = fma(om, Txy, -sxy)
        Tx = fma(om, Tx, -tax)
        Ty = fma(om, Ty, -tay)
    T = select(use, Tn, select(valid, zero, T))
    return (T, Tx, Ty, Txy, cr, cg, cb, xr, xg, xb, yr, yg, yb, zr, zg, zb, depth, wsum), al


@njit(inline="always")
def done(S):
    """Every lane of the block has stopped."""
    return all_zero(S[T_])


# ------------------------------------------------------------------------------------------------ output
@njit(inline="always")
def write_block(S, x0, y0, frame, images, scratch, variant):
    """Write the block's pixels: colour (background added as T_final bg), alpha = 1 - T_final, expected depth
    (0 where alpha = 0) and, with derivatives, dC/dx, dC/dy (+ bg T_x, bg T_y) and d2C/dxdy (+ bg T_xy; 0 in the
    first-order variant). A block inside the image is stored row by row from the vectors; a block across the
    image border goes through ``scratch`` [N_OUT, LANES] and is stored lane by lane."""
    width = frame.width
    height = frame.height
    bg = frame.background
    wsum = S[WSUM]
    tf = _ONE - wsum
    depth = S[DEPTH] / select(wsum > _ZERO, wsum, splat(_ONE))
    depth = select(wsum > _ZERO, depth, splat(_ZERO))
    cr = fma(tf, bg[0], S[CR])
    cg = fma(tf, bg[1], S[CG])
    cb = fma(tf, bg[2], S[CB])
    xr = fma(S[TX], bg[0], S[XR])
    xg = fma(S[TX], bg[1], S[XG])
    xb = fma(S[TX], bg[2], S[XB])
    yr = fma(S[TY], bg[0], S[YR])
    yg = fma(S[TY], bg[1], S[YG])
    yb = fma(S[TY], bg[2], S[YB])
    zr = fma(S[TXY], bg[0], S[ZR])
    zg = fma(S[TXY], bg[1], S[ZG])
    zb = fma(S[TXY], bg[2], S[ZB])
    if x0 + BW <= width and y0 + BH <= height:
        p0 = y0 * width + x0
        store_rgb_rows(images.color.reshape(images.color.size), 3 * p0, 3 * width, cr, cg, cb)
        store_rows(images.alpha.reshape(images.alpha.size), p0, width, wsum)
        store_rows(images.depth.reshape(images.depth.size), p0, width, depth)
        if variant != PLAIN:
            store_rgb_rows(images.dx.reshape(images.dx.size), 3 * p0, 3 * width, xr, xg, xb)
            store_rgb_rows(images.dy.reshape(images.dy.size), 3 * p0, 3 * width, yr, yg, yb)
            store_rgb_rows(images.dxy.reshape(images.dxy.size), 3 * p0, 3 * width, zr, zg, zb)
        return
    flat = scratch.reshape(scratch.size)
    vstore(flat, 0 * LANES, cr)
    vstore(flat, 1 * LANES, cg)
    vstore(flat, 2 * LANES, cb)
    vstore(flat, 3 * LANES, wsum)
    vstore(flat, 4 * LANES, depth)
    vstore(flat, 5 * LANES, xr)
    vstore(flat, 6 * LANES, xg)
    vstore(flat, 7 * LANES, xb)
    vstore(flat, 8 * LANES, yr)
    vstore(flat, 9 * LANES, yg)
    vstore(flat, 10 * LANES, yb)
    vstore(flat, 11 * LANES, zr)
    vstore(flat, 12 * LANES, zg)
    vstore(flat, 13 * LANES, zb)
    for l in range(LANES):
        px = x0 + l % BW
        py = y0 + l // BW
        if px < width and py < height:
            for k in range(3):
                images.color[py, px, k] = scratch[k, l]
            images.alpha[py, px] = scratch[3, l]
            images.depth[py, px] = scratch[4, l]
            if variant != PLAIN:
                for k in range(3):
                    images.dx[py, px, k] = scratch[5 + k, l]
                    images.dy[py, px, k] = scratch[8 + k, l]
                    images.dxy[py, px, k] = scratch[11 + k, l]


@njit(inline="always")
def row_pattern(value, channels):
    """``value`` [channels] repeated TILE times: one tile row of an image with that many channels (float32)."""
    pat = np.empty(TILE * channels, np.float32)
    for j in range(TILE * channels):
        pat[j] = value[j % channels]
    return pat


@njit(inline="always")
def fill_tile(flat, nc, tx, ty, width, height, pattern):
    """Set tile (tx, ty) of an [H, W, nc] C-contiguous image, given as its flat view, to the row ``pattern``
    (:func:`row_pattern` of the value). A tile row is one contiguous run of the image, so each row is a plain
    copy that vectorises; unsigned indices spare the negative-index checks."""
    x0 = tx * TILE
    run = np.uint64((min(width, x0 + TILE) - x0) * nc)
    for py in range(ty * TILE, min(height, ty * TILE + TILE)):
        base = np.uint64((py * width + x0) * nc)
        for j in range(run):
            flat[base + j] = pattern[j]
