"""Slow, plain-PyTorch reference twins of the fast functions: the tests' oracle.

Each twin has the name, signature, argument checks and return type of the fast function it checks, so a test
calls both with the same arguments and compares field by field:

- :func:`rasterize` -> :class:`~splatup.render.rasterize.RasterOutput`, twin of ``splatup.rasterize``
  (``derivatives`` True, False or "first": dC/dx, dC/dy exact, d2C/dxdy zeros);
- :func:`project` -> :class:`~splatup.render.project.Projected`, twin of ``splatup.render.project.project``;
- :func:`upscale`, twin of ``splatup.upscale`` (the Hermite patch in monomial form);
- :func:`upscale_classic`, twin of ``splatup.upscale_classic`` (explicit separable convolution matrices);
- :func:`ssim`, twin of ``splatup.metrics.ssim`` (depthwise conv2d);
- :func:`eval_sh`, twin of ``splatup.gaussians.eval_sh`` (basis from the Legendre recurrence).

The twins run in the dtype of their inputs (float64 for an oracle, where the fast code computes in float32),
are differentiable by torch autograd, and are formulated independently of the fast code where the maths
allows: a shared mistake would pass every pairing, so the two sides share only constants and argument checks.

Building blocks that tests also use directly: :func:`composite` (compositing at pixel centres or at arbitrary
points, with the per-entry decision trace), :func:`projected_to`, :func:`tile_ranges`, :func:`depth_order`.
Old names kept as aliases while the tests migrate: :func:`render` (project + composite as a dict),
``upscale_reference`` (= :func:`upscale`), ``ssim_reference`` (= :func:`ssim`).
"""

from .classic import upscale_classic
from .composite import composite, projected_to, render
from .hermite import upscale, upscale_reference
from .project import project
from .rasterize import rasterize
from .sh import eval_sh, sh_basis, sh_colors
from .ssim import ssim, ssim_reference
from .tiles import depth_order, tile_ranges

__all__ = [
    "composite",
    "depth_order",
    "eval_sh",
    "project",
    "projected_to",
    "rasterize",
    "render",
    "sh_basis",
    "sh_colors",
    "ssim",
    "ssim_reference",
    "tile_ranges",
    "upscale",
    "upscale_classic",
    "upscale_reference",
]
