"""Prototype kernels for plain forward compositing with SIMD across list entries (not across pixels).

Used by benchmarks/prototype_entry_simd.py; not part of the product. Inputs and outputs are the product's
(splatup.render.composite Splats, TileLists, Frame, Images): colour over the background, alpha = sum of weights,
expected depth. Every variant shares the product's per-tile work up to the block buckets: gather of the tile list,
then splatup.render.lanes.bucket_blocks (per 4x4 block, the bitset of entries that can reach alpha >= 1/255 there).
After that, per block:

* the block's bucket is compacted into a block list (mx, my, a, b, c, k2, entry index, opacity, ...) with AVX-512
  register compress (variants C*), or the tile list is read directly with the bucket bits as a mask (variant T);
* per pixel, 16 candidates at a time: q = dx (a dx + b dy) + dy (b dx + c dy) (the same bits as -2 x the product's
  power), hit test q <= k2 (the product's conservative alpha >= 0.999/255 bound); where some lane passes, the
  product's vexp gives alpha (the same bits as the product's), and the hits are composited in depth order with the
  product's termination rule.

Variants (:data:`VARIANTS`):
  CP    block list, pixel-major; hits composited with scalar code (bit-exact against the product)
  CB    as CP, chunk-major (each chunk of 16 entries evaluated for the pixels still running; state in memory)
  T     no compaction: pixel-major over the tile list, the block's bucket bits as a chunk mask (bit-exact)
  CV    as CP, with a vector composite: inclusive prefix product of (1 - alpha) in 4 shuffle + multiply steps,
        weights and colours accumulated in vectors, horizontal sums at the end (float32 rounding differences)
  CV22  CV over 2x2 sub-block lists (the bounding box of the alpha ellipse against the sub-block's pixel centres)
  CS    streaming: the hit test appends candidates densely to a buffer (compress store); exp + vector composite
        on every 16 dense candidates
  CR    CS with the dense candidates kept in registers (compress + lane rotate + blend)

:data:`PARTS` are the fixed per-tile costs alone (they write no image): the product's gather + bucket, the
prototype's gather + bucket, and that plus the block compaction. :func:`count_work` counts the work per pixel.

Needs AVX-512 (16 lanes): the compress and permute intrinsics are x86 AVX-512 ones.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from splatup.render.lanes import (
    ALPHA_MAX,
    ALPHA_MIN,
    BW,
    N_CHUNKS,
    NBLK,
    NPACK,
    POWER_FLOOR,
    T_MIN,
    TILE,
    block_origin,
    bucket_blocks,
    ctz,
    fill_tile,
    gather_tile,
    max_list,
    pack,
    padded,
    row_pattern,
    tile_span,
)
from splatup.render.simd import (
    LANES,
    Mask,
    Vec,
    fma,
    hsum,
    lane,
    lane_index,
    mask_bits,
    select,
    splat,
    vexp,
    vload,
    vmin,
    vstore,
)

f32 = np.float32
_ONE = f32(1.0)
_ZERO = f32(0.0)
_HALF = f32(0.5)
# rows of the tile SoA Q: 0 mx, 1 my, 2 reach, 3 k2, 4 1/a, 5 b/a, 6 c - b^2/a (what bucket_blocks reads), 7 a, 8 b,
# 9 c, 10 opacity, 11 entry index, 12-14 r, g, b, 15 depth, 16-17 x and y half-extents of the alpha >= 0.999/255
# ellipse (for the 2x2 sub-block lists)
NQ = 18


@intrinsic
def sfma(typingctx, a, b, c):
    """Scalar float32 a*b+c rounded once (llvm.fma.f32), to match the product's vector fma bit for bit."""
    if not all(t == types.float32 for t in (a, b, c)):
        return None

    def codegen(context, builder, sig, args):
        f = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f, [f, f, f]), "llvm.fma.f32")
        return builder.call(fn, args)

    return types.float32(a, b, c), codegen


@intrinsic
def compress_store(typingctx, arr, idx, v, m):
    """Store the lanes of v selected by m contiguously at arr[idx:]: compress in a register (vcompressps zmm{k}{z})
    and store all LANES floats (the lanes past the selected ones are zeros that later stores overwrite; the buffers
    are padded by a vector)."""
    if v != Vec or m != Mask:
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i = context.cast(builder, args[1], sig.args[1], types.intp)
        p = builder.gep(ary.data, [i])
        vt = ir.VectorType(ir.FloatType(), LANES)
        mt = ir.VectorType(ir.IntType(1), LANES)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, mt]),
                                            f"llvm.x86.avx512.mask.compress.v{LANES}f32")
        r = builder.call(fn, [args[2], ir.Constant(vt, [0.0] * LANES), args[3]])
        builder.store(r, builder.bitcast(p, vt.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.void(arr, idx, Vec, Mask), codegen


@intrinsic
def compress_reg(typingctx, v, m):
    """The lanes of v selected by m moved to the bottom lanes (vcompressps zmm{k}{z}); the rest zero."""
    if v != Vec or m != Mask:
        return None

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.FloatType(), LANES)
        mt = ir.VectorType(ir.IntType(1), LANES)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, mt]),
                                            f"llvm.x86.avx512.mask.compress.v{LANES}f32")
        return builder.call(fn, [args[0], ir.Constant(vt, [0.0] * LANES), args[1]])

    return Vec(Vec, Mask), codegen


@intrinsic
def rotate_up(typingctx, v, k):
    """out[i] = v[(i - k) mod LANES] (vpermps with a computed index)."""
    if v != Vec or not isinstance(k, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.FloatType(), LANES)
        it = ir.VectorType(ir.IntType(32), LANES)
        kk = context.cast(builder, args[1], sig.args[1], types.int32)
        kv = builder.insert_element(ir.Constant(it, ir.Undefined), kk, ir.Constant(ir.IntType(32), 0))
        kv = builder.shuffle_vector(kv, ir.Constant(it, ir.Undefined), ir.Constant(it, [0] * LANES))
        idx = builder.and_(builder.sub(ir.Constant(it, list(range(LANES))), kv), ir.Constant(it, [LANES - 1] * LANES))
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, it]),
                                            "llvm.x86.avx512.permvar.sf.512")
        return builder.call(fn, [args[0], idx])

    return Vec(Vec, k), codegen


@intrinsic
def bits_mask(typingctx, x):
    """int64 (low LANES bits) -> Mask."""
    def codegen(context, builder, sig, args):
        b = builder.trunc(args[0], ir.IntType(LANES))
        return builder.bitcast(b, ir.VectorType(ir.IntType(1), LANES))

    return Mask(types.int64), codegen


def _make_shift(k):
    @intrinsic
    def shift_in_ones(typingctx, v):
        """(1, .., 1, v0, .., v[15-k]): v moved up k lanes, ones shifted in."""
        if v != Vec:
            return None

        def codegen(context, builder, sig, args):
            vt = ir.VectorType(ir.FloatType(), LANES)
            ones = ir.Constant(vt, [1.0] * LANES)
            idx = [LANES + i if i < k else i - k for i in range(LANES)]
            return builder.shuffle_vector(args[0], ones, ir.Constant(ir.VectorType(ir.IntType(32), LANES), idx))

        return Vec(Vec), codegen

    return shift_in_ones


sh1, sh2, sh4, sh8 = (_make_shift(k) for k in (1, 2, 4, 8))


@njit(inline="always")
def gather_tile_soa(P, Q, s, e, gids, G):
    """As lanes.gather_tile, with all NQ rows of the tile SoA ``Q`` [NQ, padded(maxlen)] and one padding vector."""
    n = e - s
    gather_tile(P, Q, s, e, gids, G)  # P and rows 0-6 of Q, as the product gathers them
    for k in range(n):  # the rows the prototype adds, from the gathered entries (in cache now)
        g = gids[s + k]
        Q[7, k] = G[g, 2]
        Q[8, k] = G[g, 3]
        Q[9, k] = G[g, 4]
        Q[10, k] = G[g, 5]
        Q[11, k] = f32(k)
        Q[12, k] = G[g, 6]
        Q[13, k] = G[g, 7]
        Q[14, k] = G[g, 8]
        Q[15, k] = G[g, 9]
        a = G[g, 2]
        b = G[g, 3]
        c = G[g, 4]
        k2 = max(G[g, 11], _ZERO)
        det = a * c - b * b
        Q[16, k] = np.sqrt(k2 * c / det) * f32(1.001) + f32(1e-3)
        Q[17, k] = np.sqrt(k2 * a / det) * f32(1.001) + f32(1e-3)
    # pad one vector: k2 = -1 never passes q <= k2 (q >= 0 for a positive definite conic)
    for k in range(n, n + LANES):
        for f in range(NQ):
            Q[f, k] = _ZERO
        Q[3, k] = f32(-1.0)


@njit(inline="always")
def compact_block(Q, n, words, blk, X, full, sub):
    """X[0..7, :m] = mx, my, a, b, c, k2, index, opacity of the block's bucket entries in depth order; padded to a whole
    vector with k2 = -1. Returns m."""
    m = 0
    for k0 in range(0, n, LANES):
        bits = (words[blk, k0 // 64] >> (k0 % 64)) & 0xFFFF
        if bits == 0:
            continue
        msk = bits_mask(bits)
        compress_store(X[0], m, vload(Q[0], k0), msk)
        compress_store(X[1], m, vload(Q[1], k0), msk)
        compress_store(X[2], m, vload(Q[7], k0), msk)
        compress_store(X[3], m, vload(Q[8], k0), msk)
        compress_store(X[4], m, vload(Q[9], k0), msk)
        compress_store(X[5], m, vload(Q[3], k0), msk)
        compress_store(X[6], m, vload(Q[11], k0), msk)
        compress_store(X[7], m, vload(Q[10], k0), msk)
        if full:
            compress_store(X[8], m, vload(Q[12], k0), msk)
            compress_store(X[9], m, vload(Q[13], k0), msk)
            compress_store(X[10], m, vload(Q[14], k0), msk)
            compress_store(X[11], m, vload(Q[15], k0), msk)
        if full and sub:
            compress_store(X[12], m, vload(Q[16], k0), msk)
            compress_store(X[13], m, vload(Q[17], k0), msk)
        m += ctpop(bits)
    vstore(X[5], m, splat(f32(-1.0)))
    return m


@intrinsic
def ctpop(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return types.int64(types.int64), codegen


@njit(inline="always")
def write_pixel(images, bg, px, py, cr, cg, cb, dep, ws):
    tf = _ONE - ws
    images.color[py, px, 0] = sfma(tf, bg[0], cr)
    images.color[py, px, 1] = sfma(tf, bg[1], cg)
    images.color[py, px, 2] = sfma(tf, bg[2], cb)
    images.alpha[py, px] = ws
    images.depth[py, px] = dep / ws if ws > _ZERO else _ZERO


@njit(inline="always")
def split_subblocks(X, m, x0, y0, XS, msub):
    """XS[sb] = the entries of the block list X whose threshold-ellipse bounding box meets 2x2 sub-block sb's
    pixel centres (sb = 2 sy + sx), fields mx, my, a, b, c, k2, o, r, g, b, depth; padded with k2 = -1."""
    for sb in range(4):
        msub[sb] = 0
    for c0 in range(0, m, LANES):
        mx = vload(X[0], c0)
        my = vload(X[1], c0)
        ex = vload(X[12], c0) + _HALF
        ey = vload(X[13], c0) + _HALF
        valid = lane_index() + f32(c0) < f32(m)
        for sb in range(4):
            cx = f32(x0 + 2 * (sb % 2) + 1)
            cy = f32(y0 + 2 * (sb // 2) + 1)
            dx = cx - mx
            dy = cy - my
            inside = valid & (dx <= ex) & (-ex <= dx) & (dy <= ey) & (-ey <= dy)
            bits = mask_bits(inside)
            if bits == 0:
                continue
            R = XS[sb]
            o = msub[sb]
            compress_store(R[0], o, mx, inside)
            compress_store(R[1], o, my, inside)
            compress_store(R[2], o, vload(X[2], c0), inside)
            compress_store(R[3], o, vload(X[3], c0), inside)
            compress_store(R[4], o, vload(X[4], c0), inside)
            compress_store(R[5], o, vload(X[5], c0), inside)
            compress_store(R[6], o, vload(X[7], c0), inside)
            compress_store(R[7], o, vload(X[8], c0), inside)
            compress_store(R[8], o, vload(X[9], c0), inside)
            compress_store(R[9], o, vload(X[10], c0), inside)
            compress_store(R[10], o, vload(X[11], c0), inside)
            msub[sb] = o + ctpop(bits)
    for sb in range(4):
        vstore(XS[sb, 5], msub[sb], splat(f32(-1.0)))


@njit(inline="always")
def pixel_cv(fx, fy, m, RX, RY, RA, RB, RC, RK, RO, RR, RG, RBL, RD):
    """One pixel over m candidates (SoA rows): 16 at a time, hit test, exp and a prefix-product composite."""
    T0 = splat(_ONE)
    zero = splat(_ZERO)
    acr = zero
    acg = zero
    acb = zero
    adep = zero
    aws = zero
    for c0 in range(0, m, LANES):
        dx = fx - vload(RX, c0)
        dy = fy - vload(RY, c0)
        a = vload(RA, c0)
        b = vload(RB, c0)
        c = vload(RC, c0)
        qx = -fma(dx, a, dy * b)
        qy = -fma(dx, b, dy * c)
        pw = fma(dx, qx, dy * qy) * _HALF
        cand = pw * f32(-2.0) <= vload(RK, c0)
        if mask_bits(cand) == 0:
            continue
        alpha = vmin(vexp(pw, POWER_FLOOR) * vload(RO, c0), ALPHA_MAX)
        hit = cand & (alpha >= ALPHA_MIN)
        av = select(hit, alpha, zero)
        om = _ONE - av
        inc = om * sh1(om)
        inc = inc * sh2(inc)
        inc = inc * sh4(inc)
        inc = inc * sh8(inc)
        tb = T0 * sh1(inc)
        ta = T0 * inc
        use = hit & (ta >= T_MIN)
        w = select(use, av * tb, zero)
        acr = fma(w, vload(RR, c0), acr)
        acg = fma(w, vload(RG, c0), acg)
        acb = fma(w, vload(RBL, c0), acb)
        adep = fma(w, vload(RD, c0), adep)
        aws = aws + w
        if mask_bits(hit & (ta < T_MIN)) != 0:
            break
        T0 = splat(lane(ta, LANES - 1))
    return hsum(acr), hsum(acg), hsum(acb), hsum(adep), hsum(aws)


@njit(inline="always")
def composite16(D, cnt, T0, acc):
    """Composite the first min(cnt, 16) candidates of the dense buffer D (rows: -2 power, o, r, g, b, depth) over
    transmittance T0 (a vector); acc = (r, g, b, depth, wsum) vector accumulators. Returns (T0, acc, stopped)."""
    zero = splat(_ZERO)
    q = vload(D[0], 0)
    valid = lane_index() < f32(cnt)
    alpha = vmin(vexp(q * f32(-0.5), POWER_FLOOR) * vload(D[1], 0), ALPHA_MAX)
    hit = valid & (alpha >= ALPHA_MIN)
    av = select(hit, alpha, zero)
    om = _ONE - av
    inc = om * sh1(om)
    inc = inc * sh2(inc)
    inc = inc * sh4(inc)
    inc = inc * sh8(inc)
    tb = T0 * sh1(inc)
    ta = T0 * inc
    use = hit & (ta >= T_MIN)
    w = select(use, av * tb, zero)
    acc = (fma(w, vload(D[2], 0), acc[0]), fma(w, vload(D[3], 0), acc[1]), fma(w, vload(D[4], 0), acc[2]),
           fma(w, vload(D[5], 0), acc[3]), acc[4] + w)
    stopped = mask_bits(hit & (ta < T_MIN)) != 0
    return splat(lane(ta, LANES - 1)), acc, stopped


@njit(inline="always")
def pixel_stream(fx, fy, m, X, D):
    """One pixel over the block list X (m entries): the hit test 16 entries at a time appends the candidates
    (q <= k2) densely to D (register compress + store); every 16 candidates are composited (exp + prefix
    product) at once, so the exp and the composite run on full vectors and stop at the pixel's termination."""
    zero = splat(_ZERO)
    T0 = splat(_ONE)
    acc = (zero, zero, zero, zero, zero)
    cnt = 0
    stopped = False
    for c0 in range(0, m, LANES):
        dx = fx - vload(X[0], c0)
        dy = fy - vload(X[1], c0)
        a = vload(X[2], c0)
        b = vload(X[3], c0)
        c = vload(X[4], c0)
        t1 = fma(dx, a, dy * b)
        t2 = fma(dx, b, dy * c)
        q = fma(dx, t1, dy * t2)  # = -2 power, the product's bits
        cand = q <= vload(X[5], c0)
        bits = mask_bits(cand)
        if bits == 0:
            continue
        compress_store(D[0], cnt, q, cand)
        compress_store(D[1], cnt, vload(X[7], c0), cand)
        compress_store(D[2], cnt, vload(X[8], c0), cand)
        compress_store(D[3], cnt, vload(X[9], c0), cand)
        compress_store(D[4], cnt, vload(X[10], c0), cand)
        compress_store(D[5], cnt, vload(X[11], c0), cand)
        cnt += ctpop(bits)
        if cnt >= LANES:
            T0, acc, stopped = composite16(D, LANES, T0, acc)
            if stopped:
                break
            cnt -= LANES
            for f in range(6):
                vstore(D[f], 0, vload(D[f], LANES))
    if not stopped and cnt > 0:
        T0, acc, stopped = composite16(D, cnt, T0, acc)
    return hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3]), hsum(acc[4])


@njit(inline="always")
def composite_regs(cnt, q, o, r, g, bl, dp, T0, acc):
    """composite16 with the dense candidates in registers."""
    zero = splat(_ZERO)
    valid = lane_index() < f32(cnt)
    alpha = vmin(vexp(q * f32(-0.5), POWER_FLOOR) * o, ALPHA_MAX)
    hit = valid & (alpha >= ALPHA_MIN)
    av = select(hit, alpha, zero)
    om = _ONE - av
    inc = om * sh1(om)
    inc = inc * sh2(inc)
    inc = inc * sh4(inc)
    inc = inc * sh8(inc)
    tb = T0 * sh1(inc)
    ta = T0 * inc
    use = hit & (ta >= T_MIN)
    w = select(use, av * tb, zero)
    acc = (fma(w, r, acc[0]), fma(w, g, acc[1]), fma(w, bl, acc[2]), fma(w, dp, acc[3]), acc[4] + w)
    stopped = mask_bits(hit & (ta < T_MIN)) != 0
    return splat(lane(ta, LANES - 1)), acc, stopped


@njit(inline="always")
def pixel_stream_regs(fx, fy, m, X):
    """pixel_stream with the pending dense candidates kept in registers (compress + rotate + blend)."""
    zero = splat(_ZERO)
    T0 = splat(_ONE)
    acc = (zero, zero, zero, zero, zero)
    pq = zero
    po = zero
    pr = zero
    pg = zero
    pb = zero
    pd = zero
    cnt = 0
    stopped = False
    li = lane_index()
    for c0 in range(0, m, LANES):
        dx = fx - vload(X[0], c0)
        dy = fy - vload(X[1], c0)
        a = vload(X[2], c0)
        b = vload(X[3], c0)
        c = vload(X[4], c0)
        t1 = fma(dx, a, dy * b)
        t2 = fma(dx, b, dy * c)
        q = fma(dx, t1, dy * t2)  # = -2 power, the product's bits
        cand = q <= vload(X[5], c0)
        bits = mask_bits(cand)
        if bits == 0:
            continue
        keep = li < f32(cnt)
        rq = rotate_up(compress_reg(q, cand), cnt)
        ro = rotate_up(compress_reg(vload(X[7], c0), cand), cnt)
        rr = rotate_up(compress_reg(vload(X[8], c0), cand), cnt)
        rg = rotate_up(compress_reg(vload(X[9], c0), cand), cnt)
        rb = rotate_up(compress_reg(vload(X[10], c0), cand), cnt)
        rd = rotate_up(compress_reg(vload(X[11], c0), cand), cnt)
        pq = select(keep, pq, rq)
        po = select(keep, po, ro)
        pr = select(keep, pr, rr)
        pg = select(keep, pg, rg)
        pb = select(keep, pb, rb)
        pd = select(keep, pd, rd)
        cnt += ctpop(bits)
        if cnt >= LANES:
            T0, acc, stopped = composite_regs(LANES, pq, po, pr, pg, pb, pd, T0, acc)
            if stopped:
                break
            cnt -= LANES
            pq = rq
            po = ro
            pr = rr
            pg = rg
            pb = rb
            pd = rd
    if not stopped and cnt > 0:
        T0, acc, stopped = composite_regs(cnt, pq, po, pr, pg, pb, pd, T0, acc)
    return hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3]), hsum(acc[4])


# kernel modes (constants of the compiled code)
_CP, _CB, _T, _PROTO_GATHER_BUCKET, _COMPACT, _CV, _CV22, _CS, _CR, _PRODUCT_GATHER_BUCKET = range(10)


def make_kernel(mode: int):
    """forward(splats, lists, frame, images) of one mode: a variant writes colour, alpha and depth; a part mode
    only does its per-tile work."""

    @njit(inline="always")
    def alpha_vec(pw, O, c0):
        return vmin(vexp(pw, POWER_FLOOR) * vload(O, c0), ALPHA_MAX)

    @njit
    def tile_fn(t, G, lists, frame, images, P, Q, X, XS, msub, words, al, st, bg_row, zero_row):
        width = frame.width
        height = frame.height
        bg = frame.background
        s, e, tx, ty = tile_span(t, lists.offsets, lists.tiles_x)
        if e == s:
            fill_tile(images.color.reshape(images.color.size), 3, tx, ty, width, height, bg_row)
            fill_tile(images.alpha.reshape(images.alpha.size), 1, tx, ty, width, height, zero_row)
            fill_tile(images.depth.reshape(images.depth.size), 1, tx, ty, width, height, zero_row)
            return
        n = e - s
        if mode == _PRODUCT_GATHER_BUCKET:  # the product's own gather (7 bucket rows) + bucketing
            gather_tile(P, Q, s, e, lists.gids, G)
            bucket_blocks(Q, n, tx, ty, words)
            return
        gather_tile_soa(P, Q, s, e, lists.gids, G)
        bucket_blocks(Q, n, tx, ty, words)
        if mode == _PROTO_GATHER_BUCKET:
            return
        for blk in range(NBLK):
            x0, y0 = block_origin(blk, tx, ty)
            if x0 >= width or y0 >= height:
                continue
            if mode == _T:
                m = n
            else:
                m = compact_block(Q, n, words, blk, X, mode >= _CV, mode == _CV22)
            if mode == _COMPACT:
                st[0, 0] += f32(m)  # a use of the compaction
                continue
            if mode == _CR:
                for l in range(LANES):
                    px = x0 + l % BW
                    py = y0 + l // BW
                    if px >= width or py >= height:
                        continue
                    cr, cg, cb, dep, ws = pixel_stream_regs(f32(px) + _HALF, f32(py) + _HALF, m, X)
                    write_pixel(images, bg, px, py, cr, cg, cb, dep, ws)
            elif mode == _CS:
                for l in range(LANES):
                    px = x0 + l % BW
                    py = y0 + l // BW
                    if px >= width or py >= height:
                        continue
                    cr, cg, cb, dep, ws = pixel_stream(f32(px) + _HALF, f32(py) + _HALF, m, X, XS[0])
                    write_pixel(images, bg, px, py, cr, cg, cb, dep, ws)
            elif mode == _CV22:
                split_subblocks(X, m, x0, y0, XS, msub)
                for l in range(LANES):
                    px = x0 + l % BW
                    py = y0 + l // BW
                    if px >= width or py >= height:
                        continue
                    sb = 2 * ((l // BW) // 2) + (l % BW) // 2
                    R = XS[sb]
                    cr, cg, cb, dep, ws = pixel_cv(f32(px) + _HALF, f32(py) + _HALF, msub[sb], R[0], R[1], R[2],
                                                   R[3], R[4], R[5], R[6], R[7], R[8], R[9], R[10])
                    write_pixel(images, bg, px, py, cr, cg, cb, dep, ws)
            elif mode == _CV:
                for l in range(LANES):
                    px = x0 + l % BW
                    py = y0 + l // BW
                    if px >= width or py >= height:
                        continue
                    fx = f32(px) + _HALF
                    fy = f32(py) + _HALF
                    T0 = splat(_ONE)
                    zero = splat(_ZERO)
                    acr = zero
                    acg = zero
                    acb = zero
                    adep = zero
                    aws = zero
                    for c0 in range(0, m, LANES):
                        dx = fx - vload(X[0], c0)
                        dy = fy - vload(X[1], c0)
                        a = vload(X[2], c0)
                        b = vload(X[3], c0)
                        c = vload(X[4], c0)
                        qx = -fma(dx, a, dy * b)
                        qy = -fma(dx, b, dy * c)
                        pw = fma(dx, qx, dy * qy) * _HALF
                        cand = pw * f32(-2.0) <= vload(X[5], c0)
                        if mask_bits(cand) == 0:
                            continue
                        alpha = alpha_vec(pw, X[7], c0)
                        hit = cand & (alpha >= ALPHA_MIN)
                        av = select(hit, alpha, zero)
                        om = _ONE - av
                        inc = om * sh1(om)
                        inc = inc * sh2(inc)
                        inc = inc * sh4(inc)
                        inc = inc * sh8(inc)  # inclusive prefix product of (1 - alpha)
                        tb = T0 * sh1(inc)  # T before each entry
                        ta = T0 * inc  # T after
                        use = hit & (ta >= T_MIN)
                        w = select(use, av * tb, zero)
                        acr = fma(w, vload(X[8], c0), acr)
                        acg = fma(w, vload(X[9], c0), acg)
                        acb = fma(w, vload(X[10], c0), acb)
                        adep = fma(w, vload(X[11], c0), adep)
                        aws = aws + w
                        if mask_bits(hit & (ta < T_MIN)) != 0:
                            break
                        T0 = splat(lane(ta, LANES - 1))
                    write_pixel(images, bg, px, py, hsum(acr), hsum(acg), hsum(acb), hsum(adep), hsum(aws))
            elif mode == _CP or mode == _T:
                for l in range(LANES):
                    px = x0 + l % BW
                    py = y0 + l // BW
                    if px >= width or py >= height:
                        continue
                    fx = f32(px) + _HALF
                    fy = f32(py) + _HALF
                    T = _ONE
                    cr = _ZERO
                    cg = _ZERO
                    cb = _ZERO
                    dep = _ZERO
                    ws = _ZERO
                    done = False
                    if mode == _T:
                        R0, R1, R2, R3, R4, R5, RO, RI = Q[0], Q[1], Q[7], Q[8], Q[9], Q[3], Q[10], Q[11]
                    else:
                        R0, R1, R2, R3, R4, R5, RO, RI = X[0], X[1], X[2], X[3], X[4], X[5], X[7], X[6]
                    for c0 in range(0, m, LANES):
                        bb = np.int64(0xFFFF)
                        if mode == _T:
                            bb = (words[blk, c0 // 64] >> (c0 % 64)) & 0xFFFF
                            if bb == 0:
                                continue
                        dx = fx - vload(R0, c0)
                        dy = fy - vload(R1, c0)
                        a = vload(R2, c0)
                        b = vload(R3, c0)
                        c = vload(R4, c0)
                        qx = -fma(dx, a, dy * b)
                        qy = -fma(dx, b, dy * c)
                        pw = fma(dx, qx, dy * qy) * _HALF  # the product's power, same bits
                        bits = mask_bits(pw * f32(-2.0) <= vload(R5, c0)) & bb
                        if bits == 0:
                            continue
                        vstore(al, 0, alpha_vec(pw, RO, c0))
                        while bits != 0:
                            j = ctz(bits)
                            bits &= bits - 1
                            av = al[j]
                            if av < ALPHA_MIN:
                                continue
                            Tn = T * (_ONE - av)
                            if Tn < T_MIN:
                                done = True
                                break
                            w = av * T
                            k = int(RI[c0 + j])
                            cr = sfma(w, P[k, 6], cr)
                            cg = sfma(w, P[k, 7], cg)
                            cb = sfma(w, P[k, 8], cb)
                            dep = sfma(w, P[k, 9], dep)
                            ws = ws + w
                            T = Tn
                        if done:
                            break
                    write_pixel(images, bg, px, py, cr, cg, cb, dep, ws)
            else:  # _CB
                # chunk-major: state per pixel in st[6, 16] (T, r, g, b, depth, wsum); active bits
                active = np.int64(0)
                for l in range(LANES):
                    st[0, l] = _ONE
                    for f in range(1, 6):
                        st[f, l] = _ZERO
                    if x0 + l % BW < width and y0 + l // BW < height:
                        active |= np.int64(1) << l
                for c0 in range(0, m, LANES):
                    if active == 0:
                        break
                    mx = vload(X[0], c0)
                    my = vload(X[1], c0)
                    a = vload(X[2], c0)
                    b = vload(X[3], c0)
                    c = vload(X[4], c0)
                    k2 = vload(X[5], c0)
                    live = active
                    while live != 0:
                        l = ctz(live)
                        live &= live - 1
                        fx = f32(x0 + l % BW) + _HALF
                        fy = f32(y0 + l // BW) + _HALF
                        dx = fx - mx
                        dy = fy - my
                        qx = -fma(dx, a, dy * b)
                        qy = -fma(dx, b, dy * c)
                        pw = fma(dx, qx, dy * qy) * _HALF
                        bits = mask_bits(pw * f32(-2.0) <= k2)
                        if bits == 0:
                            continue
                        vstore(al, 0, alpha_vec(pw, X[7], c0))
                        T = st[0, l]
                        cr = st[1, l]
                        cg = st[2, l]
                        cb = st[3, l]
                        dep = st[4, l]
                        ws = st[5, l]
                        while bits != 0:
                            j = ctz(bits)
                            bits &= bits - 1
                            av = al[j]
                            if av < ALPHA_MIN:
                                continue
                            Tn = T * (_ONE - av)
                            if Tn < T_MIN:
                                active &= ~(np.int64(1) << l)
                                break
                            w = av * T
                            k = int(X[6, c0 + j])
                            cr = sfma(w, P[k, 6], cr)
                            cg = sfma(w, P[k, 7], cg)
                            cb = sfma(w, P[k, 8], cb)
                            dep = sfma(w, P[k, 9], dep)
                            ws = ws + w
                            T = Tn
                        st[0, l] = T
                        st[1, l] = cr
                        st[2, l] = cg
                        st[3, l] = cb
                        st[4, l] = dep
                        st[5, l] = ws
                for l in range(LANES):
                    px = x0 + l % BW
                    py = y0 + l // BW
                    if px < width and py < height:
                        write_pixel(images, bg, px, py, st[1, l], st[2, l], st[3, l], st[4, l], st[5, l])

    @njit(parallel=True)
    def forward(splats, lists, frame, images):
        n_tiles = lists.offsets.shape[0] - 1
        maxlen = max_list(lists.offsets)
        n = splats.opacities.shape[0]
        G = np.empty((n, NPACK), np.float32)
        for i in prange(n):
            pack(G, i, splats)
        bg_row = row_pattern(frame.background, 3)
        zero_row = np.zeros(TILE * 3, np.float32)
        for chunk in prange(N_CHUNKS):
            P = np.empty((maxlen, NPACK), np.float32)
            Q = np.empty((NQ, padded(maxlen)), np.float32)
            X = np.empty((14, padded(maxlen)), np.float32)
            XS = np.empty((4, 11, padded(maxlen)), np.float32)
            msub = np.zeros(4, np.int64)
            words = np.empty((NBLK, (maxlen + 63) // 64 + 1), np.int64)
            al = np.empty(LANES, np.float32)
            st = np.empty((6, LANES), np.float32)
            for t in range(chunk, n_tiles, N_CHUNKS):
                tile_fn(t, G, lists, frame, images, P, Q, X, XS, msub, words, al, st, bg_row, zero_row)

    return forward


VARIANTS = {"CP": _CP, "CB": _CB, "T": _T, "CV": _CV, "CV22": _CV22, "CS": _CS, "CR": _CR}
PARTS = {"product gather+bucket": _PRODUCT_GATHER_BUCKET, "proto gather+bucket": _PROTO_GATHER_BUCKET,
         "proto +compact": _COMPACT}
_compiled: dict[int, object] = {}


def kernel(mode: int):
    """The compiled forward of ``mode`` (a value of VARIANTS or PARTS), built once."""
    if LANES != 16:
        raise RuntimeError(f"the entry-SIMD prototype needs 16 SIMD lanes (AVX-512), this host has {LANES}")
    if mode not in _compiled:
        _compiled[mode] = make_kernel(mode)
    return _compiled[mode]


# per-pixel work counts (count_work's output slots)
COUNT_FIELDS = ("blocks", "pixels", "tile entries", "bucket entries", "candidates evaluated", "chunks", "hits",
                "terminated pixels", "product entries stepped", "sub-block list entries")


@njit
def count_work(splats, lists, width, height):
    """Sums over the image (float64 [len(COUNT_FIELDS)]), serial, float64 arithmetic (counts, not images): blocks
    and pixels inside the image; tile-list and bucket entries summed over blocks; per pixel, the block-list entries
    a pixel-major variant evaluates up to the pixel's termination (stop after the entry that would take T below
    T_MIN), their chunks of 16, the hits (alpha >= 1/255 before termination), the terminated pixels; per block, the
    entries the product steps through (until every lane has stopped; x 16 = its lane evaluations); per pixel, the
    entries of its 2x2 sub-block list (CV22's bounding-box rule)."""
    out = np.zeros(len(COUNT_FIELDS))
    n_tiles = lists.offsets.shape[0] - 1
    maxlen = max_list(lists.offsets)
    G = np.empty((splats.opacities.shape[0], NPACK), np.float32)
    for i in range(G.shape[0]):
        pack(G, i, splats)
    P = np.empty((maxlen, NPACK), np.float32)
    Q = np.empty((NQ, padded(maxlen)), np.float32)
    words = np.empty((NBLK, (maxlen + 63) // 64 + 1), np.int64)
    ids = np.empty(maxlen, np.int64)
    for t in range(n_tiles):
        s, e, tx, ty = tile_span(t, lists.offsets, lists.tiles_x)
        if e == s:
            continue
        n = e - s
        gather_tile_soa(P, Q, s, e, lists.gids, G)
        bucket_blocks(Q, n, tx, ty, words)
        for blk in range(NBLK):
            x0, y0 = block_origin(blk, tx, ty)
            if x0 >= width or y0 >= height:
                continue
            m = 0
            for k in range(n):
                if (words[blk, k // 64] >> (k % 64)) & 1:
                    ids[m] = k
                    m += 1
            out[0] += 1
            out[2] += n
            out[3] += m
            block_stop = 0
            for l in range(LANES):
                px = x0 + l % BW
                py = y0 + l // BW
                if px >= width or py >= height:
                    continue
                out[1] += 1
                T = 1.0
                stop = m
                for j in range(m):
                    k = ids[j]
                    dx = px + 0.5 - P[k, 0]
                    dy = py + 0.5 - P[k, 1]
                    pw = -0.5 * (P[k, 2] * dx * dx + 2.0 * P[k, 3] * dx * dy + P[k, 4] * dy * dy)
                    al = min(float(ALPHA_MAX), P[k, 5] * np.exp(max(pw, float(POWER_FLOOR))))
                    if al < float(ALPHA_MIN):
                        continue
                    Tn = T * (1.0 - al)
                    if Tn < float(T_MIN):
                        stop = j + 1
                        break
                    out[6] += 1
                    T = Tn
                out[4] += stop
                out[5] += (stop + LANES - 1) // LANES
                block_stop = max(block_stop, stop)
                if stop < m:
                    out[7] += 1
                cx = x0 + 2 * ((l % BW) // 2) + 1.0  # centre of the pixel's 2x2 sub-block
                cy = y0 + 2 * ((l // BW) // 2) + 1.0
                for j in range(m):
                    k = ids[j]
                    if abs(cx - Q[0, k]) <= Q[16, k] + 0.5 and abs(cy - Q[1, k]) <= Q[17, k] + 0.5:
                        out[9] += 1
            out[8] += block_stop
    return out
