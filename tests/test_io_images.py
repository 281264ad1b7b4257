"""Image reading (alpha compositing, area downsampling) and atomic writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from splatup.errors import SceneFormatError, SplatupInputError
from splatup.io import area_downsample, image_size, read_image, write_image


def _rgba_png(path, h=6, w=7, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    px[0, 0, 3] = 0
    px[0, 1, 3] = 255
    Image.fromarray(px, mode="RGBA").save(path)
    return px


def test_rgba_composited_over_background_by_hand(tmp_path):
    px = _rgba_png(tmp_path / "a.png")
    rgb = px[..., :3].astype(np.float64) / 255
    a = px[..., 3:4].astype(np.float64) / 255
    for bg in [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.25, 0.5, 1.0)]:
        img = read_image(tmp_path / "a.png", background=bg)
        assert img.dtype == torch.float32 and img.shape == (6, 7, 3)
        expected = rgb * a + np.asarray(bg) * (1 - a)
        np.testing.assert_allclose(img.numpy(), expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(img[0, 0].numpy(), bg, atol=1e-7)  # fully transparent pixel shows bg
        np.testing.assert_allclose(img[0, 1].numpy(), rgb[0, 1], atol=1e-7)  # opaque pixel keeps its colour
    # no background given: composited on black
    np.testing.assert_allclose(read_image(tmp_path / "a.png").numpy(), rgb * a, atol=1e-6, rtol=0)


def test_rgb_and_grey_images_ignore_background(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    got = read_image(tmp_path / "rgb.png", background=(1, 1, 1))
    np.testing.assert_array_equal(got.numpy(), rgb.astype(np.float32) / np.float32(255))
    grey = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_image(tmp_path / "g.png").numpy(), np.repeat(grey[..., None], 3, 2) / 255,
                               atol=1e-7)
    g16 = rng.integers(0, 65536, (3, 2), dtype=np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(read_image(tmp_path / "g16.png").numpy(), np.repeat(g16[..., None], 3, 2) / 65535,
                               atol=1e-7)


def test_area_downsample_integer_factor_is_block_mean():
    rng = np.random.default_rng(2)
    img = rng.random((12, 18, 3))
    for f in (1, 2, 3, 6):
        h, w = 12 // f, 18 // f
        expected = img.reshape(h, f, w, f, 3).mean(axis=(1, 3))
        got = area_downsample(torch.from_numpy(img), (h, w))
        assert got.dtype == torch.float32 and got.shape == (h, w, 3)
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-6, rtol=0)
    # different factors along the two axes
    np.testing.assert_allclose(area_downsample(img, (6, 6)).numpy(), img.reshape(6, 2, 6, 3, 3).mean(axis=(1, 3)),
                               atol=1e-6)


def test_area_downsample_fractional_matches_cv2_inter_area():
    rng = np.random.default_rng(3)
    img = rng.random((50, 37, 3)).astype(np.float32)
    for h, w in [(33, 20), (7, 9), (49, 36), (1, 1)]:
        ref = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(area_downsample(img, (h, w)).numpy(), ref.reshape(h, w, 3), atol=2e-6)
    # mean is preserved for any size (box filter partition of unity)
    got = area_downsample(img, (13, 11)).numpy()
    assert abs(float(got.mean()) - float(img.mean())) < 1e-6


def test_area_downsample_rejects_enlarging():
    with pytest.raises(SplatupInputError, match="area_downsample"):
        area_downsample(np.zeros((4, 4, 3)), (8, 4))
    with pytest.raises(SplatupInputError, match="shape"):
        area_downsample(np.zeros((4, 4)), (2, 2))


def test_read_image_size_composites_then_averages(tmp_path):
    px = _rgba_png(tmp_path / "b.png", h=8, w=12)
    full = read_image(tmp_path / "b.png", background=(1, 1, 1))
    small = read_image(tmp_path / "b.png", background=(1, 1, 1), size=(4, 6))
    np.testing.assert_allclose(small.numpy(), full.numpy().reshape(4, 2, 6, 2, 3).mean(axis=(1, 3)), atol=1e-6)
    # compositing first matters: averaging straight RGB and alpha separately would give something else
    rgb, a = px[..., :3] / 255.0, px[..., 3:] / 255.0
    wrong = (rgb.reshape(4, 2, 6, 2, 3).mean(axis=(1, 3)) * a.reshape(4, 2, 6, 2, 1).mean(axis=(1, 3))
             + (1 - a.reshape(4, 2, 6, 2, 1).mean(axis=(1, 3))))
    assert np.abs(small.numpy() - wrong).max() > 1e-3


def test_real_mic_image(shared_data):
    path = shared_data / "nerf_synthetic_mic" / "train" / "r_0.png"
    assert image_size(path) == (800, 800)
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        a = np.asarray(im)[..., 3]
    white = read_image(path, background=(1, 1, 1))
    black = read_image(path, background=(0, 0, 0))
    assert white.shape == (800, 800, 3)
    transparent = torch.from_numpy(a == 0)
    assert transparent.any() and (a == 255).any()
    assert (white[transparent] == 1).all() and (black[transparent] == 0).all()
    # white - black = 1 - a exactly where compositing happened
    np.testing.assert_allclose((white - black).numpy(), np.repeat(1 - a[..., None] / 255.0, 3, 2), atol=1e-6)


def test_write_image_png_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    img = rng.random((9, 13, 3)) * 1.4 - 0.2  # some values outside [0, 1] get clamped
    path = write_image(tmp_path / "out.png", torch.from_numpy(img).float())
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        stored = np.asarray(im)
    expected = np.floor(np.clip(img.astype(np.float32).astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(stored, expected)
    np.testing.assert_array_equal(read_image(path).numpy(), expected.astype(np.float32) / np.float32(255))
    # numpy input and greyscale input
    write_image(tmp_path / "g.png", np.full((3, 4, 1), 0.5))
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "L" and (np.asarray(im) == 128).all()


def test_write_image_jpeg(tmp_path):
    img = np.tile(np.linspace(0, 1, 32)[None, :, None], (16, 1, 3))
    write_image(tmp_path / "out.JPG", img)
    with Image.open(tmp_path / "out.JPG") as im:
        assert im.format == "JPEG"
    assert float(np.abs(read_image(tmp_path / "out.JPG").numpy() - img).mean()) < 0.02


def test_write_image_errors_leave_nothing(tmp_path):
    with pytest.raises(SplatupInputError, match=r"'\.bmp'"):
        write_image(tmp_path / "x.bmp", np.zeros((2, 2, 3)))
    bad = np.zeros((4, 4, 3))
    bad[1, 2, 0] = np.nan
    with pytest.raises(SplatupInputError, match=r"NaN or Inf.*\(1, 2, 0\)"):
        write_image(tmp_path / "x.png", bad)
    with pytest.raises(SplatupInputError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2)))
    with pytest.raises(SplatupInputError, match="does not exist"):
        write_image(tmp_path / "sub" / "x.png", np.zeros((4, 4, 3)))
    assert list(tmp_path.iterdir()) == []


def test_write_image_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    write_image(path, np.zeros((4, 4, 3)))
    before = path.read_bytes()

    def exploding_save(self, fp, format=None, **kw):  # noqa: A002
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, np.ones((4, 4, 3)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_unreadable_images_are_named(tmp_path):
    with pytest.raises(SplatupInputError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all" * 10)
    with pytest.raises(SceneFormatError, match="garbage.png"):
        read_image(garbage)
    with pytest.raises(SceneFormatError, match="garbage.png"):
        image_size(garbage)
    # a PNG cut in the middle of its pixel data
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes((tmp_path / "full.png").read_bytes()[:2000])
    with pytest.raises(SceneFormatError, match="cut.png"):
        read_image(cut)
    with pytest.raises(SplatupInputError, match="background"):
        read_image(tmp_path / "full.png", background=(1, 1))
