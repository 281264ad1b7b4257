"""Viewer frames against ``su.render``: every method and factor, the split view, the 8-bit conversion.

Oracle: ``su.render`` (the library's one-call path) for the same camera, rounded to 8 bits here with numpy. A frame
may differ from it by one 8-bit step where float rounding lands on the other side of a half.
"""

import numpy as np
import pytest

import splatup as su
from splatup import pipeline
from splatup.errors import SplatupInputError
from splatup.pipeline import lowres_derivatives
from splatup.view.frame import PHASES, crop_columns, render_frame, to_uint8
from splatup.viewpoints import orbit_camera

W, H = 128, 96


@pytest.fixture(scope="module")
def spot(shared_data):
    return su.load_scene(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")


@pytest.fixture(scope="module")
def cam(spot):
    return orbit_camera(spot, W, H, azimuth_deg=40.0)


def as8(img) -> np.ndarray:
    return np.clip(np.rint(img.clamp(0, 1).numpy() * 255.0), 0, 255).astype(np.int16)


def assert_same_8bit(a: np.ndarray, b: np.ndarray, max_share: float = 1e-3) -> None:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert d.max() <= 1, f"max difference {d.max()} 8-bit steps"
    assert np.count_nonzero(d) <= max_share * d.size


def test_native_frame_is_the_native_render(spot, cam):
    f = render_frame(spot, cam, "native", 3.0, background=(0.2, 0.35, 0.4))
    assert f.image.dtype == np.uint8 and f.image.shape == (H, W, 3)
    assert f.factor == 1.0 and f.lowres is None
    assert_same_8bit(f.image, as8(su.render(spot, cam, method="native", background=(0.2, 0.35, 0.4))))
    assert (f.image != np.array([51, 89, 102])).any(axis=2).mean() > 0.05  # the cow is in view


# every upscaling method of the pipeline, so that a method added there is checked here without a change
@pytest.mark.parametrize("method", [m for m in pipeline.METHODS if m != "native"])
def test_upscaled_frame_is_su_render(spot, cam, method):
    f = render_frame(spot, cam, method, 2.5)
    assert f.factor == 2.5 and f.lowres == (51, 38)  # floor(128 / 2.5), floor(96 / 2.5)
    assert_same_8bit(f.image, as8(su.render(spot, cam, scale=2.5, method=method)))
    assert set(f.phases) == set(PHASES) and f.phases["upscale"] > 0
    assert f.scaled_s == f.phases["composite"] > 0


def test_each_method_gets_the_derivatives_its_upscaler_reads(spot, cam, monkeypatch):
    # hermite reads dx, dy, dxy; every classic upscaler reads the colour only (a render without derivatives is
    # enough for it, and cheaper)
    assert lowres_derivatives("hermite") is True
    for m in pipeline.METHODS:
        if m not in ("native", "hermite") and m not in getattr(pipeline, "METHOD_DERIVATIVES", {}):
            assert lowres_derivatives(m) is False
    # a method the pipeline's table declares (as "hermite-first" will be) gets the table's derivatives
    seen = []
    real = pipeline.render_lowres

    def spy(*args, **kwargs):
        seen.append(kwargs["derivatives"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "METHOD_DERIVATIVES", {"hermite": True, "bicubic": "first"})
    monkeypatch.setattr("splatup.view.frame.render_lowres", spy)
    render_frame(spot, cam, "bicubic", 2.0)
    render_frame(spot, cam, "nearest", 2.0)
    assert seen == ["first", False]


def test_a_tiny_image_caps_the_factor_at_its_size(spot, cam):
    tiny = cam.resized(3, 2)
    f = render_frame(spot, tiny, "hermite", 2.5)
    assert f.factor == 2.0 and f.lowres == (1, 1) and f.image.shape == (2, 3, 3)
    assert_same_8bit(f.image, as8(su.render(spot, tiny, scale=2.0, method="hermite")))
    f = render_frame(spot, cam.resized(1, 40), "lanczos", 4.0)
    assert f.factor == 1.0 and f.lowres is None  # a one-pixel-wide image is rendered natively


def test_factor_one_renders_natively_and_equals_the_method_at_one(spot, cam):
    # every upscaler is the identity at factor 1, so the viewer renders natively there; check that claim
    f = render_frame(spot, cam, "hermite", 1.0)
    assert f.factor == 1.0 and f.lowres is None and f.phases["upscale"] == 0.0
    assert_same_8bit(f.image, as8(su.render(spot, cam, scale=1.0, method="hermite")), max_share=5e-3)


def test_split_frame_is_native_left_and_the_method_right(spot, cam):
    x0 = W // 2
    f = render_frame(spot, cam, "hermite", 2.0, background=(0.0, 0.0, 0.0), split=True)
    native = as8(su.render(spot, cam, method="native"))
    hermite = as8(su.render(spot, cam, scale=2.0, method="hermite"))
    assert_same_8bit(f.image[:, : x0 - 1], native[:, : x0 - 1])
    assert (f.image[:, x0 - 1] == 255).all()  # the divider, opposite to the black background
    # the right half's low-res grid is the full image's grid shifted by x0 / 2 cells, so away from the seam, where
    # the half's edge patch extrapolates, it is the full image's upscale
    assert_same_8bit(f.image[:, x0 + 4:], hermite[:, x0 + 4:], max_share=5e-3)
    assert f.lowres == (32, 48)
    # compositing that scales with the factor: only the upscaled half's
    assert 0 < f.scaled_s < f.phases["composite"]


def test_crop_camera_sees_the_columns_of_the_full_camera(spot, cam):
    full = su.rasterize(spot, cam).color.numpy()
    part = su.rasterize(spot, crop_columns(cam, 40, 100)).color.numpy()
    assert part.shape == (H, 60, 3)
    assert np.abs(part - full[:, 40:100]).max() < 1e-5


def test_to_uint8_rounds_to_nearest_and_clips():
    import torch

    x = torch.tensor([[[-0.2, 0.0, 0.5 / 255 - 1e-4], [0.5 / 255 + 1e-4, 127.49 / 255, 1.3]]])
    assert to_uint8(x).tolist() == [[[0, 0, 0], [1, 127, 255]]]


@pytest.mark.parametrize("method", ["native", "hermite", "bicubic"])
def test_frames_are_the_renders_in_8_bits_exactly(spot, cam, method):
    """The frame is su.render(..., dtype=torch.uint8) byte for byte: the viewer shows what files get."""
    import torch

    f = render_frame(spot, cam, method, 2.0)
    want = su.render(spot, cam, scale=2.0, method=method, dtype=torch.uint8).numpy()
    assert np.array_equal(f.image, want)


def test_unknown_method_is_named(spot, cam):
    with pytest.raises(SplatupInputError, match="method must be one of"):
        render_frame(spot, cam, "bicubik", 2.0)
