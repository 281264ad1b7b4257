"""Tile binning and depth sorting (numba).

The image is cut into ``TILE_SIZE`` x ``TILE_SIZE`` pixel tiles, row-major, ``tiles_x = ceil(W / 16)``.
A visible Gaussian with 2D mean m and 3-sigma half-extents e is listed in every tile (tx, ty) with

    max(0, floor((m_x - e_x) / 16)) <= tx <= min(tiles_x - 1, floor((m_x + e_x) / 16))

and likewise in y. It is composited at exactly the pixels of those tiles (the reference twin applies the
same rule per pixel). Within a tile the list is sorted front to back by camera depth, ties broken by the
Gaussian's index. Depths are sorted once; a stable counting sort by tile then keeps that order, so the
whole step is O(N log N + M) for N Gaussians and M tile-Gaussian pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

TILE_SIZE = 16


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

    @property
    def n_pairs(self) -> int:
        return int(self.gids.shape[0])


@njit(inline="always")
def _rect(mx, my, ex, ey, tile, ntx, nty):
    x0 = max(0, int(np.floor((mx - ex) / tile)))
    x1 = min(ntx - 1, int(np.floor((mx + ex) / tile)))
    y0 = max(0, int(np.floor((my - ey) / tile)))
    y1 = min(nty - 1, int(np.floor((my + ey) / tile)))
    return x0, x1, y0, y1


@njit(parallel=True, cache=True)
def _count(order, means2d, extents, tile, ntx, nty, band_rows, counts):
    """counts[t] = number of Gaussians listed in tile t. Parallel over bands of tile rows."""
    n_bands = (nty + band_rows - 1) // band_rows
    for b in prange(n_bands):
        r0 = b * band_rows
        r1 = min(nty, r0 + band_rows) - 1
        for k in range(order.shape[0]):
            g = order[k]
            x0, x1, y0, y1 = _rect(means2d[g, 0], means2d[g, 1], extents[g, 0], extents[g, 1], tile, ntx, nty)
            y0 = max(y0, r0)
            y1 = min(y1, r1)
            for ty in range(y0, y1 + 1):
                for tx in range(x0, x1 + 1):
                    counts[ty * ntx + tx] += 1


@njit(parallel=True, cache=True)
def _fill(order, means2d, extents, tile, ntx, nty, band_rows, offsets, gids):
    """Write Gaussian ids into each tile's segment in depth order (stable counting sort)."""
    n_bands = (nty + band_rows - 1) // band_rows
    for b in prange(n_bands):
        r0 = b * band_rows
        r1 = min(nty, r0 + band_rows) - 1
        cursor = offsets[r0 * ntx : (r1 + 1) * ntx].copy()
        for k in range(order.shape[0]):
            g = order[k]
            x0, x1, y0, y1 = _rect(means2d[g, 0], means2d[g, 1], extents[g, 0], extents[g, 1], tile, ntx, nty)
            y0 = max(y0, r0)
            y1 = min(y1, r1)
            for ty in range(y0, y1 + 1):
                for tx in range(x0, x1 + 1):
                    c = (ty - r0) * ntx + tx
                    gids[cursor[c]] = g
                    cursor[c] += 1


def depth_order(depths: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Indices of the visible Gaussians sorted front to back (stable: ties keep index order). int32."""
    idx = np.flatnonzero(visible).astype(np.int32)
    return idx[np.argsort(depths[idx], kind="stable")]


def bin_gaussians(
    means2d: np.ndarray,
    extents: np.ndarray,
    depths: np.ndarray,
    visible: np.ndarray,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
) -> TileBins:
    """Bin and sort. means2d, extents: float [N, 2] px; depths: float [N]; visible: bool [N]."""
    ntx = (width + tile_size - 1) // tile_size
    nty = (height + tile_size - 1) // tile_size
    order = depth_order(depths, visible)
    n_threads = numba.get_num_threads()
    band_rows = max(1, -(-nty // (4 * n_threads)))
    counts = np.zeros(ntx * nty, np.int64)
    _count(order, means2d, extents, float(tile_size), ntx, nty, band_rows, counts)
    offsets = np.zeros(ntx * nty + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    gids = np.empty(int(offsets[-1]), np.int32)
    _fill(order, means2d, extents, float(tile_size), ntx, nty, band_rows, offsets, gids)
    return TileBins(offsets=offsets, gids=gids, tiles_x=ntx, tiles_y=nty, tile_size=tile_size)
