"""Fast projection (render/project.py) against the independent reference twin (reference/project.py).

Per Gaussian: means2d, conics, opacities (classic and antialiased), colours (SH 0..3), depths, extents, radii
and the visible flag. Float64 fast vs float64 reference must agree to round-off (same maths, different
formulation); the float32 fast path (what rasterize uses) vs the float64 reference to float32 round-off.
Also: degenerate and hostile Gaussians (behind / straddling the camera, zero and huge scales, unnormalised
quaternions) give finite values and are culled where they must be; the binning data the projection kernel
computes equals tiles.contribution_extents of its own outputs; the kernels' inlined exp and log against libm;
argument errors. Gradients: tests/test_projection_backward.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import splatup as su
from real_views import garden, load, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.render.project import Projected, project
from splatup.render.tiles import contribution_extents

FIELDS = ("means2d", "conics", "opacities", "colors", "depths", "extents", "radii")


def _f64(p: Projected) -> Projected:
    return ref.projected_to(p, torch.float64)


def _sym(c: torch.Tensor) -> torch.Tensor:
    return torch.stack([c[:, 0], c[:, 1], c[:, 1], c[:, 2]], dim=-1).reshape(-1, 2, 2)


def conic_error(conic: torch.Tensor, oracle: torch.Tensor) -> torch.Tensor:
    """[N] max over d with d^T Q d = 1 of |d^T (Q' - Q) d|: the relative error of the exponent the conic puts
    into alpha, which is what rendering sees (entrywise errors mislead for thin, ill-conditioned Gaussians)."""
    L = torch.linalg.cholesky(torch.linalg.inv(_sym(oracle)))  # S = L L^T
    M = L.transpose(1, 2) @ _sym(conic - oracle) @ L
    return torch.linalg.matrix_norm(M, ord=2)


def condition(conic: torch.Tensor) -> torch.Tensor:
    """[N] condition number of the 2D covariance (= of the conic): float32 cancellation in det() scales with it."""
    ev = torch.linalg.eigvalsh(_sym(conic))
    return ev[:, 1] / ev[:, 0]


def field_errors(fast: Projected, oracle: Projected) -> dict[str, float]:
    """Worst error per field over the Gaussians visible in both, each measured on its natural scale:
    means2d in px relative to 1 + the smaller extent; conics by :func:`conic_error` over the condition
    number; opacities, colours
    absolute; depths, extents, radii relative."""
    f, r = _f64(fast), oracle
    v = f.visible & r.visible
    errs = {
        "means2d": (f.means2d - r.means2d).abs().amax(-1) / (1 + r.extents.amin(-1)),
        "conics": conic_error(f.conics, r.conics) / condition(r.conics),
        "opacities": (f.opacities - r.opacities).abs(),
        "colors": (f.colors - r.colors).abs().amax(-1),
        "depths": (f.depths - r.depths).abs() / r.depths.abs(),
        "extents": ((f.extents - r.extents).abs() / r.extents).amax(-1),
        "radii": (f.radii - r.radii).abs() / r.radii,
    }
    return {k: float(e[v].max()) if v.any() else 0.0 for k, e in errs.items()}


# float64 fast vs float64 reference: only round-off (radii: the fast path adds 1e-12 px^4 under its sqrt).
TOL64 = dict(means2d=1e-11, conics=1e-12, opacities=1e-12, colors=1e-12, depths=1e-13, extents=1e-12, radii=1e-6)
# float32 fast vs float64 reference (worst seen over these tests: means2d 9e-6, conics 7e-7, opacities 1.5e-5,
# colours 4e-7, depths 1.4e-7, extents 9e-7, radii 2.3e-4). Antialiased opacities and radii lose digits to the
# cancellation in det(S) and in mid - sqrt(mid^2 - det) for thin or round Gaussians.
TOL32 = dict(means2d=5e-5, conics=5e-6, opacities=1e-4, colors=5e-6, depths=1e-6, extents=5e-6, radii=2e-3)


def check_against_reference(scene: su.Gaussians, cam: su.Camera, label: str, min_visible: int = 1, **kw) -> None:
    oracle = ref.project(scene.to(torch.float64), cam, **kw)
    n_vis = int(oracle.visible.sum())
    assert n_vis >= min_visible, f"{label}: only {n_vis} Gaussians visible; the test would be vacuous"
    for p in (oracle, ref.project(scene.to(torch.float32), cam, **kw)):
        for name in FIELDS:
            assert torch.isfinite(getattr(p, name)).all(), f"{label}: reference {name} not finite"

    fast64 = project(scene.to(torch.float64), cam, **kw)
    assert torch.equal(fast64.visible, oracle.visible), (
        f"{label}: float64 visible flags differ for {int((fast64.visible != oracle.visible).sum())} Gaussians"
    )
    torch.testing.assert_close(fast64.depths, oracle.depths, rtol=1e-13, atol=1e-13)
    errs = field_errors(fast64, oracle)
    bad = {k: e for k, e in errs.items() if not e <= TOL64[k]}
    assert not bad, f"{label}: float64 fast vs reference errors {bad} (all: {errs})"

    fast32 = project(scene.to(torch.float32), cam, **kw)
    for name in FIELDS:
        assert torch.isfinite(getattr(fast32, name)).all(), f"{label}: fast {name} not finite"
    flips = int((fast32.visible != oracle.visible).sum())
    assert flips <= max(1, n_vis // 10000), f"{label}: float32 visibility differs for {flips} of {n_vis} Gaussians"
    errs = field_errors(fast32, oracle)
    bad = {k: e for k, e in errs.items() if not e <= TOL32[k]}
    assert not bad, f"{label}: float32 fast vs reference errors {bad} (all: {errs})"


def tilted_camera(width: int = 64, height: int = 48) -> su.Camera:
    """A camera off the origin looking obliquely at the random scenes (which sit at z in [2, 4])."""
    return su.Camera.look_at([0.7, -0.4, -0.3], [0.1, 0.05, 3.0], [0.1, -1.0, 0.0], 55.0, width, height)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_random_scenes(sh_degree, mode):
    cam = front_camera(64, 48)
    scene = random_scene(600, cam, seed=sh_degree, sh_degree=sh_degree, margin_px=30.0, dtype=torch.float64)
    check_against_reference(scene, cam, f"front deg{sh_degree} {mode}", min_visible=200, mode=mode)
    check_against_reference(scene, tilted_camera(), f"tilted deg{sh_degree} {mode}", min_visible=100, mode=mode)


@pytest.mark.parametrize("dilation", [0.0, 0.3 / 16, 1.0])
def test_dilation_and_off_centre_principal_point(dilation):
    cam0 = front_camera(72, 40)
    K = cam0.K.clone()
    K[0, 2], K[1, 2] = 20.0, 31.0  # principal point far off centre: asymmetric FOV clamp
    cam = su.Camera(cam0.world_to_camera, K, 72, 40)
    scene = random_scene(500, cam0, seed=11, sh_degree=2, margin_px=60.0, sigma_px=(0.2, 20.0))
    for mode in ("classic", "antialiased"):
        check_against_reference(scene, cam, f"dilation {dilation} {mode}", min_visible=100, dilation=dilation,
                                mode=mode)


def test_near_far_planes_and_sh_degree_argument():
    cam = front_camera(64, 48)
    scene = random_scene(400, cam, seed=5, sh_degree=3, depth=(0.5, 6.0))
    check_against_reference(scene, cam, "near/far", min_visible=100, near_plane=1.5, far_plane=4.5, sh_degree=1)
    p = ref.project(scene.to(torch.float64), cam, near_plane=1.5, far_plane=4.5)
    z = p.depths
    assert not p.visible[(z <= 1.5) | (z >= 4.5)].any()
    assert p.visible[(z > 1.6) & (z < 4.4)].float().mean() > 0.8


@pytest.mark.parametrize("name", ["plant", "spot", "donut"])
def test_real_scenes(shared_data, name):
    scene = load(shared_data, name)
    for az, el, mode in ((30.0, 20.0, "classic"), (215.0, -35.0, "antialiased")):
        cam = orbit_camera(scene, name, 128, 96, az, el)
        check_against_reference(scene, cam, f"{name} az{az} {mode}", min_visible=len(scene) // 2, mode=mode)


def test_real_garden_cameras(shared_data):
    scene, cams = garden(shared_data)
    for i, cam in enumerate(cams):
        check_against_reference(scene, cam, f"garden cam{i}", min_visible=10000)


# ---------------------------------------------------------------------------------------------- hostile input
def hostile_scene(dtype=torch.float64) -> tuple[su.Gaussians, dict[str, slice]]:
    """Hand-made Gaussians for the front camera (64x48, f = 76.8), grouped by kind."""
    rows = []  # (mean, quat, scale, opacity)
    groups: dict[str, slice] = {}

    def add(kind, items):
        groups[kind] = slice(len(rows), len(rows) + len(items))
        rows.extend(items)

    q1 = [1.0, 0.0, 0.0, 0.0]
    qr = [0.3, -0.5, 0.2, 0.4]
    add("behind", [([0.0, 0.0, -1.0], q1, [0.1] * 3, 0.9), ([0.2, 0.1, -0.005], qr, [50.0] * 3, 0.9),
                   ([0.0, 0.0, 0.0], qr, [1.0] * 3, 0.9), ([0.0, 0.0, 0.01], q1, [1.0] * 3, 0.9)])
    add("straddling", [([0.0, 0.0, 0.02], qr, [1.0, 2.0, 0.5], 0.9), ([0.3, -0.2, 0.011], q1, [5.0] * 3, 0.5),
                       ([40.0, 0.0, 0.05], qr, [50.0] * 3, 0.9)])  # x/z = 800: far outside, clamped Jacobian
    add("unnormalised", [([0.1, 0.1, 3.0], [k * c for c in qr], [0.05, 0.01, 0.002], 0.8) for k in (1e-3, 1.0, 1e3)])
    add("zero_scale", [([0.0, 0.05, 2.0], qr, [0.0, 0.0, 0.0], 0.9), ([0.05, 0.0, 2.0], qr, [0.02, 0.0, 0.0], 0.9)])
    add("huge_scale", [([0.0, 0.0, 3.0], qr, [1e30, 1e30, 1e30], 0.5), ([0.1, 0.0, 3.0], qr, [1e30, 1e-30, 1.0], 0.5)])
    add("off_screen", [([100.0, 0.0, 3.0], q1, [0.01] * 3, 0.9), ([0.0, -50.0, 3.0], q1, [0.01] * 3, 0.9)])
    means = torch.tensor([r[0] for r in rows], dtype=torch.float64)
    quats = torch.tensor([r[1] for r in rows], dtype=torch.float64)
    scales = torch.tensor([r[2] for r in rows], dtype=torch.float64)
    opac = torch.tensor([r[3] for r in rows], dtype=torch.float64)
    colors = torch.rand(len(rows), 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_scales = torch.log(scales).clamp_min(-1000.0)  # exp(-1000) is exactly 0 in both dtypes
    scene = su.Gaussians.from_activated(means, quats, torch.ones_like(scales), opac, colors=colors)
    scene.log_scales = log_scales
    return scene.to(dtype), groups


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dilation", [0.0, 0.3])
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_hostile_gaussians(dtype, dilation, mode):
    cam = front_camera(64, 48)
    scene, groups = hostile_scene(dtype)
    outs = {"fast": project(scene, cam, dilation=dilation, mode=mode),
            "reference": ref.project(scene, cam, dilation=dilation, mode=mode)}
    for who, p in outs.items():
        for name in FIELDS:
            t = getattr(p, name)
            assert torch.isfinite(t).all(), f"{who} {name} has non-finite values: {t}"
        vis = p.visible
        assert not vis[groups["behind"]].any(), f"{who}: Gaussians behind / at the camera must be culled"
        assert not vis[groups["off_screen"]].any(), f"{who}: off-screen Gaussians must be culled"
        assert vis[groups["straddling"]].all(), f"{who}: Gaussians just in front of the camera cover the image"
        assert vis[groups["unnormalised"]].all()
        # every quaternion scale gives the same projection
        sl = groups["unnormalised"]
        for name in FIELDS:
            if name == "colors":
                continue  # random per row
            t = getattr(p, name)[sl].double()
            torch.testing.assert_close(t, t[1:2].expand_as(t), rtol=1e-5 if dtype == torch.float32 else 1e-12,
                                       atol=0.0, msg=f"{who} {name} depends on |q|")
        # an all-zero scale is a point: a Gaussian of covariance dilation * I, or singular (culled) without dilation
        zs = groups["zero_scale"]
        if dilation == 0.0:
            assert not vis[zs.start], f"{who}: a zero-scale Gaussian without dilation is singular and must be culled"
        else:
            assert vis[zs.start]
            c = p.conics[zs.start].double()
            torch.testing.assert_close(c, torch.tensor([1 / dilation, 0.0, 1 / dilation], dtype=torch.float64),
                                       rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(p.extents[zs.start].double(), torch.full((2,), 3 * math.sqrt(dilation),
                                       dtype=torch.float64), rtol=1e-6, atol=0.0)
    # whatever is visible in one is visible in the other, except the huge-scale rows (see the next test) and,
    # without dilation, the rank-1 covariance (its determinant is round-off, either decision is right)
    keep = torch.ones(len(scene), dtype=torch.bool)
    keep[groups["huge_scale"]] = False
    keep[groups["zero_scale"].start + 1] = dilation > 0
    assert torch.equal(outs["fast"].visible[keep], outs["reference"].visible[keep])


@pytest.mark.parametrize("scale", [1e3, 1e6, 1e9, 1e15])
def test_huge_but_finite_covariance_is_kept(scale):
    """A Gaussian whose 2D covariance is finite and positive definite is not culled by that rule
    (render/project.py docstring), however large it is: it covers the screen with alpha = its opacity.

    The float32 fast path computes det(S) = s_xx s_yy - s_xy^2 directly, which overflows float32 once the 2D
    sigma exceeds ~1e9.5 px, so it culls such Gaussians although their covariance is finite: with a 1e9-unit
    Gaussian in front of the camera, rasterize renders nothing instead of a uniform veil. The reference
    (float32 too) keeps them."""
    cam = front_camera(64, 48)
    scene = su.Gaussians.from_activated(
        torch.tensor([[0.1, 0.0, 3.0]]), torch.tensor([[1.0, 0.2, 0.1, 0.3]]),
        torch.tensor([[scale, 0.5 * scale, 0.2 * scale]]), torch.tensor([0.5]), colors=torch.tensor([[0.2, 0.4, 0.6]]),
    )
    r = ref.project(scene, cam)
    cov_px = (scale * cam.fx / 3.0) ** 2
    assert r.visible.all(), f"reference culled a finite covariance (~{cov_px:.1e} px^2)"
    p = project(scene, cam)
    assert p.visible.all(), (
        f"fast project culled a Gaussian with a finite, positive-definite 2D covariance (~{cov_px:.1e} px^2, "
        "float32): its det(S) overflowed"
    )
    out = su.rasterize(scene, cam)
    expected = 0.5 * torch.tensor([0.2, 0.4, 0.6])
    torch.testing.assert_close(out.color, expected.expand(48, 64, 3), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- gradients
PARAMS = ("means", "quats", "log_scales", "opacity_logits", "sh")


def _projection_loss(p: Projected, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum((getattr(p, k) * w).sum() for k, w in weights.items())


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_reference_project_gradcheck(mode):
    """The reference projection is differentiable (the backward pass's oracle): torch.autograd.gradcheck."""
    cam = tilted_camera(20, 12)
    scene = random_scene(6, front_camera(20, 12), seed=7, sh_degree=2, sigma_px=(1.5, 4.0), dtype=torch.float64)
    assert ref.project(scene, cam, mode=mode).visible.all()

    def f(*tensors):
        p = ref.project(su.Gaussians(*tensors), cam, mode=mode)
        return p.means2d, p.conics, p.opacities, p.colors, p.extents, p.radii

    inputs = tuple(t.detach().clone().requires_grad_(True) for t in scene.tensors().values())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)


def test_fast_project_gradients_match_reference():
    """Autograd through the fast projection (float64) equals autograd through the reference one."""
    cam = tilted_camera()
    scene = random_scene(300, front_camera(), seed=8, sh_degree=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    oracle = ref.project(scene, cam, mode="antialiased")
    vis = oracle.visible
    weights = {k: torch.randn(getattr(oracle, k).shape, generator=g, dtype=torch.float64) * (
        vis[:, None] if getattr(oracle, k).ndim == 2 else vis) for k in ("means2d", "conics", "opacities", "colors")}
    grads = []
    for fn in (project, ref.project):
        params = {k: t.detach().clone().requires_grad_(True) for k, t in scene.tensors().items()}
        loss = _projection_loss(fn(su.Gaussians(**params), cam, mode="antialiased"), weights)
        grads.append(torch.autograd.grad(loss, list(params.values())))
    for name, a, b in zip(PARAMS, *grads, strict=True):
        scale = float(b.abs().max())
        assert scale > 0 and torch.isfinite(a).all()
        assert float((a - b).abs().max()) <= 1e-10 * scale, f"d loss / d {name} differs"


# ---------------------------------------------------------------------------------------------- binning data
def check_binning_data(p: Projected, label: str, width: int = 64, height: int = 48) -> None:
    """project()'s bin_extents, reach and alive are tiles.contribution_extents of its own outputs; its tile_rects
    are those of the tile grid of a width x height camera."""
    ext, reach, alive = contribution_extents(p.extents.detach().numpy(), p.opacities.detach().numpy(),
                                             p.visible.numpy())
    assert p.bin_extents.dtype == torch.float32 and p.reach.dtype == torch.float32 and p.alive.dtype == torch.bool
    assert np.array_equal(p.alive.numpy(), alive), f"{label}: alive differs"
    assert alive.sum() > 0
    # the kernel's exp/log differ from numpy's by an ulp or two of float64: float32 results equal up to 1 ulp
    np.testing.assert_allclose(p.bin_extents.numpy()[alive], ext[alive], rtol=2.5e-7, atol=0, err_msg=label)
    np.testing.assert_allclose(p.reach.numpy()[alive], reach[alive], rtol=2.5e-7, atol=0, err_msg=label)
    check_tile_rects(p, label, width, height)


def check_tile_rects(p: Projected, label: str, width: int = 64, height: int = 48) -> None:
    """project()'s tile_rects are the tiles module's rule (its docstring) applied to the stored means2d and
    bin_extents, empty where not alive; bin_gaussians lists the same pairs with and without them."""
    from splatup.render.tiles import TILE_SIZE, bin_gaussians

    m = p.means2d.detach().numpy()
    e = p.bin_extents.numpy()
    alive = p.alive.numpy()
    ntx, nty = -(-width // TILE_SIZE), -(-height // TILE_SIZE)
    lo = np.floor((m - e).astype(np.float64) / TILE_SIZE)
    hi = np.floor((m + e).astype(np.float64) / TILE_SIZE)
    # the rule's bounds, clamped as the kernel stores them (to [0, tiles] and [-1, tiles - 1]: the same tiles)
    expected = np.stack([np.clip(lo[:, 0], 0, ntx), np.clip(hi[:, 0], -1, ntx - 1),
                         np.clip(lo[:, 1], 0, nty), np.clip(hi[:, 1], -1, nty - 1)], 1)
    got = p.tile_rects.numpy()
    assert p.tile_rects.dtype == torch.int32
    np.testing.assert_array_equal(got[alive], expected[alive], err_msg=label)
    assert (got[~alive] == [0, -1, 0, -1]).all(), label
    args = (m, e, p.depths.detach().numpy(), alive, width, height, TILE_SIZE, p.reach.numpy())
    plain, given = bin_gaussians(*args), bin_gaussians(*args, rects=got)
    np.testing.assert_array_equal(plain.offsets, given.offsets)
    np.testing.assert_array_equal(plain.gids, given.gids)
    assert plain.n_pairs > 0, label


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_binning_data_is_contribution_extents(shared_data, mode):
    cam = front_camera(64, 48)
    scene = random_scene(2000, cam, seed=2, opacity=(0.001, 0.999), margin_px=30.0)
    check_binning_data(project(scene, cam, mode=mode), f"random {mode}")
    check_binning_data(project(scene.to(torch.float64), cam, mode=mode), f"random float64 {mode}")
    plant = load(shared_data, "plant")
    p = project(plant, orbit_camera(plant, "plant", 320, 180), mode=mode)
    check_binning_data(p, f"plant {mode}", 320, 180)
    hostile, _ = hostile_scene(torch.float32)
    p = project(hostile, cam, mode=mode)
    for t in (p.bin_extents, p.reach):
        assert torch.isfinite(t).all()
    assert not p.alive[~p.visible].any()
    check_tile_rects(p, f"hostile {mode}")


def test_inline_exp_log_accuracy():
    """The kernels' inlined float64 exp and log against libm: within 1 and 2 ulp; exp's range ends."""
    from numba import njit

    from splatup.render.project_kernels import exp64, log64

    @njit(cache=False)
    def apply(f_exp, xs):
        out = np.empty_like(xs)
        for i in range(xs.shape[0]):
            out[i] = exp64(xs[i]) if f_exp else log64(xs[i])
        return out

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-700, 709, 20000), rng.uniform(-30, 30, 20000), rng.uniform(-1e-3, 1e-3, 1000)])
    ulp = np.abs(apply(True, x) - np.exp(x)) / np.spacing(np.exp(x))
    assert ulp.max() <= 1.0
    y = np.concatenate([np.exp(rng.uniform(-700, 700, 20000)), rng.uniform(0.5, 2.0, 20000), [1.0, 2.0, 0.5]])
    err = np.abs(apply(False, y) - np.log(y))
    assert (err <= 2 * np.spacing(np.abs(np.log(y))) + 1e-300).all()
    assert apply(False, np.array([1.0]))[0] == 0.0
    ends = apply(True, np.array([-1000.0, -707.5, 0.0, 709.78, 709.8, 1e300]))
    assert ends[0] == 0.0 and ends[1] == 0.0 and ends[2] == 1.0
    assert ends[3] == np.exp(709.78) and np.isinf(ends[4]) and np.isinf(ends[5])


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_kernel_flags_exactly_the_bad_gaussians(sh_degree):
    """The forward kernel's BAD_INPUT bit (what project(validate_as=...) relies on instead of a second pass over
    the scene) is set exactly on the Gaussians that a numpy check of each row finds bad: a NaN / Inf value in any
    field, a quaternion whose squared norm is below float32's smallest normal number (zero, 1e-45, 1e-30, 1e-20;
    not 2e-19 or 1e-10), or SH coefficients whose norm (float64, over the channels) is above 1e6 (1e37, 1e7 and
    6e5 in three channels; not 1e5)."""
    from splatup.render import project_kernels as PK
    from splatup.render.project import _forward, _setup

    cam = front_camera()
    scene = random_scene(400, cam, sh_degree=sh_degree, seed=4)
    rng = np.random.default_rng(sh_degree)
    for field in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        t = getattr(scene, field).clone()
        flat = t.view(t.shape[0], -1)
        for row in rng.choice(np.arange(20, 400), 6, replace=False):  # rows 5-13 are set below
            flat[row, rng.integers(flat.shape[1])] = rng.choice([math.nan, math.inf, -math.inf])
        setattr(scene, field, t)
    scene.quats[rng.choice(np.arange(20, 400), 3, replace=False)] = 0.0
    for row, w in zip((5, 6, 7, 8, 9), (1e-45, 1e-30, 1e-20, 2e-19, 1e-10), strict=True):
        scene.quats[row] = torch.tensor([w, 0.0, 0.0, 0.0])
    k = scene.sh.shape[1]
    for row, (coef, value) in zip((10, 11, 12, 13), ((0, 1e37), (k - 1, 1e7), (k - 1, 6e5), (0, 1e5)), strict=True):
        scene.sh[row] = 0.1
        scene.sh[row, coef] = value  # all three channels: norm sqrt(3) value
    rows_bad = np.zeros(400, bool)
    for field in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        rows_bad |= ~np.isfinite(getattr(scene, field).numpy().reshape(400, -1)).all(1)
    q64 = scene.quats.numpy().astype(np.float64)
    rows_bad |= (q64 ** 2).sum(1) < np.finfo(np.float32).tiny
    with np.errstate(over="ignore", invalid="ignore"):
        rows_bad |= ~(np.linalg.norm(scene.sh.numpy().astype(np.float64).reshape(400, -1), axis=1) <= 1e6)
    assert rows_bad[[5, 6, 7, 10, 11, 12]].all() and not rows_bad[[8, 9, 13]].any()
    assert 25 < rows_bad.sum() < 50
    setup = _setup(scene, cam, 0.3, "classic", 0.01, 1e10, None)
    _, status = _forward(setup, scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh)
    np.testing.assert_array_equal((status & PK.BAD_INPUT) != 0, rows_bad)


def test_project_validate_as_names_the_field():
    """project(validate_as=...) raises Gaussians.validate's error, also for SH coefficients beyond sh_degree
    (which the kernel does not read), and passes a valid scene."""
    cam = front_camera()
    scene = random_scene(50, cam, sh_degree=2, seed=5)
    project(scene, cam, validate_as="x: scene", sh_degree=1)
    scene.sh[9, 7, 1] = math.nan  # degree 2 coefficient: not read at sh_degree=1
    with pytest.raises(su.SplatupInputError, match=r"x: scene: field 'sh'.*index 9"):
        project(scene, cam, validate_as="x: scene", sh_degree=1)
    project(scene, cam, sh_degree=1)  # no validate_as: projects (that coefficient is not used)
    scene.sh[9, 7, 1] = 0.0
    scene.quats[3] = 0.0
    with pytest.raises(su.SplatupInputError, match="zero quaternion at Gaussian 3"):
        project(scene, cam, validate_as="x: scene")


def _fresh(dispatcher):
    """The kernel compiled afresh (not from the disk cache), with the kernels' own options."""
    from numba import njit

    from splatup.render import project_kernels as PK

    return njit(**PK.OPTIONS)(dispatcher.py_func)


def test_forward_kernel_is_vectorised():
    """project_forward, compiled afresh with the LLVM limits of render._vectorize, runs its geometry loop as SIMD
    code: the IR calls llvm.sqrt on <N x double> vectors at 6 or more sites. The geometry body alone holds 6 square
    roots (quaternion norm, two extents, two in the radius, the antialiasing factor); the colour and binning
    loops hold one each, so a scalar geometry loop leaves at most 2 sites per vector version of those loops
    (3 in total on this machine when the limits are off, 9 with them). The outputs match the cached kernel.
    (The speed this buys: benchmarks/bench_raster.py.)"""
    import re

    from splatup.render import _vectorize
    from splatup.render import project_kernels as PK
    from splatup.render.project import _arrays, _setup

    assert _vectorize.APPLIED
    fresh = _fresh(PK.project_forward)
    cam = front_camera()
    scene = random_scene(300, cam, sh_degree=3)
    setup = _setup(scene, cam, 0.3, "antialiased", 0.01, 1e10, None)
    n = len(scene)
    f4 = np.float32

    def outputs():
        return PK.Projection(np.empty((n, 2), f4), np.empty((n, 3), f4), np.empty(n, f4), np.empty((n, 3), f4),
                             np.empty(n, f4), np.empty((n, 2), f4), np.empty(n, f4), np.empty(n, np.bool_),
                             np.empty(n, np.uint8), np.empty((n, 2), f4), np.empty(n, f4), np.empty(n, np.bool_),
                             np.empty((n, 4), np.int32))

    inputs = PK.SceneArrays(*_arrays((scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh),
                                     torch.float32))
    outs = [outputs(), outputs()]
    for kernel, out in zip((fresh, PK.project_forward), outs, strict=True):
        kernel(inputs, setup.pose, setup.view, setup.settings, setup.rule, out)
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    ir = "\n".join(fresh.inspect_llvm().values())
    assert len(re.findall(r"call [^\n]*@llvm\.sqrt\.v\d+f64\(", ir)) >= 6


def test_backward_kernel_is_vectorised():
    """project_backward, compiled afresh, runs its geometry loop as SIMD code: its only square roots outside the
    scalar colour loop (the quaternion norm, the antialiasing factor) appear as llvm.sqrt on vectors. Its results
    match the cached kernel's."""
    import re

    from splatup.render import project_kernels as PK
    from splatup.render.project import _arrays, _forward, _setup

    fresh = _fresh(PK.project_backward)
    cam = front_camera()
    scene = random_scene(300, cam, sh_degree=3)
    setup = _setup(scene, cam, 0.3, "antialiased", 0.01, 1e10, None)
    _, status = _forward(setup, scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh)
    inputs = PK.SceneArrays(*_arrays((scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh),
                                     torch.float32))
    rng = np.random.default_rng(0)
    n = len(scene)
    upstream = PK.Upstream(*(rng.normal(size=shape).astype(np.float32) for shape in ((n, 2), (n, 3), (n,), (n, 3))))
    grads = [PK.SceneArrays(*(np.empty(t.shape, np.float32) for t in inputs)) for _ in range(2)]
    for kernel, g in zip((fresh, PK.project_backward), grads, strict=True):
        kernel(inputs, setup.pose, setup.view, setup.settings, status, upstream, g)
    for a, b in zip(*grads, strict=True):
        np.testing.assert_array_equal(a, b)
    ir = "\n".join(fresh.inspect_llvm().values())
    assert re.search(r"call [^\n]*@llvm\.sqrt\.v\d+f64\(", ir)


def test_bad_arguments():
    cam = front_camera()
    scene = random_scene(10, cam)
    with pytest.raises(su.SplatupInputError, match="sh_degree"):
        project(scene, cam, sh_degree=-1)
    with pytest.raises(su.SplatupInputError, match="float32 or float64"):
        project(scene.to(torch.float16), cam)
    with pytest.raises(su.SplatupInputError, match="mode"):
        project(scene, cam, mode="fancy")
    empty = project(su.Gaussians.empty(2), cam)
    assert empty.means2d.shape == (0, 2) and empty.colors.shape == (0, 3) and empty.alive.shape == (0,)
