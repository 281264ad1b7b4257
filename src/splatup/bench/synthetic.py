"""The kernel bake-off's synthetic benchmark scene, as 2D Gaussians and as a 3D scene that projects onto them.

The bake-off (research/kernels.md) used N = 100,000 2D Gaussians in a 640x480 image: means uniform over the
image, covariance R(theta) diag(s1^2, s2^2) R^T with s1, s2 ~ U(0.5, 8) px and theta ~ U(0, pi), opacity
~ U(0.05, 0.99), RGB ~ U(0, 1), depth ~ U(0, 1), numpy ``default_rng(seed)`` drawn in that order.
"""

from __future__ import annotations

import numpy as np
import torch

from ..camera import Camera
from ..gaussians import Gaussians


def bakeoff_gaussians_2d(n: int = 100_000, width: int = 640, height: int = 480, seed: int = 0) -> dict:
    """The bake-off's 2D scene: mean [n,2], sigmas [n,2], theta [n], conic [n,3] (no dilation), opacity [n],
    color [n,3], depth [n] (float64 numpy)."""
    rng = np.random.default_rng(seed)
    mean = np.stack([rng.uniform(0, width, n), rng.uniform(0, height, n)], 1)
    s1 = rng.uniform(0.5, 8.0, n)
    s2 = rng.uniform(0.5, 8.0, n)
    th = rng.uniform(0, np.pi, n)
    c, s = np.cos(th), np.sin(th)
    sxx = c * c * s1 * s1 + s * s * s2 * s2
    syy = s * s * s1 * s1 + c * c * s2 * s2
    sxy = c * s * (s1 * s1 - s2 * s2)
    det = sxx * syy - sxy * sxy
    conic = np.stack([syy / det, -sxy / det, sxx / det], 1)
    opacity = rng.uniform(0.05, 0.99, n)
    color = rng.uniform(0, 1, (n, 3))
    depth = rng.uniform(0, 1, n)
    return dict(mean=mean, sigmas=np.stack([s1, s2], 1), theta=th, cov=np.stack([sxx, sxy, syy], 1), conic=conic,
                opacity=opacity, color=color, depth=depth)


def bakeoff_scene_3d(n: int = 100_000, width: int = 640, height: int = 480, seed: int = 0,
                     focal: float = 500.0) -> tuple[Gaussians, Camera]:
    """A 3D scene and camera whose projection reproduces the bake-off's 2D Gaussians: flat Gaussians facing a
    camera at the origin (looking down +z) at depth 1 + depth_2d, sized so that their screen-space sigmas are
    the 2D ones (up to the tiny perspective skew). The pixel-centre shift of +0.5 is applied to the means."""
    d = bakeoff_gaussians_2d(n, width, height, seed)
    cam = Camera(torch.eye(4, dtype=torch.float64),
                 torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=torch.float64),
                 width, height)
    z = 1.0 + d["depth"]
    px = d["mean"][:, 0] + 0.5
    py = d["mean"][:, 1] + 0.5
    means = np.stack([(px - width / 2) * z / focal, (py - height / 2) * z / focal, z], 1)
    scales = np.stack([d["sigmas"][:, 0] * z / focal, d["sigmas"][:, 1] * z / focal, 1e-6 * z], 1)
    half = d["theta"] / 2  # rotation by theta about the camera's z axis
    quats = np.stack([np.cos(half), np.zeros(n), np.zeros(n), np.sin(half)], 1)
    scene = Gaussians.from_activated(
        torch.from_numpy(means), torch.from_numpy(quats), torch.from_numpy(scales),
        torch.from_numpy(d["opacity"]), colors=torch.from_numpy(d["color"]),
    ).to(torch.float32)
    return scene, cam
