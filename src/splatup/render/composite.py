"""Forward compositing of depth-sorted 2D Gaussians in tiles: colour, alpha, depth and image derivatives.

One kernel body (:func:`_make_forward`), specialised at compile time into three variants (:mod:`.lanes`):
``PLAIN`` (colour, alpha, expected depth), ``FIRST`` (also dC/dx and dC/dy, with d2C/dxdy written as 0) and
``SECOND`` (also d2C/dxdy). The rules and the loop shape are those of :mod:`.lanes`; the colour is the same bit
for bit in every variant.

Kernels take small named tuples of numpy arrays (zero-copy views of torch tensors): :class:`Splats`,
:class:`TileLists`, :class:`Frame` and :class:`Images`; ``prange`` runs over N_CHUNKS chunks of tiles dealt
round-robin, each with its own scratch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ._kernel_cache import kernel, variant_named
from .lanes import (
    FIRST,
    LANES,
    N_CHUNKS,
    N_OUT,
    NBLK,
    NPACK,
    PLAIN,
    SECOND,
    TILE,
    block_origin,
    bucket_blocks,
    ctz,
    done,
    entry,
    fill_tile,
    gather_tile,
    initial_state,
    lane_centres,
    max_list,
    pack,
    padded,
    row_pattern,
    step,
    tile_span,
    write_block,
)


class Splats(NamedTuple):
    """Screen-space Gaussians (float32, C-contiguous): means2d [N, 2] px, conics [N, 3] (a, b, c) px^-2,
    opacities [N], colors [N, 3], depths [N], reach [N] (vertical reach in px, see tiles.contribution_extents)."""

    means2d: np.ndarray
    conics: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray
    depths: np.ndarray
    reach: np.ndarray


class TileLists(NamedTuple):
    """Depth-sorted per-tile lists (tiles.TileBins): tile t holds gids[offsets[t]:offsets[t + 1]]."""

    offsets: np.ndarray  # int64 [n_tiles + 1]
    gids: np.ndarray  # int32 [M]
    tiles_x: int


class Frame(NamedTuple):
    """Image size in pixels and the background (float32 [3], composited as T_final bg)."""

    width: int
    height: int
    background: np.ndarray


class Images(NamedTuple):
    """Outputs (float32, C-contiguous): color [H, W, 3], alpha [H, W] (1 - T_final), depth [H, W] (expected depth,
    0 where alpha = 0), dx, dy, dxy [H, W, 3] (dC/dx, dC/dy, d2C/dxdy in this image's pixel units; empty [0, 0, 3]
    arrays in the plain variant)."""

    color: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    dxy: np.ndarray


def _make_forward(variant: int):
    """The forward kernel of one variant (PLAIN, FIRST or SECOND; a constant of the compiled code)."""

    @njit
    @variant_named(variant)
    def composite_tile(t, G, splats, lists, frame, images, P, Q, words, scratch, bg_row, zero_row):
        # one tile, outside the parallel loop's body: numba's parfor analysis cannot type the vector tuples
        width = frame.width
        height = frame.height
        s, e, tx, ty = tile_span(t, lists.offsets, lists.tiles_x)
        if e == s:  # no Gaussian: background, alpha 0, depth 0, derivatives 0
            fill_tile(images.color.reshape(images.color.size), 3, tx, ty, width, height, bg_row)
            fill_tile(images.alpha.reshape(images.alpha.size), 1, tx, ty, width, height, zero_row)
            fill_tile(images.depth.reshape(images.depth.size), 1, tx, ty, width, height, zero_row)
            if variant != PLAIN:
                fill_tile(images.dx.reshape(images.dx.size), 3, tx, ty, width, height, zero_row)
                fill_tile(images.dy.reshape(images.dy.size), 3, tx, ty, width, height, zero_row)
                fill_tile(images.dxy.reshape(images.dxy.size), 3, tx, ty, width, height, zero_row)
            return
        gather_tile(P, Q, s, e, lists.gids, G)
        bucket_blocks(Q, e - s, tx, ty, words)
        nw = (e - s + 63) // 64
        for blk in range(NBLK):
            x0, y0 = block_origin(blk, tx, ty)
            if x0 >= width or y0 >= height:
                continue
            fx, fy = lane_centres(x0, y0)
            S = initial_state()
            finished = False
            for w in range(nw):  # the block's entries in depth order: the set bits of its bitset
                bits = words[blk, w]
                while bits != 0:
                    S, _ = step(S, entry(P, 64 * w + ctz(bits)), fx, fy, variant)
                    bits &= bits - 1
                    if done(S):
                        finished = True
                        break
                if finished:
                    break
            write_block(S, x0, y0, frame, images, scratch, variant)

    @kernel(parallel=True)
    @variant_named(variant)
    def forward(splats, lists, frame, images):
        n_tiles = lists.offsets.shape[0] - 1
        maxlen = max_list(lists.offsets)
        n = splats.opacities.shape[0]
        G = np.empty((n, NPACK), np.float32)
        for i in prange(n):
            pack(G, i, splats)
        bg_row = row_pattern(frame.background, 3)  # read-only tile rows for the empty tiles, shared by the chunks
        zero_row = np.zeros(TILE * 3, np.float32)
        for chunk in prange(N_CHUNKS):
            P = np.empty((maxlen, NPACK), np.float32)
            Q = np.empty((7, padded(maxlen)), np.float32)
            words = np.empty((NBLK, (maxlen + 63) // 64), np.int64)
            scratch = np.empty((N_OUT, LANES), np.float32)
            for t in range(chunk, n_tiles, N_CHUNKS):
                composite_tile(t, G, splats, lists, frame, images, P, Q, words, scratch, bg_row, zero_row)

    return forward


_FORWARD = {v: _make_forward(v) for v in (PLAIN, FIRST, SECOND)}


def composite_forward(splats: Splats, lists: TileLists, frame: Frame, images: Images, variant: int) -> None:
    """Composite ``splats`` over ``lists`` into ``images`` (every pixel written). ``variant``: PLAIN, FIRST or
    SECOND; the derivative images of ``images`` must be [H, W, 3] for FIRST and SECOND."""
    _FORWARD[variant](splats, lists, frame, images)


__all__ = ["FIRST", "PLAIN", "SECOND", "Frame", "Images", "Splats", "TileLists", "composite_forward"]
