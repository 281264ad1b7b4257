"""Bad and hostile input at the rasterize level: clear errors naming the culprit, never a silent NaN."""

from __future__ import annotations

import math

import pytest
import torch

import splatup as su
from scenes import front_camera, random_scene
from splatup.errors import SplatupInputError

FIELDS = ("means", "quats", "log_scales", "opacity_logits", "sh")


def test_empty_scene_renders_exactly_the_background():
    cam = front_camera(40, 24)  # partial tiles in both directions
    bg = (0.2, 0.4, 0.6)
    for degree in (0, 3):
        out = su.rasterize(su.Gaussians.empty(sh_degree=degree), cam, derivatives=True, background=bg)
        assert torch.equal(out.color, torch.tensor(bg, dtype=torch.float32).expand(24, 40, 3))
        assert torch.equal(out.alpha, torch.zeros(24, 40, 1))
        for name in ("dx", "dy", "dxy"):
            assert torch.equal(getattr(out, name), torch.zeros(24, 40, 3)), name
        assert torch.equal(out.depth, torch.zeros(24, 40, 1))
        plain = su.rasterize(su.Gaussians.empty(sh_degree=degree), cam, background=bg)
        assert torch.equal(plain.color, out.color) and plain.dx is None


def test_scene_entirely_culled_renders_background():
    cam = front_camera(32, 32)
    scene = random_scene(50, cam, seed=0)
    scene.means = scene.means * torch.tensor([1.0, 1.0, -1.0])  # all behind the camera
    out = su.rasterize(scene, cam, derivatives=True, background=(1.0, 1.0, 1.0))
    assert not out.visible.any()
    assert torch.equal(out.color, torch.ones(32, 32, 3)) and torch.equal(out.dxy, torch.zeros(32, 32, 3))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_scene_field_raises_naming_it(field, bad):
    cam = front_camera(32, 24)
    scene = random_scene(20, cam, seed=1, sh_degree=1)
    t = getattr(scene, field).clone()
    t.view(t.shape[0], -1)[7, 0] = bad
    setattr(scene, field, t)
    with pytest.raises(SplatupInputError, match=f"'{field}'") as e:
        su.rasterize(scene, cam, derivatives=True)
    assert "index 7" in str(e.value)


@pytest.mark.parametrize("field, row, match", [
    ("means", [1e39, 0.0, 3.0], "'means'"),
    ("opacity_logits", -1e39, "'opacity_logits'"),
    ("quats", [1e-300, 0.0, 0.0, 0.0], "zero quaternion"),
    ("sh", 1e39, "'sh'"),
])
def test_float64_values_beyond_float32_raise_naming_the_conversion(field, row, match):
    """A float64 scene is rendered in float32: a value that overflows (or a quaternion that underflows) in the
    conversion gives an error that says so, not a culled Gaussian or a silently non-finite image."""
    cam = front_camera(32, 24)
    scene = random_scene(20, cam, seed=3, dtype=torch.float64)
    t = getattr(scene, field).clone()
    if field == "sh":
        t[7, 0, 0] = row
    else:
        t[7] = torch.as_tensor(row, dtype=torch.float64)
    setattr(scene, field, t)
    with pytest.raises(SplatupInputError, match=rf"converted from torch.float64 to float32.*{match}"):
        su.rasterize(scene, cam)


def test_flag_without_a_named_culprit_still_raises():
    """A mixed-dtype scene (float32 means, float64 SH) whose SH value is finite in float64 but Inf in the float32
    the projection computes in: the kernel's flag still stops the render, naming the Gaussian."""
    cam = front_camera(32, 24)
    scene = random_scene(20, cam, seed=4)
    sh = scene.sh.to(torch.float64)
    sh[11, 0, 0] = 1e39
    scene.sh = sh
    with pytest.raises(SplatupInputError, match="Gaussian 11 has a value that is NaN or infinite in torch.float32"):
        su.rasterize(scene, cam)


def test_zero_quaternion_raises():
    cam = front_camera(32, 24)
    scene = random_scene(10, cam, seed=2)
    scene.quats[3] = 0.0
    with pytest.raises(SplatupInputError, match="quats"):
        su.rasterize(scene, cam)


@pytest.mark.parametrize("background", [(0.1, 0.2), (0.1, 0.2, 0.3, 0.4), (0.1, math.nan, 0.3), (math.inf, 0, 0),
                                        [[0.1, 0.2, 0.3]], "white", (2, 2, 2), (255, 0, 0), (-0.1, 0, 0), 1.5])
def test_bad_background_raises_naming_it(background):
    cam = front_camera(16, 16)
    with pytest.raises(SplatupInputError, match="background"):
        su.rasterize(random_scene(5, cam), cam, background=background)


def test_background_forms_accepted():
    cam = front_camera(16, 16)
    empty = su.Gaussians.empty()
    for bg, expected in ((None, 0.0), (0.5, 0.5), (torch.tensor([0.5, 0.5, 0.5]), 0.5), ([1, 1, 1], 1.0)):
        out = su.rasterize(empty, cam, background=bg)
        assert torch.equal(out.color, torch.full((16, 16, 3), expected)), bg


@pytest.mark.parametrize("dilation", [-0.1, math.nan, math.inf, "0.3", None])
def test_bad_dilation_raises_naming_it(dilation):
    cam = front_camera(16, 16)
    with pytest.raises(SplatupInputError, match="dilation"):
        su.rasterize(random_scene(5, cam), cam, dilation=dilation)


@pytest.mark.parametrize("mode", ["aa", "Classic", "", None])
def test_bad_mode_raises_naming_it(mode):
    cam = front_camera(16, 16)
    with pytest.raises(SplatupInputError, match="mode"):
        su.rasterize(random_scene(5, cam), cam, mode=mode)


def test_bad_scene_and_camera_types_raise():
    cam = front_camera(16, 16)
    with pytest.raises(SplatupInputError, match="scene"):
        su.rasterize({"means": torch.zeros(1, 3)}, cam)
    with pytest.raises(SplatupInputError, match="cam"):
        su.rasterize(random_scene(5, cam), "camera")


def test_hostile_gaussians_render_without_nan():
    """Behind / straddling the camera plane, zero and huge scales, unnormalised quaternions, among ordinary
    Gaussians: every output is finite; the ordinary Gaussians' image is unchanged where the hostile ones are
    culled, and a Gaussian straddling the camera plane covers the image."""
    cam = front_camera(48, 32)
    base = random_scene(200, cam, seed=3, sh_degree=1, dtype=torch.float64)
    n = 9
    means = torch.tensor([[0.0, 0.0, -1.0], [0.1, 0.1, -0.005], [0.0, 0.0, 0.0],  # behind / at the camera
                          [0.0, 0.0, 2.0], [0.05, 0.0, 2.5],  # zero scale (rendered as dilation-sized points)
                          [0.0, 0.0, 3.0], [0.1, 0.1, 3.0],  # huge scales
                          [0.02, -0.01, 2.0], [0.03, 0.02, 2.2]], dtype=torch.float64)  # unnormalised quats
    quats = torch.tensor([[1.0, 0, 0, 0], [0.3, 0.1, 0.2, 0.4], [1.0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5],
                          [1.0, 0, 0, 0], [0.3, -0.5, 0.2, 0.4], [1.0, 0, 0, 0], [1e-18, 3e-18, 0, 1e-18],
                          [1e20, 0, 2e20, -1e20]], dtype=torch.float64)
    log_scales = torch.tensor([[-2.0] * 3, [4.0] * 3, [0.0] * 3, [-1000.0] * 3, [-1000.0, -3.0, -1000.0],
                               [69.0] * 3, [69.0, -69.0, 0.0], [-3.0, -4.0, -5.0], [-3.0] * 3], dtype=torch.float64)
    hostile = su.Gaussians(means, quats, log_scales, torch.full((n,), 2.0, dtype=torch.float64),
                           torch.zeros(n, 4, 3, dtype=torch.float64))
    scene = su.Gaussians(*[torch.cat([a, b]) for a, b in zip(base.tensors().values(), hostile.tensors().values(),
                                                                strict=True)])
    for mode in ("classic", "antialiased"):
        for dilation in (0.3, 0.0):
            out = su.rasterize(scene, cam, derivatives=True, background=(0.1, 0.2, 0.3), mode=mode, dilation=dilation)
            for name in ("color", "alpha", "depth", "dx", "dy", "dxy", "means2d", "radii"):
                t = getattr(out, name)
                assert torch.isfinite(t).all(), f"{mode} dilation {dilation}: {name} has NaN/Inf"
            assert not out.visible[200:203].any(), "Gaussians behind or at the camera must be culled"

    # a Gaussian whose centre is just in front of the camera plane covers the whole image with its opacity
    straddle = su.Gaussians(torch.tensor([[0.0, 0.0, 0.02]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                            torch.zeros(1, 3), torch.zeros(1), torch.zeros(1, 1, 3))
    out = su.rasterize(straddle, cam, derivatives=True)
    assert out.visible.all()
    torch.testing.assert_close(out.color, torch.full((32, 48, 3), 0.25), rtol=0, atol=3e-5)  # 0.5 opacity x 0.5
    assert out.dx.abs().max() < 1e-4


# ------------------------------------------------------------------ issue 11, items 7-9 (each with its trigger)
ENTRY_POINTS = {
    "rasterize": lambda scene, cam, **kw: su.rasterize(scene, cam, derivatives=True, **kw),
    "native": lambda scene, cam, **kw: su.render(scene, cam, method="native", **kw),
    "hermite": lambda scene, cam, **kw: su.render(scene, cam, scale=2, method="hermite", **kw),
}


def _trainable(scene: su.Gaussians) -> tuple[su.Gaussians, dict[str, torch.Tensor]]:
    params = {k: t.detach().clone().requires_grad_(True) for k, t in scene.tensors().items()}
    return su.Gaussians(**params), params


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("degree, value", [(0, 1e37), (3, 1e37), (3, -3e38), (0, 1e7)])
def test_huge_sh_coefficients_raise_naming_sh_and_the_gaussian(entry, degree, value):
    """Item 7: finite SH coefficients of 1e37 and more made Inf/NaN images and NaN gradients, and hermite blamed an
    internal image ("upscale: color contains NaN"). Coefficients whose norm is above 1e6 are refused by every entry
    point, before any image or gradient exists, naming the field 'sh' and the Gaussian."""
    cam = front_camera(32, 24)
    scene, _ = _trainable(random_scene(40, cam, seed=5, sh_degree=degree))
    with torch.no_grad():
        scene.sh[13, -1] = value  # the highest coefficient in use, all three channels
    with pytest.raises(SplatupInputError, match=r"field 'sh' at Gaussian 13: .*norm .* above 1e\+06") as e:
        ENTRY_POINTS[entry](scene, cam)
    assert "upscale" not in str(e.value) and "NaN" not in str(e.value)


def test_sh_coefficients_below_the_bound_give_finite_images_and_gradients():
    """The neighbour of item 7 that must keep working: coefficients of 1e5 (norm below 1e6) in every Gaussian of a
    degree-3 scene render and backpropagate without Inf or NaN."""
    cam = front_camera(32, 24)
    scene, params = _trainable(random_scene(40, cam, seed=5, sh_degree=3))
    with torch.no_grad():
        scene.sh.fill_(1e5 / 7.0)  # 16 coefficients x 3 channels: norm 1e5 sqrt(48) / 7 < 1e6
    out = su.rasterize(scene, cam, derivatives=True)
    loss = sum((getattr(out, f) * w).sum() for f, w in (("color", 1.0), ("alpha", 1.0), ("dx", 0.5), ("dxy", 0.2)))
    grads = torch.autograd.grad(loss, list(params.values()))
    assert float(out.color.detach().max()) > 1e4
    for name in ("color", "dx", "dy", "dxy"):
        assert torch.isfinite(getattr(out, name)).all(), name
    for name, g in zip(params, grads, strict=True):
        assert torch.isfinite(g).all(), f"d loss / d {name}"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("quat", [(1e-45, 0.0, 0.0, 0.0), (0.0, 1e-30, 0.0, 0.0), (1e-20, 1e-20, 0.0, 0.0)])
def test_quaternion_whose_norm_underflows_raises_like_a_zero_one(entry, quat):
    """Item 8: a quaternion (1e-45, 0, 0, 0) passed the zero check and gave d/dquats = -inf. A quaternion whose
    squared norm is below float32's smallest normal number cannot be normalised in float32: refused, naming the
    field and the Gaussian, by every entry point (so no gradient is ever formed)."""
    cam = front_camera(32, 24)
    scene, _ = _trainable(random_scene(40, cam, seed=6))
    with torch.no_grad():
        scene.quats[9] = torch.tensor(quat)
    with pytest.raises(SplatupInputError, match=r"field 'quats' \(rot_0..rot_3\) at Gaussian 9 .*too small to "
                                                r"normalise"):
        ENTRY_POINTS[entry](scene, cam)


def test_smallest_accepted_quaternion_has_finite_gradients():
    """The neighbour of item 8: a quaternion of norm 2e-19 (squared norm just above float32's smallest normal) is a
    rotation like its unit quaternion; its image is that of the unit quaternion up to float32 round-off and the
    gradients through it are finite (about 5e18 times the unit quaternion's, as the normalisation says)."""
    cam = front_camera(32, 24)
    base = random_scene(40, cam, seed=6)
    images, grads = [], []
    for scale in (1.0, 2e-19):
        scene, params = _trainable(base)
        with torch.no_grad():
            scene.quats[9] = torch.nn.functional.normalize(scene.quats[9], dim=0) * scale
        out = su.rasterize(scene, cam, derivatives=True)
        (g,) = torch.autograd.grad(out.color.sum() + out.dx.sum(), [params["quats"]])
        images.append(out.color)
        grads.append(g[9])
    torch.testing.assert_close(images[1], images[0], rtol=0, atol=1e-5)
    assert torch.isfinite(grads[1]).all() and float(grads[0].abs().max()) > 0
    torch.testing.assert_close(grads[1] * 2e-19, grads[0], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("background", [(1e38, 1e38, 1e38), (2.0, 2.0, 2.0), (255.0, 0.0, 0.0)])
def test_background_outside_unit_range_raises_naming_it(entry, background):
    """Item 9 (and 14 of the library's side): background=(1e38, 1e38, 1e38) gave a NaN gradient on the means.
    Colours are in [0, 1]: rasterize and render refuse other backgrounds, naming the argument, as the command
    line does; 0-255 values get a hint."""
    cam = front_camera(32, 24)
    scene, _ = _trainable(random_scene(40, cam, seed=7))
    with pytest.raises(SplatupInputError, match=r"background must be 3 values in \[0, 1\]") as e:
        ENTRY_POINTS[entry](scene, cam, background=background)
    assert ("0-255" in str(e.value)) == (max(background) > 1.0)


def test_background_at_the_ends_of_the_unit_range_has_finite_gradients():
    """The neighbour of item 9: backgrounds 0 and 1 (the range's ends) give finite gradients on every field."""
    cam = front_camera(32, 24)
    for bg in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)):
        scene, params = _trainable(random_scene(40, cam, seed=7, sh_degree=1))
        out = su.rasterize(scene, cam, derivatives=True, background=bg)
        grads = torch.autograd.grad(out.color.sum() + out.dxy.sum(), list(params.values()))
        for name, g in zip(params, grads, strict=True):
            assert torch.isfinite(g).all(), f"background {bg}: d / d {name}"
        assert float(grads[0].abs().max()) > 0
