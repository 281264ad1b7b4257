"""Slow, plain-PyTorch reference twins of the fast kernels (the tests' oracle).

They run in the dtype of their inputs (float64 for an oracle), are differentiable by autograd and are
written for clarity, formulated independently of the fast code where the maths allows:

- :func:`project` — EWA projection, culling and SH colour (twin of ``splatup.render.project.project``);
- :func:`composite` — tile lists, depth order, alpha compositing and the image-space derivatives
  dC/dx, dC/dy, d2C/dxdy in closed form (twin of ``splatup.render.composite``), at pixel centres or at
  arbitrary continuous points;
- :func:`render` — both in one call;
- :mod:`splatup.reference.sh` — real SH from the Legendre recurrence (twin of ``splatup.gaussians.eval_sh``);
- :func:`upscale_reference` — the gradient-aware Hermite patch in monomial form (twin of
  ``splatup.upscale.hermite.upscale``);
- :func:`ssim_reference` — the 3DGS SSIM by depthwise conv2d and autograd (twin of ``splatup.metrics.ssim``).
"""

from .composite import composite, depth_order, projected_to, render, tile_ranges
from .hermite import upscale_reference
from .project import project
from .sh import eval_sh, sh_basis, sh_colors
from .ssim import ssim_reference

__all__ = [
    "composite",
    "depth_order",
    "eval_sh",
    "project",
    "projected_to",
    "render",
    "sh_basis",
    "sh_colors",
    "ssim_reference",
    "tile_ranges",
    "upscale_reference",
]
