"""Real scenes and cameras for the reference-vs-fast tests (importable as ``from real_views import ...``).

- plant.splat (trained 3DGS, 113k), spot_10k.splat (mesh2splat, 10k), donut fused.ply (trained, 45k): objects
  about 0.3-1 units big with up axis -y, viewed from orbits around their median centre;
- spot again, centred at the origin and scaled to ~2 units, seen by the real NeRF-synthetic mic test cameras
  (which look at the origin from ~4 units);
- gsplat's garden fixture: 138k real COLMAP points as small isotropic Gaussians, with its real cameras.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import torch

import splatup as su
from splatup.camera import opengl_c2w_to_w2c

SCENE_FILES = {
    "plant": "padilla_splats/plant/plant.splat",
    "spot": "padilla_splats/spot/spot_10k.splat",
    "donut": "gshairlod_donut/fused.ply",
}
# orbit distance per object (scene units) so that it fills a 50 degree view
ORBIT_DISTANCE = {"plant": 1.0, "spot": 2.0, "donut": 0.5}


@lru_cache(maxsize=8)
def _load(path: str) -> su.Gaussians:
    return su.load_scene(path)


def load(shared_data: Path, name: str) -> su.Gaussians:
    """One of the real scenes (float32), loaded once per session."""
    return _load(str(shared_data / SCENE_FILES[name]))


def orbit_camera(scene: su.Gaussians, name: str, width: int, height: int, azimuth: float = 30.0,
                 elevation: float = 20.0) -> su.Camera:
    """Camera on an orbit around the scene's median centre, up = -y, 50 degree horizontal field of view."""
    centre = scene.means.detach().double().median(0).values
    return su.Camera.orbit(centre, ORBIT_DISTANCE[name], azimuth, elevation, up=(0.0, -1.0, 0.0), fov_x_deg=50.0,
                           width=width, height=height)


def centred_scaled(scene: su.Gaussians, size: float = 2.0) -> su.Gaussians:
    """The scene translated so that its median is at the origin and scaled so its 5-95 % box is ``size`` wide.
    A uniform scale and a translation leave rotations unchanged: means scale, log-scales shift."""
    m = scene.means.detach().double()
    centre = m.median(0).values
    extent = float((torch.quantile(m, 0.95, dim=0) - torch.quantile(m, 0.05, dim=0)).max())
    k = size / extent
    dt = scene.dtype
    return su.Gaussians(
        means=((m - centre) * k).to(dt),
        quats=scene.quats.clone(),
        log_scales=scene.log_scales + math.log(k),
        opacity_logits=scene.opacity_logits.clone(),
        sh=scene.sh.clone(),
    )


def mic_cameras(shared_data: Path, indices: tuple[int, ...], width: int) -> list[su.Camera]:
    """Real NeRF-synthetic mic test cameras (800x800, OpenGL camera-to-world) resized to ``width`` square."""
    meta = json.loads((shared_data / "nerf_synthetic_mic" / "transforms_test.json").read_text())
    f = 0.5 * 800 / math.tan(0.5 * meta["camera_angle_x"])
    K = torch.tensor([[f, 0.0, 400.0], [0.0, f, 400.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    cams = []
    for i in indices:
        w2c = opengl_c2w_to_w2c(meta["frames"][i]["transform_matrix"])
        cams.append(su.Camera(w2c, K, 800, 800).resized(width, width))
    return cams


def garden(shared_data: Path, scale_factor: float = 0.25, seed: int = 0) -> tuple[su.Gaussians, list[su.Camera]]:
    """gsplat's garden points as isotropic Gaussians and its three real cameras scaled by ``scale_factor``
    (:func:`splatup.bench.scenes.garden_scene`)."""
    from splatup.bench.scenes import garden_scene

    return garden_scene(shared_data, scale_factor, seed)
