"""Upscalers: the gradient-aware Hermite patch (:func:`upscale`) and the classic baselines (:func:`upscale_classic`).

Modules: ``hermite`` (patch kernels, forward and adjoint, autograd), ``classic`` (nearest, bilinear, bicubic
a = -0.75 / -0.5, Lanczos-3, finite-difference Hermite), ``geometry`` (half-pixel source coordinates and the
periodic tap layout the kernels share), ``util`` (argument checks, chunking).

The public function ``splatup.upscale`` shares its name with this package. Importing any module of the
package binds the attribute ``splatup.upscale`` to the package itself, so the package is made callable:
``splatup.upscale(color, dx, dy, dxy, size=...)`` works whichever of the two the attribute holds.
"""

import sys
import types

from .classic import METHODS as CLASSIC_METHODS
from .classic import upscale_classic
from .hermite import upscale

__all__ = ["CLASSIC_METHODS", "upscale", "upscale_classic"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return upscale(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
