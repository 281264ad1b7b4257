"""Image-quality metrics on HWC images in [0, 1]: PSNR, SSIM (3DGS variant) and LPIPS v0.1 (offline weights).

All take ``(img, ref)`` as [H, W, C] or [B, H, W, C] floating tensors and return a 0-d tensor or one value per image.
"""

from __future__ import annotations

from .lpips import LPIPS, LPIPSWeightsError, default_weights_path, lpips, lpips_model
from .psnr import psnr
from .ssim import ssim

__all__ = ["psnr", "ssim", "lpips", "LPIPS", "lpips_model", "LPIPSWeightsError", "default_weights_path"]
