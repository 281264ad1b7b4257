"""The options of training through the upscaler (``UpscaleLoop``), each against what it should do computed here:
the training image of every path against ``rasterize`` + ``upscale`` called directly with the dilation worked out
by hand, the native-iteration schedule against its rule, the learning-rate factors against the 3DGS decay times
the factor, the gradient-threshold factor by what densification does, and the model's metadata."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import splatup as su
from scenes import front_camera, random_scene
from splatup.train.checkpoint import list_checkpoints, read_checkpoint
from splatup.train.model import GaussianModel, TrainConfig, expon_lr
from splatup.train.trainer import TrainSettings, TrainView, render_for_training, settings_differences, train
from splatup.train.upscale_loop import UpscaleLoop
from tiny_training import tiny_settings

W, H = 48, 40
WHITE = (1.0, 1.0, 1.0)


def _model_and_view(iterations: int = 100) -> tuple[GaussianModel, TrainView]:
    cam = front_camera(W, H)
    scene = random_scene(300, cam, seed=7, sigma_px=(0.4, 5.0), opacity=(0.1, 0.9))
    model = GaussianModel(scene, TrainConfig(iterations=iterations, sh_degree=0), extent=1.0)
    return model, TrainView(cam, torch.zeros(H, W, 3), "v")


def _settings(loop: UpscaleLoop, upscale: float = 2.0) -> TrainSettings:
    return TrainSettings(dataset="unused", out_dir="unused", upscale=upscale, white_background=True,
                         upscale_loop=loop)


def _reference(model: GaussianModel, cam: su.Camera, dilation: float, zero_dxy: bool) -> torch.Tensor:
    """1/2 render (24 x 20) with the given low-res dilation and full derivatives, upscaled to 48 x 40 here."""
    lr = cam.scaled(0.5)
    assert (lr.width, lr.height) == (24, 20)
    with torch.no_grad():
        out = su.rasterize(model.scene(), lr, derivatives=True, background=WHITE, dilation=dilation)
        dxy = torch.zeros_like(out.dxy) if zero_dxy else out.dxy
        return su.upscale(out.color, out.dx, out.dy, dxy, size=(H, W), clamp=False)


@pytest.mark.parametrize("loop, dilation, zero_dxy", [
    (UpscaleLoop(), 0.3 / 4, False),  # matched: 0.3 native px^2 = 0.3 / 2^2 low-res px^2
    (UpscaleLoop(lowres_dilation="usual"), 0.3, False),  # 0.3 low-res px^2
    (UpscaleLoop(lowres_dilation=0.15), 0.15, False),
    (UpscaleLoop(derivatives="first"), 0.3 / 4, True),  # dC/dx, dC/dy exact, d2C/dxdy = 0
])
def test_the_training_image_is_the_upscaled_low_res_render_of_the_chosen_path(loop, dilation, zero_dxy):
    model, view = _model_and_view()
    img, out, size = render_for_training(model, view, _settings(loop), iteration=50)
    assert size == (20, 24) and img.shape == (H, W, 3)
    expected = _reference(model, view.camera, dilation, zero_dxy)
    torch.testing.assert_close(img.detach(), expected, rtol=0, atol=2e-5)
    others = {_reference(model, view.camera, d, z).sum().item() for d in (0.075, 0.3) for z in (False, True)
              if (d, z) != (dilation, zero_dxy)}
    assert all(abs(o - img.sum().item()) > 1e-2 for o in others)  # the paths differ on this scene
    img.sum().backward()
    assert model.params["means"].grad.abs().sum() > 0


def test_native_iterations_render_at_full_size():
    model, view = _model_and_view(iterations=100)
    loop = UpscaleLoop(native_fraction=0.25, native_every=10)
    native = su.rasterize(model.scene(), view.camera, background=WHITE).color.detach()
    for it, is_native in ((1, True), (25, True), (26, False), (30, True), (31, False), (99, False), (100, True)):
        img, _, size = render_for_training(model, view, _settings(loop), iteration=it)
        assert (size == (H, W)) == is_native, it
        if is_native:
            torch.testing.assert_close(img.detach(), native, rtol=0, atol=0)
    # the rule: the first round(f n) iterations, then every k-th
    assert [i for i in range(1, 41) if loop.is_native(i, 40)] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40]
    assert loop.native_share(100) == pytest.approx((25 + 8) / 100)  # 1-25, then 30, 40, ..., 100
    assert UpscaleLoop().native_share(100) == 0.0


def test_learning_rate_factors_scale_the_3dgs_rates():
    cam = front_camera(W, H)
    cfg = TrainConfig(iterations=1000, sh_degree=0)
    extent = 2.5
    plain = GaussianModel(random_scene(20, cam), cfg, extent)
    scaled = GaussianModel(random_scene(20, cam), cfg, extent, lr_mult={"means": 3.0, "log_scales": 0.5})
    lrs = {g["name"]: g["lr"] for g in scaled.optimizer.param_groups}
    base = {g["name"]: g["lr"] for g in plain.optimizer.param_groups}
    assert lrs["log_scales"] == pytest.approx(0.5 * 0.005)
    assert lrs["means"] == pytest.approx(3.0 * 0.00016 * extent)
    for name in ("sh_dc", "sh_rest", "opacity_logits", "quats"):
        assert lrs[name] == base[name]
    for it in (1, 10, 500, 1000):
        # 3DGS: exp-linear from 1.6e-4 to 1.6e-6 (x extent) with delay multiplier 0.01 (no delay steps)
        t = it / 1000
        expected = 3.0 * extent * math.exp(math.log(0.00016) * (1 - t) + math.log(0.0000016) * t)
        assert scaled.update_learning_rate(it) == pytest.approx(expected, rel=1e-9)
        assert expected == pytest.approx(3.0 * expon_lr(it, 0.00016 * extent, 0.0000016 * extent, 1000, 0.01))
    with pytest.raises(su.SplatupInputError, match="lr_mult"):
        GaussianModel(random_scene(5, cam), cfg, extent, lr_mult={"scales": 2.0})


def test_the_trainer_applies_the_factors_only_when_upscaling(tmp_path, shared_data):
    loop = UpscaleLoop(position_lr_mult=2.0, scaling_lr_mult=4.0)
    lrs = {}
    for upscale in (1.0, 2.0):
        s = tiny_settings(shared_data, tmp_path / f"u{upscale:g}", config={"iterations": 8}, upscale=upscale,
                          upscale_loop=loop)
        train(s)
        state = read_checkpoint(list_checkpoints(tmp_path / f"u{upscale:g}")[-1]).state
        lrs[upscale] = state["model"]["lr"]
    assert lrs[2.0]["means"] == pytest.approx(2.0 * lrs[1.0]["means"], rel=1e-9)
    assert lrs[2.0]["log_scales"] == pytest.approx(4.0 * lrs[1.0]["log_scales"], rel=1e-9)
    assert lrs[2.0]["log_scales"] == pytest.approx(4.0 * 0.005)
    assert lrs[2.0]["sh_dc"] == lrs[1.0]["sh_dc"]


def test_the_gradient_threshold_factor_decides_what_densifies(tmp_path, shared_data):
    def densified(mult: float) -> int:
        out = tmp_path / f"t{mult:g}"
        train(tiny_settings(shared_data, out, upscale_loop=UpscaleLoop(densify_grad_threshold_mult=mult)))
        log = json.loads((out / "train_summary.json").read_text())["log"]
        return sum(e.get("cloned", 0) + e.get("split", 0) for e in log)

    assert densified(1.0) > 0  # the tiny recipe clones and splits
    # 1e6 x the threshold: no mean gradient reaches it
    assert densified(1e6) == 0


def test_the_model_metadata_and_the_run_settings_state_the_loop(tmp_path, shared_data):
    loop = UpscaleLoop(lowres_dilation=0.2, native_every=3)
    s = tiny_settings(shared_data, tmp_path / "run", config={"iterations": 6}, upscale_loop=loop)
    res = train(s)
    meta = json.loads(open(res["metadata"]).read())
    assert meta["method"] == "hermite" and meta["upscale"] == 2.0 and meta["lowres_dilation"] == 0.2
    assert meta["lowres_derivatives"] == "full"
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["settings"]["upscale_loop"] == dataclasses.asdict(loop)
    other = dataclasses.asdict(dataclasses.replace(s, upscale_loop=UpscaleLoop(lowres_dilation=0.2)))
    diffs = settings_differences(summary["settings"], other)
    assert diffs == ["  upscale_loop.native_every: 3 in the checkpoint, 0 now"]


def test_a_first_order_loop_model_is_evaluated_and_viewed_through_hermite_first(tmp_path, shared_data):
    from splatup.train.evaluate import trained_render_options
    from splatup.view.settings import opening_settings

    s = tiny_settings(shared_data, tmp_path / "run", config={"iterations": 4},
                      upscale_loop=UpscaleLoop(derivatives="first"))
    res = train(s)
    meta = json.loads(open(res["metadata"]).read())
    assert meta["method"] == "hermite-first" and meta["lowres_derivatives"] == "first"
    opts, _ = trained_render_options(res["ply"])
    assert opts["method"] == "hermite-first" and opts["scale"] == 2.0
    settings, _ = opening_settings(res["ply"])
    assert settings.method == "hermite-first" and settings.factor == 2.0


@pytest.mark.parametrize("field, value", [
    ("derivatives", False), ("derivatives", "second"), ("lowres_dilation", "wide"), ("lowres_dilation", -0.1),
    ("native_fraction", 1.5), ("native_every", -1), ("native_every", 2.5), ("position_lr_mult", 0.0),
    ("scaling_lr_mult", float("nan")), ("densify_grad_threshold_mult", -1.0),
])
def test_bad_loop_options_are_named(tmp_path, field, value):
    s = _settings(dataclasses.replace(UpscaleLoop(), **{field: value}))
    s = dataclasses.replace(s, out_dir=str(tmp_path / "run"))
    with pytest.raises(su.SplatupInputError, match=f"upscale_loop.{field}"):
        train(s)
