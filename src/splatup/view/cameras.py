"""The viewer's cameras: the browser's camera as a splatup Camera, the render size, the opening view, the up axis.

viser reports a camera as its pose in the world, ``P_world = R p_camera + position`` with R given as a quaternion
(w, x, y, z) in OpenCV axes (x right, y down, z forward, the same as splatup's), and a vertical field of view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians, quat_to_rotmat


def quaternion_matrix(wxyz: Sequence[float]) -> np.ndarray:
    """[3, 3] rotation of a quaternion (w, x, y, z); normalised first (the scene's rule, quat_to_rotmat)."""
    return quat_to_rotmat(torch.as_tensor(np.asarray(wxyz, dtype=np.float64))[None])[0].numpy()


def camera_from_pose(position: Sequence[float], wxyz: Sequence[float], fov_y_rad: float, width: int,
                     height: int) -> Camera:
    """splatup Camera of a viser camera pose: world_to_camera = [R^T | -R^T position], square pixels, vertical
    field of view ``fov_y_rad``, centred principal point."""
    if not (math.isfinite(fov_y_rad) and 0 < fov_y_rad < math.pi):
        raise SplatupInputError(f"view: field of view must be in (0, pi) radians, got {fov_y_rad!r}")
    R = quaternion_matrix(wxyz)
    w2c = np.eye(4)
    w2c[:3, :3] = R.T
    w2c[:3, 3] = -R.T @ np.asarray(position, dtype=np.float64)
    f = 0.5 * height / math.tan(0.5 * fov_y_rad)
    K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    return Camera(torch.from_numpy(w2c), torch.from_numpy(K), width, height)


def render_size(canvas_width: int, canvas_height: int, width: int | None = None,
                height: int | None = None) -> tuple[int, int]:
    """(width, height) to render for a canvas: the canvas's own size by default; one of ``width`` / ``height``
    keeps the canvas's aspect ratio; both give a fixed size (the browser stretches it to the canvas)."""
    cw, ch = max(int(canvas_width), 1), max(int(canvas_height), 1)
    if width is not None and height is not None:
        return int(width), int(height)
    if width is not None:
        return int(width), max(1, round(width * ch / cw))
    if height is not None:
        return max(1, round(height * cw / ch)), int(height)
    return cw, ch


@dataclass(frozen=True)
class OpeningView:
    """Where the viewer opens: camera ``position`` looking at ``look_at`` with ``up`` (world), vertical fov."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    up: tuple[float, float, float]
    fov_deg: float


def opening_view(scene: Gaussians, up: Sequence[float], fov_deg: float, azimuth_deg: float = 30.0,
                 elevation_deg: float = 20.0) -> OpeningView:
    """On an orbit around the scene's robust centre, far enough that its robust sphere fills the vertical field of
    view (the narrower one of a landscape canvas); the same framing as ``splatup render``."""
    from ..viewpoints import orbit_camera, scene_frame

    centre, _ = scene_frame(scene)
    # a square image: its horizontal fov is the vertical one, so the sphere fits the height of any wider canvas
    cam = orbit_camera(scene, 512, 512, azimuth_deg, elevation_deg, None, fov_deg, tuple(up))
    return OpeningView(position=tuple(cam.center.tolist()), look_at=tuple(centre.tolist()),
                       up=tuple(float(u) for u in up), fov_deg=float(fov_deg))


def resolve_up(scene: Gaussians, up: str | Sequence[float] = "auto") -> tuple[tuple[float, float, float], str]:
    """The world up axis (unit) and how it was chosen, one line for people. ``up`` = 'auto' asks
    :func:`splatup.viewpoints.estimate_up` (from the Gaussians: the plane the scene stands on, checked against the
    shading); an axis ('+z', '-y'), 'x,y,z' or a 3-vector is taken as given."""
    from ..viewpoints import estimate_up, parse_vector

    if isinstance(up, str):
        if up.strip().lower() == "auto":
            vec, estimate = estimate_up(scene)
            return _unit(vec.tolist(), "estimated up axis"), f"estimated: {estimate.describe()}"
        up = parse_vector(up, "--up")
    return _unit(up, "--up"), "given (--up)"


def _unit(v: Sequence[float], name: str) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(a))
    if a.shape != (3,) or not np.isfinite(a).all() or n == 0:
        raise SplatupInputError(f"{name}: expected a non-zero 3-vector, got {list(np.ravel(a))}")
    return tuple(float(c) for c in a / n)  # type: ignore[return-value]
