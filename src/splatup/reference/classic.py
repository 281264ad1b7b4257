"""Reference classic resamplers: the plain-torch twin of :func:`splatup.upscale_classic`.

Each method is written as an explicit separable convolution: per axis, a dense [n_out, n_in] matrix whose row X
holds the kernel weights k(x - j) of the input pixels j around the sample point x = (X + 0.5) n_in / n_out - 0.5,
taps outside the image added to the edge pixel (replicated border), and the image resampled as M_y I M_x^T.
Kernels, from their definitions: nearest (pixel floor(x + 0.5)), bilinear (tent), Keys cubic convolution with
a = -0.75 ("bicubic") and a = -0.5 ("bicubic-pil"), Lanczos-3 with weights normalised to sum 1 ("lanczos");
"fd-hermite" is :func:`splatup.reference.hermite.upscale` fed with ``torch.gradient`` differences (central
inside, one-sided at the border, zero along an axis of one pixel). Runs in the input's dtype (float64 for an
oracle) and is differentiable by autograd. The matrices are dense: keep it to small images.
"""

from __future__ import annotations

import torch

from ..errors import SplatupInputError
from ..upscale.classic import METHODS
from ..upscale.util import check_image, check_out_dtype, check_size
from .hermite import hermite_patch, to_display

FN = "reference.upscale_classic"


def keys(d: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution kernel at distances d: (a+2)|d|^3 - (a+3)|d|^2 + 1 for |d| <= 1,
    a|d|^3 - 5a|d|^2 + 8a|d| - 4a for 1 < |d| < 2, else 0."""
    d = d.abs()
    near = (a + 2) * d**3 - (a + 3) * d**2 + 1
    far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def lanczos3(d: torch.Tensor) -> torch.Tensor:
    """sinc(d) sinc(d / 3) for |d| < 3, else 0 (torch.sinc is the normalised sinc)."""
    return torch.where(d.abs() < 3, torch.sinc(d) * torch.sinc(d / 3), torch.zeros_like(d))


def resampling_matrix(n_out: int, n_in: int, method: str) -> torch.Tensor:
    """[n_out, n_in] float64: row X holds the weights of the input pixels for output pixel X (replicated border)."""
    x = (torch.arange(n_out, dtype=torch.float64) + 0.5) * n_in / n_out - 0.5
    rows = torch.arange(n_out)
    M = torch.zeros(n_out, n_in, dtype=torch.float64)
    if method == "nearest":
        M[rows, torch.floor(x + 0.5).long().clamp(0, n_in - 1)] = 1.0
        return M
    radius = {"bilinear": 1, "bicubic": 2, "bicubic-pil": 2, "lanczos": 3}[method]
    taps = torch.floor(x)[:, None] + torch.arange(1 - radius, radius + 1, dtype=torch.float64)[None, :]
    d = x[:, None] - taps
    if method == "bilinear":
        w = (1 - d.abs()).clamp_min(0)
    elif method in ("bicubic", "bicubic-pil"):
        w = keys(d, -0.75 if method == "bicubic" else -0.5)
    else:
        w = lanczos3(d)
        w = w / w.sum(dim=1, keepdim=True)
    M.index_put_((rows[:, None].expand_as(taps), taps.long().clamp(0, n_in - 1)), w, accumulate=True)
    return M


def _gradient(f: torch.Tensor, dim: int) -> torch.Tensor:
    """Central differences along ``dim`` (one-sided at the ends; zeros along an axis of one pixel)."""
    if f.shape[dim] == 1:
        return torch.zeros_like(f)
    return torch.gradient(f, dim=dim, edge_order=1)[0]


def upscale_classic(image: torch.Tensor, size: tuple[int, int], method: str = "bicubic",
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """Resample ``image`` [h, w, C] or [B, h, w, C] (float32/float64) to ``size`` = (H, W) with ``method`` (one of
    :data:`splatup.upscale.classic.METHODS`); same arguments, checks and result as :func:`splatup.upscale_classic`.
    Returns the input's layout and dtype, or with ``dtype`` torch.uint8 the 8-bit display image
    (:func:`splatup.reference.hermite.to_display`)."""
    if method not in METHODS:
        raise SplatupInputError(f"{FN}: method must be one of {', '.join(METHODS)}; got {method!r}")
    x = check_image(image, "image", FN)
    H, W = check_size(size, FN)
    out_dtype = check_out_dtype(dtype, x.dtype, FN)
    if not bool(torch.isfinite(x).all()):
        raise SplatupInputError(f"{FN}: image contains NaN or infinite values")
    if method == "fd-hermite":
        fx = _gradient(x, 2)
        out = hermite_patch(x, fx, _gradient(x, 1), _gradient(fx, 1), (H, W))
    else:
        My = resampling_matrix(H, x.shape[1], method).to(x.dtype)
        Mx = resampling_matrix(W, x.shape[2], method).to(x.dtype)
        out = torch.einsum("Yy,byxc,Xx->bYXc", My, x, Mx)
    if out_dtype == torch.uint8:
        out = to_display(out.detach())
    return out if image.dim() == 4 else out[0]


__all__ = ["keys", "lanczos3", "resampling_matrix", "upscale_classic"]
