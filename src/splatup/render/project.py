"""EWA projection of 3D Gaussians to screen-space 2D Gaussians, with culling and SH colour.

Numba kernels (:mod:`.project_kernels`), one parallel pass over the Gaussians forward and one backward, wrapped
in a ``torch.autograd.Function``. Conventions follow gsplat "classic" / INRIA 3DGS with pixel centres at +0.5:

- camera point p = R mean + t; culled if p.z <= near_plane or p.z >= far_plane;
- 2D mean = (fx x / z + cx, fy y / z + cy) in pixels of this camera (pixel i's centre is at i + 0.5);
- EWA: Sigma2D = J W Sigma3D W^T J^T with the perspective Jacobian J evaluated at x/z, y/z clamped to
  1.3x the half field of view (as INRIA and gsplat do, so Gaussians far outside the view stay bounded);
- ``dilation`` px^2 added to the diagonal (0.3 native; 0.3 / s^2 for a 1/s render, see DESIGN.md);
  mode "antialiased" also multiplies the opacity by sqrt(det Sigma2D / det(Sigma2D + dilation I));
- conic = (Sigma2D + dilation I)^-1 stored as (a, b, c) = (inv_xx, inv_xy, inv_yy);
- extents = 3 sqrt(diag(Sigma2D + dilation I)): the half-widths of the axis-aligned box of the 3-sigma
  ellipse; radii = 3 sqrt(largest eigenvalue) (the scalar INRIA densification uses);
- culled if the 3-sigma box misses the image or the 2D covariance is not finite (in the scene's dtype) and
  positive definite. Everything is computed in float64 and rounded to the scene's dtype when stored, so huge
  but finite covariances are kept.

Culled rows hold finite placeholders (means2d 0, radii 0, conic (1, 0, 1), extents 3; antialiased opacity
x 1e-6 where the covariance is culled) and get no gradient through them. Differentiable outputs: means2d,
conics, opacities and colors, w.r.t. means, quats (unnormalised), log_scales, opacity_logits and sh; depths,
extents, radii, visible and the binning data are not differentiable. The camera is not differentiable.

The forward pass also applies :func:`splatup.render.tiles.contribution_extents` (the opacity-aware binning
rule) to the stored opacities and extents and :func:`splatup.render.tiles.tile_range` to the result, so
:func:`~splatup.render.rasterize.rasterize` bins straight away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .._checks import all_finite
from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians, num_sh_coeffs, sh_degree_from_coeffs
from . import project_kernels as PK
from .tiles import ALPHA_MIN, REACH_MARGIN, TILE_SIZE

RASTERIZE_MODES = ("classic", "antialiased")
DEFAULT_DILATION = 0.3
DEFAULT_NEAR = 0.01
DEFAULT_FAR = 1e10
FOV_MARGIN = 0.3  # the Jacobian point may leave the view by 30 % of a centred half field of view (1.3x clamp)


@dataclass
class Projected:
    """Screen-space Gaussians of one camera. Rows of culled Gaussians hold finite placeholders.

    means2d [N, 2] px, conics [N, 3] (a, b, c) px^-2, opacities [N] (antialiasing factor applied),
    colors [N, 3], depths [N] camera z, extents [N, 2] px, radii [N] px, visible [N] bool.
    Binning data (filled by :func:`project`, None from the reference twin), as
    :func:`splatup.render.tiles.contribution_extents` returns it: bin_extents [N, 2] float32 px, reach [N]
    float32 px, alive [N] bool; tile_rects [N, 4] int32, the (x0, x1, y0, y1) range of TILE_SIZE tiles that
    :func:`splatup.render.tiles.bin_gaussians` lists each alive Gaussian in (x0 > x1 for the others).
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    depths: torch.Tensor
    extents: torch.Tensor
    radii: torch.Tensor
    visible: torch.Tensor
    bin_extents: torch.Tensor | None = None
    reach: torch.Tensor | None = None
    alive: torch.Tensor | None = None
    tile_rects: torch.Tensor | None = None


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


@dataclass(frozen=True)
class _Setup:
    """Everything the kernels need besides the scene."""

    pose: PK.Pose
    view: PK.View
    settings: PK.Settings
    rule: PK.BinRule


def _setup(scene: Gaussians, cam: Camera, dilation: float, mode: str, near_plane: float, far_plane: float,
           sh_degree: int | None) -> _Setup:
    """Kernel constants: active SH coefficients, camera arrays, FOV clamp limits, culling and binning constants."""
    k = scene.sh.shape[1]
    if sh_degree is not None:
        if isinstance(sh_degree, bool) or not isinstance(sh_degree, (int, np.integer)) or sh_degree < 0:
            raise SplatupInputError(f"project: sh_degree must be None or an integer >= 0, got {sh_degree!r}")
        k = num_sh_coeffs(min(int(sh_degree), sh_degree_from_coeffs(k)))
    fx, fy, cx, cy = (float(v) for v in (cam.fx, cam.fy, cam.cx, cam.cy))
    W, H = cam.width, cam.height
    f64 = np.float64
    pose = PK.Pose(
        rotation=np.ascontiguousarray(cam.R.numpy(), f64),
        translation=np.ascontiguousarray(cam.t.numpy(), f64),
        centre=np.ascontiguousarray(cam.center.numpy(), f64),
    )
    view = PK.View(
        fx=fx, fy=fy, cx=cx, cy=cy,
        lim_xn=cx / fx + FOV_MARGIN * 0.5 * W / fx,
        lim_xp=(W - cx) / fx + FOV_MARGIN * 0.5 * W / fx,
        lim_yn=cy / fy + FOV_MARGIN * 0.5 * H / fy,
        lim_yp=(H - cy) / fy + FOV_MARGIN * 0.5 * H / fy,
        width=float(W), height=float(H),
    )
    info = torch.finfo(scene.dtype)
    settings = PK.Settings(dilation=float(dilation), near=float(near_plane), far=float(far_plane),
                           cov_max=float(info.max), norm2_min=float(info.tiny), k_act=int(k),
                           antialiased=mode == "antialiased")
    rule = PK.BinRule(k2_den=ALPHA_MIN * (1.0 - REACH_MARGIN), k_mul=1.0 + REACH_MARGIN,
                      k_cap=3.0 * (1.0 + REACH_MARGIN), tile=float(TILE_SIZE), tiles_x=float(-(-W // TILE_SIZE)),
                      tiles_y=float(-(-H // TILE_SIZE)))
    return _Setup(pose, view, settings, rule)


def _arrays(tensors, dtype: torch.dtype) -> list[np.ndarray]:
    """Detached, contiguous numpy views in ``dtype`` (a copy only when the dtype or layout differ)."""
    return [t.detach().to(dtype).contiguous().numpy() for t in tensors]


def _forward(setup: _Setup, means, quats, log_scales, opacity_logits, sh) -> tuple[list[torch.Tensor], np.ndarray]:
    """Run the forward kernel; returns the 12 output tensors (Projected's field order) and the status bits."""
    dt = means.dtype
    n = means.shape[0]
    out = [torch.empty(n, 2, dtype=dt), torch.empty(n, 3, dtype=dt), torch.empty(n, dtype=dt),
           torch.empty(n, 3, dtype=dt), torch.empty(n, dtype=dt), torch.empty(n, 2, dtype=dt),
           torch.empty(n, dtype=dt), torch.empty(n, dtype=torch.bool), torch.empty(n, 2, dtype=torch.float32),
           torch.empty(n, dtype=torch.float32), torch.empty(n, dtype=torch.bool), torch.empty(n, 4, dtype=torch.int32)]
    status = np.empty(n, np.uint8)
    m2, con, op, col, dep, ext, rad, vis, bext, reach, alive, rects = (t.numpy() for t in out)
    scene = PK.SceneArrays(*_arrays((means, quats, log_scales, opacity_logits, sh), dt))
    outputs = PK.Projection(m2, con, op, col, dep, ext, rad, vis, status, bext, reach, alive, rects)
    PK.project_forward(scene, setup.pose, setup.view, setup.settings, setup.rule, outputs)
    return out, status


class _ProjectFunction(torch.autograd.Function):
    """Projection as an autograd node: scene tensors in, the 12 output tensors and the kernel's status bits out
    (first four differentiable)."""

    @staticmethod
    def forward(ctx, means, quats, log_scales, opacity_logits, sh, setup):
        out, status = _forward(setup, means, quats, log_scales, opacity_logits, sh)
        status_t = torch.from_numpy(status)
        ctx.mark_non_differentiable(*out[4:], status_t)
        ctx.save_for_backward(means, quats, log_scales, opacity_logits, sh)
        ctx.setup = setup
        ctx.status = status
        return (*out, status_t)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_means2d, g_conics, g_opacities, g_colors, *_non_differentiable):
        inputs = ctx.saved_tensors
        setup: _Setup = ctx.setup
        dt = inputs[0].dtype
        grads = [torch.empty(t.shape, dtype=dt) for t in inputs]
        upstream = PK.Upstream(*_arrays((g_means2d, g_conics, g_opacities, g_colors), dt))
        PK.project_backward(PK.SceneArrays(*_arrays(inputs, dt)), setup.pose, setup.view, setup.settings, ctx.status,
                            upstream,
                            PK.SceneArrays(*(g.numpy() for g in grads)))
        return (*(g.to(t.dtype) if need else None
                  for g, t, need in zip(grads, inputs, ctx.needs_input_grad[:5], strict=True)), None)


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
    """Project every Gaussian of ``scene`` into ``cam`` (see module docstring). Differentiable.

    Args:
        scene: N Gaussians (float32 or float64 CPU tensors; the result has the same dtype).
        cam: the camera.
        dilation: px^2 added to each 2D covariance.
        mode: "classic" or "antialiased".
        near_plane, far_plane: camera-z culling bounds (scene units).
        sh_degree: evaluate SH only up to this degree (None: all).
        validate_as: if given, raise :class:`SplatupInputError` naming ``validate_as``, the field and the first
            bad Gaussian when a value is NaN or infinite (as ``scene.validate(validate_as)`` does), a quaternion is
            zero or too small to normalise in the scene's dtype (squared norm below its smallest normal number),
            or the SH coefficients in use have a norm above ``project_kernels.SH_NORM_MAX`` (1e6). The kernel
            flags such Gaussians in the pass it makes anyway, so a valid scene costs no second read (SH
            coefficients beyond ``sh_degree``, which the kernel does not read, get a finiteness check of their
            own). Without it an unvalidated scene projects as the module docstring says.
    """
    check_mode(mode, dilation, near_plane, far_plane)
    if scene.dtype not in (torch.float32, torch.float64):
        raise SplatupInputError(f"project: the scene must be float32 or float64, got {scene.dtype}")
    if scene.device.type != "cpu":
        raise SplatupInputError(f"project: the scene must be on the CPU, got device {scene.device}")
    setup = _setup(scene, cam, dilation, mode, near_plane, far_plane, sh_degree)
    inputs = (scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        *out, status_t = _ProjectFunction.apply(*inputs, setup)
        status = status_t.numpy()
    else:
        out, status = _forward(setup, *inputs)
    if validate_as is not None:
        _raise_bad_input(scene, setup.settings.k_act, status, validate_as)
    return Projected(*out)


def _raise_bad_input(scene: Gaussians, k_act: int, status: np.ndarray, source: str) -> None:
    """Raise SplatupInputError naming ``source`` if the kernel flagged a Gaussian (BAD_INPUT) or an SH coefficient
    it did not read (beyond k_act) is not finite. Gaussians.validate names the field and the first bad Gaussian for
    NaN, Inf and zero quaternions; :func:`_flag_reason` explains the kernel's other flags (a quaternion too small to
    normalise, SH coefficients too large). A flag neither explains (a value finite in a mixed-dtype scene's own
    dtype, NaN or Inf once converted to the kernel's dtype) still raises, naming the Gaussian."""
    flagged = _any_bit(status, PK.BAD_INPUT)
    if not flagged and (k_act == scene.sh.shape[1] or all_finite(scene.sh[:, k_act:])):
        return
    scene.validate(source)
    if flagged:
        i = int(np.flatnonzero(np.bitwise_and(status, PK.BAD_INPUT))[0])
        raise SplatupInputError(_flag_reason(scene, k_act, i, source))


def _flag_reason(scene: Gaussians, k_act: int, i: int, source: str) -> str:
    """Why the kernel flagged Gaussian ``i`` of a scene that passed Gaussians.validate, as an error message."""
    dt = scene.means.dtype  # the dtype the projection computes in
    row = [t[i].detach().to(dt) for t in (scene.means, scene.quats, scene.log_scales, scene.opacity_logits,
                                           scene.sh[:, :k_act])]
    if all(bool(torch.isfinite(t).all()) for t in row):
        q = row[1].double()
        norm2 = float((q ** 2).sum())
        tiny = torch.finfo(dt).tiny
        if norm2 < tiny:
            return (f"{source}: field 'quats' (rot_0..rot_3) at Gaussian {i} is {row[1].tolist()}, too small to "
                    f"normalise in {dt} (squared norm {norm2:.3g} below {tiny:.3g}): it gives no rotation; a "
                    f"rotation needs a quaternion of norm above {tiny ** 0.5:.2g} (1 as stored by 3DGS)")
        norm = float(row[4].double().norm())
        if not norm <= PK.SH_NORM_MAX * (1.0 - 1e-5):  # the kernel sums the squares in the scene dtype
            return (f"{source}: field 'sh' at Gaussian {i}: its SH coefficients (the {k_act} in use per channel) "
                    f"have norm {norm:.3g}, above {PK.SH_NORM_MAX:g}; colours are in [0, 1] (trained scenes have "
                    "coefficients of order 1), and coefficients this large make float32 colours, images and "
                    "gradients overflow")
    return (f"{source}: Gaussian {i} has a value that is NaN or infinite in {dt} (the dtype of 'means', which the "
            "projection computes in) or a quaternion that is zero in it")


def _any_bit(status: np.ndarray, bit: int) -> bool:
    """Whether some entry of the uint8 status array has ``bit`` set."""
    return bool(np.bitwise_and(status, bit).any())
