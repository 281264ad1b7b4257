"""Choosing cameras for a scene: automatic framing, orbits, named up axes, cameras from datasets, and the estimate of
a scene's up axis (:func:`estimate_up`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
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


def orbit_path(
    scene: Gaussians,
    frames: int,
    width: int,
    height: int,
    azimuth_deg: float = 30.0,
    elevation_deg: float = 20.0,
    distance: float | None = None,
    fov_x_deg: float = 50.0,
    up: tuple[float, float, float] = (0.0, -1.0, 0.0),
    target: tuple[float, float, float] | None = None,
) -> list[Camera]:
    """``frames`` cameras one full turn around the scene: :func:`orbit_camera` at azimuth
    ``azimuth_deg + 360 i / frames``, i = 0 .. frames - 1 (the last one a step short of the first, so the path loops
    without a repeated frame). The scene is framed once for the whole path."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise SplatupInputError(f"orbit_path: frames must be a positive integer, got {frames!r}")
    centre, radius = scene_frame(scene) if target is None or distance is None else (None, 0.0)
    tgt = tuple(target) if target is not None else tuple(centre.tolist())
    if distance is None:
        fov = math.radians(min(fov_x_deg, fov_x_deg * height / width))
        distance = 1.05 * radius / math.sin(fov / 2)
    return [Camera.orbit(tgt, distance, azimuth_deg + 360.0 * i / frames, elevation_deg, up=up, fov_x_deg=fov_x_deg,
                         width=width, height=height) for i in range(frames)]


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


# ---------------------------------------------------------------------------------------------------- up axis
_SIGNED_AXES = {f"{s}{a}": torch.tensor(v, dtype=torch.float64) * (1.0 if s == "+" else -1.0)
                for a, v in _AXES.items() for s in "+-"}
_SUPPORT_SAMPLE = 20_000  # Gaussians the support and shading cues look at (a fixed random subset)
_SUPPORT_SLAB = 0.02  # slab thickness above the support plane, in units of the scene radius
_SUPPORT_FLOOR = 0.002  # the support plane sits at this quantile of the heights (floaters below do not count)
_FLAT = 0.5  # a Gaussian is "flat" when its smallest scale is below this fraction of the middle one
_DECISIVE_END_RATIO = 1.5  # support score of one end of the axis over the other's that settles the sign
_AXIS_AGREEMENT = 0.5  # |cos| between the support and shading directions above which they share an axis (60 deg)
_UNCERTAINTY_DEG = {"cameras": 5.0, "support": 5.0, "shading": 45.0, "default": 0.0}


@dataclass(frozen=True)
class UpEstimate:
    """How :func:`estimate_up` chose the up axis.

    Attributes:
        up: [3] float64 unit vector, the answer (the same vector estimate_up returns).
        raw: [3] float64 unit vector before snapping to a coordinate axis; it turns with the scene (a rotated scene
            gives the rotated ``raw``).
        source: "cameras" (the dataset cameras' upright pose), "support" (the plane the scene stands on),
            "shading" (the light comes from above), or "default" (too few Gaussians: the 3DGS convention -y).
        confidence: "high" (cameras; or the support plane confirmed by the shading), "medium" (support plane
            alone), "low" (shading alone, or the default).
        uncertainty_deg: how far from the truth ``raw`` may be for this source; ``up`` snaps to a coordinate axis
            that is at most this far from ``raw`` (files are usually written axis-aligned).
        snapped_to: the axis ``up`` snapped to ('+z', '-y', ...) or None.
        cues: per-cue details for reports: direction (list of 3 floats) and strength of each cue computed.
    """

    up: torch.Tensor
    raw: torch.Tensor
    source: str
    confidence: str
    uncertainty_deg: float
    snapped_to: str | None
    cues: dict[str, dict[str, object]] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for people: the axis, where it came from, how sure."""
        v = ", ".join(f"{x:.3f}" for x in self.raw.tolist())
        axis = f"{self.snapped_to} (estimate {v})" if self.snapped_to else f"({v})"
        return f"{axis} from the {_SOURCE_WORDS[self.source]}; confidence {self.confidence}"


_SOURCE_WORDS = {"cameras": "dataset cameras", "support": "support plane", "shading": "shading (light from above)",
                 "default": "3DGS convention (too few Gaussians to estimate)"}


def estimate_up(scene: Gaussians | None, cameras: Sequence[Camera] | None = None) -> tuple[torch.Tensor, UpEstimate]:
    """Estimate the world up axis of a scene, from its capture cameras when given, else from its Gaussians.

    - Cameras: people hold cameras upright, so each camera's x axis (image right) is horizontal. The up axis is
      the direction most orthogonal to all the cameras' x axes (the smallest right singular vector of the stacked
      x axes), signed like the mean of their image-up axes; when the cameras all look the same way (their x axes
      barely differ), the mean image-up axis made orthogonal to the mean x axis.
    - Gaussians (no cameras): three cues. *Support*: a scene stands on a ground and an object on a flat base, so up
      is the direction u whose lowest slab (the Gaussians within 2 % of the scene radius above the 0.2 % height
      quantile along u) holds the most Gaussians lying flat in that plane (weight opacity x |n.u|^4 for a flat
      Gaussian with normal n, opacity / 5 = the mean of |n.u|^4 over random normals for a round one); searched
      over 1000 directions and refined. *Shading*: lit from above, surfaces facing up are brighter: the direction
      of the least-squares fit luminance ~ a + L.n over the flat Gaussians (normals turned away from the centre).
      *Detail*: captures look down on a scene, so surfaces facing up are seen closer and get smaller Gaussians:
      the same fit of -log(footprint area). The support direction is the answer unless the shading points along
      another axis (more than 60 degrees from it, either sign): an animal's flat flank is a better "support" than
      its four hooves, and the shading direction is used then. The shading never sets the sign (dark tops such
      as icing fool it); when the two ends of the support axis are about equally flat (best scores within a
      factor 1.5), the detail cue chooses the end.

    The result snaps to a coordinate axis within the source's uncertainty (``UpEstimate.uncertainty_deg``).
    Deterministic; ``raw`` turns with the scene. A fixed random subset of at most 20,000 Gaussians is examined, so
    the cost does not grow with the scene.

    Args:
        scene: the Gaussians, or None when ``cameras`` are given.
        cameras: capture cameras (e.g. the views of :func:`splatup.io.load_dataset`); they take precedence.

    Returns:
        (up, estimate): up is a float64 unit vector [3] in world coordinates, estimate an :class:`UpEstimate`.
    """
    cams = list(cameras) if cameras is not None else []
    if cams:
        raw, cues, confidence = _up_from_cameras(cams)
        source = "cameras"
    else:
        if scene is None:
            raise SplatupInputError("estimate_up: give a scene, cameras, or both")
        raw, source, confidence, cues = _up_from_scene(scene)
    tol = _UNCERTAINTY_DEG[source]
    up, snapped = raw, None
    name, axis = max(_SIGNED_AXES.items(), key=lambda kv: float(kv[1] @ raw))
    if math.degrees(math.acos(min(1.0, float(axis @ raw)))) <= tol:
        up, snapped = axis.clone(), name
    return up, UpEstimate(up, raw, source, confidence, tol, snapped, cues)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.vector_norm(v)


def _up_from_cameras(cams: Sequence[Camera]) -> tuple[torch.Tensor, dict, str]:
    R = torch.stack([c.R for c in cams])  # [n, 3, 3] world-to-camera rotations; row 0 = image right in world
    right, image_up = R[:, 0], -R[:, 1]
    mean_up = image_up.mean(0)
    _, s, vh = torch.linalg.svd(right, full_matrices=True)
    spread = float(s[1]) / math.sqrt(len(cams)) if len(s) > 1 else 0.0
    if spread > 0.2:  # the cameras look in different directions: up is orthogonal to all their x axes
        up = vh[2]
        method = "orthogonal to the camera x axes"
    else:  # one viewing direction (a forward-facing capture): the mean image-up, orthogonal to the mean x axis
        up = mean_up - (mean_up @ vh[0]) * vh[0]
        method = "mean camera up"
    if float(torch.linalg.vector_norm(up)) < 1e-9 or float(torch.linalg.vector_norm(mean_up)) < 1e-9:
        raise SplatupInputError(f"estimate_up: the {len(cams)} cameras have no common up direction")
    up = _unit(up)
    if float(up @ mean_up) < 0:
        up = -up
    roll = float(torch.sqrt(((right @ up) ** 2).mean()))  # RMS sine of the cameras' roll about their view axis
    cues = {"cameras": {"direction": up.tolist(), "cameras": len(cams), "method": method,
                        "rms_roll_deg": math.degrees(math.asin(min(1.0, roll)))}}
    return up, cues, "high" if roll < math.sin(math.radians(10)) else "medium"


def _fibonacci_sphere(n: int) -> torch.Tensor:
    """[n, 3] float64 directions spread evenly over the unit sphere."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi = torch.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + math.sqrt(5)) * i
    return torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], 1)


def _cap(u: torch.Tensor, half_angle_deg: float, n: int) -> torch.Tensor:
    """[n + 1, 3] directions within ``half_angle_deg`` of unit ``u`` (u itself first)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    cos_max = math.cos(math.radians(half_angle_deg))
    z = 1 - (1 - cos_max) * i / n
    r = torch.sqrt((1 - z * z).clamp_min(0))
    theta = math.pi * (1 + math.sqrt(5)) * i
    helper = torch.tensor([1.0, 0.0, 0.0] if abs(float(u[0])) < 0.9 else [0.0, 1.0, 0.0], dtype=torch.float64)
    e1 = _unit(torch.linalg.cross(u, helper))
    e2 = torch.linalg.cross(u, e1)
    d = z[:, None] * u + (r * torch.cos(theta))[:, None] * e1 + (r * torch.sin(theta))[:, None] * e2
    return torch.cat([u[None], d])


def _support_scores(pos: torch.Tensor, normals: torch.Tensor, flat_w: torch.Tensor, round_w: torch.Tensor,
                    dirs: torch.Tensor, slab: float) -> torch.Tensor:
    """Support score of each direction [D]: the weight of the Gaussians in the lowest slab along it (see
    :func:`estimate_up`). pos: [N, 3] centred positions; normals: [N, 3]; flat_w, round_w: [N] weights."""
    from ._up_kernels import support_scores

    k = max(0, math.ceil(_SUPPORT_FLOOR * pos.shape[0]) - 1)
    out = np.empty(dirs.shape[0], dtype=np.float64)
    f32 = [np.ascontiguousarray(t.detach().numpy(), dtype=np.float32) for t in (pos, normals, flat_w, round_w)]
    support_scores(*f32, np.ascontiguousarray(dirs.numpy(), dtype=np.float64), k, float(slab), out)
    return torch.from_numpy(out)


def _up_from_scene(scene: Gaussians) -> tuple[torch.Tensor, str, str, dict]:
    from .gaussians import SH_C0, quat_to_rotmat

    if len(scene) < 3:
        return _SIGNED_AXES["-y"].clone(), "default", "low", {}
    # a fixed random subset in random order: the same Gaussians whatever the scene's orientation
    gen = torch.Generator().manual_seed(0)
    g = scene.detach().subset(torch.randperm(len(scene), generator=gen)[:_SUPPORT_SAMPLE]).to(torch.float32)
    centre, radius = scene_frame(g)
    pos = g.means - centre.float()
    scales = g.scales
    order = scales.argsort(dim=1)
    s_sorted = scales.gather(1, order)
    rot = quat_to_rotmat(g.quats)
    normals = rot.gather(2, order[:, None, :1].expand(-1, 3, 1))[..., 0]  # axis of the smallest scale
    flatness = (1 - s_sorted[:, 0] / s_sorted[:, 1].clamp_min(1e-30)).clamp(0, 1)
    opacity = g.opacities
    flat_w, round_w = opacity * flatness, opacity * (1 - flatness) / 5  # E[cos^4] of a random normal = 1/5
    slab = _SUPPORT_SLAB * radius

    def scores(dirs: torch.Tensor) -> torch.Tensor:
        return _support_scores(pos, normals, flat_w, round_w, dirs, slab)

    coarse = _fibonacci_sphere(1000)  # about 6.4 degrees apart
    s_coarse = scores(coarse)
    fine = _cap(coarse[int(s_coarse.argmax())], 8.0, 400)
    s_fine = scores(fine)
    support = _unit(fine[int(s_fine.argmax())])
    other = _cap(-support, 12.0, 400)  # the best plane at the opposite end of the same axis
    s_other = scores(other)
    end_ratio = float(s_fine.max() / s_other.max().clamp_min(1e-30))
    cues: dict[str, dict[str, object]] = {"support": {
        "direction": support.tolist(), "end_ratio": end_ratio,
        "prominence": float(s_fine.max() / s_coarse.median().clamp_min(1e-30))}}

    flat = flatness > _FLAT
    shading = detail = None
    if int(flat.sum()) >= 100:
        n = normals[flat].double()
        n = torch.where((pos[flat].double() * n).sum(1, keepdim=True) >= 0, n, -n)  # turned away from the centre
        rgb = (g.sh[flat, 0].double() * SH_C0 + 0.5).clamp(0, 1)
        lum = rgb @ torch.tensor([0.2126, 0.7152, 0.0722], dtype=torch.float64)
        fineness = -torch.log(s_sorted[flat, 1].double() * s_sorted[flat, 2].double())  # small footprint: fine
        shading, r_shading = _normal_fit(n, lum, opacity[flat].double())
        detail, r_detail = _normal_fit(n, fineness, opacity[flat].double())
        if shading is not None:
            cues["shading"] = {"direction": shading.tolist(), "correlation": r_shading}
        if detail is not None:
            cues["detail"] = {"direction": detail.tolist(), "correlation": r_detail}
    if shading is not None and abs(float(shading @ support)) < _AXIS_AGREEMENT:
        return shading, "shading", "low", cues
    if end_ratio < _DECISIVE_END_RATIO:  # both ends of the axis are about as flat: finer detail faces up
        if detail is not None and float(detail @ support) < 0:
            support = _unit(other[int(s_other.argmax())])
            cues["support"]["flipped_by_detail"] = True
        return support, "support", "medium", cues
    return support, "support", "medium" if shading is None else "high", cues


def _normal_fit(
    normals: torch.Tensor, values: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor | None, float]:
    """Weighted least-squares fit values ~ a + L.normals: (unit L, correlation of the fit), or (None, 0) if the
    values or the fit do not vary."""
    w = weights.sqrt()[:, None]
    X = torch.cat([torch.ones_like(values)[:, None], normals], 1)
    L = torch.linalg.lstsq(X * w, values[:, None] * w).solution[1:, 0]
    pred = normals @ L
    if not (float(torch.linalg.vector_norm(L)) > 0 and float(pred.std()) > 0 and float(values.std()) > 0):
        return None, 0.0
    return _unit(L), float(torch.corrcoef(torch.stack([pred, values]))[0, 1])
