"""Random scenes and cameras for tests (importable as ``from scenes import ...``)."""

from __future__ import annotations

import math

import torch

import splatup as su
from splatup.gaussians import rgb_to_sh


def front_camera(width: int = 64, height: int = 48, focal: float | None = None) -> su.Camera:
    """Camera at the origin looking down +z (OpenCV axes), centred principal point."""
    f = focal if focal is not None else 1.2 * width
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return su.Camera(torch.eye(4, dtype=torch.float64), K, width, height)


def random_scene(
    n: int,
    cam: su.Camera,
    seed: int = 0,
    sh_degree: int = 0,
    depth: tuple[float, float] = (2.0, 4.0),
    sigma_px: tuple[float, float] = (0.7, 6.0),
    opacity: tuple[float, float] = (0.05, 0.99),
    margin_px: float = 8.0,
    dtype: torch.dtype = torch.float32,
) -> su.Gaussians:
    """``n`` Gaussians in front of ``cam`` (which must look down +z from the origin): centres spread over
    the image (plus a margin), anisotropic with screen-space sigmas roughly in ``sigma_px``, random
    rotations, opacities and SH coefficients of ``sh_degree``."""
    g = torch.Generator().manual_seed(seed)

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)

    z = u(*depth, n)
    px = u(-margin_px, cam.width + margin_px, n)
    py = u(-margin_px, cam.height + margin_px, n)
    x = (px - cam.cx) * z / cam.fx
    y = (py - cam.cy) * z / cam.fy
    means = torch.stack([x, y, z], 1)
    log_sig = u(math.log(sigma_px[0]), math.log(sigma_px[1]), n, 3)
    scales = torch.exp(log_sig) * z[:, None] / cam.fx
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    op = u(*opacity, n)
    k = (sh_degree + 1) ** 2
    sh = torch.zeros(n, k, 3, dtype=torch.float64)
    sh[:, 0] = rgb_to_sh(u(0.0, 1.0, n, 3))
    if k > 1:
        sh[:, 1:] = 0.3 * torch.randn(n, k - 1, 3, generator=g, dtype=torch.float64)
    return su.Gaussians.from_activated(means, quats, scales, op, sh=sh).to(dtype)
