"""The 3DGS photometric loss: (1 - lambda) L1 + lambda (1 - SSIM)."""

from __future__ import annotations

import torch

from ..metrics import ssim


def l1_loss(img: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over pixels and channels."""
    return (img - ref).abs().mean()


def photometric_loss(img: torch.Tensor, ref: torch.Tensor, lambda_dssim: float = 0.2) -> torch.Tensor:
    """(1 - lambda_dssim) L1 + lambda_dssim (1 - SSIM) of [H, W, 3] images (3DGS-style SSIM, see metrics.ssim)."""
    return (1.0 - lambda_dssim) * l1_loss(img, ref) + lambda_dssim * (1.0 - ssim(img, ref))
