"""Choosing cameras for a scene: automatic framing, orbits, named up axes, cameras from datasets."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .camera import Camera
from .errors import SplatupInputError
from .gaussians import Gaussians

if TYPE_CHECKING:  # pragma: no cover
    from .io.datasets import Dataset

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def parse_vector(text: str, name: str) -> tuple[float, float, float]:
    """'+y', '-z', 'x' or 'a,b,c' -> a 3-vector. Raises naming ``name`` on anything else."""
    t = text.strip().lower()
    if t.lstrip("+-") in _AXES and len(t) <= 2:
        sign = -1.0 if t.startswith("-") else 1.0
        return tuple(sign * c for c in _AXES[t.lstrip("+-")])  # type: ignore[return-value]
    try:
        vals = tuple(float(v) for v in t.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise SplatupInputError(f"{name}: expected an axis like '-y' or three numbers 'x,y,z', got {text!r}")
    return vals  # type: ignore[return-value]


def scene_frame(scene: Gaussians, quantile: float = 0.02) -> tuple[torch.Tensor, float]:
    """Robust centre (float64 [3]) and radius of a scene for framing a camera: the box between the ``quantile`` and
    ``1 - quantile`` per-axis quantiles of the means, its centre and half-diagonal. Floaters barely move either."""
    if len(scene) == 0:
        raise SplatupInputError("scene is empty: there is nothing to frame (give the camera explicitly)")
    m = scene.means.detach().double()
    if len(m) > 1:
        q = torch.quantile(m, torch.tensor([quantile, 1 - quantile], dtype=torch.float64), dim=0)
        lo, hi = q[0], q[1]
    else:
        lo = hi = m[0]
    centre = 0.5 * (lo + hi)
    radius = 0.5 * float(torch.linalg.vector_norm(hi - lo))
    if not radius > 0:
        radius = max(float(scene.scales.detach().max()), 1e-3)
    return centre, radius


def orbit_camera(
    scene: Gaussians,
    width: int,
    height: int,
    azimuth_deg: float = 30.0,
    elevation_deg: float = 20.0,
    distance: float | None = None,
    fov_x_deg: float = 50.0,
    up: tuple[float, float, float] = (0.0, -1.0, 0.0),
    target: tuple[float, float, float] | None = None,
) -> Camera:
    """Camera on an orbit around the scene; with ``distance=None`` the scene's robust sphere fills the view."""
    centre, radius = scene_frame(scene) if target is None or distance is None else (None, 0.0)
    tgt = torch.tensor(target, dtype=torch.float64) if target is not None else centre
    if distance is None:
        fov = math.radians(min(fov_x_deg, fov_x_deg * height / width))
        distance = 1.05 * radius / math.sin(fov / 2)
    return Camera.orbit(tgt, distance, azimuth_deg, elevation_deg, up=up, fov_x_deg=fov_x_deg, width=width,
                        height=height)


def dataset_camera(path: str | Path, view: int | str, split: str = "test", width: int | None = None) -> Camera:
    """Camera ``view`` (index or image name) of a dataset, optionally resized to ``width`` (aspect kept)."""
    from .io.datasets import load_dataset

    return select_view(load_dataset(path, split=split), view, split, width)


def select_view(ds: Dataset, view: int | str, split: str = "test", width: int | None = None) -> Camera:
    """Camera ``view`` (index, negative from the end, or image name with or without suffix) of a loaded dataset,
    optionally resized to ``width`` (aspect kept). Raises naming the dataset and the split."""
    if not ds.views:
        raise SplatupInputError(f"{ds.root}: the {split!r} split has no views")
    if isinstance(view, str) and not view.lstrip("-").isdigit():
        matches = [v for v in ds.views if v.name == view or Path(v.name).stem == view]
        if not matches:
            raise SplatupInputError(f"{ds.root}: no view named {view!r} in the {split!r} split")
        cam = matches[0].camera
    else:
        i = int(view)
        if not -len(ds.views) <= i < len(ds.views):
            raise SplatupInputError(f"{ds.root}: view {i} out of range, the {split!r} split has {len(ds.views)} views")
        cam = ds.views[i].camera
    return resize_to_width(cam, width)


def resize_to_width(cam: Camera, width: int | None) -> Camera:
    """``cam`` at ``width`` pixels wide with its aspect ratio kept (unchanged for ``width=None``)."""
    if width is not None and width != cam.width:
        cam = cam.resized(width, max(1, round(cam.height * width / cam.width)))
    return cam
