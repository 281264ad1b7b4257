"""One viewer frame: the scene seen by a camera with a method and factor, as 8-bit RGB, with the time of each phase.

The upscaled path is the one of :func:`splatup.render` (a low-resolution render whose screen-space filter matches
the native one, then the upscaler), taken apart so that each phase is timed. The split view renders the left half
natively and the right half with the method through two cameras that crop the full one, so it costs one half of
each instead of two whole frames.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import pipeline
from .._quantize import quantize
from ..camera import Camera
from ..errors import SplatupInputError
from ..gaussians import Gaussians
from ..pipeline import lowres_derivatives, render_lowres, upscale_lowres
from ..render.rasterize import rasterize

PHASES = ("project", "sort", "composite", "upscale", "8-bit")


@dataclass
class Frame:
    """A rendered frame.

    Attributes:
        image: [H, W, 3] uint8 RGB at the camera's size.
        method: the method of the (right half of the) image.
        factor: the factor used; 1 means a native render.
        lowres: (width, height) of the low-resolution render of the upscaled part, or None for a native frame.
        phases: seconds per phase (:data:`PHASES`), summed over both halves of a split frame.
        scaled_s: seconds whose cost goes as 1 / factor^2: the compositing of the part rendered at the factor (the
            dynamic-resolution controller's ``b / s^2`` term).
    """

    image: np.ndarray
    method: str
    factor: float
    lowres: tuple[int, int] | None
    phases: dict[str, float] = field(default_factory=dict)
    scaled_s: float = 0.0


def render_frame(
    scene: Gaussians,
    cam: Camera,
    method: str,
    factor: float,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    split: bool = False,
) -> Frame:
    """Render ``scene`` for ``cam`` with ``method`` at ``factor`` (>= 1; <= 1 or "native" renders natively; capped
    at the image's width and height).

    With ``split`` the left floor(W/2) columns are native and the rest ``method``; column floor(W/2) - 1 is drawn
    as a divider in the colour opposite to the background.
    """
    if method not in pipeline.METHODS:
        raise SplatupInputError(f"view: method must be one of {', '.join(pipeline.METHODS)}; got {method!r}")
    phases = dict.fromkeys(PHASES, 0.0)
    with torch.no_grad():
        if split and cam.width >= 2:
            x0 = cam.width // 2
            left, _, _, _ = _render_part(scene, crop_columns(cam, 0, x0), "native", 1.0, background, phases)
            right, lowres, scaled, used = _render_part(scene, crop_columns(cam, x0, cam.width), method, factor,
                                                       background, phases)
            image = np.concatenate([left, right], axis=1)
            image[:, x0 - 1] = to_uint8(1.0 - torch.as_tensor(background, dtype=torch.float32))
        else:
            image, lowres, scaled, used = _render_part(scene, cam, method, factor, background, phases)
    return Frame(image=image, method=method, factor=used, lowres=lowres, phases=phases, scaled_s=scaled)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """Float values in [0, 1] -> uint8 numpy by splatup's one 8-bit rule (splatup._quantize: what image files
    and ``render(..., dtype=torch.uint8)`` get)."""
    return quantize(img.detach().numpy())


def crop_columns(cam: Camera, x0: int, x1: int) -> Camera:
    """The camera that sees columns [x0, x1) of ``cam``'s image: same pose and focal lengths, principal point
    moved by -x0. Pixel (i, j) of the crop is pixel (i + x0, j) of ``cam``."""
    K = cam.K.clone()
    K[0, 2] -= x0
    return Camera(cam.world_to_camera.clone(), K, x1 - x0, cam.height)


def _render_part(scene, cam, method, factor, background, phases):
    """Image [H, W, 3] uint8 numpy, low-res size or None, the seconds that scale as 1/factor^2 and the factor
    used; adds to ``phases``. An upscaled image is written in 8 bits by the upscaler itself (fused; its time is
    the "upscale" phase); a native one is quantised after rasterizing (the "8-bit" phase). The factor is capped at
    the image's width and height (a tiny canvas still keeps 1 low-res pixel)."""
    factor = min(float(factor), cam.width, cam.height)
    if method == "native" or factor <= 1.0:
        out = rasterize(scene, cam, background=background)
        _add_raster_phases(phases, out.timings)
        t0 = time.perf_counter()
        image = to_uint8(out.color)
        phases["8-bit"] += time.perf_counter() - t0
        return image, None, out.timings.get("composite", 0.0), 1.0
    out, lr = render_lowres(scene, cam, factor, derivatives=lowres_derivatives(method), background=background)
    _add_raster_phases(phases, out.timings)
    t0 = time.perf_counter()
    image = upscale_lowres(out, (cam.height, cam.width), method, dtype=torch.uint8).numpy()
    phases["upscale"] += time.perf_counter() - t0
    return image, (lr.width, lr.height), out.timings.get("composite", 0.0), factor


def _add_raster_phases(phases: dict[str, float], timings: dict[str, float]) -> None:
    phases["project"] += timings.get("project", 0.0)
    phases["sort"] += timings.get("bin_sort", 0.0)
    phases["composite"] += timings.get("composite", 0.0)
