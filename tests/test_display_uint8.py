"""8-bit display output: ``su.render(..., dtype=torch.uint8)`` and the upscalers' fused uint8 kernels.

Oracles: the quantisation rule held against exact rational arithmetic (Fraction) at every level boundary; the
fused uint8 images against the float path of the same call quantised by that rule (``to_uint8``, which every image
file splatup writes goes through), byte for byte, for every method of ``pipeline.METHODS`` on a real scene at an odd
size and integer and fractional factors; the float64 twins (``reference.upscale``) for the uint8 path of the
upscalers on inputs that leave [0, 1].
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

import splatup as su
from real_views import load, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup._quantize import quantize
from splatup.errors import SplatupInputError
from splatup.io.images import to_uint8, write_image
from splatup.pipeline import METHODS
from splatup.upscale.classic import METHODS as CLASSIC_METHODS


def exact_level(v: float) -> int:
    """floor(255 clamp(v, 0, 1) + 1/2) in exact rational arithmetic."""
    x = min(max(Fraction(min(max(v, -1.0), 2.0)), Fraction(0)), Fraction(1))  # (infinities first, as floats)
    return int(x * 255 + Fraction(1, 2))  # int() of a non-negative Fraction is floor


def test_rule_at_every_level_boundary_is_exact():
    """float32 values at, just below and just above each boundary (k + 1/2) / 255, and outside [0, 1]."""
    ks = np.arange(-2, 258, dtype=np.float64)
    b = ((ks + 0.5) / 255.0).astype(np.float32)
    vals = np.concatenate([b, np.nextafter(b, np.float32(-1)), np.nextafter(b, np.float32(2)),
                           np.float32([0.0, -0.0, 1.0, 0.5, 1e-45, -1e-45, 3.0, -3.0, np.inf, -np.inf])])
    got = quantize(vals)
    expect = np.array([exact_level(float(v)) for v in vals], np.uint8)
    np.testing.assert_array_equal(got, expect)
    # the boundaries are where they should be: each level is reached, and the tie 0.5 -> 128
    assert set(got.tolist()) == set(range(256)) and quantize(np.float32([0.5]))[0] == 128


def test_rule_equals_round_half_even_of_float32_values():
    """For float32 images the rule is np.round(255 clip(v)) in float64 (to_uint8's earlier rule): same PNG bytes."""
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.uniform(-0.1, 1.1, 200_000), (np.arange(256) + 0.5) / 255]).astype(np.float32)
    old = np.round(np.clip(v.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(quantize(v), old)
    np.testing.assert_array_equal(to_uint8(torch.from_numpy(v.reshape(-1, 1, 1))).reshape(-1), old)


@pytest.fixture(scope="module")
def plant_views(shared_data):
    scene = load(shared_data, "plant")
    return scene, orbit_camera(scene, "plant", 97, 61, azimuth=40.0)


@pytest.mark.parametrize("method", METHODS)
def test_uint8_render_is_the_float_render_quantised(plant_views, method):
    """Every method, factors 2, 2.5 (fractional) and 3, at an odd size (97 x 61): equal byte for byte."""
    scene, cam = plant_views
    for s in ((1,) if method == "native" else (2, 2.5, 3)):
        f = su.render(scene, cam, scale=s, method=method)
        u = su.render(scene, cam, scale=s, method=method, dtype=torch.uint8)
        assert u.dtype == torch.uint8 and u.shape == (61, 97, 3), (method, s)
        expect = to_uint8(f)
        np.testing.assert_array_equal(u.numpy(), expect, err_msg=f"{method} x{s}")
        # not vacuous: the image spans many levels, and truncation instead of rounding would differ
        assert len(np.unique(expect)) > 100, (method, s)
        trunc = np.floor(np.clip(f.double().numpy(), 0, 1) * 255).astype(np.uint8)
        assert (trunc != expect).mean() > 0.2, (method, s)


def test_uint8_render_gives_the_bytes_of_the_saved_float_render(tmp_path, plant_views):
    scene, cam = plant_views
    path = write_image(tmp_path / "f.png", su.render(scene, cam, scale=2.5, method="hermite"))
    with Image.open(path) as im:
        saved = np.asarray(im)
    np.testing.assert_array_equal(su.render(scene, cam, scale=2.5, method="hermite", dtype=torch.uint8).numpy(),
                                  saved)


@pytest.mark.parametrize("dxy", [True, False], ids=["second-order", "first-order"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_upscale_uint8_batched_channels_and_out_of_range_values(dxy, dtype):
    """[B, h, w, C] with C = 2 and 3, values well outside [0, 1]: the uint8 output is the float output quantised
    (float32: exactly; float64: the twin's rounding of the same float64 values, exactly), and also the float64
    twin's uint8 output up to one level where float32 rounding straddles a boundary."""
    g = torch.Generator().manual_seed(7)
    for (h, w), (H, W), C in (((6, 7), (12, 14), 3), ((7, 8), (17, 19), 2), ((4, 37), (9, 101), 3)):
        xs = [(torch.rand(2, h, w, C, generator=g) * 1.6 - 0.3).to(dtype)]
        xs += [(torch.randn(2, h, w, C, generator=g) * 0.4).to(dtype) for _ in range(3)]
        d = xs[3] if dxy else None
        f = su.upscale(xs[0], xs[1], xs[2], d, size=(H, W), clamp=True)
        u = su.upscale(xs[0], xs[1], xs[2], d, size=(H, W), dtype=torch.uint8)
        assert u.dtype == torch.uint8 and u.shape == (2, H, W, C)
        np.testing.assert_array_equal(u.numpy(), quantize(f.numpy()))
        assert ((f > 0) & (f < 1)).float().mean() > 0.3 and (f == 0).any() and (f == 1).any()
        twin = ref.upscale(*(x.double() for x in xs[:3]), d.double() if dxy else None, size=(H, W),
                           dtype=torch.uint8)
        diff = (u.int() - twin.int()).abs()
        assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01


@pytest.mark.parametrize("method", CLASSIC_METHODS)
def test_upscale_classic_uint8_is_the_float_output_quantised(method):
    g = torch.Generator().manual_seed(8)
    for (h, w), (H, W) in (((9, 11), (18, 22)), ((9, 11), (23, 27)), ((5, 40), (11, 97))):
        x = torch.rand(h, w, 3, generator=g) * 1.4 - 0.2
        f = su.upscale_classic(x, (H, W), method)
        u = su.upscale_classic(x, (H, W), method, dtype=torch.uint8)
        assert u.dtype == torch.uint8 and u.shape == (H, W, 3)
        np.testing.assert_array_equal(u.numpy(), quantize(f.numpy()), err_msg=f"{method} {(h, w)} -> {(H, W)}")


def test_uint8_from_inputs_that_require_grad():
    xs = [torch.rand(5, 6, 3, requires_grad=True) for _ in range(4)]
    u = su.upscale(*xs, size=(10, 12), dtype=torch.uint8)
    assert u.dtype == torch.uint8 and not u.requires_grad
    np.testing.assert_array_equal(u.numpy(), quantize(su.upscale(*xs, size=(10, 12), clamp=True).detach().numpy()))
    v = su.upscale_classic(xs[0], (10, 12), "fd-hermite", dtype=torch.uint8)
    assert v.dtype == torch.uint8 and not v.requires_grad


@pytest.mark.parametrize("bad", [torch.float64, torch.float16, torch.int32, "uint8", np.uint8, None, 8])
def test_render_dtype_must_be_float32_or_uint8(bad):
    cam = front_camera(16, 12)
    scene = random_scene(5, cam, seed=1)
    with pytest.raises(SplatupInputError, match="dtype"):
        su.render(scene, cam, method="hermite", dtype=bad)
    with pytest.raises(SplatupInputError, match="dtype"):
        su.render(scene, cam, method="native", dtype=bad)


@pytest.mark.parametrize("bad", [torch.float16, torch.int32, torch.float64, "uint8", np.uint8])
def test_upscaler_dtype_must_be_the_input_dtype_or_uint8(bad):
    x = torch.rand(4, 5, 3)
    for fn, args in ((su.upscale, (x, x, x, x, (8, 10))), (ref.upscale, (x, x, x, x, (8, 10))),
                     (su.upscale_classic, (x, (8, 10), "bicubic")), (ref.upscale_classic, (x, (8, 10), "bicubic"))):
        with pytest.raises(SplatupInputError, match="dtype"):
            fn(*args, dtype=bad)
    assert su.upscale(x, x, x, x, (8, 10), dtype=torch.float32).dtype == torch.float32


def test_uint8_output_reports_non_finite_input_by_name():
    x = torch.rand(4, 5, 3)
    bad = x.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(SplatupInputError, match="dy"):
        su.upscale(x, x, bad, None, (8, 10), dtype=torch.uint8)
    with pytest.raises(SplatupInputError, match="image"):
        su.upscale_classic(bad, (8, 10), "lanczos", dtype=torch.uint8)
