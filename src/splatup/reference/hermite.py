"""Reference gradient-aware upscaling: the slow, plain-torch twin of upscale/hermite.py.

Same semantics (DESIGN.md), independent formulation. Per output pixel, gather the 16 patch parameters of its
cell into F [4, 4] (rows: f(x0), f(x1), f_x(x0), f_x(x1); columns the same in y), convert them to monomial
coefficients A = H F H^T and evaluate p(u, v) = [1 u u^2 u^3] A [1 v v^2 v^3]^T, with

    H = C^-1 = [[1, 0, 0, 0], [0, 0, 1, 0], [-3, 3, -2, -1], [2, -2, 1, 1]]   (rows: powers 0..3 of t).

Geometry computed directly in floating point: x = (X + 0.5) w / W - 0.5, cell i = clamp(floor(x), 0, w - 2),
u = x - i (may leave [0, 1] at the border: extrapolation). An axis with one input pixel has no cell: its
"cell" is that pixel twice and its matrix H1 gives the weights (1, 0, t, 0), i.e. f + t f_x.

:func:`upscale` has the signature, argument checks and results of :func:`splatup.upscale`. Runs in the inputs'
dtype (float64 for an oracle), differentiable by autograd. Memory: 16 values per output pixel and channel, so
keep it to small images.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SplatupInputError
from ..upscale.util import check_image, check_out_dtype, check_size

H_CUBIC = ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (-3.0, 3.0, -2.0, -1.0), (2.0, -2.0, 1.0, 1.0))
H_SINGLE = ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))


def _axis(n_out: int, n_in: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left and right corner indices [n_out], monomials [n_out, 4] of the local coordinate, and H [4, 4]."""
    x = (torch.arange(n_out, dtype=torch.float64) + 0.5) * n_in / n_out - 0.5
    if n_in == 1:
        i0 = torch.zeros(n_out, dtype=torch.long)
        i1, t, H = i0, x, H_SINGLE
    else:
        i0 = torch.floor(x).clamp(0, n_in - 2).long()
        i1, t, H = i0 + 1, x - i0, H_CUBIC
    mono = torch.stack([torch.ones_like(t), t, t * t, t * t * t], dim=-1)
    return i0, i1, mono.to(dtype), torch.tensor(H, dtype=dtype)


def hermite_patch(color: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, dxy: torch.Tensor,
                  size: tuple[int, int]) -> torch.Tensor:
    """Hermite upscaling of [B, h, w, C] values and derivatives (low-res pixel units) to size = (H, W), no checks.
    Returns [B, H, W, C] in the inputs' dtype; no clamping."""
    f, fx, fy, fxy = color, dx, dy, dxy
    h, w = f.shape[1], f.shape[2]
    H_out, W_out = size
    jy0, jy1, my, Hy = _axis(H_out, h, f.dtype)
    ix0, ix1, mx, Hx = _axis(W_out, w, f.dtype)

    def at(img: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return img[:, rows][:, :, cols]  # [B, H_out, W_out, C]

    # F[..., a, b]: a over (value at x0, value at x1, x-slope at x0, x-slope at x1), b likewise in y
    F = torch.stack([
        torch.stack([at(f, jy0, ix0), at(f, jy1, ix0), at(fy, jy0, ix0), at(fy, jy1, ix0)], dim=-1),
        torch.stack([at(f, jy0, ix1), at(f, jy1, ix1), at(fy, jy0, ix1), at(fy, jy1, ix1)], dim=-1),
        torch.stack([at(fx, jy0, ix0), at(fx, jy1, ix0), at(fxy, jy0, ix0), at(fxy, jy1, ix0)], dim=-1),
        torch.stack([at(fx, jy0, ix1), at(fx, jy1, ix1), at(fxy, jy0, ix1), at(fxy, jy1, ix1)], dim=-1),
    ], dim=-2)  # [B, H_out, W_out, C, 4, 4]
    A = torch.einsum("pi,nhwcij,qj->nhwcpq", Hx, F, Hy)  # monomial coefficients
    return torch.einsum("wp,nhwcpq,hq->nhwc", mx, A, my)


def to_display(img: torch.Tensor) -> torch.Tensor:
    """The 8-bit display value of a float image, formulated apart from :mod:`splatup._quantize`: round to the
    nearest of the 256 levels (ties to even) in float64 after clamping to [0, 1]. For float32 values the two agree
    exactly (their only tie, 0.5 -> 128, is even)."""
    return torch.round(img.double().clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def upscale(color: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, dxy: torch.Tensor | None, size: tuple[int, int],
            clamp: bool = False, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Gradient-aware Hermite upscaling, twin of :func:`splatup.upscale` (same arguments, checks and result).

    color, dx, dy, dxy: [h, w, C] or [B, h, w, C], one shape and dtype (float32 or float64), derivatives in
    low-res pixel units; dxy None: zeros. size: (H, W). clamp: clip the result to [0, 1]. dtype: None (the
    inputs' dtype) or torch.uint8 (:func:`to_display` of the clamped result). Returns [H, W, C] or [B, H, W, C].
    Non-finite input raises SplatupInputError naming the argument.
    """
    fn = "reference.upscale"
    names = ("color", "dx", "dy", "dxy")
    c4 = check_image(color, "color", fn)
    others = [check_image(t, n, fn, color, "color") for t, n in zip((dx, dy), names[1:3], strict=True)]
    others.append(torch.zeros_like(c4) if dxy is None else check_image(dxy, "dxy", fn, color, "color"))
    H, W = check_size(size, fn)
    if not isinstance(clamp, (bool, np.bool_)):
        raise SplatupInputError(f"{fn}: clamp must be True or False, got {clamp!r}")
    out_dtype = check_out_dtype(dtype, c4.dtype, fn)
    for name, t in zip(names, (c4, *others), strict=True):
        if not bool(torch.isfinite(t).all()):
            raise SplatupInputError(f"{fn}: {name} contains NaN or infinite values")
    out = hermite_patch(c4, *others, (H, W))
    if out_dtype == torch.uint8:
        out = to_display(out.detach())
    elif clamp:
        out = out.clamp(0.0, 1.0)
    return out if color.dim() == 4 else out[0]


upscale_reference = upscale  # old name, kept while tests migrate
