"""Tile binning and depth sorting (numba).

The image is cut into ``TILE_SIZE`` x ``TILE_SIZE`` pixel tiles, row-major, ``tiles_x = ceil(W / 16)``.
A visible Gaussian with 2D mean m and 3-sigma half-extents e is listed in every tile (tx, ty) with

    max(0, floor((m_x - e_x) / 16)) <= tx <= min(tiles_x - 1, floor((m_x + e_x) / 16))

and likewise in y: :func:`tile_range`, the rule's one implementation, which binning here and the projection kernel
(:mod:`.project_kernels`, which stores each Gaussian's range) both inline. It is composited at exactly the pixels
of those tiles (the reference twin applies the same rule per pixel). Within a tile the list is sorted front to
back by camera depth, ties broken by the Gaussian's index. Depths are sorted once (LSD radix sort of the float32
bit patterns, which order like the values for positive depths, over only the bits in which the scene's depths
differ); a stable counting sort by tile then keeps that order, so the whole step is O(N + M) for N Gaussians and M
tile-Gaussian pairs. Both sorts run in parallel over contiguous chunks of their input, each chunk placed after the
earlier ones, so they stay stable and the result does not depend on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0
RADIX_BITS = 11  # at most 2048 buckets per radix pass
REACH_MARGIN = 1e-3  # relative safety margin of the opacity-aware extents, far above float32 round-off


@dataclass
class TileBins:
    """Per-tile, depth-sorted Gaussian lists.

    offsets: int64 [n_tiles + 1], tile t's entries are gids[offsets[t]:offsets[t + 1]].
    gids: int32 [M] Gaussian indices (into the projected arrays).
    """

    offsets: np.ndarray
    gids: np.ndarray
    tiles_x: int
    tiles_y: int
    tile_size: int = TILE_SIZE
    reach: np.ndarray | None = None  # float32 [N] vertical reach per Gaussian, see contribution_extents

    @property
    def n_pairs(self) -> int:
        return int(self.gids.shape[0])


@njit(parallel=True, cache=True)
def _alive_keys(depths, alive, n_chunks):
    """The alive Gaussians in index order with their depth bits: (idx int32 [M], keys uint32 [M], smallest key,
    largest key, whether every alive depth is > 0). depths: float32 [N]; alive: bool [N]. Two passes over
    n_chunks contiguous chunks (count, then write at the chunk's prefix)."""
    n = depths.shape[0]
    bits = depths.view(np.uint32)
    step = (n + n_chunks - 1) // n_chunks
    start = np.zeros(n_chunks + 1, np.int64)
    for c in prange(n_chunks):
        k = 0
        for i in range(c * step, min(n, c * step + step)):
            k += 1 if alive[i] else 0
        start[c + 1] = k
    for c in range(n_chunks):
        start[c + 1] += start[c]
    idx = np.empty(start[n_chunks], np.int32)
    keys = np.empty(start[n_chunks], np.uint32)
    lo = np.full(n_chunks, 0xFFFFFFFF, np.int64)
    hi = np.zeros(n_chunks, np.int64)
    positive = np.ones(n_chunks, np.bool_)
    for c in prange(n_chunks):
        j = start[c]
        k_lo = np.int64(0xFFFFFFFF)
        k_hi = np.int64(0)
        pos = True
        for i in range(c * step, min(n, c * step + step)):
            if alive[i]:
                key = np.int64(bits[i])
                idx[j] = i
                keys[j] = bits[i]
                j += 1
                k_lo = min(k_lo, key)
                k_hi = max(k_hi, key)
                pos = pos and depths[i] > 0.0
        lo[c] = k_lo
        hi[c] = k_hi
        positive[c] = pos
    return idx, keys, lo.min(), hi.max(), positive.all()


@njit(parallel=True, cache=True)
def _radix_argsort(keys, idx, k_min, n_passes, width, n_chunks):
    """Stable sort of idx by keys (uint32 [M], every key - k_min < 2^(n_passes width)): LSD radix sort on
    key - k_min, width bits per pass, each pass parallel over n_chunks contiguous chunks (per-chunk digit
    histograms, an exclusive prefix over (digit, chunk), then every chunk scatters its own elements in order, so
    each pass is stable). Returns the sorted idx (int32 [M]). Consumes idx and keys: they are the first pair of
    buffers (keys turned into key - k_min in place)."""
    n = idx.shape[0]
    n_buckets = 1 << width
    mask = n_buckets - 1
    src = idx
    dst = np.empty_like(src)
    kbuf = keys
    base = np.uint32(k_min)
    for i in prange(n):
        kbuf[i] -= base
    kdst = np.empty_like(kbuf)
    step = (n + n_chunks - 1) // n_chunks
    hist = np.zeros((n_chunks, n_buckets), np.int64)
    for p in range(n_passes):
        shift = p * width
        for c in prange(n_chunks):
            for d in range(n_buckets):
                hist[c, d] = 0
            for i in range(c * step, min(n, c * step + step)):
                hist[c, (kbuf[i] >> shift) & mask] += 1
        total = 0
        for d in range(n_buckets):
            for c in range(n_chunks):
                t = hist[c, d]
                hist[c, d] = total
                total += t
        for c in prange(n_chunks):
            for i in range(c * step, min(n, c * step + step)):
                d = (kbuf[i] >> shift) & mask
                pos = hist[c, d]
                dst[pos] = src[i]
                kdst[pos] = kbuf[i]
                hist[c, d] = pos + 1
        src, dst = dst, src
        kbuf, kdst = kdst, kbuf
    return src


@njit(inline="always")
def tile_range(mx, my, ex, ey, tile, tiles_x, tiles_y):
    """The module docstring's rule, the one owner of it: the tiles tx in [x0, x1], ty in [y0, y1] that a Gaussian
    with 2D mean (mx, my) and half-extents (ex, ey) px is listed in, as float64 (x0 > x1 or y0 > y1: none).

    tile, tiles_x, tiles_y: the tile size (px) and the grid, floats. mx - ex is taken in the values' own dtype and
    divided by the tile size in float64, so every caller gets the same bounds bit for bit. Lower bounds are clamped
    to [0, tiles], upper ones to [-1, tiles - 1] before the caller converts them to integers: the same tiles, and
    no integer overflow for huge extents. A NaN bound is the caller's to exclude."""
    x0 = min(max(np.floor((mx - ex) / tile), 0.0), tiles_x)
    x1 = max(min(np.floor((mx + ex) / tile), tiles_x - 1.0), -1.0)
    y0 = min(max(np.floor((my - ey) / tile), 0.0), tiles_y)
    y1 = max(min(np.floor((my + ey) / tile), tiles_y - 1.0), -1.0)
    return x0, x1, y0, y1


@njit(parallel=True, cache=True)
def _rects(order, means2d, extents, tile, ntx, nty, rect):
    """rect[k] = (x0, x1, y0, y1), the :func:`tile_range` of Gaussian order[k]; (0, -1, 0, -1) when it is empty
    or NaN."""
    nx = np.float64(ntx)
    ny = np.float64(nty)
    for k in prange(order.shape[0]):
        g = order[k]
        x0, x1, y0, y1 = tile_range(means2d[g, 0], means2d[g, 1], extents[g, 0], extents[g, 1], tile, nx, ny)
        ok = (x0 <= x1) & (y0 <= y1)  # False for NaN bounds
        rect[k, 0] = np.int32(x0 if ok else 0.0)
        rect[k, 1] = np.int32(x1 if ok else -1.0)
        rect[k, 2] = np.int32(y0 if ok else 0.0)
        rect[k, 3] = np.int32(y1 if ok else -1.0)


U1, U2, U3, U4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)  # flat-index offsets


@njit(parallel=True, cache=True)
def _gather_rects(order, rects, ntx, nty, rect):
    """rect[k] = rects[order[k]]: the tile ranges the projection computed, in depth order, clamped to the tile grid
    (a no-op for ranges computed for this grid; a guard against out-of-bounds counts for any others). Flat views
    and unsigned indices: no negative-index checks in the gather."""
    src = rects.reshape(rects.size)
    dst = rect.reshape(rect.size)
    for k in prange(order.shape[0]):
        g = np.uint64(order[k]) * U4
        j = np.uint64(k) * U4
        dst[j] = max(src[g], 0)
        dst[j + U1] = min(src[g + U1], ntx - 1)
        dst[j + U2] = max(src[g + U2], 0)
        dst[j + U3] = min(src[g + U3], nty - 1)


@njit(parallel=True, cache=True)
def _count(rect, ntx, n_chunks, hist):
    """hist[c, t] = number of the Gaussians of chunk c (contiguous in depth order) listed in tile t. Most Gaussians
    span one or two tiles per row: those increments are unrolled, so the loop over a row rarely runs."""
    n = rect.shape[0]
    r = rect.reshape(rect.size)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        h = hist[c]
        for t in range(h.shape[0]):
            h[t] = 0
        for k in range(c * step, min(n, c * step + step)):
            j = np.uint64(k) * U4
            x0, x1, y0, y1 = r[j], r[j + U1], r[j + U2], r[j + U3]
            w = x1 - x0 + 1
            if w <= 0:
                continue
            for ty in range(y0, y1 + 1):
                base = np.uint64(ty * ntx + x0)
                h[base] += 1
                if w > 1:
                    h[base + U1] += 1
                    for dx in range(2, w):
                        h[base + np.uint64(dx)] += 1


@njit(parallel=True, cache=True)
def _fill(order, rect, ntx, n_chunks, cursor, gids):
    """Write Gaussian ids into each tile's segment in depth order (stable counting sort by tile): chunk c starts
    writing tile t at cursor[c, t], after the earlier chunks' entries of that tile."""
    n = rect.shape[0]
    r = rect.reshape(rect.size)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        cur = cursor[c]
        for k in range(c * step, min(n, c * step + step)):
            g = order[k]
            j = np.uint64(k) * U4
            x0, x1, y0, y1 = r[j], r[j + U1], r[j + U2], r[j + U3]
            for ty in range(y0, y1 + 1):
                row = np.uint64(ty * ntx)
                for tx in range(x0, x1 + 1):
                    t = row + np.uint64(tx)
                    pos = cur[t]
                    gids[np.uint64(pos)] = g
                    cur[t] = pos + 1


def _n_chunks(n: int) -> int:
    """Parallel chunks of the sorting passes: two per thread, none shorter than 4096 elements."""
    return max(1, min(2 * numba.get_num_threads(), n // 4096))


def contribution_extents(extents: np.ndarray, opacities: np.ndarray, visible: np.ndarray):
    """Tighter, opacity-aware extents that leave every rendered pixel unchanged.

    A Gaussian's alpha = o exp(-q/2) reaches 1/255 only where q <= k^2 = 2 ln(255 o): the axis-aligned box of
    that ellipse has half-widths k sigma_x, k sigma_y (sigma from ``extents`` = 3 sigma). Binning with
    min(3, k) sigma lists a Gaussian in no tile where it could not contribute, and a row at vertical offset
    |dy| > k sigma_y cannot contribute on any pixel. Both carry a 0.1 % margin.

    Args:
        extents: [N, 2] 3-sigma half-extents (px); opacities: [N]; visible: [N] bool.

    Returns:
        bin_extents [N, 2] float32, reach [N] float32 (k sigma_y, not capped at 3 sigma: within a listed tile
        the 3-sigma box does not cut contributions off), alive [N] bool (visible and able to reach 1/255).
    """
    o = np.asarray(opacities, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k2 = 2.0 * np.log(np.maximum(o, 1e-30) / (ALPHA_MIN * (1.0 - REACH_MARGIN)))
    alive = np.asarray(visible, bool) & (k2 > 0)
    k = np.sqrt(np.maximum(k2, 0.0)) * (1.0 + REACH_MARGIN)
    sigma = np.asarray(extents, np.float64) / 3.0
    bin_ext = (sigma * np.minimum(k, 3.0 * (1.0 + REACH_MARGIN))[:, None]).astype(np.float32)
    reach = (sigma[:, 1] * k).astype(np.float32)
    return bin_ext, reach, alive


def depth_order(depths: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Indices of the visible Gaussians sorted front to back (stable: ties keep index order). int32.

    Visible Gaussians have depth > near plane > 0, so their float32 bit patterns sort like their values; the sort
    runs over only the bits in which the smallest and largest key differ (RADIX_BITS or fewer per pass: a scene's
    depths usually span 2 passes, not 4)."""
    d = np.ascontiguousarray(depths, dtype=np.float32)
    if np.shape(visible) != d.shape:
        raise ValueError(f"depth_order: visible must have the shape of depths {d.shape}, got {np.shape(visible)}")
    idx, keys, k_min, k_max, positive = _alive_keys(d, np.ascontiguousarray(visible, dtype=np.bool_),
                                                    _n_chunks(d.shape[0]))
    if not positive:
        return idx[np.argsort(d[idx], kind="stable")]  # not reached with a positive near plane
    span_bits = int(k_max - k_min).bit_length() if idx.size else 0
    n_passes = -(-span_bits // RADIX_BITS)
    if n_passes == 0:
        return idx  # all keys equal: index order
    width = -(-span_bits // n_passes)
    return _radix_argsort(keys, idx, k_min, n_passes, width, _n_chunks(idx.shape[0]))


def bin_gaussians(
    means2d: np.ndarray,
    extents: np.ndarray,
    depths: np.ndarray,
    visible: np.ndarray,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
    reach: np.ndarray | None = None,
    rects: np.ndarray | None = None,
) -> TileBins:
    """Bin and sort. means2d, extents: float [N, 2] px; depths: float [N]; visible: bool [N]; reach: optional
    [N] vertical reach handed to the kernels (default: +inf, no vertical limit; the kernels' chord rule still
    applies); rects: optional int32 [N, 4] (x0, x1, y0, y1) tile ranges already computed by this rule for this
    tile grid (the projection kernel's ``tile_rects``), so that only their depth-order gather is left."""
    ntx = (width + tile_size - 1) // tile_size
    nty = (height + tile_size - 1) // tile_size
    order = depth_order(depths, visible)
    rect = np.empty((order.shape[0], 4), np.int32)
    if rects is None:
        _rects(order, means2d, extents, float(tile_size), ntx, nty, rect)
    else:
        if rects.shape != (len(depths), 4):
            raise ValueError(f"bin_gaussians: rects must have shape ({len(depths)}, 4), got {rects.shape}")
        _gather_rects(order, np.ascontiguousarray(rects, np.int32), ntx, nty, rect)
    n_chunks = _n_chunks(order.shape[0])
    hist = np.empty((n_chunks, ntx * nty), np.int64)
    _count(rect, ntx, n_chunks, hist)
    offsets = np.zeros(ntx * nty + 1, np.int64)
    np.cumsum(hist.sum(axis=0), out=offsets[1:])
    # chunk c's first slot in tile t: the tile's offset plus the earlier chunks' counts in it
    cursor = np.cumsum(hist, axis=0)
    cursor -= hist
    cursor += offsets[None, :-1]
    gids = np.empty(int(offsets[-1]), np.int32)
    _fill(order, rect, ntx, n_chunks, cursor, gids)
    if reach is None:
        reach = np.full(len(depths), np.inf, np.float32)
    return TileBins(offsets=offsets, gids=gids, tiles_x=ntx, tiles_y=nty, tile_size=tile_size,
                    reach=np.ascontiguousarray(reach, np.float32))
