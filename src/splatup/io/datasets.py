"""Multi-view datasets: cameras, image paths and (when the format has them) sparse points.

Readers:

- :func:`read_nerf_synthetic` — ``transforms_{split}.json`` (NeRF-synthetic / Blender) and nerfstudio
  ``transforms.json``. ``transform_matrix`` is camera-to-world in OpenGL axes; converted with
  :func:`splatup.camera.opengl_c2w_to_w2c`.
- :func:`read_colmap` — COLMAP sparse models, binary (``*.bin``) or text (``*.txt``), in ``root``,
  ``root/sparse/0`` or ``root/sparse``. PINHOLE and SIMPLE_PINHOLE cameras only (undistorted images).
- :func:`load_dataset` — detects the kind.
- :func:`split_llff` — the 3DGS train/test split (every ``llffhold``-th view by name is a test view).

The readers do not decode images (sizes come from the metadata or from image headers); use
:func:`splatup.io.images.read_image` on ``View.image_path``. Every value read from a file passes the checks of
:mod:`splatup.io._validate` (JSON depth and numbers, sizes, poses, paths that stay inside the dataset), so a bad
file raises :class:`SceneFormatError` naming the file, the record and the field.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from numba import njit

from ..camera import Camera, opengl_c2w_to_w2c
from ..errors import SceneFormatError, SplatupInputError
from . import _validate as check
from .images import image_size


@dataclass(frozen=True)
class View:
    """One training/test view: a name (relative image path), its camera and its image file."""

    name: str
    camera: Camera
    image_path: Path


@dataclass
class Dataset:
    """Views of one scene.

    Attributes:
        views: the views, in the dataset's order (file order for NeRF-synthetic, sorted by name otherwise).
        points: [P, 3] float32 sparse points (COLMAP ``points3D``, nerfstudio ``ply_file_path``) or None.
        point_colors: [P, 3] float32 colours in [0, 1] of ``points``, or None.
        kind: "nerf_synthetic", "nerfstudio" or "colmap".
        root: the folder the dataset was read from.
    """

    views: list[View]
    points: torch.Tensor | None
    point_colors: torch.Tensor | None
    kind: str
    root: Path

    def __len__(self) -> int:
        return len(self.views)

    def with_views(self, views: Sequence[View]) -> Dataset:
        """The same dataset (points, kind, root) restricted to ``views``."""
        return replace(self, views=list(views))


def split_llff(views: Sequence[View], llffhold: int = 8) -> tuple[list[View], list[View]]:
    """Split views the 3DGS way (``--eval``): sort by name; view i is a test view when i % llffhold == 0.

    Returns:
        (train, test) lists, each sorted by name.
    """
    if isinstance(llffhold, bool) or not isinstance(llffhold, int) or llffhold < 2:
        raise SplatupInputError(f"split_llff: llffhold must be an integer >= 2, got {llffhold!r}")
    ordered = sorted(views, key=lambda v: v.name)
    train = [v for i, v in enumerate(ordered) if i % llffhold != 0]
    test = [v for i, v in enumerate(ordered) if i % llffhold == 0]
    return train, test


def _select_split(ds: Dataset, split: str, where: str) -> Dataset:
    """"all" -> every view; "train"/"test" -> :func:`split_llff` with llffhold 8."""
    if split == "all":
        return ds
    if split not in ("train", "test"):
        raise SplatupInputError(f"{where}: split must be 'train', 'test' or 'all', got {split!r}")
    train, test = split_llff(ds.views)
    return ds.with_views(train if split == "train" else test)


# ====================================================================== NeRF-synthetic / nerfstudio

_NERF_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")


def _load_json(path: Path) -> dict:
    meta = check.read_json(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise SceneFormatError(f"{path}: expected a JSON object with a non-empty 'frames' list")
    return meta


def _is_file(p: Path) -> bool:
    """Path.is_file, with False also for names the OS refuses (too long with an added extension)."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def _frame_image(base: Path, file_path: object, where: str) -> Path:
    """The image of a frame: ``file_path`` inside ``base``, as given or (NeRF-synthetic) plus .png/.jpg/.jpeg."""
    p = check.path_inside(base, file_path, "file_path", where)
    if _is_file(p):
        return p
    if not p.suffix:
        for ext in (".png", ".jpg", ".jpeg"):
            if _is_file(p.parent / (p.name + ext)):
                return p.parent / (p.name + ext)
    raise SplatupInputError(f"{where}: image file {p}{'[.png]' if not p.suffix else ''} not found")


def _focal_from_angle(size: int, angle: object, field: str, where: str) -> float:
    """Focal length in pixels of an image ``size`` pixels across with the angle of view ``angle`` (radians)."""
    half = math.tan(0.5 * check.field_of_view(angle, field, where))  # 0.0 for an angle of 5e-324
    return check.positive(0.5 * size / half if half > 0 else math.inf, f"focal length from {field}", where)


def _frame_camera(meta: dict, frame: dict, image: Path, where: str) -> Camera:
    def get(key: str) -> object:
        return frame.get(key, meta.get(key))

    model = get("camera_model") or "OPENCV"
    if not isinstance(model, str) or model not in _PINHOLE_MODELS:
        raise SplatupInputError(
            f"{where}: camera_model {check.brief(model)} is not supported; splatup needs undistorted pinhole images "
            "(PINHOLE / OPENCV without distortion)"
        )
    dist = {k: get(k) for k in _NERF_DISTORTION_KEYS if get(k) is not None}
    nonzero = {k: v for k, v in dist.items() if check.finite(v, k, where) != 0.0}
    if nonzero:
        raise SplatupInputError(
            f"{where}: lens distortion {nonzero} is not supported; undistort the images first "
            "(e.g. `colmap image_undistorter`, or ns-process-data) so that the camera is a plain pinhole"
        )
    w, h = get("w"), get("h")
    if w is None or h is None:
        w, h = image_size(image)
    w, h = check.image_dims(w, h, where, ("w", "h"))
    if get("fl_x") is not None:
        fx = check.positive(get("fl_x"), "fl_x", where)
        fy = check.positive(get("fl_y"), "fl_y", where) if get("fl_y") is not None else fx
    elif get("camera_angle_x") is not None:
        fx = _focal_from_angle(w, get("camera_angle_x"), "camera_angle_x", where)
        ay = get("camera_angle_y")
        fy = _focal_from_angle(h, ay, "camera_angle_y", where) if ay is not None else fx
    else:
        raise SceneFormatError(f"{where}: no focal length: expected 'camera_angle_x' or 'fl_x'")
    cx = check.finite(get("cx"), "cx", where) if get("cx") is not None else w / 2
    cy = check.finite(get("cy"), "cy", where) if get("cy") is not None else h / 2

    c2w = check.rigid_transform(frame.get("transform_matrix"), "transform_matrix", where)
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
    try:
        return Camera(opengl_c2w_to_w2c(c2w), K, w, h)
    except SplatupInputError as e:
        raise SceneFormatError(f"{where}: {e}") from e


def _read_point_ply(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """x y z and red green blue (uint8) of a point-cloud .ply (nerfstudio's ``ply_file_path``)."""
    import plyfile

    try:
        v = plyfile.PlyData.read(str(path))["vertex"].data
        xyz = np.stack([v[k] for k in ("x", "y", "z")], axis=1)
        rgb = np.stack([v[k] for k in ("red", "green", "blue")], axis=1).astype(np.float64) / 255.0
    except OSError as e:
        raise SplatupInputError(f"{path}: cannot read point cloud: {e}") from e
    except Exception as e:  # plyfile parse errors, missing properties
        raise SceneFormatError(f"{path}: bad point-cloud .ply ({type(e).__name__}: {e})") from e
    xyz = check.finite_points(xyz, str(path))
    if not ((rgb >= 0) & (rgb <= 1)).all():  # also False for NaN
        raise SceneFormatError(f"{path}: point colours 'red', 'green', 'blue' must be in 0..255")
    return torch.from_numpy(xyz), torch.from_numpy(rgb.astype(np.float32))


def read_nerf_synthetic(root: str | os.PathLike, split: str = "train") -> Dataset:
    """Read a NeRF-synthetic ``transforms_{split}.json`` or a nerfstudio ``transforms.json``.

    Args:
        root: the dataset folder, or a ``transforms*.json`` file.
        split: with ``transforms_{split}.json`` present, that file. For a single nerfstudio ``transforms.json``:
            its ``{split}_filenames`` list if it has one, else "all" (every frame) or "train" / "test" by
            :func:`split_llff` (llffhold 8).

    Intrinsics: ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` (top level, overridable per frame), or
    ``camera_angle_x`` (fx = 0.5 W / tan(angle / 2)), fy = fx unless ``camera_angle_y``/``fl_y`` is given,
    principal point (W/2, H/2) unless given. W, H come from ``w``/``h`` or from the image header. Lens
    distortion (non-zero k1..k4, p1, p2) and fisheye/equirectangular models are rejected.
    """
    root = Path(root)
    if root.is_file():
        json_path, base = root, root.parent
    elif root.is_dir():
        base = root
        json_path = root / f"transforms_{split}.json"
        if not json_path.is_file():
            json_path = root / "transforms.json"
        if not json_path.is_file():
            found = sorted(p.name for p in root.glob("transforms*.json"))
            raise SplatupInputError(
                f"{root}: no transforms_{split}.json or transforms.json (found: {found or 'none'})"
            )
    else:
        raise SplatupInputError(f"{root}: dataset folder not found")

    meta = _load_json(json_path)
    nerfstudio = json_path.name == "transforms.json" or "fl_x" in meta
    frames = list(enumerate(meta["frames"]))
    if json_path.name == "transforms.json" and isinstance(meta.get(f"{split}_filenames"), list):
        wanted = {os.path.normpath(str(n)) for n in meta[f"{split}_filenames"]}
        frames = [(i, f) for i, f in frames if isinstance(f, dict) and
                  os.path.normpath(str(f.get("file_path"))) in wanted]
        if not frames:
            raise SceneFormatError(f"{json_path}: '{split}_filenames' matches no frame's file_path")

    views = []
    for i, frame in frames:
        where = f"{json_path}: frame {i}"
        if not isinstance(frame, dict):
            raise SceneFormatError(f"{where}: expected a JSON object, got {type(frame).__name__}")
        image = _frame_image(base, frame.get("file_path"), where)
        cam = _frame_camera(meta, frame, image, f"{where} ({check.brief(frame.get('file_path'))})")
        views.append(View(name=image.relative_to(base).as_posix(), camera=cam, image_path=image))

    points = colors = None
    if nerfstudio and meta.get("ply_file_path"):
        ply = check.path_inside(base, meta["ply_file_path"], "ply_file_path", str(json_path))
        points, colors = _read_point_ply(ply)
    ds = Dataset(views, points, colors, "nerfstudio" if nerfstudio else "nerf_synthetic", base)
    if json_path.name == "transforms.json" and not isinstance(meta.get(f"{split}_filenames"), list):
        ds = _select_split(replace(ds, views=sorted(ds.views, key=lambda v: v.name)), split, str(json_path))
    return ds


# ====================================================================== COLMAP

# model id -> (name, number of parameters), from COLMAP's src/colmap/sensor/models.h
COLMAP_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
_MODEL_PARAMS = {name: k for name, k in COLMAP_MODELS.values()}
SUPPORTED_COLMAP_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")


@dataclass
class _ColmapCamera:
    """A checked PINHOLE / SIMPLE_PINHOLE camera: size and intrinsics in pixels."""

    model: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


@dataclass
class _ColmapImage:
    image_id: int
    qvec: tuple[float, float, float, float]  # w x y z, world -> camera
    tvec: tuple[float, float, float]
    camera_id: int
    name: str


def _colmap_camera(model: str, width: object, height: object, params: tuple[float, ...], where: str) -> _ColmapCamera:
    """Check a supported camera's size and parameters (SIMPLE_PINHOLE: f cx cy; PINHOLE: fx fy cx cy)."""
    w, h = check.image_dims(width, height, where)
    names = ("f", "cx", "cy") if model == "SIMPLE_PINHOLE" else ("fx", "fy", "cx", "cy")
    p = dict(zip(names, params, strict=True))
    fx = check.positive(p["f" if model == "SIMPLE_PINHOLE" else "fx"], names[0], where)
    fy = fx if model == "SIMPLE_PINHOLE" else check.positive(p["fy"], "fy", where)
    return _ColmapCamera(model, w, h, fx, fy, check.finite(p["cx"], "cx", where), check.finite(p["cy"], "cy", where))


def _unsupported_model(model: str, camera_id: int, path: Path) -> SplatupInputError:
    return SplatupInputError(
        f"{path}: camera {camera_id} uses the {model} camera model; splatup supports only "
        f"{' and '.join(SUPPORTED_COLMAP_MODELS)} (undistorted images). Undistort the model first, e.g. "
        "`colmap image_undistorter --image_path images --input_path sparse/0 --output_path undistorted`"
    )


class _Bin:
    """Little-endian reader over the bytes of one COLMAP binary file, raising SceneFormatError on truncation."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as e:
            raise SplatupInputError(f"{path}: cannot read: {e}") from e
        self.off = 0

    def unpack(self, fmt: str) -> tuple:
        try:
            out = struct.unpack_from("<" + fmt, self.data, self.off)
        except struct.error as e:
            raise self.truncated() from e
        self.off += struct.calcsize("<" + fmt)
        return out

    def skip(self, nbytes: int) -> None:
        if nbytes < 0 or self.off + nbytes > len(self.data):
            raise self.truncated()
        self.off += nbytes

    def truncated(self) -> SceneFormatError:
        return SceneFormatError(
            f"{self.path}: truncated or malformed COLMAP file ({len(self.data)} bytes, ran out at byte {self.off})"
        )

    def finish(self) -> None:
        if self.off != len(self.data):
            raise SceneFormatError(
                f"{self.path}: {len(self.data) - self.off} unexpected trailing bytes after the last record; "
                "truncated or not a COLMAP file?"
            )


def _count(r: _Bin, min_record: int) -> int:
    (n,) = r.unpack("Q")
    if n * min_record > len(r.data) - r.off:
        raise SceneFormatError(
            f"{r.path}: header says {n} records but only {len(r.data) - r.off} bytes follow; truncated"
        )
    return n


def _read_cameras_bin(path: Path) -> dict[int, _ColmapCamera]:
    r = _Bin(path)
    cams = {}
    for _ in range(_count(r, 24)):
        cam_id, model_id, w, h = r.unpack("iiQQ")
        if model_id not in COLMAP_MODELS:
            raise SceneFormatError(f"{path}: camera {cam_id} has unknown camera model id {model_id}")
        model, k = COLMAP_MODELS[model_id]
        if model not in SUPPORTED_COLMAP_MODELS:
            raise _unsupported_model(model, cam_id, path)
        cams[cam_id] = _colmap_camera(model, w, h, r.unpack(f"{k}d"), f"{path}: camera {cam_id}")
    r.finish()
    return cams


def _read_images_bin(path: Path) -> dict[int, _ColmapImage]:
    r = _Bin(path)
    images = {}
    for _ in range(_count(r, 64 + 1 + 8)):
        image_id, qw, qx, qy, qz, tx, ty, tz, cam_id = r.unpack("idddddddi")
        end = r.data.find(b"\x00", r.off)
        if end < 0:
            raise r.truncated()
        try:
            name = r.data[r.off : end].decode("utf-8")
        except UnicodeDecodeError as e:
            raise SceneFormatError(f"{path}: image {image_id} has a name that is not UTF-8") from e
        r.off = end + 1
        (npts,) = r.unpack("Q")
        r.skip(24 * npts)  # points2D: f64 x, f64 y, i64 point3D_id
        images[image_id] = _ColmapImage(image_id, (qw, qx, qy, qz), (tx, ty, tz), cam_id, name)
    r.finish()
    return images


@njit(cache=True)
def _scan_points3d(buf: np.ndarray, n: int, start: int) -> tuple[np.ndarray, int]:  # pragma: no cover - numba
    """Walk the variable-length points3D.bin records. Returns ([n, 27] uint8: xyz f64 x 3 then rgb u8 x 3,
    end offset); the end offset is -(i + 1) if record i is truncated."""
    out = np.empty((n, 27), dtype=np.uint8)
    off = start
    size = buf.shape[0]
    for i in range(n):
        if off + 51 > size:  # u64 id, f64 xyz[3], u8 rgb[3], f64 error, u64 track_len
            return out, -(i + 1)
        for b in range(27):
            out[i, b] = buf[off + 8 + b]
        track = np.int64(0)
        for b in range(8):
            track |= np.int64(buf[off + 43 + b]) << (8 * b)
        if track < 0 or track > (size - off - 51) // 8:  # track of (i32 image_id, i32 point2D_idx)
            return out, -(i + 1)
        off += 51 + 8 * track
    return out, off


def _read_points_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    r = _Bin(path)
    n = _count(r, 51)
    buf = np.frombuffer(r.data, dtype=np.uint8)
    packed, end = _scan_points3d(buf, n, r.off)
    if end < 0:
        raise SceneFormatError(f"{path}: truncated or malformed COLMAP file: point record {-end - 1} of {n} is cut")
    r.off = end
    r.finish()
    xyz = np.ascontiguousarray(packed[:, :24]).view("<f8").reshape(n, 3)
    rgb = packed[:, 24:27].copy()
    return xyz, rgb


def _text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped line) of every line; the caller skips comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SplatupInputError(f"{path}: cannot read: {e}") from e
    except UnicodeDecodeError as e:
        raise SceneFormatError(f"{path}: not a UTF-8 text file") from e
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines())]


def _is_data(line: str) -> bool:
    return bool(line) and not line.startswith("#")


def _read_cameras_txt(path: Path) -> dict[int, _ColmapCamera]:
    cams = {}
    for ln, line in _text_lines(path):
        if not _is_data(line):
            continue
        tok = line.split()
        try:
            cam_id, model, w, h = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = tuple(float(t) for t in tok[4:])
        except (IndexError, ValueError) as e:
            raise SceneFormatError(f"{path}:{ln}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...': {line!r}") from e
        if model not in _MODEL_PARAMS:
            raise SceneFormatError(f"{path}:{ln}: camera {cam_id} has unknown camera model {model!r}")
        if model not in SUPPORTED_COLMAP_MODELS:
            raise _unsupported_model(model, cam_id, path)
        if len(params) != _MODEL_PARAMS[model]:
            raise SceneFormatError(
                f"{path}:{ln}: camera {cam_id} ({model}) needs {_MODEL_PARAMS[model]} parameters, got {len(params)}"
            )
        cams[cam_id] = _colmap_camera(model, w, h, params, f"{path}:{ln}: camera {cam_id}")
    return cams


def _read_images_txt(path: Path) -> dict[int, _ColmapImage]:
    lines = _text_lines(path)
    images = {}
    i = 0
    while i < len(lines):
        ln, line = lines[i]
        i += 1
        if not _is_data(line):
            continue
        # IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, then one POINTS2D line (possibly empty), which we skip
        tok = line.split(maxsplit=9)
        try:
            image_id = int(tok[0])
            q = tuple(float(t) for t in tok[1:5])
            t = tuple(float(v) for v in tok[5:8])
            cam_id = int(tok[8])
            name = tok[9]
        except (IndexError, ValueError) as e:
            raise SceneFormatError(
                f"{path}:{ln}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME': {line!r}"
            ) from e
        i += 1
        images[image_id] = _ColmapImage(image_id, q, t, cam_id, name)  # type: ignore[arg-type]
    return images


def _read_points_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = []
    for ln, line in _text_lines(path):
        if not _is_data(line):
            continue
        tok = line.split(maxsplit=8)  # POINT3D_ID X Y Z R G B ERROR TRACK...
        if len(tok) < 8:
            raise SceneFormatError(f"{path}:{ln}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK[]': {line!r}")
        rows.append(tok[1:7])
    if not rows:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8)
    try:
        arr = np.array(rows, dtype=np.float64)
    except ValueError as e:
        raise SceneFormatError(f"{path}: non-numeric point coordinates or colours: {e}") from e
    rgb = arr[:, 3:6]
    if ((rgb < 0) | (rgb > 255) | (rgb != np.round(rgb))).any():
        raise SceneFormatError(f"{path}: point colours must be integers in 0..255")
    return arr[:, :3], rgb.astype(np.uint8)


_COLMAP_FILES = ("cameras", "images", "points3D")


def find_colmap_model(root: Path) -> tuple[Path, str] | None:
    """(folder, ".bin" | ".txt") of the COLMAP model in root, root/sparse/0 or root/sparse, or None."""
    for d in (root, root / "sparse" / "0", root / "sparse"):
        for ext in (".bin", ".txt"):
            if (d / f"cameras{ext}").is_file() and (d / f"images{ext}").is_file():
                return d, ext
    return None


def _qvec_to_rotmat(q: np.ndarray) -> np.ndarray:
    """[N, 4] (w, x, y, z) quaternions, finite and non-zero, -> [N, 3, 3] rotation matrices.

    Scaled by the largest component before normalising, so 1e200 or 1e-300 entries neither overflow nor vanish.
    """
    q = q / np.abs(q).max(axis=1, keepdims=True)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=1,
    ).reshape(-1, 3, 3)


def _check_pose(im: _ColmapImage, where: str) -> None:
    """A finite, non-zero quaternion (any scale: it is normalised) and a translation within float32 range."""
    q = [check.finite(v, f"q{c}", where, limit=math.inf) for v, c in zip(im.qvec, "wxyz", strict=True)]
    if not any(q):
        raise SceneFormatError(f"{where}: the quaternion (qw, qx, qy, qz) is zero; a rotation needs a non-zero one")
    t = [check.finite(v, f"t{c}", where) for v, c in zip(im.tvec, "xyz", strict=True)]
    check.check_translation(np.array(t), "tvec", where)


def read_colmap(
    root: str | os.PathLike, images_dir: str | os.PathLike = "images", check_images: bool = True
) -> Dataset:
    """Read a COLMAP sparse model (binary or text, auto-detected) from root, root/sparse/0 or root/sparse.

    Args:
        root: the scene folder (or the model folder itself).
        images_dir: folder of the images, relative to ``root`` (or absolute).
        check_images: raise if an image file named in the model is missing.

    Returns:
        A :class:`Dataset` with views sorted by image name (world-to-camera from the image's qvec/tvec, K from
        the PINHOLE or SIMPLE_PINHOLE parameters as they are: COLMAP already puts pixel centres at +0.5) and
        ``points3D`` positions and colours (None if the model has no points3D file).

    Raises:
        SplatupInputError: a camera model other than PINHOLE / SIMPLE_PINHOLE (message names the model, the
            camera id and the file), missing folder or image files.
        SceneFormatError: truncated or malformed files (message names the file).
    """
    root = Path(root)
    if not root.is_dir():
        raise SplatupInputError(f"{root}: COLMAP dataset folder not found")
    found = find_colmap_model(root)
    if found is None:
        raise SplatupInputError(
            f"{root}: no COLMAP model (cameras.bin + images.bin or cameras.txt + images.txt) in "
            f"{root}, {root / 'sparse' / '0'} or {root / 'sparse'}"
        )
    model_dir, ext = found
    if ext == ".bin":
        cams = _read_cameras_bin(model_dir / "cameras.bin")
        imgs = _read_images_bin(model_dir / "images.bin")
        pts_path = model_dir / "points3D.bin"
        pts = _read_points_bin(pts_path) if pts_path.is_file() else None
    else:
        cams = _read_cameras_txt(model_dir / "cameras.txt")
        imgs = _read_images_txt(model_dir / "images.txt")
        pts_path = model_dir / "points3D.txt"
        pts = _read_points_txt(pts_path) if pts_path.is_file() else None
    if not imgs:
        raise SceneFormatError(f"{model_dir / ('images' + ext)}: the model has no images")

    order = sorted(imgs.values(), key=lambda im: im.name)
    img_root = root / images_dir
    images_file = model_dir / ("images" + ext)
    paths = []
    for im in order:
        where = f"{images_file}: image {im.image_id}"
        paths.append(check.path_inside(img_root, im.name, "NAME", where))
        _check_pose(im, where)
    q = np.array([im.qvec for im in order], dtype=np.float64)
    t = np.array([im.tvec for im in order], dtype=np.float64)
    R = _qvec_to_rotmat(q)
    views = []
    for k, im in enumerate(order):
        if im.camera_id not in cams:
            raise SceneFormatError(
                f"{model_dir / ('images' + ext)}: image {im.name!r} refers to camera {im.camera_id}, "
                f"which is not in {model_dir / ('cameras' + ext)}"
            )
        c = cams[im.camera_id]
        w2c = np.eye(4)
        w2c[:3, :3] = R[k]
        w2c[:3, 3] = t[k]
        K = np.array([[c.fx, 0.0, c.cx], [0.0, c.fy, c.cy], [0.0, 0.0, 1.0]])
        try:
            cam = Camera(torch.from_numpy(w2c), torch.from_numpy(K), c.width, c.height)
        except SplatupInputError as e:
            raise SceneFormatError(f"{model_dir}: image {im.name!r}, camera {im.camera_id}: {e}") from e
        views.append(View(name=im.name, camera=cam, image_path=paths[k]))

    if check_images:
        missing = [v.image_path for v in views if not _is_file(v.image_path)]
        if missing:
            raise SplatupInputError(
                f"{root}: {len(missing)} of {len(views)} images named in the COLMAP model are missing, "
                f"first {missing[0]} (images_dir={str(images_dir)!r})"
            )

    points = colors = None
    if pts is not None:
        xyz, rgb = pts
        points = torch.from_numpy(check.finite_points(xyz, str(pts_path)))
        colors = torch.from_numpy(rgb.astype(np.float32) / np.float32(255.0))
    return Dataset(views, points, colors, "colmap", root)


# ====================================================================== detection

def load_dataset(path: str | os.PathLike, split: str = "train", images_dir: str | os.PathLike = "images") -> Dataset:
    """Read a dataset folder of any supported kind.

    - a ``transforms_{split}.json`` / ``transforms.json`` in ``path`` (or ``path`` is such a file):
      :func:`read_nerf_synthetic`;
    - otherwise a COLMAP model in ``path``, ``path/sparse/0`` or ``path/sparse``: :func:`read_colmap`, then
      ``split`` "all" keeps every view and "train" / "test" apply :func:`split_llff` (llffhold 8, as 3DGS
      ``--eval``).
    """
    path = Path(path)
    if not path.exists():
        raise SplatupInputError(f"{path}: dataset not found")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return read_nerf_synthetic(path, split)
        raise SplatupInputError(f"{path}: expected a dataset folder or a transforms*.json file")
    if any(path.glob("transforms*.json")):
        return read_nerf_synthetic(path, split)
    if find_colmap_model(path) is not None:
        return _select_split(read_colmap(path, images_dir=images_dir), split, f"load_dataset({path})")
    raise SplatupInputError(
        f"{path}: not a dataset: expected transforms_{{split}}.json / transforms.json, or a COLMAP model "
        "(cameras + images .bin/.txt) in the folder, sparse/0 or sparse"
    )


__all__ = [
    "View",
    "Dataset",
    "read_nerf_synthetic",
    "read_colmap",
    "load_dataset",
    "split_llff",
    "find_colmap_model",
    "COLMAP_MODELS",
]
