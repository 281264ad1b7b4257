"""The first-order variant through rasterize, upscale and render: ``derivatives="first"`` and method "hermite-first".

Oracles: 4th-order central differences of the float64 reference colour (the helpers of test_derivatives_fd.py) for
the fast kernel's dC/dx and dC/dy at pixel centres; polynomials with zero mixed derivative, which the first-order
patch reproduces exactly (and one with a twist, which it must not); the second-order patch fed zeros for d2C/dxdy
and the float64 twin for ``upscale(..., dxy=None)``; an independent composition (rasterize at 1/s with "first",
upscale with zero d2C/dxdy) for ``render(method="hermite-first")``; and the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import splatup as su
from real_views import load, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.cli import main
from splatup.io.images import to_uint8
from splatup.memory import UPSCALING_METHODS, estimate_render_bytes
from splatup.metrics import psnr
from splatup.pipeline import METHODS, lowres_derivatives
from splatup.render.project import project
from test_derivatives_fd import BG, fd_derivatives
from test_upscale_hermite import SIZES, poly, source_coords

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def check_first_order_against_fd(scene, cam, n: int, seed: int, label: str, dilation: float = 0.3,
                                 min_accept: float = 0.6) -> None:
    """The fast "first" render: colour bit-identical to the plain render, dxy all zeros, dx and dy at the centres of n
    random pixels that the scene covers (alpha > 0.5) within 2e-6 of the plane's scale of the FD of the float64
    reference colour (float32 round-off), but for at most 1 % of the pixels, where float32 flips a discrete decision
    the float64 reference takes the other way; also equal to the full mode's dx, dy (to float32 round-off)."""
    first = su.rasterize(scene, cam, derivatives="first", background=BG, dilation=dilation)
    plain = su.rasterize(scene, cam, background=BG, dilation=dilation)
    full = su.rasterize(scene, cam, derivatives=True, background=BG, dilation=dilation)
    assert torch.equal(first.color, plain.color), label
    assert first.dxy.shape == first.dx.shape and not first.dxy.any(), label
    W, H = cam.width, cam.height
    g = torch.Generator().manual_seed(seed)
    covered = torch.nonzero(first.alpha[..., 0] > 0.5).flip(1)  # (column, row) of pixels the scene covers
    ij = covered[torch.randint(len(covered), (n,), generator=g)]
    proj = ref.projected_to(project(scene, cam, dilation=dilation), torch.float64)
    _, fd, ok, _ = fd_derivatives(proj, W, H, ij.double() + 0.5, BG)
    assert int(ok.sum()) >= min_accept * n, f"{label}: only {int(ok.sum())} of {n} stencils avoid discrete events"
    for k in ("dx", "dy"):
        fast = getattr(first, k)[ij[:, 1], ij[:, 0]].double()[ok]
        scale = float(fast.abs().max())
        assert scale > 1e-3, f"{label}: {k} is ~0 at every accepted pixel"
        assert int((fast.abs().amax(-1) > 0.01 * scale).sum()) >= 0.3 * len(fast), f"{label}: {k} mostly ~0"
        err = (fast - fd[k][ok]).abs().amax(-1) / scale
        n_bad = int((err > 2e-6).sum())
        print(f"{label}: {k} median err / scale {float(err.median()):.1e}, {n_bad} of {len(err)} pixels > 2e-6")
        assert n_bad <= 0.01 * len(err), f"{label}: fast first-order {k} vs FD: {n_bad} pixels > 2e-6 of the scale"
        torch.testing.assert_close(getattr(first, k), getattr(full, k), rtol=0,
                                   atol=1e-6 * float(getattr(full, k).abs().max()))


def test_first_order_render_against_fd_random_scene():
    cam = front_camera(64, 48)
    check_first_order_against_fd(random_scene(1300, cam, seed=52, sh_degree=2), cam, 400, 9, "random")


def test_first_order_render_against_fd_real_scene_at_low_res(shared_data):
    """plant at 80 x 60 with the dilation of a 1/4 render (0.3 / 16 px^2): small, sub-pixel Gaussians, so many
    stencils cross a skip threshold (about a quarter are accepted)."""
    scene = load(shared_data, "plant")
    cam = orbit_camera(scene, "plant", 80, 60, 30.0, 20.0)
    check_first_order_against_fd(scene, cam, 400, 10, "plant 80x60", dilation=0.3 / 16, min_accept=0.15)


# ------------------------------------------------------------------------------------------- the upscaler
def poly_images(coefs: np.ndarray, h: int, w: int) -> list[torch.Tensor]:
    """f, f_x, f_y, f_xy [h, w, C] of the polynomials sum a_ij x^i y^j (one per channel) at the low-res pixels."""
    x, y = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    return [torch.from_numpy(np.stack([poly(a, x, y, *d) for a in coefs], axis=-1))
            for d in ((0, 0), (1, 0), (0, 1), (1, 1))]


@pytest.mark.parametrize("lr,hr", SIZES)
def test_first_order_patch_reproduces_twist_free_cubics(lr, hr):
    """p(x) + q(y) with cubics p, q has d2f/dxdy = 0 everywhere: the first-order patch reproduces it exactly. A
    polynomial with an xy^2 term does not: there the zero twist shows (and the full patch is exact)."""
    (h, w), (H, W) = lr, hr
    rng = np.random.default_rng(h * 31 + w)
    a = rng.standard_normal((3, 4, 4)) / (4.0 ** np.add.outer(np.arange(4), np.arange(4)))
    free = a.copy()
    free[:, 1:, 1:] = 0.0  # only pure x and pure y terms
    xs, ys = source_coords(W, w), source_coords(H, h)
    f, fx, fy, fxy = poly_images(free, h, w)
    assert float(fxy.abs().max()) == 0.0
    out = su.upscale(f, fx, fy, None, size=(H, W))
    expect = np.stack([poly(c, xs, ys) for c in free], axis=-1)
    np.testing.assert_allclose(out.numpy(), expect, rtol=0, atol=1e-10 * np.abs(expect).max())
    twisted = free.copy()
    twisted[:, 1, 2] = 0.5  # x y^2: d2f/dxdy = y
    f, fx, fy, fxy = poly_images(twisted, h, w)
    expect = np.stack([poly(c, xs, ys) for c in twisted], axis=-1)
    full = su.upscale(f, fx, fy, fxy, size=(H, W))
    np.testing.assert_allclose(full.numpy(), expect, rtol=0, atol=1e-10 * np.abs(expect).max())
    if min(h, w) > 1 and min(H, W) > min(h, w):
        assert np.abs(su.upscale(f, fx, fy, None, size=(H, W)).numpy() - expect).max() > 1e-4


@pytest.mark.parametrize("lr,hr", SIZES)
@pytest.mark.parametrize("channels", [3, 2])
def test_dxy_none_is_the_patch_with_zero_twist(lr, hr, channels):
    """upscale(c, dx, dy, None) equals upscale(c, dx, dy, zeros) exactly (batched), matches the float64 twin with
    dxy None, and has the same gradients for color, dx, dy (and none for dxy)."""
    (h, w), (H, W) = lr, hr
    g = torch.Generator().manual_seed(h * 7 + w + channels)
    xs = [torch.randn(2, h, w, channels, generator=g) for _ in range(3)]
    a = su.upscale(*xs, None, size=(H, W))
    b = su.upscale(*xs, torch.zeros_like(xs[0]), size=(H, W))
    assert torch.equal(a, b)
    twin = ref.upscale(*(x.double() for x in xs), None, size=(H, W))
    torch.testing.assert_close(a.double(), twin, rtol=0, atol=2e-6 * float(twin.abs().max()))
    leaves = [x.clone().requires_grad_(True) for x in xs]
    zero = torch.zeros_like(xs[0], requires_grad=True)
    up = torch.randn(2, H, W, channels, generator=g)
    ga = torch.autograd.grad(su.upscale(*leaves, None, size=(H, W)), leaves, up)
    gb = torch.autograd.grad(su.upscale(*leaves, zero, size=(H, W)), leaves, up)
    for p, q in zip(ga, gb, strict=True):
        assert torch.equal(p, q)


# ------------------------------------------------------------------------------------------- render
def test_method_is_listed_with_its_render_and_memory_estimate():
    assert "hermite-first" in METHODS
    assert lowres_derivatives("hermite-first") == "first" and lowres_derivatives("hermite") is True
    assert lowres_derivatives("bicubic") is False
    # the commands' memory check knows every upscaling method; "first" allocates the same images as the full mode
    assert set(UPSCALING_METHODS) == set(METHODS) - {"native"}
    assert (estimate_render_bytes(100_000, 1920, 1080, 2, "hermite-first")
            == estimate_render_bytes(100_000, 1920, 1080, 2, "hermite"))


@pytest.fixture(scope="module")
def plant_small(shared_data):
    scene = load(shared_data, "plant")
    return scene, orbit_camera(scene, "plant", 161, 95, 60.0, 15.0)


def test_render_hermite_first_is_first_order_render_plus_zero_twist_upscale(plant_small):
    """An independent composition: the low-res camera and matched dilation by hand, rasterize with "first",
    upscale with d2C/dxdy = zeros (the second-order kernel). Equal bit for bit, float and uint8."""
    scene, cam = plant_small
    for s in (2, 2.5, 3):
        wl, hl = int(cam.width // s), int(cam.height // s)
        lr = cam.scaled(1 / s)
        assert (lr.width, lr.height) == (wl, hl)
        low = su.rasterize(scene, lr, derivatives="first", dilation=0.3 * (wl / cam.width) * (hl / cam.height))
        expect = su.upscale(low.color, low.dx, low.dy, torch.zeros_like(low.dx), size=(cam.height, cam.width),
                            clamp=True)
        got = su.render(scene, cam, scale=s, method="hermite-first")
        assert torch.equal(got, expect), s
        u8 = su.render(scene, cam, scale=s, method="hermite-first", dtype=torch.uint8)
        np.testing.assert_array_equal(u8.numpy(), to_uint8(expect))


def test_hermite_first_quality_stays_near_hermite_and_above_bicubic(plant_small):
    """The issue's measurement as a property (plant at 320 x 180): dropping the twist costs at most 1.5 dB PSNR
    against native and stays more than 1 dB above bicubic of the same low-res render, at s = 2 and 4. (It is not
    always below hermite: at s = 4 the two are within a few hundredths of a dB either way.)"""
    scene, _ = plant_small
    cam = orbit_camera(scene, "plant", 320, 180, 60.0, 15.0)
    native = su.render(scene, cam, method="native")
    for s in (2, 4):
        p = {m: float(psnr(su.render(scene, cam, scale=s, method=m), native))
             for m in ("hermite", "hermite-first", "bicubic")}
        assert p["hermite"] - 1.5 < p["hermite-first"] and p["bicubic"] + 1.0 < p["hermite-first"], (s, p)


def test_cli_render_and_compare_take_hermite_first(tmp_path, shared_data):
    path = shared_data / "padilla_splats" / "spot" / "spot_10k.splat"
    g = su.load_scene(path)
    out = tmp_path / "first.png"
    r = CliRunner().invoke(main, ["render", str(path), "-o", str(out), "-W", "60", "-H", "40", "--scale", "2",
                                  "--method", "hermite-first", "--up=-y"])
    assert r.exit_code == 0, r.output
    from splatup.viewpoints import orbit_camera as orbit

    expect = su.render(g, orbit(g, 60, 40), scale=2, method="hermite-first", dtype=torch.uint8).numpy()
    assert np.array_equal(np.asarray(Image.open(out)), expect)
    cmp = tmp_path / "cmp"
    r = CliRunner().invoke(main, ["compare", str(path), "--scale", "2", "--views", "1", "-W", "96", "-H", "72",
                                  "--repeats", "1", "--no-lpips", "--methods", "hermite-first,bicubic",
                                  "--out", str(cmp)])
    assert r.exit_code == 0, r.output
    s = json.loads((cmp / "metrics.json").read_text())["summary"]
    assert set(s) == {"native", "hermite-first", "bicubic"}
    assert s["hermite-first"]["psnr"] > s["bicubic"]["psnr"] and s["hermite-first"]["time_s"] > 0
