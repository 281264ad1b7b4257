"""File formats: scenes (.ply, .splat), images, and multi-view datasets (NeRF-synthetic, nerfstudio, COLMAP).

``load_scene(path)`` dispatches on the extension; ``save_ply(scene, path)`` writes the INRIA layout.
The dataset readers (which pull in numba) are imported on first use.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SceneFormatError, SplatupInputError
from ..gaussians import Gaussians
from .images import area_downsample, image_size, read_image, write_image
from .ply import read_ply, save_ply
from .splat import read_splat

SCENE_READERS = {".ply": read_ply, ".splat": read_splat}

_LAZY = {
    name: "splatup.io.datasets"
    for name in ("View", "Dataset", "read_nerf_synthetic", "read_colmap", "load_dataset", "split_llff")
}


def load_scene(path: str | os.PathLike) -> Gaussians:
    """Load a 3DGS scene: an INRIA ``.ply`` (:func:`read_ply`) or an antimatter15 ``.splat`` (:func:`read_splat`).

    Returns:
        float32 :class:`~splatup.gaussians.Gaussians` on the CPU.

    Raises:
        SplatupInputError: the file does not exist or is a directory.
        SceneFormatError: unsupported extension, or the file is malformed (the message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise SplatupInputError(f"{path}: scene file not found")
    if path.is_dir():
        raise SplatupInputError(f"{path}: is a directory, expected a scene file ({', '.join(SCENE_READERS)})")
    ext = path.suffix.lower()
    if ext not in SCENE_READERS:
        raise SceneFormatError(
            f"{path}: unsupported scene file extension {path.suffix or '(none)'!r}; "
            f"supported: {', '.join(SCENE_READERS)}"
        )
    return SCENE_READERS[ext](path)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'splatup.io' has no attribute {name!r}")


__all__ = [
    "load_scene",
    "save_ply",
    "read_ply",
    "read_splat",
    "read_image",
    "write_image",
    "area_downsample",
    "image_size",
    "SCENE_READERS",
    "SceneFormatError",
    "SplatupInputError",
    *_LAZY,
]

if TYPE_CHECKING:  # pragma: no cover
    from .datasets import Dataset, View, load_dataset, read_colmap, read_nerf_synthetic, split_llff  # noqa: F401
