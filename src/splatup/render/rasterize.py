"""``rasterize()``: scene + camera -> colour, alpha, depth and (optionally) exact image derivatives.

Phases: projection (numba, differentiable), binning and depth sort (numba), compositing (numba, wrapped
in a ``torch.autograd.Function``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians
from . import composite as K
from . import composite_backward as KB
from .lanes import TILE
from .project import DEFAULT_DILATION, DEFAULT_FAR, DEFAULT_NEAR, Projected, project
from .tiles import TILE_SIZE, TileBins, bin_gaussians

SCENE_NAME = "rasterize: scene"  # how errors name the scene argument


@dataclass
class RasterOutput:
    """What :func:`rasterize` returns. Images are HWC float32.

    color [H, W, 3] (background included); alpha [H, W, 1] = 1 - final transmittance; depth [H, W, 1]
    expected camera depth of the visible surface (sum w z / alpha, 0 where alpha = 0); dx, dy, dxy
    [H, W, 3] dC/dx, dC/dy, d2C/dxdy in pixels of this image (+x right, +y down), or None without
    derivatives. means2d [N, 2] and radii [N] (px) come from the projection (densification uses them);
    visible [N] bool; n_pairs the number of tile-Gaussian pairs; timings seconds per phase.
    """

    color: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    dx: torch.Tensor | None
    dy: torch.Tensor | None
    dxy: torch.Tensor | None
    means2d: torch.Tensor
    radii: torch.Tensor
    visible: torch.Tensor
    n_pairs: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def parse_background(background: Sequence[float] | torch.Tensor | float | None) -> np.ndarray:
    """Background colour as float32 [3]; accepts None (black), a scalar or three values, each in [0, 1].

    Colours are fractions of full intensity, as the images are (a background beyond that range is almost always
    a 0-255 value, and 1e38 made the gradients NaN); the command line's ``--background`` has the same rule."""
    expected = "rasterize: background must be 3 values in [0, 1] (RGB fractions of full intensity)"
    if background is None:
        return np.zeros(3, np.float32)
    try:
        arr = np.asarray(
            background.detach().cpu().numpy() if isinstance(background, torch.Tensor) else background, np.float64
        )
    except (TypeError, ValueError) as e:
        raise SplatupInputError(f"{expected}, got {background!r}") from e
    if arr.ndim == 0:
        arr = np.full(3, float(arr))
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise SplatupInputError(f"{expected}, got {background!r}")
    if not ((arr >= 0.0) & (arr <= 1.0)).all():
        hint = " (not 0-255 values)" if arr.max() > 1.0 else ""
        raise SplatupInputError(f"{expected}{hint}, got {arr.tolist()}")
    return arr.astype(np.float32)


def _f32(x: torch.Tensor) -> np.ndarray:
    """Detached, contiguous float32 numpy view (a copy only when the dtype or layout differ)."""
    return x.detach().to(torch.float32).contiguous().numpy()


class _Composite(torch.autograd.Function):
    """Compositing as an autograd node. Inputs are per-Gaussian float32 tensors; the tile lists ride along.

    forward(means2d [N, 2], conics [N, 3], opacities [N], colors [N, 3], depths [N], bins, width, height,
    bg (float32 [3] numpy), variant) -> color [H, W, 3], alpha [H, W, 1], expected depth [H, W, 1] (not
    differentiable), dx, dy, dxy [H, W, 3] (empty in the plain variant; dxy zeros in the first-order one).

    backward: :func:`.composite_backward.composite_backward` replays the forward per lane block and sweeps back
    to front, writing one gradient row [mx, my, a, b, c, o, r, g, b] per list entry; a parallel pass over ranges
    of Gaussian ids sums them per Gaussian. Upstream gradients of colour, alpha and (with derivatives) dx, dy,
    dxy are used; an output the loss does not use arrives as None and costs nothing; the expected depth is not
    differentiable. The forward keeps its float32 input arrays (views of the inputs when those are float32) for
    the replay.
    """

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, depths, bins, width, height, bg, variant):
        H, W = height, width
        if bins.tile_size != TILE:
            raise SplatupInputError(f"rasterize: tile size must be {TILE}, got {bins.tile_size}")
        arrs = [_f32(x) for x in (means2d, conics, opacities, colors, depths)]
        splats = K.Splats(*arrs, bins.reach)
        lists = K.TileLists(bins.offsets, bins.gids, bins.tiles_x)
        frame = K.Frame(W, H, bg)
        color = torch.empty(H, W, 3)
        alpha = torch.empty(H, W, 1)
        depth = torch.empty(H, W, 1)
        if variant != K.PLAIN:
            dx, dy, dxy = torch.empty(H, W, 3), torch.empty(H, W, 3), torch.empty(H, W, 3)
        else:
            dx = dy = dxy = torch.empty(0, 0, 3)
        images = K.Images(color.numpy(), alpha.numpy()[..., 0], depth.numpy()[..., 0], dx.numpy(), dy.numpy(),
                          dxy.numpy())
        K.composite_forward(splats, lists, frame, images, variant)
        ctx.mark_non_differentiable(depth)
        ctx.set_materialize_grads(False)  # unused outputs reach backward as None, not as zero-filled images
        ctx.save_for_backward(means2d, conics, opacities, colors)
        ctx.splats = splats  # float32 views (or copies, for other dtypes): the backward replays these values
        ctx.lists = lists
        ctx.frame = frame
        ctx.n_pairs = bins.n_pairs
        ctx.gids = bins.gids
        ctx.variant = variant
        if variant == K.PLAIN:
            dx = dy = dxy = torch.empty(0)
        return color, alpha, depth, dx, dy, dxy

    @staticmethod
    def backward(ctx, g_color, g_alpha, g_depth, g_dx, g_dy, g_dxy):
        means2d, conics, opacities, colors = ctx.saved_tensors  # (checks that no input was modified in place)
        rows = torch.empty(ctx.n_pairs, KB.NGRAD)
        # alpha = 1 - T_final: the kernels take the gradient of the final transmittance
        gt = _upstream(g_alpha)
        gt = np.ascontiguousarray(-gt[..., 0]) if gt.size else np.empty((0, 0), np.float32)
        derivs = ctx.variant != K.PLAIN
        none = np.empty((0, 0, 3), np.float32)
        up = KB.Upstream(_upstream(g_color), gt, _upstream(g_dx) if derivs else none,
                         _upstream(g_dy) if derivs else none, _upstream(g_dxy) if derivs else none)
        KB.composite_backward(ctx.splats, ctx.lists, ctx.frame, up, rows.numpy(), ctx.variant)
        n = means2d.shape[0]
        g_means, g_conics, g_opac, g_colors = torch.empty(n, 2), torch.empty(n, 3), torch.empty(n), torch.empty(n, 3)
        KB.sum_rows_by_gaussian(ctx.gids, rows.numpy(), 2 * numba.get_num_threads(), g_means.numpy(),
                                g_conics.numpy(), g_opac.numpy(), g_colors.numpy())
        need = ctx.needs_input_grad
        g_means = g_means.to(means2d.dtype) if need[0] else None
        g_conics = g_conics.to(conics.dtype) if need[1] else None
        g_opac = g_opac.to(opacities.dtype) if need[2] else None
        g_colors = g_colors.to(colors.dtype) if need[3] else None
        return g_means, g_conics, g_opac, g_colors, None, None, None, None, None, None


def _upstream(g: torch.Tensor | None) -> np.ndarray:
    """An upstream gradient [H, W, C] as a contiguous float32 array; absent (None or empty) as an empty
    [0, 0, 0] array, which the kernels read as zero (no zero-filled image is made)."""
    if g is None or g.numel() == 0:
        return np.empty((0, 0, 0), np.float32)
    return _f32(g)


def _check_scene_type(scene: Gaussians) -> None:
    if not isinstance(scene, Gaussians):
        raise SplatupInputError(f"rasterize: scene must be a splatup.Gaussians, got {type(scene).__name__}")


def derivatives_variant(derivatives: bool | str) -> int:
    """The compositing variant for rasterize's ``derivatives`` argument: False, True or "first"."""
    if isinstance(derivatives, str):
        if derivatives == "first":
            return K.FIRST
    elif isinstance(derivatives, (bool, np.bool_)):
        return K.SECOND if derivatives else K.PLAIN
    raise SplatupInputError(f"rasterize: derivatives must be True, False or 'first', got {derivatives!r}")


def rasterize(
    scene: Gaussians,
    cam: Camera,
    derivatives: bool | str = False,
    background: Sequence[float] | torch.Tensor | float | None = (0.0, 0.0, 0.0),
    dilation: float = DEFAULT_DILATION,
    mode: str = "classic",
    near_plane: float = DEFAULT_NEAR,
    far_plane: float = DEFAULT_FAR,
    sh_degree: int | None = None,
) -> RasterOutput:
    """Render ``scene`` from ``cam``.

    Args:
        scene: the Gaussians (float32; float64 scenes are converted).
        cam: camera (size, pose, intrinsics).
        derivatives: True: also return dC/dx, dC/dy and d2C/dxdy; "first": dC/dx and dC/dy (exact, as with True)
            and d2C/dxdy as zeros, which costs less; False: none.
        background: RGB in [0, 1] added as T_final * bg (and bg * T_x, ... to the derivatives).
        dilation: px^2 of this camera added to each 2D covariance: 0.3 for a native render,
            0.3 / s^2 for the 1/s render that is upscaled by s (see DESIGN.md).
        mode: "classic" or "antialiased" (opacity x sqrt(det S / det(S + dilation I)), as gsplat).
        near_plane, far_plane: depth culling bounds in scene units.
        sh_degree: evaluate SH up to this degree only (None: the scene's degree).

    Raises:
        SplatupInputError: naming the argument, or for the scene the field and the first bad Gaussian, if a value
            is NaN or infinite, a quaternion is zero or too small to normalise in float32 (norm below 1.1e-19), or
            the SH coefficients in use have a norm above 1e6 (colours are in [0, 1]; far larger ones overflow
            float32 compositing and its gradients).
    """
    if not isinstance(cam, Camera):
        raise SplatupInputError(f"rasterize: cam must be a splatup.Camera, got {type(cam).__name__}")
    _check_scene_type(scene)
    variant = derivatives_variant(derivatives)
    bg = parse_background(background)
    original_dtype = scene.dtype
    if scene.dtype != torch.float32:
        scene.validate(SCENE_NAME)  # the caller's values, before the conversion
        scene = scene.to(torch.float32)
        # values beyond float32's range become +-Inf and tiny quaternions zero: say so rather than cull silently
        scene.validate(f"{SCENE_NAME} (converted from {original_dtype} to float32, which the kernels use)")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # the projection kernel checks the scene for NaN / Inf and zero quaternions as it reads it (validate_as)
    proj: Projected = project(scene, cam, dilation=dilation, mode=mode, near_plane=near_plane,
                              far_plane=far_plane, sh_degree=sh_degree, validate_as=SCENE_NAME)
    t1 = time.perf_counter()
    # the projection kernel already applied tiles.contribution_extents' opacity-aware rule
    bins: TileBins = bin_gaussians(proj.means2d.detach().numpy(), proj.bin_extents.numpy(), proj.depths.numpy(),
                                   proj.alive.numpy(), cam.width, cam.height, TILE_SIZE, proj.reach.numpy(),
                                   proj.tile_rects.numpy())
    t2 = time.perf_counter()
    color, alpha, depth, dx, dy, dxy = _Composite.apply(
        proj.means2d, proj.conics, proj.opacities, proj.colors, proj.depths.detach(), bins,
        cam.width, cam.height, bg, variant,
    )
    t3 = time.perf_counter()
    timings.update(project=t1 - t0, bin_sort=t2 - t1, composite=t3 - t2, total=t3 - t0)
    return RasterOutput(
        color=color,
        alpha=alpha,
        depth=depth,
        dx=dx if variant != K.PLAIN else None,
        dy=dy if variant != K.PLAIN else None,
        dxy=dxy if variant != K.PLAIN else None,
        means2d=proj.means2d,
        radii=proj.radii,
        visible=proj.visible,
        n_pairs=bins.n_pairs,
        timings=timings,
    )
