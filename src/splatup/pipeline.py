"""``render()``: the main job in one call, from scene and camera to the full-size image.

For a factor s the scene is rasterized at ``cam.scaled(1 / s)`` (floor(W/s) x floor(H/s), same pose and field of
view) and upscaled to the camera's size. The low-resolution render keeps the native image's screen-space filter:
its dilation is 0.3 / (s_x s_y) low-res px^2 (= 0.3 native px^2), so it point-samples the same continuous image
the native render samples and the exact derivatives carry the detail between the samples (DESIGN.md). Every
method upscales the same low-resolution colour image; "hermite" also uses its derivative images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .camera import Camera
from .errors import SplatupInputError
from .gaussians import Gaussians
from .render.project import DEFAULT_DILATION
from .render.rasterize import RasterOutput, rasterize
from .upscale.classic import METHODS as CLASSIC_METHODS

METHODS = ("native", "hermite") + CLASSIC_METHODS


def check_method(method: str) -> None:
    if method not in METHODS:
        raise SplatupInputError(f"render: method must be one of {', '.join(METHODS)}; got {method!r}")


def lowres_camera(cam: Camera, scale: float) -> Camera:
    """The 1/scale camera: same pose and field of view, floor(W/scale) x floor(H/scale) pixels."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 1:
        raise SplatupInputError(f"render: scale must be a finite number >= 1 (the upscaling factor), got {scale!r}")
    return cam.scaled(1.0 / scale)


def matched_dilation(cam: Camera, lr: Camera, native_dilation: float = DEFAULT_DILATION) -> float:
    """Low-res px^2 that equal ``native_dilation`` native px^2: native / (s_x s_y), s_x = W / W_lr."""
    return native_dilation * (lr.width / cam.width) * (lr.height / cam.height)


def render_lowres(
    scene: Gaussians,
    cam: Camera,
    scale: float,
    derivatives: bool = True,
    background: Sequence[float] | float | None = (0.0, 0.0, 0.0),
    lowres_dilation: float | str = "matched",
    mode: str = "classic",
    native_dilation: float = DEFAULT_DILATION,
    sh_degree: int | None = None,
) -> tuple[RasterOutput, Camera]:
    """Rasterize at 1/scale. ``lowres_dilation``: "matched" (0.3 native px^2, the default), "usual" (0.3 low-res
    px^2, what a plain 3DGS renderer would do at that size; for ablations) or a number of low-res px^2.
    ``sh_degree`` limits the SH degree evaluated (training's schedule)."""
    lr = lowres_camera(cam, scale)
    if lowres_dilation == "matched":
        dil = matched_dilation(cam, lr, native_dilation)
    elif lowres_dilation == "usual":
        dil = native_dilation
    elif isinstance(lowres_dilation, (int, float)) and not isinstance(lowres_dilation, bool):
        dil = float(lowres_dilation)
    else:
        raise SplatupInputError(
            f"render: lowres_dilation must be 'matched', 'usual' or a number of px^2, got {lowres_dilation!r}"
        )
    out = rasterize(scene, lr, derivatives=derivatives, background=background, dilation=dil, mode=mode,
                    sh_degree=sh_degree)
    return out, lr


def upscale_lowres(out: RasterOutput, size: tuple[int, int], method: str, clamp: bool = True) -> torch.Tensor:
    """Upscale a low-resolution render to ``size`` = (H, W) with ``method`` (needs out.dx etc. for "hermite")."""
    from .upscale.classic import upscale_classic
    from .upscale.hermite import upscale

    check_method(method)
    if method == "native":
        raise SplatupInputError("upscale_lowres: 'native' is not an upscaling method")
    if method == "hermite":
        if out.dx is None:
            raise SplatupInputError("upscale_lowres: 'hermite' needs a render with derivatives=True")
        return upscale(out.color, out.dx, out.dy, out.dxy, size=size, clamp=clamp)
    img = upscale_classic(out.color, size=size, method=method)
    return img.clamp(0.0, 1.0) if clamp else img


def render(
    scene: Gaussians,
    cam: Camera,
    scale: float = 2.0,
    method: str = "hermite",
    background: Sequence[float] | float | None = (0.0, 0.0, 0.0),
    lowres_dilation: float | str = "matched",
    mode: str = "classic",
    clamp: bool = True,
) -> torch.Tensor:
    """The image of ``scene`` seen by ``cam`` at the camera's full size, [H, W, 3] float32.

    Args:
        scale: upscaling factor s >= 1 (fractional allowed); ignored for method "native".
        method: "native" (rasterize at full size), "hermite" (gradient-aware), or a classic upscaler of the same
            low-res render: "fd-hermite", "bicubic", "bicubic-pil", "bilinear", "lanczos", "nearest".
        background: RGB behind the scene.
        lowres_dilation: screen-space filter of the low-res render, see :func:`render_lowres`.
        mode: "classic" or "antialiased" rasterization.
        clamp: clip the upscaled image to [0, 1] (display); False keeps it differentiable everywhere (training).
    """
    check_method(method)
    if method == "native":
        return rasterize(scene, cam, background=background, mode=mode).color
    out, _ = render_lowres(scene, cam, scale, derivatives=(method == "hermite"), background=background,
                           lowres_dilation=lowres_dilation, mode=mode)
    return upscale_lowres(out, (cam.height, cam.width), method, clamp=clamp)
