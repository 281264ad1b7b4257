"""INRIA 3DGS ``.ply`` files: read by property name, write in the INRIA layout.

A 3DGS ``.ply`` holds one ``vertex`` element whose properties are the pre-activation parameters:

- ``x y z``                  centre
- ``nx ny nz``               normals (optional, unused; written as 0)
- ``f_dc_0..2``              SH DC coefficient per colour channel
- ``f_rest_0..M-1``          higher SH coefficients, M = 3 * ((d + 1)^2 - 1) in {0, 9, 24, 45} for degree d in 0..3,
                             **channel-major**: ``f_rest_{c*(K-1) + (k-1)}`` is colour channel c of coefficient k
- ``opacity``                logit of the opacity
- ``scale_0..2``             log standard deviations
- ``rot_0..3``               quaternion (w, x, y, z), not necessarily normalised

Real files drop fields (no normals, no ``f_rest``) and order them freely, so properties are looked up by name.
Any numeric property type is accepted and cast to float32.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import plyfile
import torch

from ..errors import SceneFormatError, SplatupInputError
from ..gaussians import Gaussians, num_sh_coeffs
from ._atomic import atomic_write, check_destination

_REQUIRED = (
    "x", "y", "z",
    "f_dc_0", "f_dc_1", "f_dc_2",
    "opacity",
    "scale_0", "scale_1", "scale_2",
    "rot_0", "rot_1", "rot_2", "rot_3",
)
_F_REST = re.compile(r"^f_rest_(\d+)$")
_REST_COUNTS = {3 * (num_sh_coeffs(d) - 1): d for d in range(4)}  # {0: 0, 9: 1, 24: 2, 45: 3}


def _rest_names(names: list[str], path: Path) -> list[str]:
    """The ``f_rest_*`` property names sorted by integer suffix; checks the count and that no index is missing."""
    found = sorted(((int(m.group(1)), n) for n in names if (m := _F_REST.match(n))), key=lambda t: t[0])
    idx = [i for i, _ in found]
    if len(found) not in _REST_COUNTS:
        raise SceneFormatError(
            f"{path}: found {len(found)} f_rest_* properties; a 3DGS .ply has 0, 9, 24 or 45 "
            "(SH degree 0, 1, 2 or 3)"
        )
    if idx != list(range(len(found))):
        missing = sorted(set(range(len(found))) - set(idx))
        raise SceneFormatError(
            f"{path}: f_rest_* properties must be numbered 0..{len(found) - 1}; "
            f"missing f_rest_{missing[0] if missing else '?'} (found suffixes {idx[:6]}...)"
        )
    return [n for _, n in found]


def _read_vertex(path: Path) -> tuple[plyfile.PlyElement, list[str]]:
    try:
        ply = plyfile.PlyData.read(str(path), mmap="c")  # mmap: plyfile's non-mmap path parses row by row
    except OSError as e:  # missing, unreadable, a directory
        raise SplatupInputError(f"{path}: cannot read .ply file: {e}") from e
    except Exception as e:  # plyfile / numpy parse errors on malformed or truncated input
        raise SceneFormatError(f"{path}: malformed or truncated .ply file ({type(e).__name__}: {e})") from e
    elements = {el.name: el for el in ply.elements}
    if "vertex" not in elements:
        raise SceneFormatError(
            f"{path}: no 'vertex' element (found elements: {sorted(elements) or 'none'}); "
            "a 3DGS .ply stores its Gaussians as vertices"
        )
    return elements["vertex"], sorted(elements)


def _columns_f32(data: np.ndarray, columns: list[str]) -> np.ndarray:
    """float32 matrix [N, len(columns)] of the named fields of the (memory-mapped) structured vertex array."""
    names = data.dtype.names
    if all(data.dtype[nm] == np.dtype("<f4") for nm in names) and data.dtype.itemsize == 4 * len(names):
        # the usual all-float32 file: one sequential read, then one gather of the wanted columns
        full = np.ascontiguousarray(data).view("<f4").reshape(len(data), len(names))
        return full[:, [names.index(c) for c in columns]]
    data = np.array(data)  # sequential copy into memory before strided column reads
    mat = np.empty((len(data), len(columns)), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # doubles beyond float32 become inf: reported below
        for j, name in enumerate(columns):
            mat[:, j] = data[name]
    return mat


def read_ply(path: str | os.PathLike) -> Gaussians:
    """Load an INRIA 3DGS ``.ply`` file.

    Args:
        path: the ``.ply`` file.

    Returns:
        float32 :class:`Gaussians` (pre-activation values exactly as stored).

    Raises:
        SceneFormatError: the file is malformed or truncated, has no ``vertex`` element, lacks a required
            property, has an ``f_rest`` count other than 0/9/24/45, a non-numeric property, a NaN/Inf value
            (message names the property and first bad Gaussian) or a zero quaternion.
    """
    path = Path(path)
    vertex, element_names = _read_vertex(path)
    data = vertex.data
    names = list(data.dtype.names or ())
    list_props = [p.name for p in vertex.properties if isinstance(p, plyfile.PlyListProperty)]

    missing = [n for n in _REQUIRED if n not in names]
    if missing:
        hint = ""
        if "packed_position" in names or "chunk" in element_names:
            hint = " (this looks like a SuperSplat 'compressed.ply', which is not supported)"
        raise SceneFormatError(
            f"{path}: vertex element is missing required 3DGS properties {missing}{hint}; "
            f"found {names[:20]}{'...' if len(names) > 20 else ''}"
        )
    rest = _rest_names(names, path)
    columns = list(_REQUIRED) + rest
    bad_type = [n for n in columns if n in list_props or not np.issubdtype(data.dtype[n], np.number)]
    if bad_type:
        raise SceneFormatError(f"{path}: properties {bad_type} must be numeric scalars")

    n = len(data)
    mat = _columns_f32(data, columns)

    bad = ~np.isfinite(mat)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        col = int(np.flatnonzero(bad[row])[0])
        count = int(bad.any(axis=1).sum())
        raise SceneFormatError(
            f"{path}: property '{columns[col]}' is {mat[row, col]} (NaN or Inf, or too large for float32) at "
            f"Gaussian {row}; {count} Gaussian(s) have non-finite values"
        )
    quats = mat[:, 10:14]
    zero = ~(quats != 0).any(axis=1)
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise SceneFormatError(
            f"{path}: rot_0..rot_3 is the zero quaternion at Gaussian {row} ({int(zero.sum())} in total); "
            "a rotation needs a non-zero quaternion"
        )

    k = len(rest) // 3 + 1
    sh = np.empty((n, k, 3), dtype=np.float32)
    sh[:, 0] = mat[:, 3:6]
    if k > 1:
        # channel-major: column c*(K-1) + (k-1) is channel c of coefficient k -> [N, 3, K-1] -> [N, K-1, 3]
        sh[:, 1:] = mat[:, 14:].reshape(n, 3, k - 1).transpose(0, 2, 1)
    t = torch.from_numpy
    return Gaussians(
        means=t(np.ascontiguousarray(mat[:, 0:3])),
        quats=t(np.ascontiguousarray(quats)),
        log_scales=t(np.ascontiguousarray(mat[:, 7:10])),
        opacity_logits=t(np.ascontiguousarray(mat[:, 6])),
        sh=t(sh),
    )


def ply_property_names(sh_degree: int) -> list[str]:
    """The INRIA property order for a given SH degree (62 names at degree 3)."""
    m = 3 * (num_sh_coeffs(sh_degree) - 1)
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(m)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def _check_writable(flat: np.ndarray, names: list[str], path: Path) -> None:
    """Refuse to write values that could not be read back: NaN/Inf (after the float32 cast), zero quaternions."""
    finite = np.isfinite(flat)
    if not finite.all():
        bad_rows = ~finite.all(axis=1)
        row = int(np.flatnonzero(bad_rows)[0])
        col = int(np.flatnonzero(~finite[row])[0])
        raise SplatupInputError(
            f"save_ply({path}): property '{names[col]}' is {flat[row, col]} (NaN or Inf, or too large for float32) "
            f"at Gaussian {row}; {int(bad_rows.sum())} Gaussian(s) have non-finite values"
        )
    zero = ~(flat[:, -4:] != 0).any(axis=1)
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise SplatupInputError(
            f"save_ply({path}): rot_0..rot_3 (quats) is the zero quaternion at Gaussian {row}; "
            "a rotation needs a non-zero quaternion"
        )


def save_ply(scene: Gaussians, path: str | os.PathLike) -> Path:
    """Write ``scene`` as an INRIA 3DGS ``.ply`` (binary little endian, every property float32).

    Property order: ``x y z nx ny nz f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3``, normals written as 0,
    ``f_rest`` channel-major. Values are cast to float32, so a float32 scene reads back bit-exact. The file is
    written to a temporary file in the same folder and moved into place, so ``path`` is never left half-written.

    Raises:
        SplatupInputError: the scene has NaN/Inf values or a zero quaternion (it could not be read back), or the
            destination folder does not exist.

    Returns:
        The path written.
    """
    path = Path(path)
    if not isinstance(scene, Gaussians):
        raise SplatupInputError(f"save_ply: expected a Gaussians scene, got {type(scene).__name__}")
    check_destination(path, "save_ply")

    def np32(t: torch.Tensor) -> np.ndarray:
        return t.detach().to(device="cpu", dtype=torch.float32).numpy()

    n, k = len(scene), scene.sh.shape[1]
    sh = np32(scene.sh)
    cols = [
        np32(scene.means),
        np.zeros((n, 3), dtype=np.float32),
        sh[:, 0],
        sh[:, 1:].transpose(0, 2, 1).reshape(n, 3 * (k - 1)),  # [N, K-1, 3] -> channel-major [N, 3*(K-1)]
        np32(scene.opacity_logits)[:, None],
        np32(scene.log_scales),
        np32(scene.quats),
    ]
    names = ply_property_names(scene.sh_degree)
    flat = np.ascontiguousarray(np.concatenate(cols, axis=1), dtype="<f4")
    _check_writable(flat, names, path)
    records = flat.view(np.dtype([(name, "<f4") for name in names])).reshape(n)
    element = plyfile.PlyElement.describe(records, "vertex")

    with atomic_write(path) as f:
        plyfile.PlyData([element], text=False, byte_order="<").write(f)
    return path


__all__ = ["read_ply", "save_ply", "ply_property_names"]
