"""Structural similarity, in the variant 3D Gaussian Splatting trains and reports with."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ._inputs import ImageLike, image_pair

WINDOW_SIZE = 11
SIGMA = 1.5
C1 = 0.01**2  # (K1 * data_range)^2 with K1 = 0.01, data_range = 1
C2 = 0.03**2  # (K2 * data_range)^2 with K2 = 0.03, data_range = 1


def _gaussian_1d() -> torch.Tensor:
    """The 1D Gaussian taps (length 11, sigma 1.5), float64, normalised to sum 1."""
    x = torch.arange(WINDOW_SIZE, dtype=torch.float64) - WINDOW_SIZE // 2
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    return g / g.sum()


@functools.lru_cache(maxsize=32)
def _window(dtype: torch.dtype, device: torch.device, groups: int) -> torch.Tensor:
    """The 11x11 Gaussian window (sigma 1.5, sums to 1) as a depthwise conv weight [groups, 1, 11, 11]."""
    g = _gaussian_1d()
    w = (g[:, None] * g[None, :]).to(dtype=dtype, device=device)
    return w.expand(groups, 1, WINDOW_SIZE, WINDOW_SIZE).contiguous()


def _outside_mass_1d(n: int) -> torch.Tensor:
    """For each of n positions, the window weight that falls outside [0, n) (0 exactly in the interior)."""
    g = _gaussian_1d()
    r = WINDOW_SIZE // 2
    offsets = torch.arange(WINDOW_SIZE) - r
    pos = torch.arange(n)[:, None] + offsets[None, :]
    return (g[None, :] * ((pos < 0) | (pos >= n))).sum(dim=1)


@functools.lru_cache(maxsize=32)
def _padding_mass(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1 - (window mass inside the image) per pixel, [1, 1, h, w]: the weight the zero padding receives.

    Exactly 0 at least 5 px away from every border (so the interior is untouched), computed in float64.
    """
    oh, ow = _outside_mass_1d(h), _outside_mass_1d(w)
    inside = (1 - oh)[:, None] * (1 - ow)[None, :]
    out = torch.where((oh[:, None] == 0) & (ow[None, :] == 0), torch.zeros(()), 1 - inside)
    return out.to(dtype=dtype, device=device)[None, None]


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

    Numerics: the moments are taken about each image's per-channel mean (mathematically the same statistics,
    padding included). In float32 this kept the result within ~2e-6 of a float64 evaluation on NeRF-synthetic
    images on white, where the plain E[x^2] - E[x]^2 of the 3DGS code was off by ~6e-5 (noisy copy vs clean);
    images with large flat noisy areas far from their mean (half black, half white) can still be off by ~3e-5.
    float64 inputs agree with a float64 reference to ~1e-13 but are slow (no fast float64 depthwise conv on CPU).

    img, ref: [H, W, C] or [B, H, W, C] floating tensors (or numpy arrays), HWC, any C >= 1.
    Returns a 0-d tensor (unbatched) or [B] tensor (one value per image) in the inputs' promoted dtype.
    Differentiable in both arguments; the trainer uses 1 - ssim as a loss.
    """
    a, b, batched = image_pair(img, ref, "ssim")
    _, h, w, c = a.shape
    a = a.permute(0, 3, 1, 2)  # [B, C, H, W]
    b = b.permute(0, 3, 1, 2)
    # Float32 guard: E[x^2] - E[x]^2 cancels badly where x is near 1 (e.g. white backgrounds). Work on x - k, with
    # k the image's per-channel mean (a constant: detached, it changes nothing mathematically), and give the padding
    # its value in those coordinates (0 - k) by adding k's share of the window that lies outside the image.
    ka = a.detach().mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
    kb = b.detach().mean(dim=(2, 3), keepdim=True)
    ya, yb = a - ka, b - kb
    # One depthwise conv computes all five local moments: E[y_a], E[y_b], E[y_a^2], E[y_b^2], E[y_a y_b].
    stack = torch.cat([ya, yb, ya * ya, yb * yb, ya * yb], dim=1).contiguous()
    moments = F.conv2d(stack, _window(stack.dtype, stack.device, 5 * c), padding=WINDOW_SIZE // 2, groups=5 * c)
    pad_values = torch.cat([-ka, -kb, ka * ka, kb * kb, ka * kb], dim=1)  # what the zero padding reads as, per moment
    moments.addcmul_(pad_values, _padding_mass(h, w, stack.dtype, stack.device))  # in place: conv saves no output
    m_a, m_b, e_aa, e_bb, e_ab = moments.split(c, dim=1)
    var_a, var_b, cov = e_aa - m_a * m_a, e_bb - m_b * m_b, e_ab - m_a * m_b  # shift-invariant
    mu_a, mu_b = m_a + ka, m_b + kb
    ssim_map = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a * mu_a + mu_b * mu_b + C1) * (var_a + var_b + C2))
    out = ssim_map.mean(dim=(1, 2, 3))
    return out if batched else out[0]
