"""Checks on values read from files, shared by every reader (datasets, images).

Each check takes ``where`` (the file, and the record in it) and a field name, and raises
:class:`~splatup.errors.SceneFormatError` naming both and what was expected, so no reader lets a ``ValueError``,
``OverflowError``, ``RecursionError`` or ``LinAlgError`` of a library reach the user. Limits (why each exists):

- :data:`MAX_JSON_DEPTH`: Python's JSON parser recurses once per nesting level; bounding the depth before
  parsing turns a deeply nested file into an error instead of a ``RecursionError``.
- :data:`MAX_IMAGE_PIXELS`: the largest image (and dataset camera) size read, checked on the header before
  any pixel is decoded: 2^26 pixels (8192 x 8192; a 64-megapixel photograph fits). It bounds what one bad
  header can make the decoder allocate; docs/reliability.md gives the measured peak memory at the limit.
- :data:`FLOAT32_MAX`: splatup renders and trains in float32, so camera positions, focal lengths and points
  beyond the float32 range are refused rather than turned into Inf later.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import SceneFormatError, SplatupInputError

MAX_JSON_DEPTH = 64
MAX_IMAGE_PIXELS = 1 << 26  # 67,108,864 pixels: 8192 x 8192
FLOAT32_MAX = float(np.finfo(np.float32).max)
RIGID_TOLERANCE = 1e-4  # max |R R^T - I| of a rotation read from a file (the same bound Camera checks)
def brief(value: object, limit: int = 80) -> str:
    """repr of ``value`` cut to ``limit`` characters, for error messages about values of any size."""
    try:
        text = repr(value)
    except RecursionError:  # pragma: no cover - depth is bounded before values reach here
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 15] + f"... ({len(text)} chars)"


# ---------------------------------------------------------------------------------------------------- JSON


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in the JSON text ``data`` (UTF-8), ignoring brackets inside strings.

    One vectorised pass: a quote ends or starts a string unless an odd run of backslashes precedes it.
    Malformed text gets some depth too; the parser reports what is wrong with it afterwards.
    """
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0:
        return 0
    idx = np.arange(b.size)
    backslash = b == 0x5C
    last_other = np.maximum.accumulate(np.where(backslash, -1, idx))  # last non-backslash at or before i
    run_before = np.empty(b.size, dtype=np.int64)  # backslashes right before position i
    run_before[0] = 0
    run_before[1:] = idx[:-1] - last_other[:-1]
    quote = (b == 0x22) & (run_before % 2 == 0)
    in_string = (np.cumsum(quote) % 2) == 1  # an opening quote counts as inside, a closing one as outside
    step = np.zeros(b.size, dtype=np.int64)
    step[((b == 0x5B) | (b == 0x7B)) & ~in_string] = 1
    step[((b == 0x5D) | (b == 0x7D)) & ~in_string] = -1
    return int(np.cumsum(step).max(initial=0))


def _parse_int(text: str) -> int | float:
    """JSON integers: exact up to 18 digits, longer ones as float (inf beyond float64), never int()'s
    4300-digit ``ValueError``. Dataset fields are sizes and coordinates, where 18 digits are already absurd."""
    return int(text) if len(text) <= 18 else float(text)


def read_json(path: Path) -> object:
    """Parse the JSON file ``path`` with nesting bounded by :data:`MAX_JSON_DEPTH`.

    Numbers come back as int or float; values beyond float64 (``1e400``, a 400-digit integer) and the
    ``NaN``/``Infinity`` extensions come back as non-finite floats, which :func:`finite` refuses by field name.

    Raises:
        SplatupInputError: the file cannot be read.
        SceneFormatError: not UTF-8, not JSON, or nested too deeply.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SplatupInputError(f"{path}: cannot read: {e}") from e
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise SceneFormatError(
            f"{path}: JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} are read (a transforms file needs 5)"
        )
    try:
        return json.loads(data.decode("utf-8-sig"), parse_int=_parse_int)
    except UnicodeDecodeError as e:
        raise SceneFormatError(f"{path}: not valid JSON: not UTF-8 text ({e})") from e
    except json.JSONDecodeError as e:
        raise SceneFormatError(f"{path}: not valid JSON: {e}") from e
    except RecursionError as e:  # pragma: no cover - the depth bound above keeps the parser far from the limit
        raise SceneFormatError(f"{path}: JSON nested too deeply") from e


# ---------------------------------------------------------------------------------------------------- numbers


def finite(value: object, field: str, where: str, *, limit: float = FLOAT32_MAX) -> float:
    """``value`` as a float; it must be a real number (not a bool) with ``|value| <= limit``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SceneFormatError(f"{where}: '{field}' must be a number, got {brief(value)}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v) or abs(v) > limit:
        why = "" if math.isfinite(v) else " (NaN, Infinity, or a number beyond the float64 range, which reads as inf)"
        raise SceneFormatError(
            f"{where}: '{field}' must be a finite number of magnitude at most {limit:.4g}, got {brief(value)}{why}"
        )
    return v


def positive(value: object, field: str, where: str) -> float:
    """``value`` as a float in (0, FLOAT32_MAX]."""
    v = finite(value, field, where)
    if v <= 0:
        raise SceneFormatError(f"{where}: '{field}' must be > 0, got {brief(value)}")
    return v


def field_of_view(value: object, field: str, where: str) -> float:
    """An angle of view in radians, strictly between 0 and pi."""
    v = finite(value, field, where)
    if not 0 < v < math.pi:
        raise SceneFormatError(f"{where}: '{field}' must be an angle in radians strictly between 0 and pi, got {v!r}")
    return v


def pixels(value: object, field: str, where: str) -> int:
    """A positive whole number of pixels (``800`` or ``800.0``), at most :data:`MAX_IMAGE_PIXELS`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SceneFormatError(f"{where}: '{field}' must be a whole number of pixels, got {brief(value)}")
    if isinstance(value, (float, np.floating)) and not (math.isfinite(value) and float(value).is_integer()):
        raise SceneFormatError(f"{where}: '{field}' must be a whole number of pixels, got {brief(value)}")
    n = int(value)
    if not 1 <= n <= MAX_IMAGE_PIXELS:
        raise SceneFormatError(
            f"{where}: '{field}' must be between 1 and {MAX_IMAGE_PIXELS} pixels, got {brief(value)}"
        )
    return n


def image_dims(
    width: object, height: object, where: str, fields: tuple[str, str] = ("width", "height")
) -> tuple[int, int]:
    """(width, height) as positive integers whose product is at most :data:`MAX_IMAGE_PIXELS`."""
    w, h = pixels(width, fields[0], where), pixels(height, fields[1], where)
    check_image_pixels(w, h, where)
    return w, h


def check_image_pixels(width: int, height: int, where: str) -> None:
    """Refuse an image (or camera) of no pixels or of more than :data:`MAX_IMAGE_PIXELS` before anything is decoded."""
    if width < 1 or height < 1:
        raise SceneFormatError(f"{where}: claims {width} x {height} pixels; an image has at least 1 x 1")
    if width * height > MAX_IMAGE_PIXELS:
        raise SceneFormatError(
            f"{where}: claims {width} x {height} = {width * height:,} pixels; splatup reads images of at most "
            f"{MAX_IMAGE_PIXELS:,} pixels (downscale the images first)"
        )


# ---------------------------------------------------------------------------------------------------- poses


def matrix(value: object, field: str, where: str) -> np.ndarray:
    """A nested list of numbers as a float64 array (each entry checked by :func:`finite`), shape as given."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.float64(finite(value, field, where))
    if not isinstance(value, list) or not value:
        raise SceneFormatError(f"{where}: '{field}' must be a matrix (a list of rows of numbers), got {brief(value)}")
    rows = [matrix(v, f"{field}[{i}]", where) for i, v in enumerate(value)]
    if any(r.shape != rows[0].shape for r in rows):
        raise SceneFormatError(f"{where}: '{field}' has rows of different lengths: {brief(value)}")
    return np.stack(rows)


def rigid_transform(value: object, field: str, where: str) -> np.ndarray:
    """A camera-to-world matrix: 4x4 (last row 0 0 0 1) or 3x4, rotation part orthonormal with determinant +1
    (within :data:`RIGID_TOLERANCE`), translation within float32 range. Returns it as 4x4 float64."""
    m = matrix(value, field, where)
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise SceneFormatError(f"{where}: '{field}' must be a 4x4 (or 3x4) matrix, got shape {m.shape}")
    if not np.allclose(m[3], (0.0, 0.0, 0.0, 1.0), rtol=1e-5, atol=1e-8):
        raise SceneFormatError(f"{where}: '{field}' must have the last row [0, 0, 0, 1], got {m[3].tolist()}")
    m[3] = (0.0, 0.0, 0.0, 1.0)
    check_rotation(m[:3, :3], field, where)
    check_translation(m[:3, 3], field, where)
    return m


def check_rotation(R: np.ndarray, field: str, where: str) -> None:
    """R [3, 3] must be a rotation: a singular, scaled, sheared or mirrored matrix is refused by name."""
    with np.errstate(over="ignore", invalid="ignore"):
        err = float(np.abs(R @ R.T - np.eye(3)).max())
        det = float(np.linalg.det(R))
    if not err <= RIGID_TOLERANCE or not det > 0:
        raise SceneFormatError(
            f"{where}: '{field}' is not a rigid camera pose: its rotation part must be orthonormal with "
            f"determinant +1 (|R R^T - I| = {err:.3g}, det = {det:.4g}); singular, scaled or mirrored matrices "
            "are refused"
        )


def check_translation(t: np.ndarray, field: str, where: str) -> None:
    """t [3] (finite float64) must have a length within float32 range, so that the camera centre and the
    world-to-camera translation (both of length |t| for a rigid pose) stay finite in float32."""
    length = float(np.linalg.norm(t))
    if not length <= FLOAT32_MAX:
        raise SceneFormatError(
            f"{where}: '{field}' has a translation of length {length:.4g}, beyond the float32 range "
            f"({FLOAT32_MAX:.4g}) splatup renders in"
        )


def finite_points(xyz: np.ndarray, what: str) -> np.ndarray:
    """[P, 3] positions as float32; NaN, Inf and values beyond float32 are refused, naming the first point."""
    with np.errstate(over="ignore", invalid="ignore"):
        pts = np.asarray(xyz).astype(np.float32)
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SceneFormatError(
            f"{what}: point positions must be finite within float32 range; {int(bad.sum())} are not, first point "
            f"{i}: {np.asarray(xyz)[i].tolist()}"
        )
    return pts


# ---------------------------------------------------------------------------------------------------- paths

_PATH_BRIEF = 300  # paths are shown longer than other values: the user needs to recognise them
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(folder, name))
    except (OSError, ValueError, AttributeError):  # no such folder yet, or not a POSIX system
        return default


def path_inside(base: Path, name: object, field: str, where: str) -> Path:
    """``base / name`` for a file name read from a dataset, which must stay inside ``base``.

    Refused, naming the field: a non-string or empty name, NUL bytes or text that is no file name, an absolute
    path (also ``C:\\``), a ``..`` that leaves ``base``, the folder itself, a path component longer than the
    file system's NAME_MAX (255 bytes on most) or a whole path over PATH_MAX. Symlinks inside ``base`` are
    followed as the file system does; only the names are checked.
    """
    shown = brief(name, _PATH_BRIEF)
    if not isinstance(name, str) or not name.strip():
        raise SceneFormatError(f"{where}: '{field}' must be a non-empty relative file path, got {shown}")
    try:
        encoded = os.fsencode(name)
    except UnicodeEncodeError as e:
        raise SceneFormatError(f"{where}: '{field}' is not a valid file name: {shown}") from e
    if b"\x00" in encoded:
        raise SceneFormatError(f"{where}: '{field}' contains a NUL character: {shown}")
    if os.path.isabs(name) or _DRIVE.match(name):
        raise SceneFormatError(
            f"{where}: '{field}' is an absolute path ({shown}); dataset paths must be relative to {base}"
        )
    norm = os.path.normpath(name)
    if norm == ".":
        raise SceneFormatError(f"{where}: '{field}' names the dataset folder itself, not a file: {shown}")
    if norm == ".." or norm.startswith(".." + os.sep):
        raise SceneFormatError(f"{where}: '{field}' leaves the dataset folder {base}: {shown}")
    name_max = _limit(base, "PC_NAME_MAX", 255)
    for part in Path(norm).parts:
        if len(os.fsencode(part)) > name_max:
            raise SceneFormatError(
                f"{where}: '{field}' has a path component of {len(os.fsencode(part))} bytes "
                f"({brief(part, _PATH_BRIEF)}); the file system allows {name_max}"
            )
    full = base / norm
    path_max = _limit(base, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(full))) >= path_max:
        raise SceneFormatError(
            f"{where}: '{field}' makes a path of {len(os.fsencode(str(full)))} bytes; the file system allows "
            f"{path_max - 1}"
        )
    return full
