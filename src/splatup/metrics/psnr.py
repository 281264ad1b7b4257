"""Peak signal-to-noise ratio."""

from __future__ import annotations

import math

import torch

from ..errors import SplatupInputError
from ._inputs import ImageLike, image_pair


def psnr(img: ImageLike, ref: ImageLike, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB: 10 log10(data_range^2 / MSE), MSE the mean over all pixels and channels of one image.

    img, ref: [H, W, C] or [B, H, W, C] float tensors (or numpy arrays), HWC, values nominally in
    [0, data_range]. Values are not clamped.
    Returns a 0-d tensor for [H, W, C] inputs and a [B] tensor (one PSNR per image) for batched inputs,
    in the promoted dtype of the inputs. Identical images have MSE 0 and give +inf (not an error).
    Differentiable where MSE > 0.
    """
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise SplatupInputError(f"psnr: data_range must be a positive finite number, got {data_range!r}")
    a, b, batched = image_pair(img, ref, "psnr")
    mse = (a - b).square().mean(dim=(1, 2, 3))
    out = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 -> +inf
    return out if batched else out[0]
