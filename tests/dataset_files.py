"""Dataset files written by tests, independently of splatup's readers: COLMAP sparse models (binary and text, from
the layouts in COLMAP's documentation), small PNGs and PNG headers that claim any size
(importable as ``from dataset_files import ...``)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation


def gl_c2w_to_cv_w2c(c2w) -> np.ndarray:
    """Independent conversion: flip the camera's y and z axes (OpenGL -> OpenCV), then invert."""
    m = np.asarray(c2w, dtype=np.float64) @ np.diag([1.0, -1.0, -1.0, 1.0])
    return np.linalg.inv(m)


def png(path: Path, w: int, h: int) -> None:
    """A real w x h RGB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (10, 20, 30)).save(path)


def png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG of a signature, an IHDR claiming w x h (8-bit RGB, valid CRC) and IEND: no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


# ============================================================================================ COLMAP

MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "OPENCV": 4}


def colmap_scene(mic_json, n_views=10, n_points=37, seed=0):
    """Cameras, images (from real mic poses) and points for an independent COLMAP writer."""
    rng = np.random.default_rng(seed)
    cameras = {
        3: ("PINHOLE", 800, 800, [1111.1, 1112.2, 400.5, 399.5]),
        8: ("SIMPLE_PINHOLE", 400, 300, [555.5, 200.25, 150.75]),
    }
    images = []
    for i, perm in enumerate(rng.permutation(n_views)):
        w2c = gl_c2w_to_cv_w2c(mic_json["train"]["frames"][i]["transform_matrix"])
        rot = Rotation.from_matrix(w2c[:3, :3])  # nearest rotation (the JSON matrices are float32-orthonormal)
        x, y, z, w = rot.as_quat()
        if w < 0:
            x, y, z, w = -x, -y, -z, -w
        w2c[:3, :3] = rot.as_matrix()
        images.append({
            "id": 100 + i, "q": (w, x, y, z), "t": tuple(w2c[:3, 3]), "camera": 3 if i % 2 == 0 else 8,
            "name": f"view_{perm:03d}.png", "w2c": w2c, "points2d": rng.integers(0, 4),
        })
    points = {
        "xyz": rng.normal(size=(n_points, 3)), "rgb": rng.integers(0, 256, (n_points, 3), dtype=np.uint8),
        "track": rng.integers(0, 7, n_points),
    }
    return cameras, images, points


def write_colmap_bin(folder: Path, cameras, images, points) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", len(cameras)))
        for cid, (model, w, h, params) in cameras.items():
            f.write(struct.pack("<iiQQ", cid, MODEL_IDS[model], w, h))
            f.write(struct.pack(f"<{len(params)}d", *params))
    with open(folder / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(images)))
        for im in images:
            f.write(struct.pack("<idddddddi", im["id"], *im["q"], *im["t"], im["camera"]))
            f.write(im["name"].encode() + b"\x00")
            f.write(struct.pack("<Q", im["points2d"]))
            for j in range(im["points2d"]):
                f.write(struct.pack("<ddq", 1.5 * j, 2.5 * j, -1 if j % 2 else j))
    with open(folder / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(points["xyz"])))
        for pid, (xyz, rgb, track) in enumerate(zip(points["xyz"], points["rgb"], points["track"], strict=True)):
            f.write(struct.pack("<Q3d3Bd", pid + 1, *xyz, *rgb, 0.5))
            f.write(struct.pack("<Q", track))
            for j in range(track):
                f.write(struct.pack("<ii", 100 + j, j))


def write_colmap_txt(folder: Path, cameras, images, points) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    lines += [f"{cid} {model} {w} {h} " + " ".join(repr(float(p)) for p in params)
              for cid, (model, w, h, params) in cameras.items()]
    (folder / "cameras.txt").write_text("\n".join(lines) + "\n")
    lines = ["# Image list with two lines of data per image:", f"# Number of images: {len(images)}"]
    for im in images:
        pose = " ".join(repr(float(v)) for v in (*im["q"], *im["t"]))
        lines.append(f"{im['id']} {pose} {im['camera']} {im['name']}")
        lines.append(" ".join(f"{1.5 * j} {2.5 * j} {-1 if j % 2 else j}" for j in range(im["points2d"])))  # may be ""
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    lines = ["# 3D point list with one line of data per point:"]
    for pid, (xyz, rgb, track) in enumerate(zip(points["xyz"], points["rgb"], points["track"], strict=True)):
        tr = " ".join(f"{100 + j} {j}" for j in range(track))
        pos = " ".join(repr(float(v)) for v in xyz)
        lines.append(f"{pid + 1} {pos} {rgb[0]} {rgb[1]} {rgb[2]} 0.5 {tr}".rstrip())
    (folder / "points3D.txt").write_text("\n".join(lines) + "\n")


def touch_images(root: Path, images) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for im in images:
        (root / "images" / im["name"]).write_bytes(b"")
