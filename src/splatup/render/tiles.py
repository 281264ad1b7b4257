"""Tile binning and depth sorting (numba).

The image is cut into ``TILE_SIZE`` x ``TILE_SIZE`` pixel tiles, row-major, ``tiles_x = ceil(W / 16)``.
A visible Gaussian with 2D mean m and 3-sigma half-extents e is listed in every tile (tx, ty) with

    max(0, floor((m_x - e_x) / 16)) <= tx <= min(tiles_x - 1, floor((m_x + e_x) / 16))

and likewise in y. It is composited at exactly the pixels of those tiles (the reference twin applies the
same rule per pixel). Within a tile the list is sorted front to back by camera depth, ties broken by the
Gaussian's index. Depths are sorted once (LSD radix sort of the float32 bit patterns, which order like the
values for positive depths); a stable counting sort by tile then keeps that order, so the whole step is
O(N + M) for N Gaussians and M tile-Gaussian pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0
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


@njit(cache=True)
def _radix_argsort_positive(keys_f32, idx):
    """Stable argsort of idx by keys_f32[idx] (all keys > 0): 4-pass LSD radix sort on the uint32 bits."""
    bits = keys_f32.view(np.uint32)
    n = idx.shape[0]
    src = idx.copy()
    dst = np.empty_like(src)
    kbuf = np.empty(n, np.uint32)
    for i in range(n):
        kbuf[i] = bits[src[i]]
    kdst = np.empty_like(kbuf)
    count = np.empty(257, np.int64)
    for shift in range(0, 32, 8):
        count[:] = 0
        for i in range(n):
            count[((kbuf[i] >> shift) & 255) + 1] += 1
        for b in range(256):
            count[b + 1] += count[b]
        for i in range(n):
            d = (kbuf[i] >> shift) & 255
            pos = count[d]
            dst[pos] = src[i]
            kdst[pos] = kbuf[i]
            count[d] = pos + 1
        src, dst = dst, src
        kbuf, kdst = kdst, kbuf
    return src


@njit(parallel=True, cache=True)
def _rects(order, means2d, extents, tile, ntx, nty, rect):
    """rect[k] = (x0, x1, y0, y1) tile range of Gaussian order[k] (empty when x0 > x1 or y0 > y1)."""
    for k in prange(order.shape[0]):
        g = order[k]
        mx = means2d[g, 0]
        my = means2d[g, 1]
        ex = extents[g, 0]
        ey = extents[g, 1]
        rect[k, 0] = max(0, int(np.floor((mx - ex) / tile)))
        rect[k, 1] = min(ntx - 1, int(np.floor((mx + ex) / tile)))
        rect[k, 2] = max(0, int(np.floor((my - ey) / tile)))
        rect[k, 3] = min(nty - 1, int(np.floor((my + ey) / tile)))


@njit(parallel=True, cache=True)
def _count(rect, ntx, nty, band_rows, counts):
    """counts[t] = number of Gaussians listed in tile t. Parallel over bands of tile rows."""
    n_bands = (nty + band_rows - 1) // band_rows
    for b in prange(n_bands):
        r0 = b * band_rows
        r1 = min(nty, r0 + band_rows) - 1
        for k in range(rect.shape[0]):
            y0 = max(rect[k, 2], r0)
            y1 = min(rect[k, 3], r1)
            for ty in range(y0, y1 + 1):
                for tx in range(rect[k, 0], rect[k, 1] + 1):
                    counts[ty * ntx + tx] += 1


@njit(parallel=True, cache=True)
def _fill(order, rect, ntx, nty, band_rows, offsets, gids):
    """Write Gaussian ids into each tile's segment in depth order (stable counting sort by tile)."""
    n_bands = (nty + band_rows - 1) // band_rows
    for b in prange(n_bands):
        r0 = b * band_rows
        r1 = min(nty, r0 + band_rows) - 1
        cursor = offsets[r0 * ntx : (r1 + 1) * ntx].copy()
        for k in range(rect.shape[0]):
            y0 = max(rect[k, 2], r0)
            y1 = min(rect[k, 3], r1)
            for ty in range(y0, y1 + 1):
                for tx in range(rect[k, 0], rect[k, 1] + 1):
                    c = (ty - r0) * ntx + tx
                    gids[cursor[c]] = order[k]
                    cursor[c] += 1


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

    Visible Gaussians have depth > near plane > 0, so their float32 bit patterns sort like their values."""
    idx = np.flatnonzero(visible).astype(np.int32)
    d = np.ascontiguousarray(depths, dtype=np.float32)
    if idx.size and not (d[idx] > 0).all():
        return idx[np.argsort(d[idx], kind="stable")]  # not reached with a positive near plane
    return _radix_argsort_positive(d, idx)


def bin_gaussians(
    means2d: np.ndarray,
    extents: np.ndarray,
    depths: np.ndarray,
    visible: np.ndarray,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
    reach: np.ndarray | None = None,
) -> TileBins:
    """Bin and sort. means2d, extents: float [N, 2] px; depths: float [N]; visible: bool [N]; reach: optional
    [N] vertical reach handed to the kernels (default: the 3-sigma extent, i.e. no row skipping beyond it)."""
    ntx = (width + tile_size - 1) // tile_size
    nty = (height + tile_size - 1) // tile_size
    order = depth_order(depths, visible)
    rect = np.empty((order.shape[0], 4), np.int32)
    _rects(order, means2d, extents, float(tile_size), ntx, nty, rect)
    n_threads = numba.get_num_threads()
    band_rows = max(1, -(-nty // (4 * n_threads)))
    counts = np.zeros(ntx * nty, np.int64)
    _count(rect, ntx, nty, band_rows, counts)
    offsets = np.zeros(ntx * nty + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    gids = np.empty(int(offsets[-1]), np.int32)
    _fill(order, rect, ntx, nty, band_rows, offsets, gids)
    if reach is None:
        reach = np.full(len(depths), np.inf, np.float32)
    return TileBins(offsets=offsets, gids=gids, tiles_x=ntx, tiles_y=nty, tile_size=tile_size,
                    reach=np.ascontiguousarray(reach, np.float32))
