"""Structural similarity, in the variant 3D Gaussian Splatting trains and reports with."""

from __future__ import annotations

import functools

import numba
import numpy as np
import torch

from . import _ssim_kernels as K
from ._inputs import ImageLike, image_pair

WINDOW_SIZE = 11
SIGMA = 1.5
C1 = 0.01**2  # (K1 * data_range)^2 with K1 = 0.01, data_range = 1
C2 = 0.03**2  # (K2 * data_range)^2 with K2 = 0.03, data_range = 1
_MIN_ROWS_PER_PART = 32  # each parallel row range re-blurs 10 halo rows: keep ranges long enough to amortise them


@functools.lru_cache(maxsize=1)
def _taps() -> tuple[np.ndarray, np.ndarray]:
    """The 1D Gaussian taps (length 11, sigma 1.5, normalised to sum 1) and [C1, C2, 1, 2], float64."""
    x = np.arange(WINDOW_SIZE, dtype=np.float64) - WINDOW_SIZE // 2
    g = np.exp(-(x**2) / (2 * SIGMA**2))
    return g / g.sum(), np.array([C1, C2, 1.0, 2.0])


def _n_parts(batch: int, height: int) -> int:
    """Row ranges per image: about two work items per thread over the batch, none shorter than 32 rows."""
    want = -(-2 * numba.get_num_threads() // batch)
    return max(1, min(want, height // _MIN_ROWS_PER_PART))


def _channel_means(x: np.ndarray, c: int) -> np.ndarray:
    """Per-image, per-channel means [B, C] float64 of x [B, H, W*C]."""
    out = np.empty((x.shape[0], c), np.float64)
    K.channel_means(x, c, out)
    return out


class _SSIMFunction(torch.autograd.Function):
    """Per-image mean SSIM of [B, H, W, C] float32/float64 CPU tensors -> [B]; backward through the numba adjoint."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, want_grad: bool) -> torch.Tensor:
        bsz, h, w, c = a.shape
        x = a.detach().contiguous()
        y = b.detach().contiguous()
        xn = x.numpy().reshape(bsz, h, w * c)
        yn = y.numpy().reshape(bsz, h, w * c)
        parts = _n_parts(bsz, h)
        # centring constants: each image's per-channel mean, float64, which also makes float64 the kernels'
        # accumulation dtype (any constant gives the same statistics mathematically; the mean keeps the moments
        # small, so E[u^2] - E[u]^2 loses little to cancellation)
        ka, kb = _channel_means(xn, c), _channel_means(yn, c)
        g, consts = _taps()
        row_sum = np.empty((bsz, h), np.float64)
        coef = np.empty((K.N_COEF, bsz, h, w * c) if want_grad else (1, 1, 1, 1), xn.dtype)
        K.ssim_forward(xn, yn, ka, kb, g, consts, c, parts, row_sum, coef, want_grad)
        if want_grad:
            ctx.save_for_backward(x, y)
            ctx.stash = (ka, kb, coef, parts)
        return torch.from_numpy(row_sum.sum(axis=1) / (h * w * c)).to(a.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        x, y = ctx.saved_tensors
        ka, kb, coef, parts = ctx.stash
        bsz, h, w, c = x.shape
        want_x, want_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (want_x or want_y):
            return None, None, None
        scale = grad_out.detach().to(torch.float64).reshape(bsz).numpy() / (h * w * c)
        g, consts = _taps()
        gx = torch.empty_like(x) if want_x else torch.empty(1, 1, 1, dtype=x.dtype)
        gy = torch.empty_like(y) if want_y else torch.empty(1, 1, 1, dtype=x.dtype)
        flat = (bsz, h, w * c)
        K.ssim_backward(x.numpy().reshape(flat), y.numpy().reshape(flat), ka, kb, coef, g, consts, scale, c, parts,
                        gx.numpy().reshape(flat if want_x else (1, 1, 1)),
                        gy.numpy().reshape(flat if want_y else (1, 1, 1)), want_x, want_y)
        return (gx if want_x else None), (gy if want_y else None), None


def ssim(img: ImageLike, ref: ImageLike) -> torch.Tensor:
    """Mean SSIM of img against ref, 3DGS style (graphdeco-inria ``utils/loss_utils.ssim``).

    The variant, exactly:
      * local statistics mu, sigma^2, sigma_xy from an 11x11 Gaussian window, sigma = 1.5 px, normalised to sum 1,
        applied to each channel separately (depthwise);
      * "same" output size with **zero padding** of 5 px on every side (``F.conv2d(..., padding=5)``), so the
        border statistics include the zeros; no cropping of the border;
      * biased (population) variances: sigma_x^2 = G*(x^2) - (G*x)^2, no N/(N-1) correction;
      * C1 = 0.01^2 and C2 = 0.03^2, i.e. data range 1: images are expected in [0, 1];
      * SSIM map = ((2 mu_x mu_y + C1)(2 sigma_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
        averaged over every pixel and channel of the full map.
    Other libraries differ by ~1e-3 (valid convolution, uniform 7x7 window, sample covariance).

    Computation: numba kernels (``_ssim_kernels``): the window applied as two 11-tap passes, the moments taken about
    each image's per-channel mean (mathematically the same statistics, padding included) and accumulated in float64
    for every input dtype. float32 results therefore differ from a float64 evaluation by the float32 rounding of the
    result only (<= 3e-8 measured on NeRF-synthetic images on white and on half black, half white noisy images, where
    the former torch float32 code was off by up to 6e-6 and the plain E[x^2] - E[x]^2 of the 3DGS code by ~6e-5);
    float64 results agree with a float64 reference to ~1e-13. The gradient is the hand-derived adjoint (the same
    zero-padded window), first order only (no double backward); float32 gradients are within ~1e-6 of their largest
    entry of the float64 ones. With a gradient to take, the forward keeps four coefficient maps of the image's size
    and dtype for the backward.

    img, ref: [H, W, C] or [B, H, W, C] floating tensors (or numpy arrays), HWC, any C >= 1. float32 and float64
    are computed as they are, other floating dtypes in float32; tensors on another device are computed on the CPU.
    Returns a 0-d tensor (unbatched) or [B] tensor (one value per image) in the inputs' promoted dtype, on their
    device. Differentiable in both arguments; the trainer uses 1 - ssim as a loss.
    """
    a, b, batched = image_pair(img, ref, "ssim")
    dtype, device = a.dtype, a.device
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    a = a.to(device="cpu", dtype=work)
    b = b.to(device="cpu", dtype=work)
    want_grad = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    out = _SSIMFunction.apply(a, b, want_grad).to(device=device, dtype=dtype)
    return out if batched else out[0]
