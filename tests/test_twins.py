"""Each fast function against its reference twin (splatup.reference), paired one to one.

The oracle: the twins, plain PyTorch in float64 (reference/__init__.py). Every pair is called with the same
arguments and must return the same type with the same fields, shapes and argument errors; values agree to
float32 round-off of the float64 twin (images: per pixel, relative to the plane's largest magnitude, with a
counted bound on pixels where float32 flips a discrete decision, as in test_reference_vs_fast.py), gradients
likewise. Pairs: rasterize, project, upscale, upscale_classic, ssim, eval_sh. ``derivatives="first"`` is the
twin's alone for now: it must return exactly the full mode's dx, dy and zeros for dxy.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
import torch

import splatup as su
import splatup.metrics
from real_views import load, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.gaussians import eval_sh
from splatup.render.project import Projected, project
from splatup.render.rasterize import RasterOutput
from splatup.upscale.classic import METHODS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAIRS = {
    "rasterize": (su.rasterize, ref.rasterize),
    "project": (project, ref.project),
    "upscale": (su.upscale, ref.upscale),
    "upscale_classic": (su.upscale_classic, ref.upscale_classic),
    "ssim": (splatup.metrics.ssim, ref.ssim),
    "eval_sh": (eval_sh, ref.eval_sh),
}
IMAGES = ("color", "alpha", "depth", "dx", "dy", "dxy")
RTOL = 2e-5  # per-pixel error / plane's largest |value| (as test_reference_vs_fast.py)
MAX_BAD_FRACTION = 0.005
BG = (0.25, 0.5, 0.9)
PARAMS = ("means", "quats", "log_scales", "opacity_logits", "sh")


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_twin_has_the_fast_signature(name):
    """Same parameter names, kinds, defaults and return annotation (with the same meaning in both modules)."""
    fast, twin = (inspect.signature(f) for f in PAIRS[name])
    assert fast.return_annotation == twin.return_annotation, name

    def shape(sig):
        return [(p.name, p.kind, p.default) for p in sig.parameters.values()]

    assert shape(fast) == shape(twin), f"{name}: {shape(fast)} != {shape(twin)}"


# ---------------------------------------------------------------------------------------------- rasterize
def assert_raster_pair(fast: RasterOutput, twin: RasterOutput, label: str, exact_pairs: bool = True) -> None:
    """The twin's RasterOutput matches the fast one: type, fields, shapes, None-ness, projection outputs, the
    pair count, the timing phases, and every image to float32 round-off (counted decision flips aside)."""
    assert type(fast) is RasterOutput and type(twin) is RasterOutput, label
    assert [f.name for f in fields(twin)] == [f.name for f in fields(fast)]
    assert twin.timings.keys() == fast.timings.keys(), label
    n_pix = fast.color.shape[0] * fast.color.shape[1]
    for name in IMAGES:
        a, b = getattr(fast, name), getattr(twin, name)
        assert (a is None) == (b is None), f"{label}: {name} is None in only one of them"
        if a is None:
            continue
        assert a.shape == b.shape, f"{label}: {name} {tuple(a.shape)} vs {tuple(b.shape)}"
        assert torch.isfinite(b).all(), f"{label}: twin {name} is not finite"
        scale = float(b.abs().max())
        err = (a.double() - b.double()).abs().amax(-1) / max(scale, 1e-30)
        n_bad = int((err > RTOL).sum())
        assert n_bad <= MAX_BAD_FRACTION * n_pix, f"{label}: {name}: {n_bad} of {n_pix} px differ > {RTOL:g}"
        assert float(err.max()) < 0.02, f"{label}: {name} differs by {float(err.max()):.3g} of its scale"
    assert torch.equal(fast.visible, twin.visible), label
    v = fast.visible
    torch.testing.assert_close(fast.means2d[v].double(), twin.means2d[v].double(), rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(fast.radii.double(), twin.radii.double(), rtol=1e-5, atol=1e-5)
    if exact_pairs:
        assert fast.n_pairs == twin.n_pairs, label
    else:  # a float32 twin may put a box edge on the other side of a tile border
        assert abs(fast.n_pairs - twin.n_pairs) <= 1e-3 * fast.n_pairs, (label, fast.n_pairs, twin.n_pairs)


OPAQUE = dict(sigma_px=(3.0, 15.0), opacity=(0.995, 0.99999))  # alpha clamped at 0.99, early stops


@pytest.mark.parametrize("label, size, n, sh_degree, scene_kw, kwargs", [
    ("classic, derivatives", (40, 32), 500, 1, {}, dict(derivatives=True, background=BG)),
    ("antialiased, 1/2 dilation, no derivatives", (37, 29), 500, 2, {},
     dict(derivatives=False, mode="antialiased", dilation=0.3 / 4, background=0.5)),
    ("opaque, sh_degree 1 of 3, near and far planes", (36, 30), 250, 3, OPAQUE,
     dict(derivatives=True, background=torch.tensor([1.0, 1.0, 1.0]), sh_degree=1, near_plane=2.2, far_plane=3.8)),
])
def test_rasterize_twin_on_random_scenes(label, size, n, sh_degree, scene_kw, kwargs):
    cam = front_camera(*size)
    scene = random_scene(n, cam, seed=n + sh_degree, sh_degree=sh_degree, **scene_kw)
    fast = su.rasterize(scene, cam, **kwargs)
    twin = ref.rasterize(scene.to(torch.float64), cam, **kwargs)
    assert twin.color.dtype == torch.float64 and twin.means2d.dtype == torch.float64
    assert float(twin.alpha.mean()) > 0.3, f"{label}: the view misses the scene"
    if "near_plane" in kwargs:  # the planes cull part of the scene
        assert 0 < int(fast.visible.sum()) < n - 20
    assert_raster_pair(fast, twin, label)
    # in the scene's dtype: a float32 scene gives a float32 twin, equal to float32 round-off as well
    twin32 = ref.rasterize(scene, cam, **kwargs)
    assert twin32.color.dtype == torch.float32 and twin32.radii.dtype == torch.float32
    assert_raster_pair(fast, twin32, label + " (float32 twin)", exact_pairs=False)


def test_rasterize_twin_on_a_real_scene_at_low_resolution(shared_data):
    """plant at 48x32 rendered for 4x upscaling (dilation 0.3 / 16): mostly sub-pixel Gaussians."""
    scene = load(shared_data, "plant")
    cam = orbit_camera(scene, "plant", 48, 32, 30.0, 20.0)
    kwargs = dict(derivatives=True, background=BG, dilation=0.3 / 16)
    fast = su.rasterize(scene, cam, **kwargs)
    twin = ref.rasterize(scene.to(torch.float64), cam, **kwargs)
    sub_pixel = (twin.radii[twin.visible] < 1.5).double().mean()  # 3 sigma < 1.5 px
    assert sub_pixel > 0.5, f"only {float(sub_pixel):.0%} of the visible Gaussians are sub-pixel"
    assert_raster_pair(fast, twin, "plant 48x32 dilation 0.3/16")


def _leaves(scene: su.Gaussians) -> tuple[su.Gaussians, list[torch.Tensor]]:
    """A copy of ``scene`` whose parameters are fresh leaves that require grad."""
    leaves = [getattr(scene, p).detach().clone().requires_grad_(True) for p in PARAMS]
    return su.Gaussians(**dict(zip(PARAMS, leaves, strict=True))), leaves


def test_rasterize_twin_gradients():
    """Gradients of a random linear loss of colour, alpha and the three derivative planes w.r.t. every scene
    parameter: fast (float32 kernels) against autograd through the float64 twin, per Gaussian relative to the
    parameter's largest gradient."""
    cam = front_camera(40, 32)
    scene = random_scene(300, cam, seed=3, sh_degree=1, opacity=(0.05, 0.9))
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(32, 40, 1 if k == "alpha" else 3, generator=gen, dtype=torch.float64)
               for k in ("color", "alpha", "dx", "dy", "dxy")}
    grads = {}
    for who, fn, sc in (("fast", su.rasterize, scene), ("twin", ref.rasterize, scene.to(torch.float64))):
        sc, leaves = _leaves(sc)
        out = fn(sc, cam, derivatives=True, background=BG)
        loss = sum((getattr(out, k) * w.to(out.color.dtype)).sum() for k, w in weights.items())
        grads[who] = torch.autograd.grad(loss, leaves)
    for name, a, b in zip(PARAMS, grads["fast"], grads["twin"], strict=True):
        scale = float(b.abs().max())
        assert scale > 1e-3, f"{name}: the gradient is nearly zero"
        err = (a.double() - b).abs().reshape(len(b), -1).amax(1) / scale
        assert int((err > 1e-4).sum()) <= 2 and float(err.max()) < 1e-2, (
            f"{name}: {int((err > 1e-4).sum())} Gaussians off by > 1e-4, worst {float(err.max()):.2e}")


def test_first_order_derivatives_are_the_full_ones_without_the_twist():
    """derivatives="first": dC/dx and dC/dy identical to the full mode's, d2C/dxdy zeros of the same shape, and
    the other fields unchanged; also at arbitrary points through the composite building block."""
    cam = front_camera(40, 32)
    scene = random_scene(400, cam, seed=5, sh_degree=1).to(torch.float64)
    full = ref.rasterize(scene, cam, derivatives=True, background=BG)
    first = ref.rasterize(scene, cam, derivatives="first", background=BG)
    assert float(full.dxy.abs().max()) > 1e-2, "the twist term must matter for this test to mean something"
    assert torch.equal(first.dx, full.dx) and torch.equal(first.dy, full.dy)
    assert first.dxy.shape == full.dxy.shape and first.dxy.dtype == full.dxy.dtype
    assert not first.dxy.any()
    for name in ("color", "alpha", "depth", "means2d", "radii", "visible"):
        assert torch.equal(getattr(first, name), getattr(full, name)), name
    assert first.n_pairs == full.n_pairs
    proj = ref.project(scene, cam)
    pts = torch.rand(200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * torch.tensor([40, 32])
    a = ref.composite(proj, 40, 32, background=BG, derivatives=True, points=pts)
    b = ref.composite(proj, 40, 32, background=BG, derivatives="first", points=pts)
    assert torch.equal(a["dx"], b["dx"]) and torch.equal(a["trace"], b["trace"]) and not b["dxy"].any()
    assert torch.equal(a["tder"][:, :2], b["tder"][:, :2]) and not b["tder"][:, 2].any()


@pytest.mark.parametrize("value", ["second", "First", 1, None, 0.0])
def test_invalid_derivatives_name_the_argument(value):
    cam = front_camera(16, 16)
    scene = random_scene(10, cam)
    with pytest.raises(su.SplatupInputError, match="derivatives"):
        ref.rasterize(scene, cam, derivatives=value)
    with pytest.raises(su.SplatupInputError, match="derivatives"):
        ref.composite(ref.project(scene, cam), 16, 16, derivatives=value)


@pytest.mark.parametrize("bad", [
    dict(mode="fancy"), dict(dilation=-1.0), dict(near_plane=0.0), dict(far_plane=0.001), dict(sh_degree=-1),
    dict(background=(1.0, 2.0)), dict(background=float("nan")), dict(background=(1e38, 1e38, 1e38)),
    dict(cam="camera"), dict(scene="scene"),
    dict(scene="nan"),
], ids=lambda d: next(iter(d)) + ("=nan" if d.get("scene") == "nan" else ""))
def test_rasterize_twin_rejects_what_the_fast_one_rejects(bad):
    cam = front_camera(16, 16)
    scene = random_scene(10, cam)
    kwargs = dict(bad)
    if kwargs.get("scene") == "nan":
        scene.means.detach()[3, 1] = float("nan")
        kwargs.pop("scene")
    args = (kwargs.pop("scene", scene), kwargs.pop("cam", cam))
    messages = []
    for fn in (su.rasterize, ref.rasterize):
        with pytest.raises(su.SplatupInputError) as e:
            fn(*args, **kwargs)
        messages.append(str(e.value).split(": ", 1)[1])
    expected = "means" if bad.get("scene") == "nan" else next(iter(bad))
    assert expected in messages[1], messages[1]


# ---------------------------------------------------------------------------------------------- project
def test_project_twin_returns_the_same_projected():
    """Every field of Projected, binning data included, with the same dtypes; values to float64 round-off."""
    cam = front_camera(45, 35)
    scene = random_scene(400, cam, seed=11, sh_degree=2, margin_px=30.0, opacity=(0.001, 0.02)).to(torch.float64)
    for mode in ("classic", "antialiased"):
        fast, twin = project(scene, cam, mode=mode), ref.project(scene, cam, mode=mode)
        assert type(twin) is Projected
        for f in fields(Projected):
            a, b = getattr(fast, f.name), getattr(twin, f.name)
            assert b is not None and a.dtype == b.dtype and a.shape == b.shape, f.name
            if a.is_floating_point():
                tol = 1e-6 if a.dtype == torch.float32 else 1e-9
                torch.testing.assert_close(b, a, rtol=tol, atol=tol, msg=f"{mode} {f.name}")
            else:
                assert torch.equal(a, b), f"{mode} {f.name}"
        assert 0 < int(twin.alive.sum()) < int(twin.visible.sum()), "some visible Gaussians must be too faint"
        assert not twin.visible.all()


def test_project_twin_validates_like_the_fast_one():
    cam = front_camera(16, 16)
    scene = random_scene(10, cam)
    scene.quats.detach()[4] = 0.0
    for fn in (project, ref.project):
        with pytest.raises(su.SplatupInputError, match="x: field 'quats'.*Gaussian 4"):
            fn(scene, cam, validate_as="x")


# ---------------------------------------------------------------------------------------------- upscalers
SIZES = [((5, 7), (13, 19)), ((6, 8), (12, 16)), ((1, 5), (3, 11)), ((9, 9), (4, 6))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("small, size", SIZES)
def test_upscale_twin(small, size, dtype):
    gen = torch.Generator().manual_seed(small[0] * 31 + size[1])
    xs = [torch.rand(2, *small, 3, generator=gen, dtype=torch.float64).to(dtype) for _ in range(4)]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for clamp in (False, True):
        fast, twin = su.upscale(*xs, size=size, clamp=clamp), ref.upscale(*xs, size=size, clamp=clamp)
        assert fast.dtype == twin.dtype == dtype and fast.shape == twin.shape == (2, *size, 3)
        torch.testing.assert_close(twin, fast, rtol=0, atol=tol)
        torch.testing.assert_close(ref.upscale(*(x[1] for x in xs), size, clamp), fast[1], rtol=0, atol=tol)
    if dtype == torch.float64:
        leaves = [x.clone().requires_grad_(True) for x in xs]
        g = torch.randn(2, *size, 3, generator=gen, dtype=dtype)
        ga = torch.autograd.grad(su.upscale(*leaves, size=size), leaves, g)
        gb = torch.autograd.grad(ref.upscale(*leaves, size=size), leaves, g)
        for a, b in zip(ga, gb, strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_upscale_classic_twin(method):
    gen = torch.Generator().manual_seed(len(method))
    for small, size in SIZES:
        x64 = torch.rand(2, *small, 3, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(ref.upscale_classic(x64, size, method), su.upscale_classic(x64, size, method),
                                   rtol=0, atol=1e-12, msg=f"{method} {small} -> {size}")
        x32 = x64.float()[0]
        a, b = su.upscale_classic(x32, size, method), ref.upscale_classic(x32, size, method)
        assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape == (*size, 3)
        torch.testing.assert_close(b, a, rtol=0, atol=2e-6)
    leaf = x64.clone().requires_grad_(True)
    g = torch.randn(2, *size, 3, generator=gen, dtype=torch.float64)
    ga = torch.autograd.grad(su.upscale_classic(leaf, size, method), leaf, g)[0]
    gb = torch.autograd.grad(ref.upscale_classic(leaf, size, method), leaf, g)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)


def test_upscalers_reject_what_the_fast_ones_reject():
    x = torch.rand(4, 5, 3)
    bad_dy = x.clone()
    bad_dy[1, 2, 0] = float("inf")
    cases = [
        ((su.upscale, ref.upscale), (x, x, bad_dy, x, (8, 10)), "dy"),
        ((su.upscale, ref.upscale), (x, x, x[:3], x, (8, 10)), "dy"),
        ((su.upscale, ref.upscale), (x, x, x, x.double(), (8, 10)), "dxy"),
        ((su.upscale, ref.upscale), (x, x, x, x, (8, 0)), "size"),
        ((su.upscale_classic, ref.upscale_classic), (bad_dy, (8, 10), "lanczos"), "image"),
        ((su.upscale_classic, ref.upscale_classic), (x, (8, 10), "cubic"), "method"),
    ]
    for fns, args, name in cases:
        for fn in fns:
            with pytest.raises(su.SplatupInputError, match=name):
                fn(*args)
    for fn in (su.upscale, ref.upscale):
        with pytest.raises(su.SplatupInputError, match="clamp"):
            fn(x, x, x, x, (8, 10), clamp="yes")


# ---------------------------------------------------------------------------------------------- metrics, SH
def test_ssim_twin():
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2, 24, 20, 3, generator=gen, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    fast, twin = splatup.metrics.ssim(a, b), ref.ssim(a, b)
    assert fast.shape == twin.shape == (2,) and fast.dtype == twin.dtype == torch.float64
    torch.testing.assert_close(twin, fast, rtol=0, atol=1e-12)
    torch.testing.assert_close(ref.ssim(a[0].float(), b[0].float()), splatup.metrics.ssim(a[0].float(), b[0].float()),
                               rtol=0, atol=2e-6)
    leaf = a.clone().requires_grad_(True)
    ga = torch.autograd.grad(splatup.metrics.ssim(leaf, b).sum(), leaf)[0]
    gb = torch.autograd.grad(ref.ssim(leaf, b).sum(), leaf)[0]
    torch.testing.assert_close(gb, ga, rtol=0, atol=1e-12)
    for fn in (splatup.metrics.ssim, ref.ssim):
        with pytest.raises(su.SplatupInputError):
            fn(a, b[:, :10])


def test_eval_sh_twin():
    gen = torch.Generator().manual_seed(4)
    for k in (1, 4, 9, 16):
        sh = torch.randn(50, k, 3, generator=gen, dtype=torch.float64)
        dirs = torch.nn.functional.normalize(torch.randn(50, 3, generator=gen, dtype=torch.float64), dim=-1)
        torch.testing.assert_close(ref.eval_sh(sh, dirs), eval_sh(sh, dirs), rtol=0, atol=1e-12)
