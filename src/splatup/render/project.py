"""EWA projection of 3D Gaussians to screen-space 2D Gaussians, with culling and SH colour.

Vectorised torch over Gaussians (differentiable by autograd; the per-Gaussian work is small next to
compositing). Conventions follow gsplat "classic" / INRIA 3DGS with pixel centres at +0.5:

- camera point p = R mean + t; culled if p.z <= near_plane or p.z >= far_plane;
- 2D mean = (fx x / z + cx, fy y / z + cy) in pixels of this camera (pixel i's centre is at i + 0.5);
- EWA: Sigma2D = J W Sigma3D W^T J^T with the perspective Jacobian J evaluated at x/z, y/z clamped to
  1.3x the half field of view (as INRIA and gsplat do, so Gaussians far outside the view stay bounded);
- ``dilation`` px^2 added to the diagonal (0.3 native; 0.3 / s^2 for a 1/s render, see DESIGN.md);
  mode "antialiased" also multiplies the opacity by sqrt(det Sigma2D / det(Sigma2D + dilation I));
- conic = (Sigma2D + dilation I)^-1 stored as (a, b, c) = (inv_xx, inv_xy, inv_yy);
- extents = 3 sqrt(diag(Sigma2D + dilation I)): the half-widths of the axis-aligned box of the 3-sigma
  ellipse; radii = 3 sqrt(largest eigenvalue) (the scalar INRIA densification uses);
- culled if the 3-sigma box misses the image or the 2D covariance is not finite and positive definite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians, quat_to_rotmat, sh_colors

RASTERIZE_MODES = ("classic", "antialiased")
DEFAULT_DILATION = 0.3
DEFAULT_NEAR = 0.01
DEFAULT_FAR = 1e10
SIGMA_EXTENT = 3.0
FOV_CLAMP = 1.3


@dataclass
class Projected:
    """Screen-space Gaussians of one camera. Rows of culled Gaussians hold finite placeholders.

    means2d [N, 2] px, conics [N, 3] (a, b, c) px^-2, opacities [N] (antialiasing factor applied),
    colors [N, 3], depths [N] camera z, extents [N, 2] px, radii [N] px, visible [N] bool.
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    depths: torch.Tensor
    extents: torch.Tensor
    radii: torch.Tensor
    visible: torch.Tensor


def check_mode(mode: str, dilation: float, near_plane: float = DEFAULT_NEAR, far_plane: float = DEFAULT_FAR) -> None:
    """Raise naming the argument if the rasterization mode, dilation or depth range is unusable."""
    if not (isinstance(near_plane, (int, float)) and 0 < near_plane < float("inf")):
        raise SplatupInputError(f"rasterize: near_plane must be a finite number > 0, got {near_plane!r}")
    if not (isinstance(far_plane, (int, float)) and far_plane > near_plane):
        raise SplatupInputError(
            f"rasterize: far_plane must be greater than near_plane ({near_plane}), got {far_plane!r}"
        )
    if mode not in RASTERIZE_MODES:
        raise SplatupInputError(f"rasterize: mode must be one of {RASTERIZE_MODES}, got {mode!r}")
    if not isinstance(dilation, (int, float)) or not dilation >= 0 or dilation == float("inf"):
        raise SplatupInputError(f"rasterize: dilation must be a finite number >= 0 (px^2), got {dilation!r}")


def _rotation_entries(quats: torch.Tensor) -> list[list[torch.Tensor]]:
    """Entries R[i][j] ([N] tensors) of the rotation of quaternions [N, 4] (w, x, y, z), normalised first."""
    q = quats / torch.linalg.vector_norm(quats, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]


def covariance_3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] world covariances R S S^T R^T from quaternions [N, 4] (w, x, y, z) and scales [N, 3]."""
    M = quat_to_rotmat(quats) * scales[:, None, :]
    return M @ M.transpose(1, 2)


def project(
    scene: Gaussians,
    cam: Camera,
    dilation: float = DEFAULT_DILATION,
    mode: str = "classic",
    near_plane: float = DEFAULT_NEAR,
    far_plane: float = DEFAULT_FAR,
    sh_degree: int | None = None,
) -> Projected:
    """Project every Gaussian of ``scene`` into ``cam`` (see module docstring). Differentiable.

    Args:
        scene: N Gaussians (float32 or float64; the result has the same dtype).
        cam: the camera.
        dilation: px^2 added to each 2D covariance.
        mode: "classic" or "antialiased".
        near_plane, far_plane: camera-z culling bounds (scene units).
        sh_degree: evaluate SH only up to this degree (None: all).
    """
    check_mode(mode, dilation, near_plane, far_plane)
    dt = scene.dtype
    R = cam.R.to(dt)
    t = cam.t.to(dt)
    fx, fy, cx, cy = cam.fx, cam.fy, cam.cx, cam.cy
    W, H = cam.width, cam.height

    p = scene.means @ R.T + t  # [N, 3]
    x, y, z = p.unbind(-1)
    in_depth = (z > near_plane) & (z < far_plane)
    zs = torch.where(in_depth, z, torch.ones_like(z))  # safe denominators for culled rows

    # perspective Jacobian at the clamped direction (gsplat _persp_proj / INRIA computeCov2D)
    tan_x, tan_y = 0.5 * W / fx, 0.5 * H / fy
    lim_x_pos = (W - cx) / fx + 0.3 * tan_x
    lim_x_neg = cx / fx + 0.3 * tan_x
    lim_y_pos = (H - cy) / fy + 0.3 * tan_y
    lim_y_neg = cy / fy + 0.3 * tan_y
    tx = zs * torch.clamp(x / zs, -lim_x_neg, lim_x_pos)
    ty = zs * torch.clamp(y / zs, -lim_y_neg, lim_y_pos)
    # Sigma2D = A A^T with A = J W R_g S (2x3 per Gaussian), written out elementwise: batched 3x3 matmuls
    # are slow in torch on CPU, while these [N] elementwise ops vectorise well.
    Wc = cam.R.tolist()
    iz = 1.0 / zs
    jx, jxz = fx * iz, -fx * tx * iz * iz
    jy, jyz = fy * iz, -fy * ty * iz * iz
    t0 = [jx * Wc[0][k] + jxz * Wc[2][k] for k in range(3)]  # row 0 of J W
    t1 = [jy * Wc[1][k] + jyz * Wc[2][k] for k in range(3)]  # row 1 of J W
    Rg = _rotation_entries(scene.quats)
    sc = scene.scales.unbind(-1)
    a0 = [(t0[0] * Rg[0][k] + t0[1] * Rg[1][k] + t0[2] * Rg[2][k]) * sc[k] for k in range(3)]
    a1 = [(t1[0] * Rg[0][k] + t1[1] * Rg[1][k] + t1[2] * Rg[2][k]) * sc[k] for k in range(3)]
    sxx = a0[0] * a0[0] + a0[1] * a0[1] + a0[2] * a0[2]
    sxy = a0[0] * a1[0] + a0[1] * a1[1] + a0[2] * a1[2]
    syy = a1[0] * a1[0] + a1[1] * a1[1] + a1[2] * a1[2]
    # 2x2 determinant, inverse and eigenvalue in float64: in float32 the determinant overflows for 2D sigmas above
    # ~4e9 px, finite positive definite covariances that must render (as a near-uniform veil), not be culled
    sxx64, sxy64, syy64 = sxx.double(), sxy.double(), syy.double()
    det_raw = sxx64 * syy64 - sxy64 * sxy64
    dxx, dyy = sxx64 + dilation, syy64 + dilation
    det = dxx * dyy - sxy64 * sxy64
    ok_cov = torch.isfinite(det) & torch.isfinite(dxx) & torch.isfinite(dyy) & (det > 0) & (dxx > 0) & (dyy > 0)
    ok = in_depth & ok_cov
    # safe values for rows that will be culled, so no NaN or Inf reaches autograd
    one = torch.ones_like(det)
    det_s = torch.where(ok, det, one)
    dxx_s = torch.where(ok, dxx, one)
    dyy_s = torch.where(ok, dyy, one)
    sxy_s = torch.where(ok, sxy64, torch.zeros_like(sxy64))
    conics = torch.stack([dyy_s / det_s, -sxy_s / det_s, dxx_s / det_s], dim=-1).to(dt)

    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)
    extents = SIGMA_EXTENT * torch.sqrt(torch.stack([dxx_s, dyy_s], dim=-1)).to(dt)
    mid = 0.5 * (dxx_s + dyy_s)
    lam = mid + torch.sqrt(torch.clamp_min(mid * mid - det_s, 0.0) + 1e-12)
    radii = (SIGMA_EXTENT * torch.sqrt(lam)).to(dt)

    opac = scene.opacities
    if mode == "antialiased":
        det_raw_s = torch.where(ok, det_raw, torch.zeros_like(det_raw))
        # clamp away from 0 so the square root keeps a finite gradient for degenerate (flat) Gaussians
        opac = opac * torch.sqrt(torch.clamp_min(det_raw_s / det_s, 1e-12)).to(dt)

    on_screen = (
        (means2d[:, 0] + extents[:, 0] > 0)
        & (means2d[:, 0] - extents[:, 0] < W)
        & (means2d[:, 1] + extents[:, 1] > 0)
        & (means2d[:, 1] - extents[:, 1] < H)
        & torch.isfinite(means2d).all(-1)
    )
    visible = ok & on_screen
    means2d = torch.where(visible[:, None], means2d, torch.zeros_like(means2d))

    colors = sh_colors(scene.sh, scene.means, cam.center.to(dt), degree=sh_degree)
    return Projected(
        means2d=means2d,
        conics=conics,
        opacities=opac,
        colors=colors,
        depths=z,
        extents=extents,
        radii=torch.where(visible, radii, torch.zeros_like(radii)),
        visible=visible,
    )
