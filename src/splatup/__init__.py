"""splatup: fast CPU rendering of 3D Gaussian Splatting scenes with gradient-aware upscaling.

Public API (see DESIGN.md)::

    import splatup as su
    scene = su.load_scene("scene.ply")                  # INRIA .ply or antimatter15 .splat
    cam = su.Camera.look_at(eye, target, up, fov_x_deg, width, height)
    out = su.rasterize(scene, cam, derivatives=True)    # colour, alpha, depth, dC/dx, dC/dy, d2C/dxdy
    img = su.upscale(out.color, out.dx, out.dy, out.dxy, size=(H, W))
    img = su.render(scene, cam, scale=2, method="hermite")
    # also: rasterize(..., derivatives="first") -> dC/dx, dC/dy only (dxy zeros); upscale(..., dxy=None);
    # render(..., method="hermite-first"); render / upscale / upscale_classic(..., dtype=torch.uint8) -> 8-bit RGB

Names are imported lazily so that ``import splatup`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import TYPE_CHECKING, Any

# numba's and torch's OpenMP thread pools (both GNU libgomp) share the cores. By default an idle pool's threads spin
# for 300,000 iterations and starve the other pool (measured on 2 busy cores: a training step 5 s instead of 0.4 s);
# fully passive waiting instead makes every small torch op pay a thread wake-up (projection 3x slower). A short spin
# is the measured middle ground. It takes effect only if set before the OpenMP runtime loads, i.e. when splatup is
# imported before torch, and only if the user has not chosen a policy.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

from ._malloc import tune_malloc  # noqa: E402  (after the OpenMP policy; see its docstring)

MALLOC_TUNED = tune_malloc()

__version__ = "0.1.0"

_EXPORTS = {
    "Gaussians": "splatup.gaussians",
    "Camera": "splatup.camera",
    "load_scene": "splatup.io",
    "save_ply": "splatup.io",
    "rasterize": "splatup.render.rasterize",
    "RasterOutput": "splatup.render.rasterize",
    "upscale": "splatup.upscale.hermite",
    "upscale_classic": "splatup.upscale.classic",
    "render": "splatup.pipeline",
    "SplatupInputError": "splatup.errors",
    "SceneFormatError": "splatup.errors",
}

_SUBMODULES = {"gaussians", "camera", "io", "render", "upscale", "reference", "metrics", "train", "bench", "pipeline",
               "errors", "cli"}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"splatup.{name}")
    raise AttributeError(f"module 'splatup' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


# ``render`` and ``upscale`` are public functions and also subpackages (render/, upscale/). Importing a submodule
# makes Python bind the subpackage as an attribute of its parent, which would hide the function; this module
# class ignores that binding for those two names (the subpackages stay importable through sys.modules, e.g.
# ``from splatup.render import rasterize`` or ``import splatup.upscale.hermite``).
_FUNCTIONS_OVER_SUBPACKAGES = {"render", "upscale"}


class _SplatupModule(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS_OVER_SUBPACKAGES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _SplatupModule


if TYPE_CHECKING:  # pragma: no cover
    from .camera import Camera  # noqa: F401
    from .errors import SceneFormatError, SplatupInputError  # noqa: F401
    from .gaussians import Gaussians  # noqa: F401
    from .io import load_scene, save_ply  # noqa: F401
    from .pipeline import render  # noqa: F401
    from .render.rasterize import RasterOutput, rasterize  # noqa: F401
    from .upscale.classic import upscale_classic  # noqa: F401
    from .upscale.hermite import upscale  # noqa: F401
