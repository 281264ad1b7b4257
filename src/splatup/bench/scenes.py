"""Real scenes and cameras for benchmarks (and tests), built from the files in ``../shared/data``.

- ``plant``: plant.splat, a trained 3DGS of a real capture (113,648 Gaussians), seen on an orbit;
- ``spot100k``: spot_100k.splat, Keenan Crane's Spot as 100,000 Gaussians (mesh2splat), seen on an orbit;
- ``garden``: gsplat's garden fixture, 138,766 real COLMAP points as small isotropic Gaussians (the recipe of
  gsplat's own tests: it holds no trained Gaussians), seen from its first real camera;
- ``donut``: gshairlod_donut/fused.ply, a trained 3DGS in INRIA .ply format (45,624 Gaussians), seen on an orbit;
- ``spot10k``: spot_10k.splat, the bundled demo scene (10,000 Gaussians), seen on an orbit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..camera import Camera
from ..gaussians import Gaussians
from ..io import load_scene
from ..viewpoints import orbit_camera

SCENES = ("plant", "spot100k", "garden", "donut", "spot10k")
#: scenes seen on the benchmarks' orbit (azimuth 30, elevation 20): their files under ../shared/data
ORBIT_SCENES = {"plant": "padilla_splats/plant/plant.splat", "spot100k": "padilla_splats/spot/spot_100k.splat",
                "donut": "gshairlod_donut/fused.ply", "spot10k": "padilla_splats/spot/spot_10k.splat"}


def garden_scene(shared_data: Path, scale_factor: float = 0.25, seed: int = 0) -> tuple[Gaussians, list[Camera]]:
    """gsplat's garden points as isotropic Gaussians (sigma log-uniform in [0.005, 0.03] units, opacity uniform in
    [0.3, 0.95], colour from the points; seeded) and its three real cameras scaled by ``scale_factor``."""
    z = np.load(Path(shared_data) / "gsplat_test_garden" / "test_garden.npz")
    means = torch.from_numpy(z["means3d"].astype(np.float64))
    colors = torch.from_numpy(z["colors"].astype(np.float64) / 255.0)
    n = len(means)
    g = torch.Generator().manual_seed(seed)
    sig = torch.exp(math.log(0.005) + (math.log(0.03) - math.log(0.005)) * torch.rand(n, 1, generator=g,
                                                                                        dtype=torch.float64))
    quats = torch.zeros(n, 4, dtype=torch.float64)
    quats[:, 0] = 1.0
    opac = 0.3 + 0.65 * torch.rand(n, generator=g, dtype=torch.float64)
    scene = Gaussians.from_activated(means, quats, sig.expand(n, 3), opac, colors=colors).to(torch.float32)
    w, h = int(z["width"]), int(z["height"])
    cams = [Camera(torch.from_numpy(z["viewmats"][i].astype(np.float64)),
                   torch.from_numpy(z["Ks"][i].astype(np.float64)), w, h).scaled(scale_factor)
            for i in range(len(z["viewmats"]))]
    return scene, cams


def with_size(cam: Camera, width: int, height: int) -> Camera:
    """``cam``'s pose and horizontal field of view at ``width`` x ``height`` pixels, principal point centred."""
    fx = cam.fx * width / cam.width
    K = torch.tensor([[fx, 0.0, width / 2], [0.0, fx, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Camera(cam.world_to_camera, K, width, height)


def benchmark_view(name: str, shared_data: Path, width: int, height: int) -> tuple[Gaussians, Camera]:
    """Scene ``name`` (one of SCENES) and the benchmarks' camera at ``width`` x ``height``."""
    data = Path(shared_data)
    if name in ORBIT_SCENES:
        scene = load_scene(data / ORBIT_SCENES[name])
        return scene, orbit_camera(scene, width, height, azimuth_deg=30.0, elevation_deg=20.0)
    if name == "garden":
        scene, cams = garden_scene(data, scale_factor=1.0)
        return scene, with_size(cams[0], width, height)
    raise ValueError(f"benchmark_view: unknown scene {name!r}; expected one of {SCENES}")
