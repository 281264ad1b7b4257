"""Dataset readers: real NeRF-synthetic mic cameras, nerfstudio transforms.json, COLMAP binary and text models
written here by an independent writer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataset_files import colmap_scene, gl_c2w_to_cv_w2c, touch_images, write_colmap_bin, write_colmap_txt
from splatup.errors import SceneFormatError, SplatupInputError
from splatup.io import load_dataset, read_colmap, read_nerf_synthetic, split_llff

MIC = "nerf_synthetic_mic"


# ============================================================================================ NeRF-synthetic


@pytest.fixture(scope="module")
def mic_json(shared_data):
    return {s: json.loads((shared_data / MIC / f"transforms_{s}.json").read_text()) for s in ("train", "test")}


@pytest.mark.parametrize(("split", "count"), [("train", 100), ("test", 200)])
def test_mic_cameras(shared_data, mic_json, split, count):
    ds = read_nerf_synthetic(shared_data / MIC, split)
    meta = mic_json[split]
    assert ds.kind == "nerf_synthetic" and len(ds) == count and ds.points is None
    f_expected = 0.5 * 800 / math.tan(0.5 * 0.6911112070083618)
    assert abs(f_expected - 1111.11) < 0.01
    for view, frame in zip(ds.views, meta["frames"], strict=True):
        cam = view.camera
        assert (cam.width, cam.height) == (800, 800)
        assert abs(cam.fx - f_expected) < 1e-9 and abs(cam.fy - f_expected) < 1e-9
        assert cam.cx == 400.0 and cam.cy == 400.0
        assert view.image_path == shared_data / MIC / (frame["file_path"][2:] + ".png")
        assert view.image_path.is_file()
        c2w = np.asarray(frame["transform_matrix"])
        # camera centre = translation column; OpenCV +z (forward) = OpenGL -z column; +y (down) = -y column
        np.testing.assert_allclose(cam.center.numpy(), c2w[:3, 3], atol=1e-5)  # the JSON R is float32-orthonormal
        np.testing.assert_allclose(cam.R[2].numpy(), -c2w[:3, 2], atol=1e-5)
        np.testing.assert_allclose(cam.R[1].numpy(), -c2w[:3, 1], atol=1e-5)
        np.testing.assert_allclose(cam.R[0].numpy(), c2w[:3, 0], atol=1e-5)
        np.testing.assert_allclose(cam.world_to_camera.numpy(), gl_c2w_to_cv_w2c(c2w), atol=1e-12)
    # every camera looks at the object: the world origin projects inside the image, in front of the camera
    w2c = torch.stack([v.camera.world_to_camera for v in ds.views])
    K = torch.stack([v.camera.K for v in ds.views])
    p = (K @ w2c[:, :3, 3:4])[..., 0]  # origin in camera coordinates is the translation
    assert (p[:, 2] > 0).all()
    uv = p[:, :2] / p[:, 2:3]
    assert ((uv > 0) & (uv < 800)).all()
    # the origin is near the optical axis: within the middle half of the image for this object-centred set
    assert ((uv - 400).abs() < 200).all()


def test_mic_load_dataset_detects_kind(shared_data):
    ds = load_dataset(shared_data / MIC, "test")
    assert ds.kind == "nerf_synthetic" and len(ds) == 200 and ds.root == shared_data / MIC
    direct = load_dataset(shared_data / MIC / "transforms_train.json")
    assert len(direct) == 100 and direct.views[5].name == "train/r_5.png"


def test_mic_val_split_images_are_missing(shared_data):
    # shared/data holds no val PNGs, so the reader must say which file is missing
    with pytest.raises(SplatupInputError, match=r"frame 0.*val/r_0.*not found"):
        read_nerf_synthetic(shared_data / MIC, "val")
    with pytest.raises(SplatupInputError, match="transforms_nope.json"):
        read_nerf_synthetic(shared_data / MIC, "nope")


def _png(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (10, 20, 30)).save(path)


def _nerfstudio(tmp_path, mic_json, **top) -> Path:
    frames = []
    for i, fr in enumerate(mic_json["train"]["frames"][:4]):
        _png(tmp_path / "images" / f"frame_{i:05d}.png", 40, 30)
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": fr["transform_matrix"]})
    frames[2]["fl_x"] = 99.0  # per-frame override
    meta = {"camera_model": "OPENCV", "fl_x": 50.0, "fl_y": 51.0, "cx": 20.5, "cy": 14.25, "w": 40, "h": 30,
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames}
    meta.update(top)
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    return tmp_path


def test_nerfstudio_transforms(tmp_path, mic_json):
    root = _nerfstudio(tmp_path, mic_json)
    ds = load_dataset(root, "all")
    assert ds.kind == "nerfstudio" and len(ds) == 4
    assert [v.name for v in ds.views] == [f"images/frame_{i:05d}.png" for i in range(4)]
    for i, v in enumerate(ds.views):
        fx = 99.0 if i == 2 else 50.0
        np.testing.assert_array_equal(v.camera.K.numpy(), [[fx, 0, 20.5], [0, 51.0, 14.25], [0, 0, 1]])
        assert (v.camera.width, v.camera.height) == (40, 30)
        c2w = mic_json["train"]["frames"][i]["transform_matrix"]
        np.testing.assert_allclose(v.camera.world_to_camera.numpy(), gl_c2w_to_cv_w2c(c2w), atol=1e-9)
    train, test = load_dataset(root, "train"), load_dataset(root, "test")
    assert [v.name for v in test.views] == ["images/frame_00000.png"] and len(train) == 3


def test_nerfstudio_split_lists_and_sizes_from_headers(tmp_path, mic_json):
    root = _nerfstudio(tmp_path, mic_json, train_filenames=["images/frame_00001.png", "images/frame_00003.png"])
    meta = json.loads((root / "transforms.json").read_text())
    del meta["w"], meta["h"]
    (root / "transforms.json").write_text(json.dumps(meta))
    ds = read_nerf_synthetic(root, "train")
    assert [v.name for v in ds.views] == ["images/frame_00001.png", "images/frame_00003.png"]
    assert all((v.camera.width, v.camera.height) == (40, 30) for v in ds.views)


@pytest.mark.parametrize(("top", "pattern"), [({"k1": 0.05}, r"distortion.*k1"), ({"p2": -1e-3}, r"distortion.*p2"),
                                              ({"camera_model": "OPENCV_FISHEYE"}, "OPENCV_FISHEYE")])
def test_nerfstudio_distortion_is_rejected(tmp_path, mic_json, top, pattern):
    root = _nerfstudio(tmp_path, mic_json, **top)
    with pytest.raises(SplatupInputError, match=pattern) as e:
        load_dataset(root, "all")
    assert "transforms.json" in str(e.value)


def test_bad_transforms_json(tmp_path):
    (tmp_path / "transforms_train.json").write_text("{not json")
    with pytest.raises(SceneFormatError, match="transforms_train.json"):
        read_nerf_synthetic(tmp_path)
    _png(tmp_path / "a.png", 4, 4)
    (tmp_path / "transforms_train.json").write_text(json.dumps(
        {"camera_angle_x": 0.5, "frames": [{"file_path": "a", "transform_matrix": [[1, 0, 0], [0, 1, 0]]}]}))
    with pytest.raises(SceneFormatError, match=r"frame 0.*transform_matrix"):
        read_nerf_synthetic(tmp_path)


# ============================================================================================ COLMAP

def _check_colmap(ds, root, cameras, images, points):
    assert ds.kind == "colmap" and ds.root == root
    expected = sorted(images, key=lambda im: im["name"])
    assert [v.name for v in ds.views] == [im["name"] for im in expected]
    for v, im in zip(ds.views, expected, strict=True):
        model, w, h, params = cameras[im["camera"]]
        fx, fy, cx, cy = params if model == "PINHOLE" else (params[0], params[0], params[1], params[2])
        np.testing.assert_array_equal(v.camera.K.numpy(), [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        assert (v.camera.width, v.camera.height) == (w, h)
        np.testing.assert_allclose(v.camera.world_to_camera.numpy(), im["w2c"], atol=1e-12)
        assert v.image_path == root / "images" / im["name"]
    assert ds.points.dtype == torch.float32 and ds.points.shape == (len(points["xyz"]), 3)
    np.testing.assert_array_equal(ds.points.numpy(), points["xyz"].astype(np.float32))
    np.testing.assert_array_equal(ds.point_colors.numpy(), points["rgb"].astype(np.float32) / np.float32(255))


@pytest.mark.parametrize(("fmt", "where"), [("bin", "sparse/0"), ("txt", "sparse/0"), ("bin", "sparse"), ("txt", ".")])
def test_colmap_round_trip(tmp_path, mic_json, fmt, where):
    cameras, images, points = colmap_scene(mic_json)
    (write_colmap_bin if fmt == "bin" else write_colmap_txt)(tmp_path / where, cameras, images, points)
    touch_images(tmp_path, images)
    ds = read_colmap(tmp_path)
    _check_colmap(ds, tmp_path, cameras, images, points)
    assert len(load_dataset(tmp_path, "all")) == 10


def test_colmap_binary_and_text_agree(tmp_path, mic_json):
    cameras, images, points = colmap_scene(mic_json, n_views=6, n_points=200, seed=3)
    write_colmap_bin(tmp_path / "b" / "sparse" / "0", cameras, images, points)
    write_colmap_txt(tmp_path / "t" / "sparse" / "0", cameras, images, points)
    a = read_colmap(tmp_path / "b", check_images=False)
    b = read_colmap(tmp_path / "t", check_images=False)
    for va, vb in zip(a.views, b.views, strict=True):
        assert va.name == vb.name
        assert torch.equal(va.camera.world_to_camera, vb.camera.world_to_camera)  # repr() text is exact
        assert torch.equal(va.camera.K, vb.camera.K)
    assert torch.equal(a.points, b.points) and torch.equal(a.point_colors, b.point_colors)


def test_colmap_llffhold_split(tmp_path, mic_json):
    cameras, images, points = colmap_scene(mic_json, n_views=10)
    write_colmap_bin(tmp_path / "sparse" / "0", cameras, images, points)
    touch_images(tmp_path, images)
    names = sorted(im["name"] for im in images)
    test = load_dataset(tmp_path, "test")
    train = load_dataset(tmp_path, "train")
    assert [v.name for v in test.views] == [names[0], names[8]]
    assert [v.name for v in train.views] == [n for i, n in enumerate(names) if i % 8 != 0]
    assert train.points is not None and torch.equal(train.points, test.points)
    tr, te = split_llff(list(reversed(read_colmap(tmp_path).views)), llffhold=3)
    assert [v.name for v in te] == names[::3] and len(tr) == 10 - len(te)
    with pytest.raises(SplatupInputError, match="split"):
        load_dataset(tmp_path, "val")


@pytest.mark.parametrize("fmt", ["bin", "txt"])
def test_colmap_opencv_model_is_rejected(tmp_path, mic_json, fmt):
    cameras, images, points = colmap_scene(mic_json, n_views=3)
    cameras[8] = ("OPENCV", 400, 300, [555.5, 556.0, 200.0, 150.0, 0.01, -0.02, 0.001, 0.0])
    (write_colmap_bin if fmt == "bin" else write_colmap_txt)(tmp_path / "sparse" / "0", cameras, images, points)
    with pytest.raises(SplatupInputError, match=r"camera 8 uses the OPENCV camera model") as e:
        read_colmap(tmp_path, check_images=False)
    assert f"cameras.{fmt}" in str(e.value) and "image_undistorter" in str(e.value)


@pytest.mark.parametrize(("name", "cut"), [("images.bin", 50), ("images.bin", -3), ("points3D.bin", -5),
                                           ("points3D.bin", 30), ("cameras.bin", -1)])
def test_colmap_truncated_binary(tmp_path, mic_json, name, cut):
    cameras, images, points = colmap_scene(mic_json)
    model = tmp_path / "sparse" / "0"
    write_colmap_bin(model, cameras, images, points)
    data = (model / name).read_bytes()
    (model / name).write_bytes(data[:cut])
    with pytest.raises(SceneFormatError, match="truncated") as e:
        read_colmap(tmp_path, check_images=False)
    assert name in str(e.value)


def test_colmap_trailing_bytes_and_bad_references(tmp_path, mic_json):
    cameras, images, points = colmap_scene(mic_json, n_views=3)
    model = tmp_path / "sparse" / "0"
    write_colmap_bin(model, cameras, images, points)
    with open(model / "points3D.bin", "ab") as f:
        f.write(b"\x00" * 7)
    with pytest.raises(SceneFormatError, match=r"points3D.bin.*7 unexpected trailing bytes"):
        read_colmap(tmp_path, check_images=False)
    images[1]["camera"] = 42
    write_colmap_bin(model, cameras, images, points)
    with pytest.raises(SceneFormatError, match="camera 42"):
        read_colmap(tmp_path, check_images=False)


def test_colmap_missing_images_and_model(tmp_path, mic_json):
    cameras, images, points = colmap_scene(mic_json, n_views=3)
    write_colmap_txt(tmp_path / "sparse" / "0", cameras, images, points)
    touch_images(tmp_path, images[:2])
    with pytest.raises(SplatupInputError, match=rf"1 of 3 images.*{images[2]['name']}"):
        read_colmap(tmp_path)
    with pytest.raises(SplatupInputError, match="no COLMAP model"):
        read_colmap(tmp_path / "images")
    with pytest.raises(SplatupInputError, match="not a dataset"):
        load_dataset(tmp_path / "images")


def test_colmap_text_images_with_spaces_and_empty_point_lines(tmp_path, mic_json):
    cameras, images, points = colmap_scene(mic_json, n_views=4)
    for im in images:
        im["points2d"] = 0
    images[1]["name"] = "sub dir/with space.png"
    write_colmap_txt(tmp_path, cameras, images, points)
    ds = read_colmap(tmp_path, check_images=False)
    assert "sub dir/with space.png" in [v.name for v in ds.views] and len(ds) == 4
