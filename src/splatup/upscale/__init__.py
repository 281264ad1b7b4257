"""Upscalers: the gradient-aware Hermite patch (:func:`upscale`) and the classic baselines (:func:`upscale_classic`).

Modules: ``hermite`` (patch kernels, forward and adjoint, autograd), ``classic`` (nearest, bilinear, bicubic
a = -0.75 / -0.5, Lanczos-3, finite-difference Hermite), ``geometry`` (half-pixel source coordinates and the
periodic tap layout the kernels share), ``util`` (argument checks, chunking).

The public function ``splatup.upscale`` shares its name with this package; ``splatup/__init__.py`` keeps the
attribute bound to the function.
"""

from .classic import METHODS as CLASSIC_METHODS
from .classic import upscale_classic
from .hermite import upscale

__all__ = ["CLASSIC_METHODS", "upscale", "upscale_classic"]

