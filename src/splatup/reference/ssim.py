"""Plain-PyTorch twin of :func:`splatup.metrics.ssim` (the numba kernels' oracle for values and gradients).

The 3DGS SSIM: 11x11 Gaussian window (sigma 1.5), zero "same" padding, C1 = 0.01^2, C2 = 0.03^2, the map averaged
over every pixel and channel. One depthwise conv2d computes all five local moments, taken about each image's
per-channel mean (the same statistics mathematically; less float32 cancellation); the padding gets its value in
those shifted coordinates through the window mass that falls outside the image. Gradients by torch autograd.
"""

from __future__ import annotations

import functools

import torch

from ..metrics._inputs import ImageLike, image_pair


def _gaussian_1d() -> torch.Tensor:
    """The 1D Gaussian taps (length 11, sigma 1.5), float64, normalised to sum 1."""
    x = torch.arange(11, dtype=torch.float64) - 11 // 2
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    return g / g.sum()


@functools.lru_cache(maxsize=32)
def _window(dtype: torch.dtype, device: torch.device, groups: int) -> torch.Tensor:
    """The 11x11 Gaussian window (sigma 1.5, sums to 1) as a depthwise conv weight [groups, 1, 11, 11]."""
    g = _gaussian_1d()
    w = (g[:, None] * g[None, :]).to(dtype=dtype, device=device)
    return w.expand(groups, 1, 11, 11).contiguous()


def _outside_mass_1d(n: int) -> torch.Tensor:
    """For each of n positions, the window weight that falls outside [0, n) (0 exactly in the interior)."""
    g = _gaussian_1d()
    r = 11 // 2
    offsets = torch.arange(11) - r
    pos = torch.arange(n)[:, None] + offsets[None, :]
    return (g[None, :] * ((pos < 0) | (pos >= n))).sum(dim=1)


@functools.lru_cache(maxsize=32)
def _padding_mass(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1 - (window mass inside the image) per pixel, [1, 1, h, w]: the weight the zero padding receives."""
    oh, ow = _outside_mass_1d(h), _outside_mass_1d(w)
    inside = (1 - oh)[:, None] * (1 - ow)[None, :]
    out = torch.where((oh[:, None] == 0) & (ow[None, :] == 0), torch.zeros(()), 1 - inside)
    return out.to(dtype=dtype, device=device)[None, None]


def ssim(img: ImageLike, ref: ImageLike) -> torch.Tensor:
    """SSIM of img and ref with the arguments, checks and results of :func:`splatup.metrics.ssim`, by torch autograd.

    img, ref: [H, W, C] or [B, H, W, C]; returns a 0-d or [B] tensor in the inputs' promoted dtype.
    """
    a, b, batched = image_pair(img, ref, "ssim")
    _, h, w, c = a.shape
    a = a.permute(0, 3, 1, 2)  # [B, C, H, W]
    b = b.permute(0, 3, 1, 2)
    ka = a.detach().mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
    kb = b.detach().mean(dim=(2, 3), keepdim=True)
    ya, yb = a - ka, b - kb
    stack = torch.cat([ya, yb, ya * ya, yb * yb, ya * yb], dim=1).contiguous()
    moments = torch.nn.functional.conv2d(stack, _window(stack.dtype, stack.device, 5 * c), padding=11 // 2,
                                         groups=5 * c)
    pad_values = torch.cat([-ka, -kb, ka * ka, kb * kb, ka * kb], dim=1)
    moments.addcmul_(pad_values, _padding_mass(h, w, stack.dtype, stack.device))
    m_a, m_b, e_aa, e_bb, e_ab = moments.split(c, dim=1)
    var_a, var_b, cov = e_aa - m_a * m_a, e_bb - m_b * m_b, e_ab - m_a * m_b
    mu_a, mu_b = m_a + ka, m_b + kb
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    out = ssim_map.mean(dim=(1, 2, 3))
    return out if batched else out[0]


ssim_reference = ssim  # old name, kept while tests and benchmarks migrate
