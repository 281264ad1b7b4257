"""Mutation fuzzing of splatup's file readers: seeds cut from the real files in ../shared/data, hypothesis
strategies of mutations, and the one property every reader must keep (importable as ``from reader_fuzz import ...``;
used by tests/test_io_fuzz.py in CI and by tools/fuzz_readers.py for long campaigns).

The property: a reader either returns a valid result or raises :class:`SplatupInputError` (SceneFormatError is one)
whose message names the file or the dataset folder. Valid means:

- a scene: float32 tensors of matching length, all finite, no zero quaternion, SH of degree 0..3;
- a dataset: cameras finite in float64 and float32 (K, world-to-camera, centre), sizes of 1..MAX_IMAGE_PIXELS
  pixels, image paths inside the dataset folder, points finite float32 and colours in [0, 1];
- an image: float32 [H, W, 3], finite, in [0, 1], at most MAX_IMAGE_PIXELS pixels.

Any other exception, or a result that breaks these, is a failure. Mutations are byte edits (flip, set, insert,
delete, truncate, repeat, and overwrites with boundary values such as NaN, Inf, 2^63 or 1e308 in every width and
byte order), token edits of the text parts (.ply header, JSON, COLMAP text), structural JSON edits (set, add or
delete a field, including raw literals like ``1e400`` or a 5000-digit integer), and PNG/JPEG header size edits
(PNG with valid CRCs).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plyfile
import torch
from hypothesis import strategies as st
from PIL import Image

from dataset_files import colmap_scene, write_colmap_bin, write_colmap_txt
from splatup.errors import SplatupInputError
from splatup.gaussians import Gaussians
from splatup.io import load_dataset, read_image, read_ply, read_splat
from splatup.io._validate import MAX_IMAGE_PIXELS

F32_MAX = float(np.finfo(np.float32).max)


class PropertyViolation(AssertionError):
    """A reader returned something invalid, or raised our error without naming the file."""


# ====================================================================================== seeds


def _ply_seeds(shared: Path, out: Path) -> list[Path]:
    """Three small copies of the real donut fused.ply: binary LE float32 (200 Gaussians), ASCII (30), and binary BE
    float64 with SH degree 1 (60; f_rest from the DC values, so every value is still from the real file)."""
    data = plyfile.PlyData.read(str(shared / "gshairlod_donut" / "fused.ply"))["vertex"].data
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "donut_le.ply", out / "donut_ascii.ply", out / "donut_be_f64_sh1.ply"]
    plyfile.PlyData([plyfile.PlyElement.describe(np.array(data[:200]), "vertex")], byte_order="<").write(str(paths[0]))
    plyfile.PlyData([plyfile.PlyElement.describe(np.array(data[:30]), "vertex")], text=True).write(str(paths[1]))
    src = np.array(data[:60])
    names = list(src.dtype.names) + [f"f_rest_{i}" for i in range(9)]
    rec = np.empty(len(src), dtype=[(n, ">f8") for n in names])
    for n in src.dtype.names:
        rec[n] = src[n]
    for i in range(9):
        rec[f"f_rest_{i}"] = 0.1 * src[f"f_dc_{i // 3}"]
    plyfile.PlyData([plyfile.PlyElement.describe(rec, "vertex")], byte_order=">").write(str(paths[2]))
    return paths


def _splat_seeds(shared: Path, out: Path) -> list[Path]:
    """The first 300 records of the real plant.splat and 200 of spot_10k.splat."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for rel, n in (("padilla_splats/plant/plant.splat", 300), ("padilla_splats/spot/spot_10k.splat", 200)):
        p = out / Path(rel).name
        with open(shared / rel, "rb") as f:
            p.write_bytes(f.read(32 * n))
        paths.append(p)
    return paths


def _mic_thumbnail(shared: Path, i: int, size: tuple[int, int]) -> Image.Image:
    return Image.open(shared / "nerf_synthetic_mic" / "train" / f"r_{i}.png").resize(size, Image.Resampling.BOX)


def _nerf_seed(shared: Path, out: Path) -> Path:
    """NeRF-synthetic: the real mic transforms_train.json cut to 3 frames, with 16 x 16 RGBA thumbnails of the
    real images (no w/h in the JSON: the sizes come from the PNG headers)."""
    meta = json.loads((shared / "nerf_synthetic_mic" / "transforms_train.json").read_text())
    meta["frames"] = meta["frames"][:3]
    (out / "train").mkdir(parents=True, exist_ok=True)
    for i in range(3):
        _mic_thumbnail(shared, i, (16, 16)).save(out / "train" / f"r_{i}.png")
    (out / "transforms_train.json").write_text(json.dumps(meta, indent=2))
    return out


def _nerfstudio_seed(shared: Path, out: Path) -> Path:
    """nerfstudio: transforms.json with explicit intrinsics, 4 real mic poses, 16 x 12 thumbnails, a train list and
    a point cloud (ply_file_path) of 50 real donut positions and colours."""
    mic = json.loads((shared / "nerf_synthetic_mic" / "transforms_train.json").read_text())
    (out / "images").mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(4):
        _mic_thumbnail(shared, i, (16, 12)).convert("RGB").save(out / "images" / f"frame_{i:05d}.png")
        c2w = mic["frames"][i]["transform_matrix"]
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": c2w})
    meta = {"camera_model": "OPENCV", "fl_x": 21.3, "fl_y": 21.5, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12,
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames, "ply_file_path": "points.ply",
            "train_filenames": [f["file_path"] for f in frames[1:]]}
    (out / "transforms.json").write_text(json.dumps(meta, indent=2))
    donut = plyfile.PlyData.read(str(shared / "gshairlod_donut" / "fused.ply"))["vertex"].data[:50]
    pts = np.empty(50, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for k in "xyz":
        pts[k] = donut[k]
    for c, k in enumerate(("red", "green", "blue")):
        pts[k] = np.clip(np.round(255 * (0.5 + 0.28209479 * donut[f"f_dc_{c}"])), 0, 255)
    plyfile.PlyData([plyfile.PlyElement.describe(pts, "vertex")]).write(str(out / "points.ply"))
    return out


def _colmap_seed(shared: Path, out: Path, fmt: str) -> Path:
    """A COLMAP model (3 images from real mic poses, a PINHOLE and a SIMPLE_PINHOLE camera, 20 points) written by
    the tests' independent writer, with the image files present."""
    mic = {"train": json.loads((shared / "nerf_synthetic_mic" / "transforms_train.json").read_text())}
    cameras, images, points = colmap_scene(mic, n_views=3, n_points=20, seed=1)
    (write_colmap_bin if fmt == "bin" else write_colmap_txt)(out / "sparse" / "0", cameras, images, points)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for im in images:
        (out / "images" / im["name"]).write_bytes(b"")
    return out


def _image_seeds(shared: Path, out: Path) -> list[Path]:
    """Real mic pixels in the kinds Pillow decodes differently: RGBA PNG, JPEG, 16-bit grey PNG, palette PNG with
    transparency, float32 grey TIFF."""
    out.mkdir(parents=True, exist_ok=True)
    im = _mic_thumbnail(shared, 5, (24, 20))
    paths = [out / "rgba.png", out / "rgb.jpg", out / "grey16.png", out / "palette.png", out / "float.tiff"]
    Image.fromarray(np.asarray(im.convert("L"), dtype=np.float32) / 255.0).save(paths[4])
    im.save(paths[0])
    im.convert("RGB").save(paths[1], quality=85)
    Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257).save(paths[2])
    im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(paths[3], transparency=0)
    return paths


@dataclass
class Seeds:
    """Every seed, built once from ../shared/data into ``root``."""

    root: Path
    ply: list[Path]
    splat: list[Path]
    images: list[Path]
    nerf: Path
    nerfstudio: Path
    colmap_bin: Path
    colmap_txt: Path


def build_seeds(shared: Path, root: Path) -> Seeds:
    root = Path(root)
    return Seeds(
        root=root,
        ply=_ply_seeds(shared, root / "ply"),
        splat=_splat_seeds(shared, root / "splat"),
        images=_image_seeds(shared, root / "images"),
        nerf=_nerf_seed(shared, root / "nerf"),
        nerfstudio=_nerfstudio_seed(shared, root / "nerfstudio"),
        colmap_bin=_colmap_seed(shared, root / "colmap_bin", "bin"),
        colmap_txt=_colmap_seed(shared, root / "colmap_txt", "txt"),
    )


# ====================================================================================== mutations

_BOUNDARY_FLOATS = [math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 1e-45, 3.4e38, 3.5e38,
                    1e39, 1e-300, 1e200, -1.0, 1.0, 2.0, 0.5, math.pi, 65535.0, 4294967296.0]
_BOUNDARY_INTS = [0, 1, -1, 2, 255, 256, 65535, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63), 2**64 - 1,
                  8192, 8193, 20000, 67108865]


def _packed_values() -> list[bytes]:
    out = []
    for v in _BOUNDARY_FLOATS:
        for fmt in ("<f", ">f", "<d", ">d"):
            try:
                out.append(struct.pack(fmt, v))
            except OverflowError:  # 1e308 as float32
                pass
    for v in _BOUNDARY_INTS:
        for fmt in ("<i", "<I", "<q", "<Q", ">i", ">I", "<H", ">H", "B"):
            try:
                out.append(struct.pack(fmt, v))
            except struct.error:
                pass
    return sorted(set(out))


PACKED = _packed_values()
TOKENS = [b"0", b"-1", b"1", b"2", b"-0", b"0.0", b"1e400", b"-1e400", b"1e-400", b"nan", b"NaN", b"-nan", b"inf",
          b"-inf", b"Infinity", b"1e308", b"3.5e38", b"1e39", b"4294967296", b"18446744073709551616",
          b"9223372036854775807", b"1" * 30, b"1" * 5000, b"0x10", b"1,5", b"", b"x", b"/", b"..", b"../a", b"/etc",
          b"a" * 300, b"[", b"{", b"]", b"}", b'"', b"null", b"true", b"list", b"uchar", b"int", b"double", b"char",
          b"float", b"uint", b"binary_big_endian", b"binary_little_endian", b"ascii", b"element", b"property",
          b"vertex", b"face", b"end_header", b"PINHOLE", b"SIMPLE_PINHOLE", b"OPENCV", b"#", b"\x00", b"\xff\xfe",
          "\u00e9".encode(), b"\\u0000", b"\\ud800", b"\t", b"\n", b"\r\n"]


def _pos() -> st.SearchStrategy[int]:
    """A position (taken modulo the data's length): near the start, or spread over the whole file (hypothesis
    favours small integers, so the second branch scatters them with a multiplicative hash)."""
    return st.one_of(st.integers(0, 255), st.integers(0, 2**32 - 1).map(lambda v: (v * 2654435761) % 2**32))


_SAME_LENGTH_OP = st.one_of(
    st.tuples(st.just("flip"), _pos(), st.integers(0, 7)),
    st.tuples(st.just("set"), _pos(), st.integers(0, 255)),
    st.tuples(st.just("put"), _pos(), st.sampled_from(PACKED)),
    st.tuples(st.just("put4"), _pos(), st.sampled_from([p for p in PACKED if len(p) == 4])),
    st.tuples(st.just("put8"), _pos(), st.sampled_from([p for p in PACKED if len(p) == 8])),
)
_RESIZE_OP = st.one_of(
    st.tuples(st.just("insert"), _pos(), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _pos(), st.integers(1, 64)),
    st.tuples(st.just("truncate"), _pos()),
    st.tuples(st.just("repeat"), _pos(), st.integers(1, 64), st.integers(2, 40)),
)
BYTE_OP = st.one_of(_SAME_LENGTH_OP, _SAME_LENGTH_OP, _SAME_LENGTH_OP, _RESIZE_OP)  # values more often than sizes
RECORD_OP = st.one_of(  # whole 32-byte records of a .splat: dropped, repeated, cut after
    st.tuples(st.just("delete"), _pos(), st.integers(1, 8), st.just(32)),
    st.tuples(st.just("repeat"), _pos(), st.integers(1, 4), st.integers(2, 40), st.just(32)),
    st.tuples(st.just("truncate"), _pos(), st.just(32)),
)
TEXT_OP = st.one_of(
    st.tuples(st.just("token"), _pos(), st.sampled_from(TOKENS)),
    st.tuples(st.just("dupline"), _pos(), st.integers(1, 3)),
    st.tuples(st.just("delline"), _pos()),
    st.tuples(st.just("swaplines"), _pos(), _pos()),
)


def apply_bytes(data: bytes, op: tuple, text_end: int | None = None) -> bytes:
    """One byte or text op on ``data``; text ops act on ``data[:text_end]`` (all of it when None)."""
    kind, n = op[0], len(data)
    if kind in ("token", "dupline", "delline", "swaplines"):
        end = n if text_end is None else min(text_end, n)
        head, tail = data[:end], data[end:]
        if kind == "token":
            toks = [m.span() for m in re.finditer(rb"[^\s,:\[\]{}]+", head)]
            if toks:
                a, b = toks[op[1] % len(toks)]
                head = head[:a] + op[2] + head[b:]
        else:
            lines = head.split(b"\n")
            i = op[1] % len(lines)
            if kind == "dupline":
                lines[i:i] = [lines[i]] * op[2]
            elif kind == "delline":
                del lines[i]
            else:
                j = op[2] % len(lines)
                lines[i], lines[j] = lines[j], lines[i]
            head = b"\n".join(lines)
        return head + tail
    p = op[1] % (n + 1)
    align = op[-1] if kind in ("delete", "repeat", "truncate") and len(op) == {"delete": 4, "repeat": 5,
                                                                                "truncate": 3}[kind] else 1
    p -= p % align
    if kind == "flip":
        return data if p == n else data[:p] + bytes([data[p] ^ (1 << op[2])]) + data[p + 1:]
    if kind == "set":
        return data if p == n else data[:p] + bytes([op[2]]) + data[p + 1:]
    if kind == "insert":
        return data[:p] + op[2] + data[p:]
    if kind == "delete":
        return data[:p] + data[p + op[2] * align:]
    if kind == "truncate":
        return data[:p]
    if kind == "repeat":
        return data[:p] + data[p:p + op[2] * align] * op[3] + data[p:]
    if kind in ("put4", "put8"):  # aligned to the value's width from the start: the fields of fixed records
        p -= p % len(op[2])
    return data[:p] + op[2] + data[p + len(op[2]):]  # put, put4, put8


def _fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC of a PNG, so that a mutation reaches the decoder instead of the CRC check."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out, off = bytearray(data[:8]), 8
    while off + 8 <= len(data):
        (length,) = struct.unpack(">I", data[off:off + 4])
        if off + 12 + length > len(data):
            break
        kind_body = data[off + 4:off + 8 + length]
        out += data[off:off + 8 + length] + struct.pack(">I", zlib.crc32(kind_body))
        off += 12 + length
    return bytes(out + data[off:])


def _set_image_size(data: bytes, w: int, h: int) -> bytes:
    """Rewrite the size in a PNG IHDR (w, h as u32) or a JPEG SOF0/SOF2 (as u16)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return data[:16] + struct.pack(">II", w & 0xFFFFFFFF, h & 0xFFFFFFFF) + data[24:]
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = data.find(marker)
        if i >= 0 and i + 9 <= len(data):
            return data[:i + 5] + struct.pack(">HH", h & 0xFFFF, w & 0xFFFF) + data[i + 9:]
    return data


_SIZES = st.one_of(st.sampled_from([0, 1, 2, 4096, 8192, 8193, 12000, 20000, 65535, 2**31 - 1, 2**32 - 1]),
                   st.integers(0, 2**32 - 1))
IMAGE_OP = st.one_of(BYTE_OP, st.tuples(st.just("size"), _SIZES, _SIZES), st.just(("fixcrc",)))


def apply_image_ops(data: bytes, ops: list[tuple]) -> bytes:
    for op in ops:
        if op[0] == "size":
            data = _set_image_size(data, op[1], op[2])
        elif op[0] == "fixcrc":
            data = _fix_png_crcs(data)
        else:
            data = apply_bytes(data, op)
    return data


# ---------------------------------------------------------------------------------------------- JSON


@dataclass(frozen=True)
class Raw:
    """A literal written into the JSON text as it is (numbers Python's json would never write)."""

    text: str


RAW_LITERALS = ["1e400", "-1e400", "1e-400", "1" + "0" * 400, "-1" + "0" * 400, "1" * 5000, "NaN", "Infinity",
                "-Infinity", "[" * 80 + "]" * 80, "[" * 2000 + "]" * 2000, "-0", "0.0000000000000000000001"]
KEYS = ["w", "h", "fl_x", "fl_y", "cx", "cy", "camera_angle_x", "camera_angle_y", "camera_model", "k1", "k2", "k3",
        "k4", "p1", "p2", "ply_file_path", "train_filenames", "test_filenames", "file_path", "transform_matrix",
        "frames"]
_MATRIX_ROWS = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 4.0], [0.0, 0.0, 0.0, 1.0]]
JSON_ATOMS = [0, -1, 1, 0.0, -0.0, 1e308, -1e308, 5e-324, 3.4e38, 3.5e38, 1e39, math.pi, 4.0, 1e-300, True, False,
              None, "", " ", "/", ".", "..", "../x", "/etc/passwd", "a" * 300, "a\x00b", "\ud800", "train/r_0",
              "train/r_1.png", "images/frame_00001.png", "PINHOLE", "OPENCV_FISHEYE", "points.ply", [], {}, [[]],
              _MATRIX_ROWS, _MATRIX_ROWS[:3], [[0.0] * 4] * 4, [[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0],
                                                                [0, 0, 0, 1.0]]]
JSON_VALUE = st.one_of(
    st.sampled_from(JSON_ATOMS),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.floats(), max_size=5),
    st.builds(Raw, st.sampled_from(RAW_LITERALS)),
)
JSON_OP = st.one_of(
    st.tuples(st.just("set"), _pos(), JSON_VALUE),
    st.tuples(st.just("del"), _pos()),
    st.tuples(st.just("add"), st.sampled_from(["top", "frame"]), _pos(), st.sampled_from(KEYS), JSON_VALUE),
)


def _paths(obj, prefix=()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def apply_json_ops(meta: dict, ops: list[tuple]) -> bytes:
    """The JSON text of ``meta`` after the structural ops (Raw values become literals in the text)."""
    obj = copy.deepcopy(meta)
    for op in ops:
        paths = [p for p in _paths(obj) if p]
        if op[0] in ("set", "del") and paths:
            path = paths[op[1] % len(paths)]
            parent = obj
            for k in path[:-1]:
                parent = parent[k]
            if op[0] == "set":
                parent[path[-1]] = copy.deepcopy(op[2])  # a copy: a shared value could end up inside itself
            else:
                del parent[path[-1]]
        elif op[0] == "add":
            frames = obj.get("frames") if isinstance(obj, dict) else None
            frame = frames[op[2] % len(frames)] if isinstance(frames, list) and frames else None
            if op[1] == "frame" and isinstance(frame, dict):
                frame[op[3]] = copy.deepcopy(op[4])
            elif isinstance(obj, dict):
                obj[op[3]] = copy.deepcopy(op[4])
    raws: list[str] = []

    def encode(o):
        if isinstance(o, Raw):
            raws.append(o.text)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError

    text = json.dumps(obj, default=encode, indent=1)
    for i, r in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', r)
    return text.encode("utf-8", "surrogatepass")


# ====================================================================================== the property


def _named(e: SplatupInputError, name: Path) -> None:
    if str(name) not in str(e):
        raise PropertyViolation(f"error does not name {name}: {type(e).__name__}: {e}") from e


def check_scene(g: Gaussians) -> None:
    n = g.means.shape[0]
    tensors = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,)}
    for name, shape in tensors.items():
        t = getattr(g, name)
        if tuple(t.shape) != shape or t.dtype != torch.float32:
            raise PropertyViolation(f"{name}: shape {tuple(t.shape)} dtype {t.dtype}, expected {shape} float32")
        if not torch.isfinite(t).all():
            raise PropertyViolation(f"{name} has non-finite values")
    if g.sh.dtype != torch.float32 or g.sh.shape[0] != n or g.sh.shape[1] not in (1, 4, 9, 16) or g.sh.shape[2] != 3:
        raise PropertyViolation(f"sh: shape {tuple(g.sh.shape)} dtype {g.sh.dtype}")
    if not torch.isfinite(g.sh).all():
        raise PropertyViolation("sh has non-finite values")
    if n and not (g.quats != 0).any(dim=1).all():
        raise PropertyViolation("a zero quaternion")


def check_dataset(ds, root: Path) -> None:
    root_text = os.path.normpath(str(root))
    for v in ds.views:
        cam = v.camera
        for name, t in (("K", cam.K), ("world_to_camera", cam.world_to_camera), ("center", cam.center)):
            if not torch.isfinite(t).all() or not torch.isfinite(t.to(torch.float32)).all():
                raise PropertyViolation(f"view {v.name!r}: {name} is not finite in float32: {t.tolist()}")
        if not (cam.fx > 0 and cam.fy > 0):
            raise PropertyViolation(f"view {v.name!r}: focal lengths {cam.fx}, {cam.fy}")
        if not (isinstance(cam.width, int) and isinstance(cam.height, int) and cam.width >= 1 and cam.height >= 1
                and cam.width * cam.height <= MAX_IMAGE_PIXELS):
            raise PropertyViolation(f"view {v.name!r}: size {cam.width} x {cam.height}")
        p = os.path.normpath(str(v.image_path))
        if os.path.commonpath([root_text, p]) != root_text or p == root_text:
            raise PropertyViolation(f"view {v.name!r}: image path {v.image_path} is outside {root}")
    if ds.points is not None:
        pts, col = ds.points, ds.point_colors
        if pts.dtype != torch.float32 or pts.ndim != 2 or pts.shape[1] != 3 or not torch.isfinite(pts).all():
            raise PropertyViolation(f"points: {tuple(pts.shape)} {pts.dtype}, finite {bool(torch.isfinite(pts).all())}")
        if col.shape != pts.shape or not ((col >= 0) & (col <= 1)).all():
            raise PropertyViolation("point colours outside [0, 1] or of the wrong shape")


def check_image(img: torch.Tensor) -> None:
    if img.dtype != torch.float32 or img.ndim != 3 or img.shape[2] != 3:
        raise PropertyViolation(f"image {tuple(img.shape)} {img.dtype}")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS or not ((img >= 0) & (img <= 1)).all():
        raise PropertyViolation("image values outside [0, 1] (or NaN) or too large")


def outcome(call: Callable[[], object], check: Callable[[object], None], name: Path) -> str:
    """'ok' (valid result) or 'error' (our error naming ``name``); anything else raises."""
    try:
        result = call()
    except SplatupInputError as e:
        _named(e, name)
        return "error"
    check(result)
    return "ok"


# ====================================================================================== targets


def _fresh(work: Path, seed_dir: Path | None = None) -> Path:
    if work.exists():
        shutil.rmtree(work)
    if seed_dir is not None:
        shutil.copytree(seed_dir, work)
    else:
        work.mkdir(parents=True)
    return work


def _header_end(data: bytes) -> int:
    i = data.find(b"end_header")
    return len(data) if i < 0 else i + len(b"end_header") + 1


def _scene_file(seed_list: str, suffix: str, reader, text_in_header: bool):
    def run(seeds: Seeds, spec, work: Path) -> str:
        index, ops = spec
        seed = getattr(seeds, seed_list)[index % len(getattr(seeds, seed_list))]
        data = seed.read_bytes()
        for op in ops:
            data = apply_bytes(data, op, _header_end(data) if text_in_header else None)
        path = _fresh(work) / f"case{suffix}"
        path.write_bytes(data)
        return outcome(lambda: reader(path), check_scene, path)
    return run


def _image_run(seeds: Seeds, spec, work: Path) -> str:
    index, ops = spec
    seed = seeds.images[index % len(seeds.images)]
    path = _fresh(work) / f"case{seed.suffix}"
    path.write_bytes(apply_image_ops(seed.read_bytes(), ops))
    return outcome(lambda: read_image(path, background=(1.0, 1.0, 1.0)), check_image, path)


def _json_run(kind: str, json_name: str, split: str):
    def run(seeds: Seeds, spec, work: Path) -> str:
        json_ops, text_ops, image_ops = spec
        root = _fresh(work, getattr(seeds, kind))
        meta = json.loads((root / json_name).read_text())
        text = apply_json_ops(meta, json_ops)
        for op in text_ops:
            text = apply_bytes(text, op)
        (root / json_name).write_bytes(text)
        if image_ops:  # also damage one image (its header gives the size) or the point cloud
            files = sorted(root.rglob("*.png")) + sorted(root.rglob("*.ply"))
            target = files[image_ops[0] % len(files)]
            target.write_bytes(apply_image_ops(target.read_bytes(), image_ops[1]))
        return outcome(lambda: load_dataset(root, split), lambda ds: check_dataset(ds, root), root)
    return run


_COLMAP_FILES = ("cameras", "images", "points3D")


def _colmap_run(fmt: str):
    def run(seeds: Seeds, spec, work: Path) -> str:
        root = _fresh(work, seeds.colmap_bin if fmt == "bin" else seeds.colmap_txt)
        model = root / "sparse" / "0"
        for file_index, op in spec:
            path = model / f"{_COLMAP_FILES[file_index]}.{fmt}"
            if path.is_file():
                path.write_bytes(apply_bytes(path.read_bytes(), op))
        return outcome(lambda: load_dataset(root, "all"), lambda ds: check_dataset(ds, root), root)
    return run


def _ops(op, max_ops: int = 4):
    return st.lists(op, min_size=1, max_size=max_ops)


@dataclass(frozen=True)
class Target:
    """One reader under fuzzing: how to draw a mutation spec, and how to run it (returns 'ok' or 'error')."""

    name: str
    strategy: st.SearchStrategy
    run: Callable[[Seeds, object, Path], str]


TARGETS = {
    t.name: t
    for t in (
        Target("ply", st.tuples(st.integers(0, 2), _ops(st.one_of(BYTE_OP, TEXT_OP))),
               _scene_file("ply", ".ply", read_ply, text_in_header=True)),
        Target("splat", st.tuples(st.integers(0, 1), _ops(st.one_of(_SAME_LENGTH_OP, RECORD_OP, BYTE_OP))),
               _scene_file("splat", ".splat", read_splat, text_in_header=False)),
        Target("nerf_synthetic_json",
               st.tuples(st.lists(JSON_OP, max_size=3), st.lists(st.one_of(BYTE_OP, TEXT_OP), max_size=2),
                         st.one_of(st.just(()), st.tuples(st.integers(0, 9), _ops(IMAGE_OP, 2)))),
               _json_run("nerf", "transforms_train.json", "train")),
        Target("nerfstudio_json",
               st.tuples(st.lists(JSON_OP, max_size=3), st.lists(st.one_of(BYTE_OP, TEXT_OP), max_size=2),
                         st.one_of(st.just(()), st.tuples(st.integers(0, 9), _ops(IMAGE_OP, 2)))),
               _json_run("nerfstudio", "transforms.json", "train")),
        Target("colmap_text", _ops(st.tuples(st.integers(0, 2), st.one_of(TEXT_OP, BYTE_OP))), _colmap_run("txt")),
        Target("colmap_binary", _ops(st.tuples(st.integers(0, 2), BYTE_OP)), _colmap_run("bin")),
        Target("image", st.tuples(st.integers(0, 4), _ops(IMAGE_OP)), _image_run),
    )
}
