"""Reference tile rule, depth order and opacity-aware binning data (twin of render/tiles.py's rules).

A Gaussian with 2D mean m and half-extents e is listed in the tiles (tx, ty) with
floor((m_x - e_x) / tile) <= tx <= floor((m_x + e_x) / tile), clamped to the grid (likewise in y); the
depth order is front to back with ties in index order. The opacity-aware binning data say where a Gaussian
can reach alpha >= 1/255 at all: o exp(-q/2) >= 1/255 needs q <= k^2 = 2 ln(255 o), so the box of k sigma
(capped at 3 sigma, both with a 0.1 % margin) holds every pixel it can change. The fast binning lists each
Gaussian only in those tiles; images do not depend on it, the tile-Gaussian pair count does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..render.project import Projected

TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0
REACH_MARGIN = 1e-3  # relative margin of the opacity-aware extents (render/tiles.py)


def tile_rects(means2d: torch.Tensor, extents: torch.Tensor, width: int, height: int,
               tile_size: int = TILE_SIZE) -> torch.Tensor:
    """[N, 4] int64 (tx0, tx1, ty0, ty1): inclusive tile ranges of boxes mean +- extents (empty if tx0 > tx1).

    Computed in the dtype of the difference mean -+ extent (the exact division by the tile size does not
    round), floored, and only then clamped to [0, tiles] and [-1, tiles - 1]: no integer overflow for huge
    extents.
    """
    ntx, nty = -(-width // tile_size), -(-height // tile_size)
    m, e = means2d.detach(), extents.detach()
    lo = torch.floor((m - e) / tile_size)
    hi = torch.floor((m + e) / tile_size)
    tx0 = lo[:, 0].clamp(min=0, max=ntx)
    ty0 = lo[:, 1].clamp(min=0, max=nty)
    tx1 = hi[:, 0].clamp(min=-1, max=ntx - 1)
    ty1 = hi[:, 1].clamp(min=-1, max=nty - 1)
    return torch.stack([tx0, tx1, ty0, ty1], dim=-1).to(torch.int64)


def tile_ranges(proj: Projected, width: int, height: int, tile_size: int = TILE_SIZE) -> torch.Tensor:
    """[N, 4] int64 tile ranges of the 3-sigma boxes (``proj.extents``): the tiles whose pixels see a
    Gaussian. See :func:`tile_rects`."""
    return tile_rects(proj.means2d, proj.extents, width, height, tile_size)


def depth_order(proj: Projected) -> torch.Tensor:
    """Indices of the visible Gaussians, front to back, ties in index order. int64 [N_visible]."""
    idx = torch.nonzero(proj.visible, as_tuple=False).flatten()
    return idx[torch.sort(proj.depths.detach()[idx], stable=True).indices]


class Bins(NamedTuple):
    """Per-Gaussian tile lists in implicit form: ``order`` [V] int64 the visible Gaussians front to back,
    ``ranges`` [V, 4] int64 their 3-sigma tile ranges (:func:`tile_ranges`) in that order. Tile t's list is
    order[member] for the rows whose range contains t."""

    order: torch.Tensor
    ranges: torch.Tensor


def bin_gaussians(proj: Projected, width: int, height: int, tile_size: int = TILE_SIZE) -> Bins:
    """Depth order and tile ranges of ``proj`` on a ``width`` x ``height`` image (the compositing's lists)."""
    order = depth_order(proj)
    return Bins(order, tile_ranges(proj, width, height, tile_size)[order])


def binning_data(means2d: torch.Tensor, opacities: torch.Tensor, extents: torch.Tensor, visible: torch.Tensor,
                 width: int, height: int, tile_size: int = TILE_SIZE
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The opacity-aware binning data of :class:`~splatup.render.project.Projected`, from its other fields.

    Returns bin_extents [N, 2] float32 px (min(k, 3) sigma per axis, sigma = extents / 3), reach [N] float32 px
    (k sigma_y, not capped), alive [N] bool (visible and o > (1/255)(1 - margin)) and tile_rects [N, 4] int32
    (the tiles of the bin_extents box; (0, -1, 0, -1) for Gaussians not alive), where
    k = sqrt(2 ln(o / ((1/255)(1 - margin)))) (1 + margin), 0 below that opacity (culled rows included).
    Evaluated in float64, stored as the fast path stores them; not differentiable.
    """
    o = opacities.detach().to(torch.float64)
    threshold = ALPHA_MIN * (1.0 - REACH_MARGIN)
    able = o > threshold  # k^2 > 0
    alive = visible & able
    k = torch.sqrt(2.0 * torch.log(torch.where(able, o, torch.full_like(o, threshold)) / threshold))
    k = k * (1.0 + REACH_MARGIN)
    sigma = extents.detach().to(torch.float64) / 3.0
    cap = 3.0 * (1.0 + REACH_MARGIN)
    bin_extents = (sigma * torch.clamp(k, max=cap)[:, None]).to(torch.float32)
    reach = (sigma[:, 1] * k).to(torch.float32)
    # the box in the dtype of the means (float32 extents promoted), as the fast binning computes it
    rects = tile_rects(means2d, bin_extents.to(torch.promote_types(means2d.dtype, torch.float32)), width, height,
                       tile_size)
    empty = torch.tensor([0, -1, 0, -1], dtype=torch.int64)
    rects = torch.where(alive[:, None], rects, empty)
    return bin_extents, reach, alive, rects.to(torch.int32)


def pair_count(rects: torch.Tensor) -> int:
    """Number of (tile, Gaussian) pairs in the tile ranges ``rects`` [N, 4] (empty ranges count 0)."""
    r = rects.to(torch.int64)
    w = (r[:, 1] - r[:, 0] + 1).clamp_min(0)
    h = (r[:, 3] - r[:, 2] + 1).clamp_min(0)
    return int((w * h).sum())


__all__ = ["Bins", "bin_gaussians", "binning_data", "depth_order", "pair_count", "tile_ranges", "tile_rects"]
