"""Reference ``rasterize``: the slow, plain-torch twin of :func:`splatup.rasterize`, returning a RasterOutput.

Same signature, argument checks and :class:`~splatup.render.rasterize.RasterOutput` fields as the fast
function, built from :func:`splatup.reference.project.project` (EWA projection, culling, SH colour, binning
data), :func:`splatup.reference.tiles.bin_gaussians` (depth order, 3-sigma tile ranges) and
:func:`splatup.reference.composite.composite` (alpha compositing and the closed-form derivatives). Unlike the
fast path it computes in the scene's dtype (float64 for an oracle) instead of converting to float32, and
everything but ``depth`` is differentiable by torch autograd, so a test can pair each output and each
gradient of ``su.rasterize`` with this one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians
from ..render.project import DEFAULT_DILATION, DEFAULT_FAR, DEFAULT_NEAR
from ..render.rasterize import RasterOutput, parse_background
from .composite import composite, derivative_order
from .project import project
from .tiles import bin_gaussians, pair_count

FN = "reference.rasterize"


def background_tensor(background: Sequence[float] | torch.Tensor | float | None, dtype: torch.dtype) -> torch.Tensor:
    """``background`` as [3] in ``dtype``, accepting what :func:`splatup.render.rasterize.parse_background`
    accepts (None, a scalar or three finite values; its error otherwise), without its float32 rounding."""
    parse_background(background)  # the checks and the error message of the fast path
    if background is None:
        return torch.zeros(3, dtype=dtype)
    value = background.detach().cpu() if isinstance(background, torch.Tensor) else background
    return torch.as_tensor(value, dtype=torch.float64).reshape(-1).expand(3).to(dtype)


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
    """Render ``scene`` from ``cam`` with the reference twins, in the scene's dtype.

    Args:
        scene: the Gaussians (any floating dtype; results come in it).
        cam: camera (size, pose, intrinsics).
        derivatives: True (dC/dx, dC/dy, d2C/dxdy), "first" (dC/dx, dC/dy exact; dxy returned as zeros) or
            False (dx, dy, dxy None).
        background: RGB added as T_final * bg (and bg * T_x, ... to the derivatives).
        dilation: px^2 of this camera added to each 2D covariance (0.3 native; 0.3 / s^2 for a 1/s render).
        mode: "classic" or "antialiased".
        near_plane, far_plane: depth culling bounds in scene units.
        sh_degree: evaluate SH up to this degree only (None: the scene's degree).

    Returns:
        :class:`~splatup.render.rasterize.RasterOutput`: color, dx, dy, dxy [H, W, 3], alpha, depth [H, W, 1]
        (depth detached, as the fast path's), means2d [N, 2], radii [N], visible [N] of the projection,
        n_pairs the tile-Gaussian pairs the fast binning lists (opacity-aware tile ranges of the Gaussians
        that can reach alpha 1/255), timings seconds per phase (project, bin_sort, composite, total).
    """
    if not isinstance(cam, Camera):
        raise SplatupInputError(f"{FN}: cam must be a splatup.Camera, got {type(cam).__name__}")
    if not isinstance(scene, Gaussians):
        raise SplatupInputError(f"{FN}: scene must be a splatup.Gaussians, got {type(scene).__name__}")
    order = derivative_order(derivatives, FN)
    bg = background_tensor(background, scene.dtype)
    t0 = time.perf_counter()
    proj = project(scene, cam, dilation=dilation, mode=mode, near_plane=near_plane, far_plane=far_plane,
                   sh_degree=sh_degree, validate_as=f"{FN}: scene")
    t1 = time.perf_counter()
    bins = bin_gaussians(proj, cam.width, cam.height)
    t2 = time.perf_counter()
    out = composite(proj, cam.width, cam.height, background=bg, derivatives=derivatives, bins=bins)
    t3 = time.perf_counter()
    return RasterOutput(
        color=out["color"],
        alpha=out["alpha"],
        depth=out["depth"].detach(),
        dx=out["dx"] if order else None,
        dy=out["dy"] if order else None,
        dxy=out["dxy"] if order else None,
        means2d=proj.means2d,
        radii=proj.radii,
        visible=proj.visible,
        n_pairs=pair_count(proj.tile_rects),
        timings={"project": t1 - t0, "bin_sort": t2 - t1, "composite": t3 - t2, "total": t3 - t0},
    )
