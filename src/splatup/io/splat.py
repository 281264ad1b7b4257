"""antimatter15 ``.splat`` files (the WebGL viewer format): read into :class:`~splatup.gaussians.Gaussians`.

The file has no header: N = size / 32 records of 32 bytes, little endian::

    pos   f32 x 3   centre
    scale f32 x 3   standard deviations, already exp'ed (linear)
    rgba  u8  x 4   RGB = 255 * (0.5 + C0 * f_dc) (the SH DC colour), A = 255 * opacity
    rot   u8  x 4   quaternion (w, x, y, z) stored as q * 128 + 128

Decoding choices (the format is lossy and has no room for some values the pre-activation tensors need):

- a scale of 0 is clamped to :data:`MIN_SCALE` (1e-10) so that ``log_scales`` stays finite; such a Gaussian is
  a degenerate (flat) one, as in the viewer. Negative or non-finite scales are errors.
- the opacity A / 255 is clamped to [:data:`OPACITY_EPS`, 1 - OPACITY_EPS] (1e-6) so the logit stays finite;
  A = 0 then gives opacity 1e-6, which the rasterizer skips (below 1/255) just like 0.
- the quaternion is normalised; an all-128 (zero) quaternion becomes the identity (w = 1) with a warning that
  counts them.
- only SH degree 0 is stored, so the scene has degree 0.
- an empty (0-byte) file is an error: with no header it cannot be told apart from a failed download.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import SceneFormatError, SplatupInputError
from ..gaussians import SH_C0, Gaussians

RECORD = np.dtype([("pos", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
assert RECORD.itemsize == 32
MIN_SCALE = 1e-10
OPACITY_EPS = 1e-6


def decode_splat(buffer: bytes | bytearray | memoryview | np.ndarray, source: str = "<buffer>") -> Gaussians:
    """Decode the bytes of a ``.splat`` file (see the module docstring) into float32 Gaussians.

    Args:
        buffer: the raw bytes, a multiple of 32 long.
        source: name used in error messages (the file path).
    """
    raw = np.frombuffer(buffer, dtype=np.uint8)
    nbytes = raw.size
    if nbytes % RECORD.itemsize:
        raise SceneFormatError(
            f"{source}: truncated: {nbytes} bytes is not a multiple of 32 (the size of one .splat record)"
        )
    if nbytes == 0:
        raise SceneFormatError(f"{source}: empty .splat file (0 bytes, no Gaussians)")
    rec = raw.view(RECORD)
    n = len(rec)

    pos = rec["pos"].astype(np.float32)
    with np.errstate(invalid="ignore"):  # a signalling NaN warns when widened; it is reported below
        scale = rec["scale"].astype(np.float64)
    for field, arr in (("pos", pos), ("scale", scale)):
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SceneFormatError(
                f"{source}: field '{field}' has NaN or Inf values in {int(bad.sum())} record(s), first at "
                f"record {i}: {arr[i].tolist()}"
            )
    neg = (scale < 0).any(axis=1)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise SceneFormatError(
            f"{source}: field 'scale' is negative in {int(neg.sum())} record(s), first at record {i}: "
            f"{scale[i].tolist()}; .splat scales are linear standard deviations (>= 0)"
        )
    log_scales = np.log(np.maximum(scale, MIN_SCALE)).astype(np.float32)

    rgba = rec["rgba"].astype(np.float64) / 255.0
    f_dc = ((rgba[:, :3] - 0.5) / SH_C0).astype(np.float32)
    op = np.clip(rgba[:, 3], OPACITY_EPS, 1.0 - OPACITY_EPS)
    logits = (np.log(op) - np.log1p(-op)).astype(np.float32)

    q = (rec["rot"].astype(np.float64) - 128.0) / 128.0
    norm = np.sqrt((q * q).sum(axis=1))
    zero = norm == 0
    if zero.any():
        warnings.warn(
            f"{source}: {int(zero.sum())} of {n} Gaussians have a zero quaternion (all 128); "
            "they get the identity rotation",
            stacklevel=2,
        )
        q[zero] = (1.0, 0.0, 0.0, 0.0)
        norm[zero] = 1.0
    quats = (q / norm[:, None]).astype(np.float32)

    return Gaussians(
        means=torch.from_numpy(pos),
        quats=torch.from_numpy(quats),
        log_scales=torch.from_numpy(log_scales),
        opacity_logits=torch.from_numpy(logits),
        sh=torch.from_numpy(np.ascontiguousarray(f_dc[:, None, :])),
    )


def read_splat(path: str | os.PathLike) -> Gaussians:
    """Load an antimatter15 ``.splat`` file as float32 Gaussians of SH degree 0 (decoding rules: module docstring).

    Raises:
        SceneFormatError: the size is not a multiple of 32, the file is empty, or a position/scale is NaN, Inf or
            (scale) negative. The message names the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SplatupInputError(f"{path}: cannot read .splat file: {e}") from e
    return decode_splat(data, source=str(path))


__all__ = ["read_splat", "decode_splat", "RECORD", "MIN_SCALE", "OPACITY_EPS"]
