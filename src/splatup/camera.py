"""Pinhole cameras: pose, intrinsics and image size, in OpenCV axes with pixel centres at +0.5.

Conventions (see DESIGN.md): ``world_to_camera`` maps world points to camera coordinates with x right,
y down, z forward. ``K`` is in pixels; pixel (i, j) (column, row) is sampled at the continuous point
(i + 0.5, j + 0.5), so a centred principal point is (W/2, H/2). NeRF / nerfstudio camera-to-world matrices
(OpenGL axes) convert by negating their columns 1 and 2 (:func:`opengl_c2w_to_w2c`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import SplatupInputError

ArrayLike = torch.Tensor | np.ndarray | Sequence


def _as_f64(x: ArrayLike, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    try:
        a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SplatupInputError(f"Camera: {name} must be numeric with shape {shape}: {e}") from e
    if a.shape != shape:
        raise SplatupInputError(f"Camera: {name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise SplatupInputError(f"Camera: {name} has NaN or Inf entries: {a.tolist()}")
    return torch.as_tensor(a)


def _int_size(v: object, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) and not (
        isinstance(v, float) and float(v).is_integer()
    ):
        raise SplatupInputError(f"Camera: {name} must be a positive integer number of pixels, got {v!r}")
    v = int(v)
    if v <= 0:
        raise SplatupInputError(f"Camera: {name} must be a positive integer number of pixels, got {v}")
    return v


def opengl_c2w_to_w2c(c2w: ArrayLike) -> torch.Tensor:
    """World-to-camera (OpenCV axes) from a camera-to-world 4x4 in OpenGL/Blender axes (NeRF, nerfstudio)."""
    m = _as_f64(c2w, "camera-to-world matrix", (4, 4)).clone()
    m[:3, 1:3] *= -1.0
    try:
        return torch.linalg.inv(m)
    except torch.linalg.LinAlgError as e:
        raise SplatupInputError(f"opengl_c2w_to_w2c: the camera-to-world matrix is singular: {m.tolist()}") from e


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera.

    Attributes:
        world_to_camera: [4, 4] float64, OpenCV axes (x right, y down, z forward).
        K: [3, 3] float64 intrinsics in pixels (fx, fy > 0, no skew).
        width, height: image size in pixels.
    """

    world_to_camera: torch.Tensor
    K: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        w2c = _as_f64(self.world_to_camera, "world_to_camera", (4, 4))
        K = _as_f64(self.K, "K", (3, 3))
        object.__setattr__(self, "world_to_camera", w2c)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "width", _int_size(self.width, "width"))
        object.__setattr__(self, "height", _int_size(self.height, "height"))
        # checks in numpy on the float64 values (a handful of torch ops on 4x4 matrices cost ~0.5 ms per camera)
        m = w2c.numpy()
        k = K.numpy()
        if not np.allclose(m[3], (0.0, 0.0, 0.0, 1.0), rtol=1e-5, atol=1e-8):
            raise SplatupInputError(f"Camera: world_to_camera's last row must be [0, 0, 0, 1], got {m[3].tolist()}")
        R = m[:3, :3]
        err = float(np.abs(R @ R.T - np.eye(3)).max())
        det = float(np.linalg.det(R))
        if err > 1e-4 or det < 0:
            raise SplatupInputError(
                "Camera: the rotation part of world_to_camera must be orthonormal with determinant +1 "
                f"(|R R^T - I| = {err:.2g}, det = {det:.4g})"
            )
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise SplatupInputError(f"Camera: focal lengths K[0,0], K[1,1] must be > 0, got {k[0, 0]}, {k[1, 1]}")
        if k[0, 1] != 0 or k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
            raise SplatupInputError(f"Camera: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}")

    # ------------------------------------------------------------------ properties
    @property
    def R(self) -> torch.Tensor:
        """[3, 3] world-to-camera rotation."""
        return self.world_to_camera[:3, :3]

    @property
    def t(self) -> torch.Tensor:
        """[3] world-to-camera translation."""
        return self.world_to_camera[:3, 3]

    @property
    def center(self) -> torch.Tensor:
        """[3] camera centre in world coordinates, -R^T t."""
        return -self.R.T @ self.t

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def fov_x_deg(self) -> float:
        """Horizontal field of view in degrees (for a centred principal point)."""
        return math.degrees(2 * math.atan(0.5 * self.width / self.fx))

    @property
    def fov_y_deg(self) -> float:
        return math.degrees(2 * math.atan(0.5 * self.height / self.fy))

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    def __repr__(self) -> str:
        c = self.center.tolist()
        return (
            f"Camera({self.width}x{self.height}, fx={self.fx:.4g}, fy={self.fy:.4g}, cx={self.cx:.4g}, "
            f"cy={self.cy:.4g}, center=({c[0]:.4g}, {c[1]:.4g}, {c[2]:.4g}))"
        )

    # ------------------------------------------------------------------ derived cameras
    def scaled(self, factor: float) -> Camera:
        """Same pose and field of view at ``floor(W * factor) x floor(H * factor)`` pixels.

        ``cam.scaled(1 / s)`` is the low-resolution camera of an upscaling factor s. K's first row is scaled
        by W_lr / W and its second by H_lr / H, which keeps the +0.5 pixel-centre convention exact.
        """
        if not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
            raise SplatupInputError(f"Camera.scaled: factor must be a positive finite number, got {factor!r}")
        w = math.floor(self.width * factor + 1e-9)
        h = math.floor(self.height * factor + 1e-9)
        if w < 1 or h < 1:
            raise SplatupInputError(
                f"Camera.scaled: factor {factor:g} turns {self.width}x{self.height} into {w}x{h} pixels; "
                "the image needs at least 1x1"
            )
        return self.resized(w, h)

    def resized(self, width: int, height: int) -> Camera:
        """Same pose and field of view at ``width x height`` (K rows scaled by the size ratios)."""
        width = _int_size(width, "width")
        height = _int_size(height, "height")
        K = self.K.clone()
        K[0] *= width / self.width
        K[1] *= height / self.height
        return Camera(self.world_to_camera.clone(), K, width, height)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def look_at(
        cls,
        eye: ArrayLike,
        target: ArrayLike,
        up: ArrayLike,
        fov_x_deg: float,
        width: int,
        height: int,
    ) -> Camera:
        """Camera at ``eye`` looking at ``target``, with ``up`` pointing up in the image, horizontal field of
        view ``fov_x_deg`` (degrees), square pixels and a centred principal point."""
        eye_t = _as_f64(eye, "eye", (3,))
        target_t = _as_f64(target, "target", (3,))
        up_t = _as_f64(up, "up", (3,))
        if not (0 < fov_x_deg < 180):
            raise SplatupInputError(f"Camera.look_at: fov_x_deg must be in (0, 180), got {fov_x_deg}")
        fwd = target_t - eye_t
        if float(torch.linalg.vector_norm(fwd)) == 0:
            raise SplatupInputError("Camera.look_at: eye and target are the same point")
        fwd = fwd / torch.linalg.vector_norm(fwd)
        right = torch.linalg.cross(fwd, up_t)
        n = float(torch.linalg.vector_norm(right))
        if n < 1e-9 * float(torch.linalg.vector_norm(up_t)) or n == 0:
            raise SplatupInputError("Camera.look_at: 'up' is zero or parallel to the viewing direction")
        right = right / n
        down = torch.linalg.cross(fwd, right)
        R = torch.stack([right, down, fwd])
        w2c = torch.eye(4, dtype=torch.float64)
        w2c[:3, :3] = R
        w2c[:3, 3] = -R @ eye_t
        width = _int_size(width, "width")
        height = _int_size(height, "height")
        f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
        K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float64)
        return cls(w2c, K, width, height)

    @classmethod
    def orbit(
        cls,
        target: ArrayLike,
        distance: float,
        azimuth_deg: float,
        elevation_deg: float,
        up: ArrayLike = (0.0, 0.0, 1.0),
        fov_x_deg: float = 50.0,
        width: int = 800,
        height: int = 600,
    ) -> Camera:
        """Camera on a sphere of radius ``distance`` around ``target`` looking at it.

        Azimuth turns about ``up``; elevation is the angle above the plane orthogonal to ``up`` (degrees,
        strictly between -90 and 90).
        """
        if not math.isfinite(distance) or distance <= 0:
            raise SplatupInputError(f"Camera.orbit: distance must be > 0, got {distance}")
        if not -90 < elevation_deg < 90:
            raise SplatupInputError(f"Camera.orbit: elevation_deg must be in (-90, 90), got {elevation_deg}")
        target_t = _as_f64(target, "target", (3,))
        up_t = _as_f64(up, "up", (3,))
        if float(torch.linalg.vector_norm(up_t)) == 0:
            raise SplatupInputError("Camera.orbit: 'up' must be non-zero")
        u = up_t / torch.linalg.vector_norm(up_t)
        helper = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
        if abs(float(u @ helper)) > 0.9:
            helper = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        e1 = helper - (helper @ u) * u
        e1 = e1 / torch.linalg.vector_norm(e1)
        e2 = torch.linalg.cross(u, e1)
        az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
        direction = math.cos(el) * (math.cos(az) * e1 + math.sin(az) * e2) + math.sin(el) * u
        return cls.look_at(target_t + distance * direction, target_t, u, fov_x_deg, width, height)
