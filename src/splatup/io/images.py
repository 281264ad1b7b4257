"""Image files: read as float32 [H, W, 3] in [0, 1] (alpha composited), area downsampling, atomic PNG/JPEG writes.

Images are sRGB values as 3DGS trains on them; nothing is linearised. Reading checks the size in the header
against :data:`~splatup.io._validate.MAX_IMAGE_PIXELS` before decoding, and any failure of the decoder on a
truncated or corrupt file becomes a :class:`SceneFormatError` naming the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._checks import all_finite
from .._quantize import quantize
from ..errors import SceneFormatError, SplatupInputError
from ._atomic import atomic_write, check_destination
from ._validate import MAX_IMAGE_PIXELS, check_image_pixels

WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _claimed_size(path: Path, error: Exception) -> str:
    """The size an image header claims, for the message when Pillow's own bomb guard refused the file: the
    header parsed by the format's Pillow plugin (which does not run the guard), else the pixel count Pillow gave."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(16)
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                accepted = accept(prefix) if accept is not None else True
                if accepted and not isinstance(accepted, str):  # a str is Pillow's "maybe, with a warning"
                    f.seek(0)
                    try:
                        w, h = factory(f, str(path)).size
                    except Exception:  # not this format; try the next plugin
                        continue
                    return f"{w} x {h} = {w * h:,} pixels"
    except OSError:
        pass
    m = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(m.group(1)):,} pixels" if m else "more pixels than Pillow's limit"


def _open(path: Path) -> Image.Image:
    """Open an image lazily (header only), refusing a size above MAX_IMAGE_PIXELS before any decoding."""
    if not path.exists():
        raise SplatupInputError(f"{path}: image file not found")
    if path.is_dir():
        raise SplatupInputError(f"{path}: is a directory, expected an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides, below
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise SceneFormatError(
            f"{path}: image header claims {_claimed_size(path, e)}; splatup reads images of at most "
            f"{MAX_IMAGE_PIXELS:,} pixels (a decompression bomb, or downscale the image first)"
        ) from e
    except Exception as e:  # Pillow's plugins raise many types on corrupt headers
        raise SceneFormatError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e
    try:
        check_image_pixels(im.width, im.height, f"{path}: image header")
    except SceneFormatError:
        im.close()
        raise
    return im


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file, read from its header without decoding the pixels."""
    path = Path(path)
    with _open(path) as im:
        return int(im.width), int(im.height)


def _check_background(background: Sequence[float] | None) -> np.ndarray:
    if background is None:
        return np.zeros(3, dtype=np.float32)
    msg = f"read_image: background must be 3 numbers (r, g, b) in [0, 1], got {background!r}"
    try:
        bg = np.asarray(background, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as e:
        raise SplatupInputError(msg) from e
    if bg.shape != (3,) or not np.isfinite(bg).all() or (bg < 0).any() or (bg > 1).any():
        raise SplatupInputError(msg)
    return bg


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels as float32 RGB [H, W, 3] in [0, 1] and alpha [H, W, 1] (None if the image has none).

    The decoder's 8-bit pixels are copied out and Pillow's images closed before the float arrays are made, so the
    peak memory is the larger of the two stages, not their sum."""
    with _open(path) as im, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size was checked by _open
        try:
            mode = im.mode
            if mode.startswith("I;16") or mode in ("I", "F"):  # 16-bit / 32-bit int / float greyscale
                grey = np.array(im, dtype=np.float32)  # a writable copy
                has_alpha = None
            else:
                has_alpha = "A" in mode or "transparency" in im.info  # RGBA, LA, PA, or a tRNS palette / colour key
                with im.convert("RGBA" if has_alpha else "RGB") as conv:
                    pixels = np.asarray(conv)  # uint8 [H, W, 3 | 4]
        except Exception as e:  # truncated / corrupt data; Pillow raises many types
            raise SceneFormatError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e
    if has_alpha is None:
        if mode == "F":
            if not np.isfinite(grey).all():
                raise SceneFormatError(f"{path}: float image has NaN or Inf pixel values")
        else:
            grey /= np.float32(65535.0)
        np.clip(grey, 0.0, 1.0, out=grey)
        return np.repeat(grey[..., None], 3, axis=2), None
    rgb = np.empty(pixels.shape[:2] + (3,), dtype=np.float32)
    np.divide(pixels[..., :3], np.float32(255.0), out=rgb)
    if has_alpha:
        return rgb, pixels[..., 3:4] / np.float32(255.0)
    return rgb, None


def _area_axis(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Box-average ``x`` along ``axis`` to ``n_out`` samples: output i is the mean of the input over the
    continuous interval [i r, (i + 1) r), r = n_in / n_out, with fractional weights at the ends (cv2 INTER_AREA).
    Exact via the running integral S(t) = sum of x over [0, t), which is linear between integers."""
    n_in = x.shape[axis]
    if n_out == n_in:
        return x
    x = np.moveaxis(x, axis, 0).astype(np.float64)
    S = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)], axis=0)  # [n_in + 1, ...]
    t = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    t[-1] = n_in
    lo = np.minimum(np.floor(t).astype(np.int64), n_in)
    frac = (t - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    hi = np.minimum(lo + 1, n_in)
    S_t = S[lo] + frac * (S[hi] - S[lo])
    out = (S_t[1:] - S_t[:-1]) / (n_in / n_out)
    return np.moveaxis(out, 0, axis)


def area_downsample(img: torch.Tensor | np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Shrink an [H, W, C] image to ``size = (h, w)`` (h <= H, w <= W) by area averaging (box filter).

    Output pixel (i, j) is the mean of the input over the rectangle [j W/w, (j+1) W/w) x [i H/h, (i+1) H/h),
    with fractional weights where the rectangle cuts a pixel, as ``cv2.resize(..., INTER_AREA)``. For an
    integer factor this is the plain block mean. This matches :meth:`Camera.resized` geometry exactly.

    Returns:
        float32 torch tensor [h, w, C].
    """
    arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if arr.ndim != 3:
        raise SplatupInputError(f"area_downsample: expected an [H, W, C] image, got shape {tuple(arr.shape)}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as e:
        raise SplatupInputError(f"area_downsample: size must be (height, width), got {size!r}") from e
    H, W = arr.shape[:2]
    if not (1 <= h <= H and 1 <= w <= W):
        raise SplatupInputError(
            f"area_downsample: size (h, w) = ({h}, {w}) must be between (1, 1) and the image size ({H}, {W}); "
            "use splatup.upscale_classic to enlarge"
        )
    out = _area_axis(_area_axis(arr, h, 0), w, 1)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def read_image(
    path: str | os.PathLike,
    background: Sequence[float] | None = None,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Read an image file as float32 [H, W, 3] in [0, 1].

    Args:
        path: PNG, JPEG or anything Pillow reads. 8-bit values map to v / 255, 16-bit (and 32-bit integer)
            greyscale to v / 65535, float greyscale as it is; both clipped to [0, 1].
        background: (r, g, b) in [0, 1] to composite RGBA (or paletted-with-transparency) images over:
            ``rgb * a + bg * (1 - a)``. With ``None`` an image with alpha is composited over **black**
            (``rgb * a``). Images without alpha are returned as they are.
        size: optional (height, width) to shrink to by area averaging (:func:`area_downsample`), applied after
            compositing. Usually ``camera.size`` of a camera made with ``Camera.scaled`` / ``resized``.

    Raises:
        SplatupInputError: the file is missing or a directory, or an argument is wrong.
        SceneFormatError: the file is not an image Pillow can decode (truncated, corrupt, unknown format).
    """
    path = Path(path)
    bg = _check_background(background)
    rgb, alpha = _decode(path)
    if alpha is not None:  # rgb * a + bg * (1 - a), in place
        rgb *= alpha
        inv = np.float32(1.0) - alpha[..., 0]
        for c in range(3):
            rgb[..., c] += bg[c] * inv
    if size is not None:
        return area_downsample(rgb, size)
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))


def to_uint8(img: torch.Tensor | np.ndarray, what: str = "image") -> np.ndarray:
    """[H, W, 3] (or [H, W] / [H, W, 1]) float image -> uint8 [H, W, 3] / [H, W]: floor(255 clamp(v, 0, 1) + 0.5),
    the rule of :mod:`splatup._quantize` that ``su.render(..., dtype=torch.uint8)`` also uses (the same bytes)."""
    if isinstance(img, torch.Tensor):
        img = img.detach().to("cpu")
        arr = (img if img.dtype in (torch.float32, torch.float64) else img.to(torch.float64)).numpy()
    else:
        arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SplatupInputError(f"{what}: expected an [H, W, 3] (or [H, W]) image, got shape {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise SplatupInputError(f"{what}: expected float values in [0, 1], got dtype {arr.dtype}")
    if not all_finite(arr):  # one pass, no mask; the mask only to name the first bad value
        bad = ~np.isfinite(arr)
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise SplatupInputError(f"{what}: has NaN or Inf values ({int(bad.sum())}), first at index {idx}")
    return quantize(arr)


def write_image(path: str | os.PathLike, img: torch.Tensor | np.ndarray, quality: int = 95) -> Path:
    """Write a float image [H, W, 3] (or greyscale [H, W] / [H, W, 1]) in [0, 1] as PNG or JPEG (by extension).

    Values are clamped to [0, 1] and rounded to 8 bit (:func:`to_uint8`). The file is written to a temporary file
    in the same folder and then moved into place: ``path`` is never left half-written.

    Args:
        quality: JPEG quality (1..95+); ignored for PNG.

    Returns:
        The path written.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_FORMATS:
        raise SplatupInputError(
            f"write_image: unsupported extension {path.suffix!r} for {path}; supported: {sorted(WRITE_FORMATS)}"
        )
    check_destination(path, "write_image")
    u8 = to_uint8(img, what=f"write_image({path})")
    fmt = WRITE_FORMATS[ext]
    kwargs = {"quality": int(quality)} if fmt == "JPEG" else {}
    pil = Image.fromarray(u8)
    with atomic_write(path) as f:
        pil.save(f, format=fmt, **kwargs)
    return path


__all__ = ["read_image", "write_image", "area_downsample", "image_size", "to_uint8", "WRITE_FORMATS"]
