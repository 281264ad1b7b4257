"""``render()``: the main job in one call, from scene and camera to the full-size image.

For a factor s the scene is rasterized at ``cam.scaled(1 / s)`` (floor(W/s) x floor(H/s), same pose and field of
view) and upscaled to the camera's size. The low-resolution render keeps the native image's screen-space filter:
its dilation is 0.3 / (s_x s_y) low-res px^2 (= 0.3 native px^2), so it point-samples the same continuous image
the native render samples and the exact derivatives carry the detail between the samples (DESIGN.md). Every
method upscales the same low-resolution colour image; "hermite" also uses its derivative images, "hermite-first"
only dC/dx and dC/dy (rendered with ``derivatives="first"``; the patch takes d2C/dxdy = 0).

``dtype=torch.uint8`` gives the display image, 8-bit RGB by floor(255 clamp(v, 0, 1) + 0.5)
(:mod:`splatup._quantize`, the rule of every image file splatup writes): fused into the upscaler's kernel for every
upscaling method (each row quantised as it is evaluated, no full-size float image), quantised after rasterizing for
"native".
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

METHODS = ("native", "hermite", "hermite-first") + CLASSIC_METHODS
#: the ``derivatives`` of the low-res render each method upscales from (the others use only its colour)
METHOD_DERIVATIVES: dict[str, bool | str] = {"hermite": True, "hermite-first": "first"}
OUTPUT_DTYPES = (torch.float32, torch.uint8)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise SplatupInputError(f"render: method must be one of {', '.join(METHODS)}; got {method!r}")


def lowres_derivatives(method: str) -> bool | str:
    """``derivatives`` for the low-res render that ``method`` upscales: True, "first" or False."""
    check_method(method)
    return METHOD_DERIVATIVES.get(method, False)


def check_dtype(dtype) -> torch.dtype:
    """render's output dtype: torch.float32 or torch.uint8, else SplatupInputError naming ``dtype``."""
    if not isinstance(dtype, torch.dtype) or dtype not in OUTPUT_DTYPES:
        raise SplatupInputError(f"render: dtype must be torch.float32 (the image) or torch.uint8 (8-bit display "
                                f"output), got {dtype!r}")
    return dtype


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


def upscale_lowres(out: RasterOutput, size: tuple[int, int], method: str, clamp: bool = True,
                   dtype: torch.dtype | None = None) -> torch.Tensor:
    """Upscale a low-resolution render to ``size`` = (H, W) with ``method`` (needs out.dx, out.dy for "hermite" and
    "hermite-first", also out.dxy for "hermite"). ``dtype``: None (the render's float dtype) or torch.uint8 (8-bit,
    quantised in the upscaler; clamp implied)."""
    from .upscale.classic import upscale_classic
    from .upscale.hermite import upscale

    check_method(method)
    if method == "native":
        raise SplatupInputError("upscale_lowres: 'native' is not an upscaling method")
    if method in METHOD_DERIVATIVES:
        if out.dx is None:
            raise SplatupInputError(f"upscale_lowres: {method!r} needs a render with derivatives="
                                    f"{METHOD_DERIVATIVES[method]!r}")
        dxy = out.dxy if method == "hermite" else None
        return upscale(out.color, out.dx, out.dy, dxy, size=size, clamp=clamp, dtype=dtype)
    img = upscale_classic(out.color, size=size, method=method, dtype=dtype)
    return img.clamp(0.0, 1.0) if clamp and img.is_floating_point() else img


def render(
    scene: Gaussians,
    cam: Camera,
    scale: float = 2.0,
    method: str = "hermite",
    background: Sequence[float] | float | None = (0.0, 0.0, 0.0),
    lowres_dilation: float | str = "matched",
    mode: str = "classic",
    clamp: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The image of ``scene`` seen by ``cam`` at the camera's full size, [H, W, 3].

    Args:
        scale: upscaling factor s >= 1 (fractional allowed); ignored for method "native".
        method: "native" (rasterize at full size), "hermite" (gradient-aware), "hermite-first" (the same patch from
            a cheaper low-res render with dC/dx and dC/dy only, d2C/dxdy = 0), or a classic upscaler of the same
            low-res render: "fd-hermite", "bicubic", "bicubic-pil", "bilinear", "lanczos", "nearest".
        background: RGB behind the scene.
        lowres_dilation: screen-space filter of the low-res render, see :func:`render_lowres`.
        mode: "classic" or "antialiased" rasterization.
        clamp: clip the upscaled image to [0, 1] (display); False keeps it differentiable everywhere (training).
        dtype: torch.float32 (the image) or torch.uint8: 8-bit RGB for display, floor(255 clamp(v, 0, 1) + 0.5),
            the same bytes as writing the float image to a PNG; written by the upscaler's kernel row by row
            (quantised after rasterizing for "native"); always clamped, not differentiable.
    """
    check_method(method)
    dtype = check_dtype(dtype)
    if method == "native":
        color = rasterize(scene, cam, background=background, mode=mode).color
        if dtype == torch.uint8:
            from ._quantize import quantize

            return torch.from_numpy(quantize(color.detach().numpy()))
        return color
    out, _ = render_lowres(scene, cam, scale, derivatives=lowres_derivatives(method), background=background,
                           lowres_dilation=lowres_dilation, mode=mode)
    return upscale_lowres(out, (cam.height, cam.width), method, clamp=clamp, dtype=dtype)
