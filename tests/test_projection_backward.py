"""Backward pass of the numba projection (render/project.py, project_kernels.project_backward).

Oracle: torch autograd through the independent plain-torch reference twin (splatup.reference.project) in
float64. A random linear loss of the four differentiable outputs (means2d, conics, opacities, colors) is
differentiated w.r.t. all five scene tensors (means, quats, log_scales, opacity_logits, sh) on random scenes
with SH degree 0..3, both modes, Gaussians near / beyond the 1.3x FOV clamp of the Jacobian, Gaussians just in
front of the camera, unnormalised quaternions and a partial sh_degree. Also: torch.autograd.gradcheck of the
fast projection itself, zero gradients for culled Gaussians, no NaN on hostile input (zero quaternions too), the
float32 path against the float64 oracle, and autograd through torch.cat of two Parameters (the trainer's sh).
"""

from __future__ import annotations

import pytest
import torch

import splatup as su
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.render.project import Projected, project
from test_projection import hostile_scene, tilted_camera

PARAMS = ("means", "quats", "log_scales", "opacity_logits", "sh")
OUTPUTS = ("means2d", "conics", "opacities", "colors")


def _leaves(scene: su.Gaussians, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    return {k: t.detach().to(dtype).clone().requires_grad_(True) for k, t in scene.tensors().items()}


def _weights(p: Projected, seed: int, mask_opacity: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Random upstream gradients (float64) for the four differentiable outputs."""
    g = torch.Generator().manual_seed(seed)
    w = {k: torch.randn(getattr(p, k).shape, generator=g, dtype=torch.float64) for k in OUTPUTS}
    if mask_opacity is not None:
        w["opacities"] = w["opacities"] * mask_opacity
    return w


def _grads(fn, scene: su.Gaussians, cam: su.Camera, weights: dict[str, torch.Tensor], dtype: torch.dtype,
           **kw) -> dict[str, torch.Tensor]:
    leaves = _leaves(scene, dtype)
    p = fn(su.Gaussians(**leaves), cam, **kw)
    loss = sum((getattr(p, k) * w.to(dtype)).sum() for k, w in weights.items())
    return dict(zip(PARAMS, torch.autograd.grad(loss, list(leaves.values())), strict=True))


def _row_errors(fast: torch.Tensor, oracle: torch.Tensor, floor: float) -> torch.Tensor:
    """[N] max |fast - oracle| over a Gaussian's entries divided by that row's largest oracle entry (plus
    ``floor`` times the tensor's largest entry, for rows whose gradient is zero or nearly so)."""
    n = oracle.shape[0]
    d = (fast.double() - oracle).abs().reshape(n, -1).amax(1)
    scale = oracle.abs().reshape(n, -1).amax(1) + floor * float(oracle.abs().max())
    return d / scale


def compare_to_oracle(scene: su.Gaussians, cam: su.Camera, label: str, seed: int = 0, rtol: float = 1e-9,
                      **kw) -> dict[str, torch.Tensor]:
    """Fast float64 gradients vs autograd of the float64 reference; returns the oracle's gradients."""
    oracle_p = ref.project(scene.to(torch.float64), cam, **kw)
    assert int(oracle_p.visible.sum()) >= 10, f"{label}: too few visible Gaussians"
    # the antialiased opacity of a culled Gaussian is a placeholder (fast: o * 1e-6, reference: o): not compared
    mask = oracle_p.visible.double() if kw.get("mode") == "antialiased" else None
    weights = _weights(oracle_p, seed, mask)
    fast = _grads(project, scene, cam, weights, torch.float64, **kw)
    oracle = _grads(ref.project, scene, cam, weights, torch.float64, **kw)
    for name in PARAMS:
        assert torch.isfinite(fast[name]).all(), f"{label}: d/d{name} not finite"
        assert float(oracle[name].abs().max()) > 0, f"{label}: the oracle's d/d{name} is zero: vacuous"
        err = _row_errors(fast[name], oracle[name], 1e-9)
        worst = int(err.argmax())
        assert float(err[worst]) <= rtol, (
            f"{label}: d loss / d {name} differs at Gaussian {worst} by {float(err[worst]):.2e} (relative):\n"
            f"fast {fast[name][worst].tolist()}\noracle {oracle[name][worst].tolist()}"
        )
    return oracle


def clamp_scene(n: int, cam: su.Camera, seed: int, sh_degree: int) -> su.Gaussians:
    """Random Gaussians whose centres spread well beyond the image (the Jacobian's 1.3x FOV clamp starts
    0.15 W beyond each edge for a centred principal point), some of them just in front of the camera."""
    return random_scene(n, cam, seed=seed, sh_degree=sh_degree, margin_px=0.6 * cam.width, sigma_px=(0.5, 25.0),
                        depth=(0.05, 4.0), dtype=torch.float64)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_gradients_match_reference(sh_degree, mode):
    cam = front_camera(64, 48)
    scene = clamp_scene(500, cam, seed=10 + sh_degree, sh_degree=sh_degree)
    # the test must exercise the clamp: visible Gaussians whose x/z or y/z lies beyond it
    p = ref.project(scene, cam)
    u = (scene.means[:, 0] / scene.means[:, 2]).abs() * cam.fx
    assert int((p.visible & (u > 0.65 * cam.width)).sum()) >= 5
    compare_to_oracle(scene, cam, f"front deg{sh_degree} {mode}", seed=sh_degree, mode=mode)
    compare_to_oracle(scene, tilted_camera(), f"tilted deg{sh_degree} {mode}", seed=sh_degree, mode=mode)


@pytest.mark.parametrize("sh_degree", [0, 1, 2])
def test_partial_sh_degree_and_dilation(sh_degree):
    cam0 = front_camera(72, 40)
    K = cam0.K.clone()
    K[0, 2], K[1, 2] = 20.0, 31.0  # off-centre principal point: asymmetric clamp
    cam = su.Camera(cam0.world_to_camera, K, 72, 40)
    scene = clamp_scene(400, cam0, seed=3, sh_degree=3)
    for mode, dilation in (("classic", 0.0), ("antialiased", 0.3 / 4), ("antialiased", 1.0)):
        oracle = compare_to_oracle(scene, cam, f"sh_degree={sh_degree} {mode} dil {dilation}", seed=7,
                                   mode=mode, dilation=dilation, sh_degree=sh_degree)
        k = (sh_degree + 1) ** 2
        assert float(oracle["sh"][:, k:].abs().max()) == 0.0
    fast = _grads(project, scene, cam, _weights(project(scene, cam), 1), torch.float64, sh_degree=sh_degree)
    assert float(fast["sh"][:, (sh_degree + 1) ** 2:].abs().max()) == 0.0, "inactive SH coefficients got gradient"
    if sh_degree == 0:  # no view direction: the colour does not depend on the mean
        w = {k: torch.zeros_like(v) if k != "colors" else v for k, v in _weights(project(scene, cam), 2).items()}
        assert float(_grads(project, scene, cam, w, torch.float64, sh_degree=0)["means"].abs().max()) == 0.0


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_gradcheck(mode):
    """torch.autograd.gradcheck of the fast projection (float64) on a tiny scene: analytic vs numerical."""
    cam = tilted_camera(20, 12)
    scene = random_scene(6, front_camera(20, 12), seed=7, sh_degree=3, sigma_px=(1.5, 4.0), dtype=torch.float64)
    assert project(scene, cam, mode=mode).visible.all()

    def f(*tensors):
        p = project(su.Gaussians(*tensors), cam, mode=mode, sh_degree=2)
        return p.means2d, p.conics, p.opacities, p.colors

    inputs = tuple(t.detach().clone().requires_grad_(True) for t in scene.tensors().values())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dilation", [0.0, 0.3])
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_culled_gaussians_get_zero_gradient(dtype, dilation, mode):
    """Hostile Gaussians (behind / straddling the camera, zero and huge scales, unnormalised quaternions, off
    screen): every gradient finite; Gaussians culled for their depth or covariance get no gradient through
    means2d, conics or the antialiasing factor, and invisible ones none through means2d."""
    cam = front_camera(64, 48)
    scene, groups = hostile_scene(dtype)
    p = project(scene, cam, dilation=dilation, mode=mode)
    all_w = _weights(p, 0)
    g_all = _grads(project, scene, cam, all_w, dtype, dilation=dilation, mode=mode)
    for name, g in g_all.items():
        assert torch.isfinite(g).all(), f"d/d{name} has non-finite values: {g}"
    culled_cov = torch.zeros(len(scene), dtype=torch.bool)  # culled for depth or covariance (not just off screen)
    culled_cov[groups["behind"]] = True
    if dilation == 0.0:
        culled_cov[groups["zero_scale"].start] = True
    if dtype == torch.float32:
        culled_cov[groups["huge_scale"]] = True  # their covariance overflows float32
    assert not p.visible[culled_cov].any()
    # means2d only: nothing for any invisible Gaussian
    w = {k: (v if k == "means2d" else torch.zeros_like(v)) for k, v in all_w.items()}
    g = _grads(project, scene, cam, w, dtype, dilation=dilation, mode=mode)
    assert float(g["means"][~p.visible].abs().max()) == 0.0
    assert float(g["means"][p.visible].abs().max()) > 0.0
    # conics and opacities: no geometric gradient for covariance-culled ones
    w = {k: (v if k in ("conics", "opacities") else torch.zeros_like(v)) for k, v in all_w.items()}
    g = _grads(project, scene, cam, w, dtype, dilation=dilation, mode=mode)
    for name in ("means", "quats", "log_scales"):
        assert float(g[name][culled_cov].abs().max()) == 0.0
        assert float(g[name][p.visible].abs().max()) > 0.0
    # their opacity is sigmoid(logit) times a constant (1, or the 1e-6 placeholder factor when antialiased):
    # d opacity / d logit = opacity (1 - sigmoid(logit))
    sig = torch.sigmoid(scene.opacity_logits.double())
    expected = all_w["opacities"] * p.opacities.double() * (1 - sig)
    torch.testing.assert_close(g["opacity_logits"][culled_cov].double(), expected[culled_cov], rtol=1e-5, atol=0)


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_float32_against_float64_oracle(mode):
    """The float32 path (what rasterize and the trainer use) vs the float64 reference, same input values.

    The kernels work in float64 internally, so the float32 gradients differ from the oracle by the rounding of
    inputs and outputs (and of the float32 upstream gradients) only; Gaussians whose visibility differs between
    the two (a decision within round-off) are left out."""
    cam = tilted_camera()
    scene = clamp_scene(800, front_camera(), seed=21, sh_degree=3).to(torch.float32)
    oracle_p = ref.project(scene.to(torch.float64), cam, mode=mode)
    fast_p = project(scene, cam, mode=mode)
    same = fast_p.visible == oracle_p.visible
    assert int((~same).sum()) <= 1
    weights = _weights(oracle_p, 5, oracle_p.visible.double())
    weights = {k: (v * (same[:, None] if v.ndim == 2 else same)).float().double() for k, v in weights.items()}
    fast = _grads(project, scene, cam, weights, torch.float32, mode=mode)
    oracle = _grads(ref.project, scene, cam, weights, torch.float64, mode=mode)
    for name in PARAMS:
        assert fast[name].dtype == torch.float32 and torch.isfinite(fast[name]).all()
        err = _row_errors(fast[name], oracle[name], 1e-6)
        assert float(err.max()) <= 2e-5, f"float32 d/d{name}: worst relative row error {float(err.max()):.2e}"


def test_autograd_wiring():
    """Outputs carry grad_fn exactly when the scene requires grad; non-differentiable outputs never do; the
    trainer's sh = torch.cat([sh_dc, sh_rest], 1) of two Parameters receives the sh gradient split in two."""
    cam = front_camera()
    scene = random_scene(200, cam, seed=4, sh_degree=2)
    plain = project(scene, cam)
    assert all(not getattr(plain, k).requires_grad for k in OUTPUTS)

    sh_dc = torch.nn.Parameter(scene.sh[:, :1].clone())
    sh_rest = torch.nn.Parameter(scene.sh[:, 1:].clone())
    means = torch.nn.Parameter(scene.means.clone())
    trained = su.Gaussians(means, scene.quats, scene.log_scales, scene.opacity_logits, torch.cat([sh_dc, sh_rest], 1))
    p = project(trained, cam)
    for k in OUTPUTS:
        assert getattr(p, k).grad_fn is not None, k
    for k in ("depths", "extents", "radii", "visible", "bin_extents", "reach", "alive"):
        assert not getattr(p, k).requires_grad, k
    with torch.no_grad():
        assert not project(trained, cam).colors.requires_grad

    weights = _weights(p, 3)
    loss = sum((getattr(p, k) * w.float()).sum() for k, w in weights.items())
    loss.backward()
    direct = _grads(project, scene, cam, weights, torch.float32)
    torch.testing.assert_close(sh_dc.grad, direct["sh"][:, :1], rtol=0, atol=0)
    torch.testing.assert_close(sh_rest.grad, direct["sh"][:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(means.grad, direct["means"], rtol=0, atol=0)
    assert float(sh_rest.grad.abs().max()) > 0


def test_zero_quaternion_is_culled_with_finite_gradients():
    """A zero quaternion has no rotation (rasterize rejects it in validate(); project() itself must not raise or
    produce NaN): the Gaussian is culled, its outputs finite and its gradients finite, zero through geometry."""
    cam = front_camera()
    scene = random_scene(5, cam, seed=1, sh_degree=1, dtype=torch.float64)
    scene.quats[2] = 0.0
    p = project(scene, cam)
    assert not p.visible[2] and p.visible[[0, 1, 3, 4]].all()
    for k in ("means2d", "conics", "opacities", "colors", "extents", "radii", "bin_extents", "reach"):
        assert torch.isfinite(getattr(p, k)).all(), k
    g = _grads(project, scene, cam, _weights(p, 0), torch.float64)
    for name, t in g.items():
        assert torch.isfinite(t).all(), name
    assert float(g["quats"][2].abs().max()) == 0.0 and float(g["log_scales"][2].abs().max()) == 0.0
