"""Gradient-aware Hermite upscaler: exactness on bicubic polynomials, hand-checked values, the reference twin,
gradients (gradcheck, adjoint identity, autograd through the twin) and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splatup as su
from scenes import front_camera, random_scene
from splatup.errors import SplatupInputError
from splatup.pipeline import render_lowres
from splatup.reference import upscale as upscale_twin
from splatup.upscale.classic import upscale_classic
from splatup.upscale.hermite import upscale

# (h, w) -> (H, W): integer factors 2, 3, 4, fractional 1.5 and 2.37, different per axis, a large period
# (direct x pass: P = 101 > 8), and downscaling
SIZES = [
    ((6, 7), (12, 14)),
    ((5, 6), (15, 18)),
    ((4, 5), (16, 20)),
    ((6, 8), (9, 12)),
    ((7, 8), (17, 19)),  # 2.43, 2.37
    ((5, 7), (10, 21)),  # 2 in y, 3 in x
    ((6, 5), (24, 8)),  # 4 in y, 1.6 in x
    ((4, 37), (9, 101)),
    ((9, 11), (5, 6)),  # downscale
]


def source_coords(n_out: int, n_in: int) -> np.ndarray:
    """Continuous low-res index sampled by each output pixel (DESIGN.md), straight from the formula."""
    return (np.arange(n_out) + 0.5) * n_in / n_out - 0.5


def random_bicubic(rng: np.random.Generator, n: int) -> np.ndarray:
    """n coefficient matrices a[i, j] of sum a_ij x^i y^j, scaled so that terms stay O(1) on small grids."""
    return rng.standard_normal((n, 4, 4)) / (4.0 ** np.add.outer(np.arange(4), np.arange(4)))


def poly(a: np.ndarray, x: np.ndarray, y: np.ndarray, dx: int = 0, dy: int = 0) -> np.ndarray:
    """d^dx/dx^dx d^dy/dy^dy of sum_ij a_ij x^i y^j on the grid y (rows) x x (columns): [len(y), len(x)]."""
    out = np.zeros((len(y), len(x)))
    for i in range(dx, 4):
        for j in range(dy, 4):
            ci = np.prod(np.arange(i - dx + 1, i + 1)) if dx else 1.0
            cj = np.prod(np.arange(j - dy + 1, j + 1)) if dy else 1.0
            out += a[i, j] * ci * cj * np.outer(y ** (j - dy), x ** (i - dx))
    return out


def poly_images(coefs: np.ndarray, h: int, w: int, B: int) -> list[torch.Tensor]:
    """f, f_x, f_y, f_xy [B, h, w, C] sampled at the low-res pixels (pixel i at index i), C = len(coefs) // B."""
    x, y = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    imgs = []
    for d in ((0, 0), (1, 0), (0, 1), (1, 1)):
        arr = np.stack([poly(a, x, y, *d) for a in coefs], axis=-1)  # [h, w, B*C]
        imgs.append(torch.from_numpy(arr.reshape(h, w, B, -1).transpose(2, 0, 1, 3).copy()))
    return imgs


@pytest.mark.parametrize("lr,hr", SIZES)
@pytest.mark.parametrize("channels", [3, 2])
def test_reproduces_bicubic_polynomials(lr, hr, channels):
    (h, w), (H, W) = lr, hr
    B = 2
    rng = np.random.default_rng(h * 100 + w + channels)
    coefs = random_bicubic(rng, B * channels)
    out = upscale(*poly_images(coefs, h, w, B), size=(H, W))
    xs, ys = source_coords(W, w), source_coords(H, h)
    expect = np.stack([poly(a, xs, ys) for a in coefs], axis=-1).reshape(H, W, B, channels).transpose(2, 0, 1, 3)
    scale = np.abs(expect).max()
    assert out.shape == (B, H, W, channels) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expect, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("lr,hr", [((1, 6), (3, 13)), ((7, 1), (15, 4)), ((1, 1), (3, 5))])
def test_single_pixel_axis_is_first_order_taylor(lr, hr):
    """Along an axis with one low-res pixel the patch is f + u f_x: exact for functions linear along it."""
    (h, w), (H, W) = lr, hr
    rng = np.random.default_rng(3)
    a = random_bicubic(rng, 3)
    if w == 1:
        a[:, 2:, :] = 0  # linear in x
    if h == 1:
        a[:, :, 2:] = 0  # linear in y
    out = upscale(*poly_images(a, h, w, 1), size=(H, W))[0]
    expect = np.stack([poly(c, source_coords(W, w), source_coords(H, h)) for c in a], axis=-1)
    np.testing.assert_allclose(out.numpy(), expect, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_factor_one_returns_the_input_exactly(dtype):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, 9, 13, 3, generator=g, dtype=dtype) * 10 for _ in range(4)]
    assert torch.equal(upscale(*xs, size=(9, 13)), xs[0])
    assert torch.equal(upscale(*(x[0] for x in xs), size=(9, 13)), xs[0][0])


def _basis(t: float) -> tuple[float, float, float, float]:
    return 1 - 3 * t**2 + 2 * t**3, 3 * t**2 - 2 * t**3, t - 2 * t**2 + t**3, t**3 - t**2


@pytest.mark.parametrize(
    "which,corner,X,Y,expect",
    [
        # 2x2 -> 4x4: X = 2 samples x = 2.5 / 2 - 0.5 = 0.75, Y = 1 samples y = 0.25, both in cell 0
        ("f", (0, 1), 2, 1, 0.84375 * 0.84375),  # h1(0.75) h0(0.25)
        ("dx", (0, 0), 2, 1, 0.046875 * 0.84375),  # h2(0.75) h0(0.25)
        ("dy", (1, 0), 2, 1, 0.15625 * -0.046875),  # h0(0.75) h3(0.25): left value in x, lower slope in y
        # X = 3: x = 1.25 (extrapolated, u = 1.25); Y = 0: y = -0.25 (v = -0.25)
        ("dxy", (1, 1), 3, 0, 0.390625 * -0.078125),  # h3(1.25) h3(-0.25)
    ],
)
def test_hand_checked_values(which, corner, X, Y, expect):
    """A 2x2 image with a single non-zero value or derivative; corner = (row, column)."""
    imgs = {k: torch.zeros(2, 2, 1, dtype=torch.float64) for k in ("f", "dx", "dy", "dxy")}
    imgs[which][corner] = 1.0
    out = upscale(imgs["f"], imgs["dx"], imgs["dy"], imgs["dxy"], size=(4, 4))
    assert out[Y, X, 0].item() == pytest.approx(expect, abs=1e-15)
    # and the hand values agree with the basis formula of DESIGN.md
    hx, hy = _basis(0.75 if X == 2 else 1.25), _basis(0.25 if Y == 1 else -0.25)
    i = {"f": 0, "dx": 2, "dy": 0, "dxy": 2}[which] + corner[1]
    j = {"f": 0, "dx": 0, "dy": 2, "dxy": 2}[which] + corner[0]
    assert hx[i] * hy[j] == pytest.approx(expect, abs=1e-15)


def test_signs_follow_the_derivative_convention():
    """+x right, +y down, no sign flips: with f = 0 and a positive dx (dy) at pixel (0, 0) only, the image
    is negative just left of (above) that pixel and positive just right of (below) it."""
    z = torch.zeros(2, 2, 1)
    bump = z.clone()
    bump[0, 0, 0] = 1.0
    # 2x2 -> 4x4: X = 0, 1 sample x = -0.25, 0.25; Y = 0, 1 sample y = -0.25, 0.25
    ddx = upscale(z, bump, z, z, size=(4, 4))[..., 0]
    ddy = upscale(z, z, bump, z, size=(4, 4))[..., 0]
    assert ddx[1, 0] < 0 < ddx[1, 1]
    assert ddy[0, 1] < 0 < ddy[1, 1]


@pytest.mark.parametrize("channels", [1, 3, 4, 5])
@pytest.mark.parametrize("lr,hr", [((13, 17), (26, 34)), ((12, 15), (29, 31)), ((10, 37), (21, 101))])
def test_fast_kernel_matches_reference_twin_float32(channels, lr, hr):
    (h, w), (H, W) = lr, hr
    g = torch.Generator().manual_seed(channels * 7 + h)
    xs = [torch.randn(2, h, w, channels, generator=g) for _ in range(4)]
    out = upscale(*xs, size=(H, W))
    ref = upscale_twin(*(x.double() for x in xs), (H, W))
    assert out.dtype == torch.float32 and out.shape == (2, H, W, channels)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=2e-5)
    # unbatched input gives the unbatched result
    torch.testing.assert_close(upscale(*(x[1] for x in xs), size=(H, W)), out[1], rtol=0, atol=0)


def test_non_contiguous_inputs():
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(3, 11, 9, generator=g).permute(1, 2, 0) for _ in range(4)]  # [11, 9, 3], not contiguous
    out = upscale(*xs, size=(22, 18))
    torch.testing.assert_close(out, upscale(*(x.contiguous() for x in xs), size=(22, 18)), rtol=0, atol=0)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_clamp(requires_grad):
    g = torch.Generator().manual_seed(1)
    xs = [torch.rand(10, 12, 3, generator=g) for _ in range(4)]
    xs = [x * 2 - 0.5 for x in xs]  # the patch overshoots [0, 1]
    raw = upscale(*xs, size=(25, 30))
    assert raw.min() < 0 and raw.max() > 1
    clamped = upscale(*(x.requires_grad_(requires_grad) for x in xs), size=(25, 30), clamp=True)
    assert clamped.min() >= 0 and clamped.max() <= 1
    torch.testing.assert_close(clamped.detach(), raw.clamp(0, 1), rtol=0, atol=0)
    if requires_grad:
        clamped.sum().backward()
        assert all(x.grad is not None for x in xs)


@pytest.mark.parametrize("lr,hr", [((3, 4), (7, 9)), ((4, 3), (8, 12)), ((1, 3), (2, 7)), ((3, 1), (5, 2)),
                                   ((5, 6), (3, 4)), ((3, 10), (6, 23))])
def test_gradcheck_all_four_inputs(lr, hr):
    (h, w), (H, W) = lr, hr
    g = torch.Generator().manual_seed(h * 10 + w)
    xs = [torch.randn(2, h, w, 2, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(lambda *a: upscale(*a, size=(H, W)), xs, eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("channels", [3, 1, 4])
@pytest.mark.parametrize("lr,hr", [((60, 80), (120, 160)), ((50, 65), (118, 155)), ((31, 40), (93, 101))])
def test_adjoint_identity_float32(channels, lr, hr):
    """<U x, g> = <x, U^T g> on larger inputs, relative to sum |U x| |g|."""
    (h, w), (H, W) = lr, hr
    gen = torch.Generator().manual_seed(channels + h)
    xs = [torch.randn(2, h, w, channels, generator=gen, requires_grad=True) for _ in range(4)]
    y = upscale(*xs, size=(H, W))
    gy = torch.randn(y.shape, generator=gen)
    y.backward(gy)
    lhs = (y.detach().double() * gy.double()).sum()
    rhs = sum((x.detach().double() * x.grad.double()).sum() for x in xs)
    assert abs(lhs - rhs) <= 1e-6 * (y.detach().double().abs() * gy.double().abs()).sum()


@pytest.mark.parametrize("lr,hr", [((20, 9), (40, 18)), ((17, 12), (40, 29)), ((9, 14), (21, 45)), ((15, 8), (7, 5))])
def test_backward_matches_autograd_through_reference(lr, hr):
    """Hand-written adjoint vs autograd of the twin, batch of 3 (many cells per parity pass and thread)."""
    (h, w), (H, W) = lr, hr
    gen = torch.Generator().manual_seed(h + w)
    xs = [torch.randn(3, h, w, 3, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    gy = torch.randn(3, H, W, 3, generator=gen, dtype=torch.float64)
    fast = torch.autograd.grad(upscale(*xs, size=(H, W)), xs, gy)
    ref = torch.autograd.grad(upscale_twin(*xs, (H, W)), xs, gy)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_top_level_name_is_callable():
    """su.upscale works both before and after the upscale package has been imported."""
    z = torch.zeros(3, 3, 1)
    assert su.upscale(z, z, z, z, size=(6, 6)).shape == (6, 6, 1)


def _four(shape=(4, 5, 3), dtype=torch.float32):
    return [torch.zeros(shape, dtype=dtype) for _ in range(4)]


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda a: a.__setitem__(1, torch.zeros(4, 6, 3)), "dx has shape"),
        (lambda a: a.__setitem__(3, torch.zeros(4, 5, 3, dtype=torch.float64)), "dxy is torch.float64"),
        (lambda a: a.__setitem__(0, torch.zeros(4, 5, 3, dtype=torch.float16)), "color must be float32 or float64"),
        (lambda a: a.__setitem__(0, torch.zeros(4, 5, 3, dtype=torch.int32)), "color must be float32 or float64"),
        (lambda a: a.__setitem__(2, None), "dy is None"),
        (lambda a: a.__setitem__(2, np.zeros((4, 5, 3), np.float32)), "dy must be a torch.Tensor"),
        (lambda a: a.__setitem__(0, torch.zeros(5, 3)), "color must be"),
        (lambda a: a.__setitem__(0, torch.zeros(0, 5, 3)), "color is empty"),
        (lambda a: a[2].__setitem__((1, 2, 0), float("nan")), "dy contains NaN"),
        (lambda a: a[3].__setitem__((3, 4, 2), float("inf")), "dxy contains NaN or infinite"),
    ],
)
def test_bad_input_names_the_argument(mutate, match):
    args = _four()
    mutate(args)
    with pytest.raises(SplatupInputError, match=match):
        upscale(*args, size=(8, 10))


@pytest.mark.parametrize("size", [(0, 10), (8, -1), (8,), (8.0, 10), "8x10", (True, 10), None])
def test_bad_size(size):
    with pytest.raises(SplatupInputError, match="size"):
        upscale(*_four(), size=size)


def test_non_finite_input_is_reported_when_downscaling():
    """Downscaling in y skips low-res rows; a NaN there is still reported."""
    args = _four((9, 5, 3))
    args[0][1, 1, 1] = float("nan")
    with pytest.raises(SplatupInputError, match="color contains NaN"):
        upscale(*args, size=(2, 5))


def test_with_the_rasterizer_derivatives_it_beats_value_only_upscalers():
    """End to end with su.rasterize: a 1/2 render with matched dilation upscaled by the patch is much closer
    to the native render than bicubic or finite-difference Hermite, and flipping the derivative signs or
    swapping x and y ruins it (the conventions of rasterizer and upscaler agree)."""
    cam = front_camera(96, 64)
    scene = random_scene(150, cam, seed=0, sigma_px=(2.0, 8.0), opacity=(0.2, 0.9))
    native = su.rasterize(scene, cam).color
    out, _ = render_lowres(scene, cam, 2)
    size = (cam.height, cam.width)

    def rmse(img):
        return ((img - native) ** 2).mean().sqrt().item()

    hermite = rmse(upscale(out.color, out.dx, out.dy, out.dxy, size=size))
    assert hermite < 0.4 * rmse(upscale_classic(out.color, size, "bicubic"))
    assert hermite < 0.4 * rmse(upscale_classic(out.color, size, "fd-hermite"))
    assert rmse(upscale(out.color, -out.dx, -out.dy, out.dxy, size=size)) > 5 * hermite
    assert rmse(upscale(out.color, out.dy, out.dx, out.dxy, size=size)) > 5 * hermite
