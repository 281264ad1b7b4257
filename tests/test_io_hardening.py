"""Dataset and image readers on the triggers of issue 11, items 1-6 (one test per item, with its exact trigger),
and on the neighbours of each trigger that the shared checks in ``splatup.io._validate`` cover.

The oracle: every trigger raises SceneFormatError (a SplatupInputError, which the CLI prints as one line) whose
message names the file and the field, and no library exception (RecursionError, ValueError, OverflowError,
ZeroDivisionError, LinAlgError, OSError, DecompressionBombError) escapes. Valid neighbours read with the values
computed by hand.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_files import (
    colmap_scene,
    gl_c2w_to_cv_w2c,
    png,
    png_header_only,
    touch_images,
    write_colmap_bin,
    write_colmap_txt,
)
from splatup.camera import opengl_c2w_to_w2c
from splatup.errors import SceneFormatError, SplatupInputError
from splatup.io import image_size, load_dataset, read_colmap, read_image, read_nerf_synthetic
from splatup.io._validate import MAX_IMAGE_PIXELS, check_image_pixels, json_depth, read_json

MIC = "nerf_synthetic_mic"


@pytest.fixture(scope="module")
def mic_json(shared_data):
    return {s: json.loads((shared_data / MIC / f"transforms_{s}.json").read_text()) for s in ("train", "test")}


@pytest.fixture(scope="module")
def mic_c2w(mic_json):
    return mic_json["train"]["frames"][0]["transform_matrix"]


def _nerf(root: Path, c2w, text: str | None = None, image=(8, 6), **top) -> Path:
    """A one-frame NeRF-synthetic dataset in root: a real PNG a.png and transforms_train.json with
    camera_angle_x 0.5 and the given transform (or the raw JSON ``text``)."""
    root.mkdir(parents=True, exist_ok=True)
    if image is not None:
        png(root / "a.png", *image)
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": "a", "transform_matrix": c2w}]}
    meta.update(top)
    (root / "transforms_train.json").write_text(text if text is not None else json.dumps(meta))
    return root


def _raises(call, *names: str, kind=SceneFormatError) -> str:
    """call() raises ``kind``; the message contains every one of ``names``. Returns the message."""
    with pytest.raises(kind) as e:
        call()
    msg = str(e.value)
    for n in names:
        assert n in msg, f"{n!r} not in {msg!r}"
    assert isinstance(e.value, SplatupInputError)  # what the CLI turns into one line
    return msg


def test_error_types_are_what_the_cli_prints_as_one_line():
    assert issubclass(SceneFormatError, SplatupInputError) and issubclass(SplatupInputError, ValueError)


# ============================================================================ item 1: JSON depth and numbers


def test_item1_deeply_nested_json(tmp_path):
    root = _nerf(tmp_path, None, text='{"frames": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _raises(lambda: load_dataset(root), str(root / "transforms_train.json"), "nested 100001 levels")
    root = _nerf(tmp_path, None, text="[" * 100_000 + "]" * 100_000)
    _raises(lambda: load_dataset(root), "transforms_train.json", "nested 100000 levels")


def test_json_depth_by_hand(mic_c2w):
    # the mic file: object > frames list > frame object > matrix > row
    text = json.dumps({"camera_angle_x": 0.5, "frames": [{"file_path": "a", "transform_matrix": mic_c2w}]})
    assert json_depth(text.encode()) == 5
    # brackets inside strings do not count, escaped quotes do not end a string, an even backslash run does
    assert json_depth(b'{"a": "[[[[{{", "b": "x\\"[[[", "c": "d\\\\", "e": [1]}') == 2
    assert json_depth(b"") == 0 and json_depth(b"1") == 0


def test_deep_brackets_inside_a_string_are_fine(tmp_path, mic_c2w):
    name = "[" * 120 + "{" * 120  # 240 levels if counted outside a string
    png(tmp_path / f"{name}.png", 8, 6)
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": name, "transform_matrix": mic_c2w}]}
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    assert read_nerf_synthetic(tmp_path).views[0].name == f"{name}.png"


@pytest.mark.parametrize(
    "literal", ["1" * 5000, "1" + "0" * 400, "-1" + "0" * 400, "1e400", "-1e400", "NaN", "Infinity", "-Infinity"]
)
def test_item1_huge_and_non_finite_numbers_in_a_number_field(tmp_path, mic_c2w, literal):
    text = json.dumps({"camera_angle_x": "@", "frames": [{"file_path": "a", "transform_matrix": mic_c2w}]})
    root = _nerf(tmp_path, mic_c2w, text=text.replace('"@"', literal))
    _raises(lambda: load_dataset(root), str(root / "transforms_train.json"), "frame 0", "'camera_angle_x'", "finite")


@pytest.mark.parametrize("literal", ["1" + "0" * 400, "1" * 5000, "1e400", "NaN"])
def test_item1_huge_numbers_in_transform_matrix(tmp_path, mic_c2w, literal):
    m = [list(r) for r in mic_c2w]
    m[1][3] = "@"
    text = json.dumps({"camera_angle_x": 0.5, "frames": [{"file_path": "a", "transform_matrix": m}]})
    root = _nerf(tmp_path, mic_c2w, text=text.replace('"@"', literal))
    _raises(lambda: load_dataset(root), "transforms_train.json", "'transform_matrix[1][3]'", "finite")


def test_json_numbers_read_by_hand_and_booleans_are_not_numbers(tmp_path, mic_c2w):
    (tmp_path / "n.json").write_text('[123456789012345678, 1234567890123456789, 1e400, -0, 2.5]')
    ints = read_json(tmp_path / "n.json")
    assert ints[0] == 123456789012345678 and isinstance(ints[0], int)  # 18 digits: exact
    assert ints[1] == 1.2345678901234568e18 and ints[2] == math.inf and ints[3:] == [0, 2.5]
    _raises(lambda: read_nerf_synthetic(_nerf(tmp_path, mic_c2w, w=True, h=6)), "'w'", "whole number")
    cam = read_nerf_synthetic(_nerf(tmp_path, mic_c2w, w=8.0, h=6)).views[0].camera
    assert (cam.width, cam.height) == (8, 6)


# ============================================================================ item 2: angles and focal lengths


@pytest.mark.parametrize(("field", "value"), [("camera_angle_x", 0), ("camera_angle_x", 0.0), ("camera_angle_x", -0.5),
                                              ("camera_angle_x", math.pi), ("camera_angle_x", 4.0),
                                              ("camera_angle_y", 0), ("camera_angle_y", -1e-9)])
def test_item2_zero_or_impossible_angle_of_view(tmp_path, mic_c2w, field, value):
    root = _nerf(tmp_path, mic_c2w, **{field: value})
    _raises(lambda: load_dataset(root), "transforms_train.json", f"'{field}'", "strictly between 0 and pi")


def test_angle_of_view_by_hand(tmp_path, mic_c2w):
    # 8 x 6 image, angle_x 0.5, angle_y 0.4: fx = 4 / tan(0.25), fy = 3 / tan(0.2); principal point (4, 3)
    cam = read_nerf_synthetic(_nerf(tmp_path, mic_c2w, camera_angle_y=0.4)).views[0].camera
    assert (cam.width, cam.height) == (8, 6)
    assert cam.fx == pytest.approx(4 / math.tan(0.25), rel=1e-15) and cam.fy == pytest.approx(3 / math.tan(0.2))
    assert (cam.cx, cam.cy) == (4.0, 3.0)
    # an angle so small that the focal length leaves float32 is named too
    for tiny in (1e-300, 5e-324):  # 5e-324 / 2 is 0: tan(angle / 2) = 0 (found by tools/fuzz_readers.py)
        _raises(lambda a=tiny: read_nerf_synthetic(_nerf(tmp_path, mic_c2w, camera_angle_x=a)),
                "'focal length from camera_angle_x'")


@pytest.mark.parametrize(("top", "field", "what"), [
    ({"fl_x": 0}, "fl_x", "> 0"),
    ({"fl_x": -3.0}, "fl_x", "> 0"),
    ({"fl_x": 9.0, "fl_y": 0}, "fl_y", "> 0"),
    ({"fl_x": 9.0, "cx": "4"}, "cx", "a number"),
    ({"fl_x": 9.0, "w": 8.5}, "w", "whole number"),
    ({"fl_x": 9.0, "w": 0}, "w", "between 1 and"),
    ({"fl_x": 9.0, "w": 1e300}, "w", "between 1 and"),
    ({"fl_x": 9.0, "w": 20000, "h": 20000}, "20000 x 20000", "at most"),
])
def test_nerfstudio_intrinsics_are_checked_by_field(tmp_path, mic_c2w, top, field, what):
    meta = {"w": 8, "h": 6, "frames": [{"file_path": "a.png", "transform_matrix": mic_c2w}], **top}
    png(tmp_path / "a.png", 8, 6)
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    _raises(lambda: load_dataset(tmp_path, "all"), str(tmp_path / "transforms.json"), field, what)


# ============================================================================ item 3: singular / non-rigid poses


@pytest.mark.parametrize("kind", ["zeros", "rank2", "scaled", "mirrored", "sheared", "bottom_row"])
def test_item3_singular_or_non_rigid_transform_matrix(tmp_path, mic_c2w, kind):
    m = np.asarray(mic_c2w, dtype=np.float64)
    if kind == "zeros":
        m[:3, :3] = 0.0
    elif kind == "rank2":
        m[:3, 2] = m[:3, 0]
    elif kind == "scaled":
        m[:3, :3] *= 2.0
    elif kind == "mirrored":
        m[:3, 0] *= -1.0
    elif kind == "sheared":
        m[0, 1] += 0.01
    else:
        m[3] = (0.0, 0.0, 1.0, 1.0)
    root = _nerf(tmp_path, m.tolist())
    _raises(lambda: load_dataset(root), "transforms_train.json", "frame 0", "'transform_matrix'")


def test_singular_matrix_through_the_public_conversion():
    _raises(lambda: opengl_c2w_to_w2c(np.zeros((4, 4))), "singular", kind=SplatupInputError)


def test_translation_beyond_float32_and_3x4_matrices(tmp_path, mic_c2w):
    m = np.asarray(mic_c2w, dtype=np.float64)
    m[:3, 3] = (3e38, 3e38, 0.0)  # each entry is a float32, the length is not
    _raises(lambda: load_dataset(_nerf(tmp_path, m.tolist())), "'transform_matrix'", "float32")
    ds = load_dataset(_nerf(tmp_path, mic_c2w[:3]))  # the 3x4 form reads as the 4x4 one
    np.testing.assert_allclose(ds.views[0].camera.world_to_camera.numpy(), gl_c2w_to_cv_w2c(mic_c2w), atol=1e-12)


# ============================================================================ item 4: paths stay inside the dataset


@pytest.mark.parametrize(("file_path", "what"), [("/", "absolute"), ("", "non-empty"), ("   ", "non-empty"),
                                                 (".", "folder itself"), ("./", "folder itself"),
                                                 ("../outside/b", "leaves the dataset folder"),
                                                 ("sub/../../outside/b", "leaves the dataset folder"),
                                                 ("a\x00b", "NUL"), ("\ud800", "not a valid file name"),
                                                 ("C:\\data\\b.png", "absolute"), (["a"], "non-empty")])
def test_item4_file_path_must_stay_inside(tmp_path, mic_c2w, file_path, what):
    png(tmp_path / "outside" / "b.png", 8, 6)
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": file_path, "transform_matrix": mic_c2w}]}
    root = _nerf(tmp_path / "ds", mic_c2w, text=json.dumps(meta))
    _raises(lambda: load_dataset(root), str(root / "transforms_train.json"), "'file_path'", what)


def test_item4_absolute_file_path_outside_the_dataset(tmp_path, mic_c2w):
    outside = tmp_path / "outside" / "b.png"
    png(outside, 8, 6)
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": str(outside), "transform_matrix": mic_c2w}]}
    root = _nerf(tmp_path / "ds", mic_c2w, text=json.dumps(meta))
    _raises(lambda: load_dataset(root), "transforms_train.json", "'file_path' is an absolute path", str(outside))


def test_dotdot_that_stays_inside_is_read(tmp_path, mic_c2w):
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": "sub/../a", "transform_matrix": mic_c2w}]}
    view = load_dataset(_nerf(tmp_path, mic_c2w, text=json.dumps(meta))).views[0]
    assert view.name == "a.png" and view.image_path == tmp_path / "a.png"


def test_nerfstudio_ply_file_path_must_stay_inside(tmp_path, mic_c2w):
    meta = {"w": 8, "h": 6, "fl_x": 9.0, "ply_file_path": "/etc/passwd",
            "frames": [{"file_path": "a.png", "transform_matrix": mic_c2w}]}
    png(tmp_path / "a.png", 8, 6)
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    _raises(lambda: load_dataset(tmp_path, "all"), "transforms.json", "'ply_file_path' is an absolute path")


@pytest.mark.parametrize("fmt", ["bin", "txt"])
@pytest.mark.parametrize(("name", "what"), [("/abs/view.png", "absolute"), ("../view.png", "leaves the dataset"),
                                            ("a/../../b.png", "leaves the dataset")])
def test_item4_colmap_image_names_must_stay_inside(tmp_path, mic_json, fmt, name, what):
    cameras, images, points = colmap_scene(mic_json, n_views=3)
    outside = tmp_path / "abs" / "view.png"
    images[1]["name"] = str(outside) if name.startswith("/") else name
    png(outside, 8, 6)
    (write_colmap_bin if fmt == "bin" else write_colmap_txt)(tmp_path / "sparse" / "0", cameras, images, points)
    touch_images(tmp_path, images[:1] + images[2:])
    msg = _raises(lambda: read_colmap(tmp_path), str(tmp_path / "sparse" / "0" / f"images.{fmt}"),
                  f"image {images[1]['id']}", "'NAME'", what)
    assert "images" in msg


# ============================================================================ item 5: decompression bombs, bad images


def test_item5_png_header_claiming_20000x20000_without_w_h(tmp_path, mic_c2w):
    root = _nerf(tmp_path, mic_c2w, image=None)
    png_header_only(root / "a.png", 20000, 20000)
    msg = _raises(lambda: load_dataset(root), str(root / "a.png"), "20000 x 20000 = 400,000,000 pixels",
                  f"{MAX_IMAGE_PIXELS:,}")
    assert "Traceback" not in msg
    for call in (lambda: read_image(root / "a.png"), lambda: image_size(root / "a.png")):
        _raises(call, str(root / "a.png"), "20000 x 20000")


@pytest.mark.parametrize("side", [9000, 12000])
def test_images_below_pillows_limit_are_ours_to_refuse(tmp_path, side):
    # 9000^2 = 81 M pixels: above MAX_IMAGE_PIXELS (2^26), below Pillow's warning (89 M);
    # 12000^2 = 144 M: where Pillow only warns (its error starts at 179 M)
    png_header_only(tmp_path / "big.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        _raises(lambda: image_size(tmp_path / "big.png"), str(tmp_path / "big.png"), f"{side} x {side}")


def test_image_header_claiming_no_pixels(tmp_path, mic_c2w):
    root = _nerf(tmp_path, mic_c2w, image=None)
    png_header_only(root / "a.png", 0, 6)  # Pillow refuses this PNG itself; the shared check backs up other formats
    _raises(lambda: load_dataset(root), str(root / "a.png"), "cannot read image")
    _raises(lambda: check_image_pixels(0, 6, "x.tga: image header"), "x.tga: image header", "claims 0 x 6 pixels")


def test_image_exactly_at_the_limit_is_accepted(tmp_path):
    png_header_only(tmp_path / "limit.png", 8192, 8192)
    assert 8192 * 8192 == MAX_IMAGE_PIXELS
    assert image_size(tmp_path / "limit.png") == (8192, 8192)
    png_header_only(tmp_path / "over.png", 8192, 8193)
    _raises(lambda: image_size(tmp_path / "over.png"), "8192 x 8193")
    # the header is fine, the missing pixel data is an error when decoded
    _raises(lambda: read_image(tmp_path / "limit.png"), str(tmp_path / "limit.png"), "cannot decode")


def test_jpeg_header_claiming_65535x65535(tmp_path):
    Image.new("RGB", (16, 12), (200, 100, 50)).save(tmp_path / "a.jpg", quality=90)
    data = bytearray((tmp_path / "a.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")  # baseline SOF0: length u16, precision u8, height u16, width u16
    data[sof + 5:sof + 9] = struct.pack(">HH", 65535, 65535)
    (tmp_path / "a.jpg").write_bytes(bytes(data))
    _raises(lambda: read_image(tmp_path / "a.jpg"), str(tmp_path / "a.jpg"), "65535 x 65535")


@pytest.mark.parametrize("damage", ["truncated", "zeroed_body", "garbage", "empty"])
def test_truncated_or_corrupt_images(tmp_path, damage):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    bad = {"truncated": data[: len(data) // 2], "zeroed_body": data[:60] + bytes(len(data) - 60),
           "garbage": rng.integers(0, 256, 500, dtype=np.uint8).tobytes(), "empty": b""}[damage]
    (tmp_path / "a.png").write_bytes(bad)
    _raises(lambda: read_image(tmp_path / "a.png"), str(tmp_path / "a.png"), "cannot")


def test_float_and_wide_integer_greyscale_images(tmp_path):
    grey = np.array([[0.25, -3.0, 7.0], [1.0, 0.0, 0.5]], dtype=np.float32)
    Image.fromarray(grey).save(tmp_path / "f.tiff")
    expected = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tiff").numpy(), expected)
    grey[1, 2] = np.nan
    Image.fromarray(grey).save(tmp_path / "nan.tiff")
    _raises(lambda: read_image(tmp_path / "nan.tiff"), str(tmp_path / "nan.tiff"), "NaN or Inf")
    wide = np.array([[0, 65535, 131070, -5]], dtype=np.int32)  # 32-bit integer greyscale ("I")
    Image.fromarray(wide).save(tmp_path / "i.tiff")
    np.testing.assert_array_equal(read_image(tmp_path / "i.tiff").numpy()[0, :, 0], [0.0, 1.0, 1.0, 0.0])


# ============================================================================ item 6: names over the OS limit


def _name_max(folder: Path) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


@pytest.mark.parametrize("fmt", ["bin", "txt"])
def test_item6_colmap_image_name_longer_than_255(tmp_path, mic_json, fmt):
    cameras, images, points = colmap_scene(mic_json, n_views=3)
    images[0]["name"] = "v" * 300 + ".png"
    (write_colmap_bin if fmt == "bin" else write_colmap_txt)(tmp_path / "sparse" / "0", cameras, images, points)
    _raises(lambda: read_colmap(tmp_path), f"images.{fmt}", "'NAME'", "304 bytes", f"allows {_name_max(tmp_path)}")


def test_item6_file_path_longer_than_255_and_whole_path_over_path_max(tmp_path, mic_c2w):
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": "x" * 300, "transform_matrix": mic_c2w}]}
    root = _nerf(tmp_path, mic_c2w, text=json.dumps(meta))
    _raises(lambda: load_dataset(root), "transforms_train.json", "'file_path'", "300 bytes")
    deep = "/".join(["d" * 200] * 25)  # every component is short, the path is over 4096 bytes
    meta["frames"][0]["file_path"] = deep
    root = _nerf(tmp_path, mic_c2w, text=json.dumps(meta))
    _raises(lambda: load_dataset(root), "transforms_train.json", "'file_path' makes a path of")


def test_file_path_of_254_characters_plus_png_is_a_missing_file_not_an_oserror(tmp_path, mic_c2w):
    meta = {"camera_angle_x": 0.5, "frames": [{"file_path": "y" * 254, "transform_matrix": mic_c2w}]}
    root = _nerf(tmp_path, mic_c2w, text=json.dumps(meta))
    _raises(lambda: load_dataset(root), "transforms_train.json", "not found", kind=SplatupInputError)


# ============================================================================ COLMAP values (the same checks)


def _model(tmp_path, mic_json, fmt, edit) -> Path:
    cameras, images, points = colmap_scene(mic_json, n_views=3, n_points=5)
    edit(cameras, images, points)
    (write_colmap_bin if fmt == "bin" else write_colmap_txt)(tmp_path / "sparse" / "0", cameras, images, points)
    return tmp_path


def _set_camera(cid, **kw):
    def edit(cameras, images, points):
        model, w, h, params = cameras[cid]
        cameras[cid] = (model, kw.get("w", w), kw.get("h", h), kw.get("params", params))
    return edit


@pytest.mark.parametrize("fmt", ["bin", "txt"])
@pytest.mark.parametrize(("edit", "what"), [
    (_set_camera(3, w=2**40), "'width' must be between 1 and"),
    (_set_camera(3, w=20000, h=20000), "20000 x 20000"),
    (_set_camera(3, params=[0.0, 1.0, 2.0, 3.0]), "'fx' must be > 0"),
    (_set_camera(8, params=[-5.0, 1.0, 2.0]), "'f' must be > 0"),
    (_set_camera(3, params=[1.0, float("nan"), 2.0, 3.0]), "'fy' must be a finite number"),
    (_set_camera(3, params=[1.0, 1.0, 1e300, 3.0]), "'cx' must be a finite number"),
])
def test_colmap_camera_values(tmp_path, mic_json, fmt, edit, what):
    root = _model(tmp_path, mic_json, fmt, edit)
    _raises(lambda: read_colmap(root, check_images=False), f"cameras.{fmt}", "camera", what)


def _set_pose(q=None, t=None):
    def edit(cameras, images, points):
        images[0]["q"] = q if q is not None else images[0]["q"]
        images[0]["t"] = t if t is not None else images[0]["t"]
    return edit


@pytest.mark.parametrize("fmt", ["bin", "txt"])
@pytest.mark.parametrize(("edit", "what"), [
    (_set_pose(q=(0.0, 0.0, 0.0, 0.0)), "quaternion"),
    (_set_pose(q=(float("nan"), 0.0, 0.0, 1.0)), "'qw'"),
    (_set_pose(t=(0.0, float("inf"), 0.0)), "'ty'"),
    (_set_pose(t=(1e300, 0.0, 0.0)), "'tx'"),
    (_set_pose(t=(3e38, 3e38, 0.0)), "'tvec'"),
])
def test_colmap_pose_values(tmp_path, mic_json, fmt, edit, what):
    root = _model(tmp_path, mic_json, fmt, edit)
    _raises(lambda: read_colmap(root, check_images=False), f"images.{fmt}", "image 100", what)


@pytest.mark.parametrize("scale", [1e200, 1e-300, 1e-307])
def test_colmap_quaternions_of_any_scale_give_the_same_rotation(tmp_path, mic_json, scale):
    cameras, images, points = colmap_scene(mic_json, n_views=3, n_points=5)
    expected = images[0]["w2c"]
    images[0]["q"] = tuple(scale * v for v in images[0]["q"])
    write_colmap_bin(tmp_path / "sparse" / "0", cameras, images, points)
    ds = read_colmap(tmp_path, check_images=False)
    w2c = next(v for v in ds.views if v.name == images[0]["name"]).camera.world_to_camera.numpy()
    np.testing.assert_allclose(w2c, expected, atol=1e-9)


@pytest.mark.parametrize("fmt", ["bin", "txt"])
def test_colmap_points_beyond_float32(tmp_path, mic_json, fmt):
    def edit(cameras, images, points):
        points["xyz"][3] = (1.0, 1e39, 2.0)
    root = _model(tmp_path, mic_json, fmt, edit)
    _raises(lambda: read_colmap(root, check_images=False), f"points3D.{fmt}", "float32", "point 3")
