"""Initial Gaussians for training: from sparse points (COLMAP) or random points (NeRF-synthetic), as INRIA 3DGS."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import SplatupInputError
from ..gaussians import Gaussians, rgb_to_sh

INITIAL_OPACITY = 0.1


def nearest_neighbour_scale(points: torch.Tensor, k: int = 3) -> torch.Tensor:
    """[P] sqrt of the mean squared distance of each point to its k nearest neighbours (3DGS's distCUDA2), floored
    at sqrt(1e-7). Uses a k-d tree (scipy)."""
    from scipy.spatial import cKDTree

    p = points.detach().double().numpy()
    if len(p) < 2:
        return torch.full((len(p),), 0.01, dtype=torch.float32)
    kk = min(k, len(p) - 1)
    d, _ = cKDTree(p).query(p, k=kk + 1)
    d2 = (d[:, 1:] ** 2).mean(axis=1)
    return torch.from_numpy(np.sqrt(np.maximum(d2, 1e-7))).float()


def gaussians_from_points(points: torch.Tensor, colors: torch.Tensor, sh_degree: int = 3) -> Gaussians:
    """Isotropic Gaussians at ``points`` [P, 3] with colours [P, 3] in [0, 1]: scale = nearest-neighbour distance,
    identity rotation, opacity 0.1, SH DC from the colour and higher coefficients 0."""
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise SplatupInputError(f"initial points must be a non-empty [P, 3] array, got {tuple(points.shape)}")
    if not torch.isfinite(points).all():
        raise SplatupInputError("initial points contain NaN or Inf")
    n = len(points)
    s = nearest_neighbour_scale(points)
    sh = torch.zeros(n, (sh_degree + 1) ** 2, 3)
    sh[:, 0] = rgb_to_sh(colors.float())
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    logit = math.log(INITIAL_OPACITY / (1 - INITIAL_OPACITY))
    return Gaussians(means=points.float().clone(), quats=quats, log_scales=torch.log(s)[:, None].repeat(1, 3),
                     opacity_logits=torch.full((n,), logit), sh=sh)


def random_gaussians(n: int, half_extent: float = 1.3, sh_degree: int = 3, generator: torch.Generator | None = None,
                     center: torch.Tensor | None = None) -> Gaussians:
    """3DGS's NeRF-synthetic initialisation: ``n`` points uniform in a cube of half-size ``half_extent`` (around
    ``center``), SH DC uniform in [0, 1/255) (near-grey colours)."""
    pts = (torch.rand(n, 3, generator=generator, dtype=torch.float64) * 2 - 1) * half_extent
    if center is not None:
        pts = pts + center.double()
    dc = torch.rand(n, 3, generator=generator) / 255.0
    g = gaussians_from_points(pts.float(), torch.zeros(n, 3), sh_degree)
    g.sh[:, 0] = dc
    return g
