"""Reference EWA projection: the slow, plain-torch twin of :func:`splatup.render.project.project`.

Same conventions and culling rules (see that module's docstring), formulated independently where the maths
allows it:

- rotation from the Euler-Rodrigues form R = (w^2 - |v|^2) I + 2 v v^T + 2 w [v]_x of the unit quaternion;
- the camera point from the homogeneous 4x4 product, the camera centre from inv(world_to_camera);
- the Jacobian of the pinhole map (fx x / z + cx, fy y / z + cy) by autodiff of that map (reverse mode,
  ``torch.autograd.grad``) at the point whose x/z, y/z are clamped to 1.3x the half field of view;
- the 2D covariance as J (R_c Sigma R_c^T) J^T; conic by ``torch.linalg.inv``; positive definiteness and
  the largest eigenvalue by ``torch.linalg.eigvalsh``; the antialiasing factor as ``torch.linalg.det(S^-1 Sigma2D)``;
- SH colour from :mod:`splatup.reference.sh` (basis derived from the Legendre recurrence);
- the binning data (bin_extents, reach, alive, tile_rects) from :func:`splatup.reference.tiles.binning_data`.

Same signature, argument checks and :class:`~splatup.render.project.Projected` fields (dtypes and culled-row
placeholders included) as the fast function. Runs in the dtype of the scene (use float64 for an oracle) and is
differentiable by autograd.
"""

from __future__ import annotations

import numpy as np
import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians
from ..render.project import DEFAULT_DILATION, DEFAULT_FAR, DEFAULT_NEAR, Projected, check_mode
from . import sh as ref_sh
from .tiles import binning_data

SIGMA_EXTENT = 3.0  # the box and radius are 3 sigma
FOV_MARGIN = 0.3  # the Jacobian point may leave the view by 30 % of a centred half field of view
AA_FLOOR = 1e-12  # floor of the antialiasing ratio (finite gradient for flat Gaussians); culled rows get it too


def rotation_matrices(quats: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] rotations of quaternions [N, 4] (w, x, y, z), normalised first (Euler-Rodrigues form)."""
    q = torch.nn.functional.normalize(quats, dim=-1, eps=1e-30)
    w, v = q[:, 0], q[:, 1:]
    eye = torch.eye(3, dtype=q.dtype, device=q.device)
    zero = torch.zeros_like(w)
    vx, vy, vz = v.unbind(-1)
    cross = torch.stack([zero, -vz, vy, vz, zero, -vx, -vy, vx, zero], dim=-1).reshape(-1, 3, 3)
    vv = (v * v).sum(-1)
    return (w * w - vv)[:, None, None] * eye + 2.0 * v[:, :, None] * v[:, None, :] + 2.0 * w[:, None, None] * cross


def covariances_3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] world covariances R diag(s^2) R^T."""
    R = rotation_matrices(quats)
    return (R * (scales * scales)[:, None, :]) @ R.transpose(1, 2)


def _pinhole_jacobians(points: torch.Tensor, fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    """[N, 2, 3] Jacobians of p -> (fx p_x / p_z + cx, fy p_y / p_z + cy) at camera points [N, 3].

    Obtained by reverse-mode autodiff of the pinhole map (one backward pass per output row; every Gaussian's
    image depends only on its own point). ``create_graph`` keeps the Jacobian itself differentiable.
    """
    focal = torch.tensor([fx, fy], dtype=points.dtype)
    centre = torch.tensor([cx, cy], dtype=points.dtype)
    with torch.enable_grad():
        p = points if points.requires_grad else points.detach().requires_grad_(True)
        image = focal * p[:, :2] / p[:, 2:3] + centre  # [N, 2]
        rows = [torch.autograd.grad(image[:, r].sum(), p, create_graph=points.requires_grad, retain_graph=True)[0]
                for r in range(2)]
    return torch.stack(rows, dim=1)


def project(
    scene: Gaussians,
    cam: Camera,
    dilation: float = DEFAULT_DILATION,
    mode: str = "classic",
    near_plane: float = DEFAULT_NEAR,
    far_plane: float = DEFAULT_FAR,
    sh_degree: int | None = None,
    *,
    validate_as: str | None = None,
) -> Projected:
    """Project ``scene`` into ``cam``; returns a :class:`~splatup.render.project.Projected` in the scene's dtype
    (binning data: float32 bin_extents and reach, bool alive, int32 tile_rects, as the fast path).

    Culled rows (behind/too near/too far, covariance not finite or not positive definite, 3-sigma box off
    screen) have ``visible`` False, means2d 0 and radii 0; their other fields are finite placeholders (conic
    (1, 0, 1), extents 3, antialiased opacity x 1e-6 where the covariance is culled). ``validate_as``: if given,
    raise :class:`SplatupInputError` as ``scene.validate(validate_as)`` does for NaN, infinite values or a zero
    quaternion.
    """
    check_mode(mode, dilation, near_plane, far_plane)
    if sh_degree is not None and (isinstance(sh_degree, bool) or not isinstance(sh_degree, (int, np.integer))
                                  or sh_degree < 0):
        raise SplatupInputError(f"project: sh_degree must be None or an integer >= 0, got {sh_degree!r}")
    if validate_as is not None:
        scene.validate(validate_as)
    dt = scene.dtype
    W, H = cam.width, cam.height
    fx, fy, cx, cy = cam.fx, cam.fy, cam.cx, cam.cy
    w2c = cam.world_to_camera.to(dt)

    hom = torch.cat([scene.means, torch.ones_like(scene.means[:, :1])], dim=1)
    p = (hom @ w2c.T)[:, :3]
    z = p[:, 2]
    in_depth = (z > near_plane) & (z < far_plane)
    p_safe = torch.where(in_depth[:, None], p, torch.tensor([0.0, 0.0, 1.0], dtype=dt))

    # Jacobian at the direction clamped to the field of view widened by 0.3 centred half-FOVs on each side
    zs = p_safe[:, 2]
    half_x, half_y = 0.5 * W / fx, 0.5 * H / fy
    u = torch.clamp(p_safe[:, 0] / zs, -(cx / fx + FOV_MARGIN * half_x), (W - cx) / fx + FOV_MARGIN * half_x)
    v = torch.clamp(p_safe[:, 1] / zs, -(cy / fy + FOV_MARGIN * half_y), (H - cy) / fy + FOV_MARGIN * half_y)
    J = _pinhole_jacobians(torch.stack([u * zs, v * zs, zs], dim=-1), fx, fy, cx, cy)

    Rc = w2c[:3, :3]
    cov_cam = Rc @ covariances_3d(scene.quats, scene.scales) @ Rc.T
    cov2 = J @ cov_cam @ J.transpose(1, 2)
    cov2 = 0.5 * (cov2 + cov2.transpose(1, 2))
    S = cov2 + dilation * torch.eye(2, dtype=dt)

    finite = torch.isfinite(S).flatten(1).all(1)
    eye2 = torch.eye(2, dtype=dt).expand_as(S)
    S_safe = torch.where(finite[:, None, None], S, eye2)
    eig = torch.linalg.eigvalsh(S_safe)  # ascending
    ok = in_depth & finite & (eig[:, 0] > 0)
    S_safe = torch.where(ok[:, None, None], S_safe, eye2)
    eig = torch.where(ok[:, None], eig, torch.ones_like(eig))

    inv = torch.linalg.inv(S_safe)
    conics = torch.stack([inv[:, 0, 0], 0.5 * (inv[:, 0, 1] + inv[:, 1, 0]), inv[:, 1, 1]], dim=-1)
    extents = SIGMA_EXTENT * torch.sqrt(torch.diagonal(S_safe, dim1=1, dim2=2))
    radii = SIGMA_EXTENT * torch.sqrt(eig[:, 1])

    means2d = torch.stack([fx * p_safe[:, 0] / zs + cx, fy * p_safe[:, 1] / zs + cy], dim=-1)
    lo, hi = means2d - extents, means2d + extents
    on_screen = (
        torch.isfinite(means2d).all(1) & (hi[:, 0] > 0) & (lo[:, 0] < W) & (hi[:, 1] > 0) & (lo[:, 1] < H)
    )
    visible = ok & on_screen

    opac = scene.opacities
    if mode == "antialiased":
        cov2_safe = torch.where(ok[:, None, None], cov2, eye2)
        ratio = torch.linalg.det(inv @ cov2_safe)  # det(cov2) / det(S), without under/overflow
        ratio = torch.where(ok, ratio, torch.zeros_like(ratio))
        # degenerate (flat) Gaussians: same floor as the fast path (finite gradient; alpha stays < 1/255)
        opac = opac * torch.sqrt(torch.clamp_min(ratio, AA_FLOOR))

    center = torch.linalg.inv(w2c)[:3, 3]
    colors = ref_sh.sh_colors(scene.sh, scene.means, center, degree=sh_degree)
    means2d = torch.where(visible[:, None], means2d, torch.zeros_like(means2d))
    bin_extents, reach, alive, rects = binning_data(means2d, opac, extents, visible, W, H)
    return Projected(
        means2d=means2d,
        conics=conics,
        opacities=opac,
        colors=colors,
        depths=z,
        extents=extents,
        radii=torch.where(visible, radii, torch.zeros_like(radii)),
        visible=visible,
        bin_extents=bin_extents,
        reach=reach,
        alive=alive,
        tile_rects=rects,
    )
