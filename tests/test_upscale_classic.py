"""Classic resamplers against OpenCV, torch and PIL, the finite-difference Hermite baseline, gradients and checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from splatup.errors import SplatupInputError
from splatup.upscale.classic import METHODS, upscale_classic
from splatup.upscale.hermite import upscale

LR = (24, 30)
# output sizes: factors 2, 3, 4, fractional 1.5 and ~2.37, different per axis, and a downscale
HR = [(48, 60), (72, 90), (96, 120), (36, 45), (57, 71), (48, 90), (60, 40), (17, 23)]
UPSCALES = HR[:-1]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).random((*LR, 3)).astype(np.float32)


def ours(img: np.ndarray, size, method: str) -> np.ndarray:
    return upscale_classic(torch.from_numpy(img), size, method).numpy()


def to_nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None]


def from_nchw(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def pil_resize(img: np.ndarray, size, resample) -> np.ndarray:
    """PIL on float32 "F" images (no 8-bit rounding), one channel at a time."""
    H, W = size
    return np.stack([np.asarray(Image.fromarray(img[..., c], mode="F").resize((W, H), resample))
                     for c in range(img.shape[-1])], axis=-1)


def interior(n_out: int, n_in: int, left: int, right: int) -> np.ndarray:
    """Output pixels whose taps floor(x) - left .. floor(x) + right all lie inside the input (there PIL's
    border renormalisation plays no role); x from the half-pixel formula."""
    fl = np.floor((np.arange(n_out) + 0.5) * n_in / n_out - 0.5)
    return (fl - left >= 0) & (fl + right <= n_in - 1)


@pytest.mark.parametrize("size", HR)
@pytest.mark.parametrize("method,flag", [("bilinear", cv2.INTER_LINEAR), ("bicubic", cv2.INTER_CUBIC)])
def test_matches_opencv_whole_image(image, size, method, flag):
    """cv2 uses the same half-pixel geometry and replicates the border: compare every pixel."""
    cv2.setNumThreads(1)
    ref = cv2.resize(image, (size[1], size[0]), interpolation=flag)
    np.testing.assert_allclose(ours(image, size, method), ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("size", HR)
@pytest.mark.parametrize("method,mode", [("bilinear", "bilinear"), ("bicubic", "bicubic"),
                                         ("nearest", "nearest-exact")])
def test_matches_torch_interpolate_whole_image(image, size, method, mode):
    kw = {} if mode == "nearest-exact" else {"align_corners": False}
    ref = from_nchw(F.interpolate(to_nchw(image), size=size, mode=mode, **kw))
    # torch derives its source coordinates from a float32 scale: a few ulp apart at fractional factors
    np.testing.assert_allclose(ours(image, size, method), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", UPSCALES)
@pytest.mark.parametrize(
    "method,resample,left,right",
    [("bicubic-pil", Image.BICUBIC, 1, 2), ("lanczos", Image.LANCZOS, 2, 3), ("bilinear", Image.BILINEAR, 0, 1)],
)
def test_matches_pil_in_the_interior(image, size, method, resample, left, right):
    """PIL drops out-of-image taps and renormalises, so compare where all taps are inside the image."""
    ref = pil_resize(image, size, resample)
    rows = interior(size[0], LR[0], left, right)
    cols = interior(size[1], LR[1], left, right)
    assert rows.sum() > size[0] // 2 and cols.sum() > size[1] // 2
    got = ours(image, size, method)
    np.testing.assert_allclose(got[rows][:, cols], ref[rows][:, cols], rtol=0, atol=2e-6)


@pytest.mark.parametrize("size", UPSCALES)
def test_bicubic_pil_matches_torch_antialias_in_the_interior(image, size):
    ref = from_nchw(F.interpolate(to_nchw(image), size=size, mode="bicubic", align_corners=False, antialias=True))
    rows, cols = interior(size[0], LR[0], 1, 2), interior(size[1], LR[1], 1, 2)
    got = ours(image, size, "bicubic-pil")
    np.testing.assert_allclose(got[rows][:, cols], ref[rows][:, cols], rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(48, 60), (72, 90), (96, 120), (48, 90)])
def test_nearest_matches_pil_at_integer_factors(image, size):
    """PIL NEAREST rounds ties (exact half positions, only at fractional factors) the other way."""
    np.testing.assert_array_equal(ours(image, size, "nearest"), pil_resize(image, size, Image.NEAREST))


@pytest.mark.parametrize("method", METHODS)
def test_factor_one_returns_the_input(image, method):
    np.testing.assert_array_equal(ours(image, LR, method), image)


@pytest.mark.parametrize("size", [(48, 60), (57, 71), (36, 90)])
def test_fd_hermite_reproduces_biquadratics_away_from_the_border(size):
    """Central differences are exact for polynomials of degree <= 2 in each variable (x^2 y^2 included),
    so the patch gets exact derivatives wherever both cell corners are interior pixels."""
    h, w = LR
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 3)) / np.array([1.0, 10.0, 100.0])[:, None] / np.array([1.0, 10.0, 100.0])[None, :]

    def p(x, y):
        return sum(a[i, j] * np.outer(y**j, x**i) for i in range(3) for j in range(3))

    img = p(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))[..., None]
    out = upscale_classic(torch.from_numpy(img), size, "fd-hermite")[..., 0].numpy()
    xs = (np.arange(size[1]) + 0.5) * w / size[1] - 0.5
    ys = (np.arange(size[0]) + 0.5) * h / size[0] - 0.5
    cols, rows = (xs >= 1) & (xs <= w - 2), (ys >= 1) & (ys <= h - 2)
    np.testing.assert_allclose(out[rows][:, cols], p(xs, ys)[rows][:, cols], rtol=0, atol=1e-11)
    # near the border the one-sided differences are not exact for the curved part
    assert np.abs(out - p(xs, ys)).max() > 1e-6


@pytest.mark.parametrize("size", [(48, 60), (57, 71)])
def test_fd_hermite_is_the_patch_with_numpy_gradients(image, size):
    """np.gradient: central differences inside, first-order one-sided differences at the two ends."""
    fx = np.gradient(image, axis=1)
    fy = np.gradient(image, axis=0)
    fxy = np.gradient(fx, axis=0)
    expect = upscale(*(torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in (image, fx, fy, fxy)), size=size)
    np.testing.assert_allclose(ours(image, size, "fd-hermite"), expect.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 4, 5])
@pytest.mark.parametrize("method", METHODS)
def test_channels_and_batch(method, channels):
    """A batch gives the per-image results; any channel count gives the per-channel results."""
    g = torch.Generator().manual_seed(channels)
    imgs = torch.rand(2, 11, 13, channels, generator=g)
    out = upscale_classic(imgs, (23, 30), method)
    assert out.shape == (2, 23, 30, channels) and out.dtype == torch.float32
    for b in range(2):
        single = upscale_classic(imgs[b], (23, 30), method)
        torch.testing.assert_close(out[b], single, rtol=0, atol=0)
        for c in range(channels):
            one = upscale_classic(imgs[b, ..., c:c + 1].contiguous(), (23, 30), method)
            torch.testing.assert_close(out[b, ..., c:c + 1], one, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lr,hr", [((4, 5), (9, 11)), ((5, 3), (10, 9)), ((1, 4), (3, 9)), ((6, 7), (4, 5))])
def test_gradcheck(method, lr, hr):
    g = torch.Generator().manual_seed(lr[0] * 10 + lr[1])
    x = torch.randn(2, *lr, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: upscale_classic(t, hr, method), (x,), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lr,hr", [((60, 80), (120, 160)), ((45, 70), (107, 166)), ((37, 29), (100, 101))])
def test_adjoint_identity_float32(method, lr, hr):
    gen = torch.Generator().manual_seed(len(method) + lr[0])
    x = torch.randn(2, *lr, 3, generator=gen, requires_grad=True)
    y = upscale_classic(x, hr, method)
    gy = torch.randn(y.shape, generator=gen)
    y.backward(gy)
    lhs = (y.detach().double() * gy.double()).sum()
    rhs = (x.detach().double() * x.grad.double()).sum()
    assert abs(lhs - rhs) <= 1e-6 * (y.detach().double().abs() * gy.double().abs()).sum()


def test_bad_input():
    img = torch.zeros(5, 6, 3)
    with pytest.raises(SplatupInputError, match="method must be one of"):
        upscale_classic(img, (10, 12), "cubic")
    with pytest.raises(SplatupInputError, match="size"):
        upscale_classic(img, (10, 0), "bilinear")
    with pytest.raises(SplatupInputError, match="image must be float32 or float64"):
        upscale_classic(img.to(torch.uint8), (10, 12), "bilinear")
    with pytest.raises(SplatupInputError, match="image must be"):
        upscale_classic(torch.zeros(5, 6), (10, 12), "bilinear")
    bad = img.clone()
    bad[2, 3, 1] = float("nan")
    for method in METHODS:
        with pytest.raises(SplatupInputError, match="image contains NaN"):
            upscale_classic(bad, (10, 12), method)
    with pytest.raises(SplatupInputError, match="image contains NaN"):
        upscale_classic(bad, (2, 12), "bicubic")  # downscaling skips rows; still reported
