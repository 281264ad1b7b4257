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
                                        [[0.1, 0.2, 0.3]], "white"])
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
                          [1.0, 0, 0, 0], [0.3, -0.5, 0.2, 0.4], [1.0, 0, 0, 0], [1e-20, 3e-20, 0, 1e-20],
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
