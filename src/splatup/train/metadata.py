"""How a trained model was trained: a JSON file beside its ``.ply`` (``point_cloud.ply`` -> ``point_cloud.json``).

A model trained through the upscaler is meant to be rendered the way it was trained (at 1/S with derivatives,
Hermite-upscaled, with the matched dilation, on its background); ``splatup eval`` and the viewer read this file to
take that path by default. The JSON records the SHA-256 of the .ply it describes, so a file left beside a
different .ply (a model replaced or edited afterwards) is not applied to it.

Fields (version 1): ``format``, ``version``, ``ply_sha256``, ``method`` (the render path it was trained through:
"native", "hermite" or "hermite-first"), ``upscale`` (S, 1 for native training), ``lowres_dilation`` ("matched":
0.3 native px^2, i.e. 0.3 / S^2 px^2 of the 1/S render; or the run's ``UpscaleLoop.lowres_dilation``),
``dilation`` (px^2 of the native image, 0.3), ``background`` ([r, g, b] in [0, 1]), ``iterations``, ``width`` and
``height`` (the training resolution), ``sh_degree``, ``gaussians``, ``dataset``, ``splatup_version``; for
upscale > 1 also ``lowres_derivatives`` ("full", or "first": trained with d2C/dxdy = 0, see upscale_loop.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

from ..errors import SceneFormatError

FORMAT = "splatup.trained-model"
VERSION = 1
TRAINED_METHODS = ("native", "hermite", "hermite-first")
_REQUIRED = {"method": str, "upscale": (int, float), "lowres_dilation": (str, int, float), "dilation": (int, float),
             "background": list, "iterations": int, "width": int, "height": int, "sh_degree": int}


class TrainingMetadataWarning(UserWarning):
    """A metadata file beside a .ply that does not describe it."""


def metadata_path(ply_path: str | Path) -> Path:
    """Where the metadata of ``ply_path`` lives: the same name with ``.json``."""
    return Path(ply_path).with_suffix(".json")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_training_metadata(ply_path: Path, fields: dict) -> dict:
    """The metadata dict for ``ply_path`` (already written): ``fields`` plus format, version and the file's hash."""
    return {"format": FORMAT, "version": VERSION, "ply_sha256": file_sha256(Path(ply_path)), **fields}


def _check(meta: object, path: Path) -> dict:
    if not isinstance(meta, dict):
        raise SceneFormatError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("version") != VERSION:
        raise SceneFormatError(f"{path}: training metadata version {meta.get('version')!r}; this splatup reads "
                               f"version {VERSION}")
    for key, kind in _REQUIRED.items():
        v = meta.get(key)
        if not isinstance(v, kind) or isinstance(v, bool):
            raise SceneFormatError(f"{path}: field '{key}' is missing or of the wrong type ({v!r})")
    if meta["method"] not in TRAINED_METHODS:
        raise SceneFormatError(f"{path}: field 'method' must be one of {', '.join(TRAINED_METHODS)}, got "
                               f"{meta['method']!r}")
    if not (math.isfinite(meta["upscale"]) and meta["upscale"] >= 1):
        raise SceneFormatError(f"{path}: field 'upscale' must be a number >= 1, got {meta['upscale']!r}")
    bg = meta["background"]
    if len(bg) != 3 or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 1 for c in bg):
        raise SceneFormatError(f"{path}: field 'background' must be [r, g, b] in [0, 1], got {bg!r}")
    if min(meta["width"], meta["height"], meta["iterations"]) < 1:
        raise SceneFormatError(f"{path}: fields 'width', 'height' and 'iterations' must be >= 1")
    return meta


def read_training_metadata(ply_path: str | Path) -> dict | None:
    """The training metadata of the model ``ply_path``, or None if it has none.

    None also when the JSON beside it is not splatup's (no ``format`` marker) or describes another file (its
    ``ply_sha256`` differs; a :class:`TrainingMetadataWarning` says so).

    Raises:
        SceneFormatError: splatup's metadata file is there but unreadable or malformed (names the file and field).
    """
    ply_path = Path(ply_path)
    path = metadata_path(ply_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise SceneFormatError(f"{path}: the training metadata is not valid JSON ({e})") from None
    except OSError as e:
        raise SceneFormatError(f"{path}: cannot read the training metadata ({e.strerror})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    meta = _check(meta, path)
    if ply_path.is_file() and meta.get("ply_sha256") != file_sha256(ply_path):
        warnings.warn(f"{path} describes another version of {ply_path.name} (its SHA-256 differs); ignored",
                      TrainingMetadataWarning, stacklevel=2)
        return None
    return meta
