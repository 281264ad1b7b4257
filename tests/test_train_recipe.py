"""The 3DGS recipe at the value level, each against an expectation computed here by other means: the loss against
a hand-computed 0.8 L1 + 0.2 D-SSIM (textbook SSIM by direct convolution), the opacity reset against min(o, 0.01)
with Adam's moments zeroed, pruning after a reset on a hand-built scene whose casualties are known, the initial
scales against brute-force nearest neighbours, the schedule rule for short runs, a resume across densification
steps that really clone and split, and ``evaluate(method="hermite")`` against renders made here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

import splatup as su
from scenes import front_camera, random_scene
from splatup.io.images import area_downsample, read_image
from splatup.train.evaluate import evaluate
from splatup.train.init import gaussians_from_points, random_gaussians
from splatup.train.losses import photometric_loss
from splatup.train.model import GaussianModel, TrainConfig
from splatup.train.schedule import opacity_recovery_iterations, resolve_schedule
from splatup.train.trainer import train
from tiny_training import tiny_settings


# ---------------------------------------------------------------------------------------------- loss
def _textbook_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM as 3DGS computes it, written out: 11x11 Gaussian window (sigma 1.5), zero padding, C1 = 0.01^2,
    C2 = 0.03^2, the map averaged over pixels and channels; float64, per channel by direct 2D correlation."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)

    def blur(img):
        return correlate2d(img, w, mode="same", boundary="fill", fillvalue=0.0)

    maps = []
    for c in range(a.shape[2]):
        x_, y_ = a[..., c], b[..., c]
        mx, my = blur(x_), blur(y_)
        vx, vy, cxy = blur(x_ * x_) - mx**2, blur(y_ * y_) - my**2, blur(x_ * y_) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(maps))


def test_photometric_loss_is_0_8_l1_plus_0_2_dssim():
    g = torch.Generator().manual_seed(4)
    ref = torch.rand(30, 26, 3, generator=g)
    img = (ref + 0.25 * torch.randn(30, 26, 3, generator=g)).clamp(0, 1)
    a, b = img.double().numpy(), ref.double().numpy()
    l1 = float(np.abs(a - b).mean())
    dssim = 1.0 - _textbook_ssim(a, b)
    expected = 0.8 * l1 + 0.2 * dssim  # 3DGS: (1 - lambda) L1 + lambda (1 - SSIM), lambda = 0.2
    swapped = 0.2 * l1 + 0.8 * dssim
    assert abs(swapped - expected) > 1000 * 1e-5 * expected  # the weightings are told apart by the tolerance below
    assert float(photometric_loss(img, ref)) == pytest.approx(expected, rel=1e-5)
    assert float(photometric_loss(img, ref, lambda_dssim=0.0)) == pytest.approx(l1, rel=1e-6)
    assert float(photometric_loss(img, ref, lambda_dssim=1.0)) == pytest.approx(dssim, rel=1e-5)
    assert float(photometric_loss(ref, ref)) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------- opacity reset
def test_reset_opacity_clamps_to_0_01_and_zeroes_only_the_opacity_moments():
    cam = front_camera(48, 40)
    opac = torch.tensor([0.001, 0.005, 0.0099, 0.01, 0.02, 0.3, 0.9, 0.999])
    scene = random_scene(len(opac), cam, seed=1)
    scene.opacity_logits = torch.logit(opac.double()).float()
    model = GaussianModel(scene, TrainConfig(sh_degree=0), extent=1.0)
    for _ in range(2):  # give every parameter non-zero Adam moments
        s = model.scene()
        (s.means.sum() + (s.opacity_logits**2).sum() + s.log_scales.sum() + s.sh.sum() + s.quats.sum()).backward()
        model.optimizer.step()
        model.optimizer.zero_grad()
    before = {n: p.detach().clone() for n, p in model.params.items()}
    moments = {n: {k: v.clone() for k, v in model.optimizer.state[p].items()} for n, p in model.params.items()}
    assert (moments["opacity_logits"]["exp_avg"] != 0).all()

    model.reset_opacity()
    new = torch.sigmoid(model.params["opacity_logits"].detach().double())
    expected = torch.minimum(torch.sigmoid(before["opacity_logits"].double()), torch.tensor(0.01, dtype=torch.float64))
    torch.testing.assert_close(new, expected, rtol=1e-6, atol=0)
    low = torch.sigmoid(before["opacity_logits"].double()) < 0.01
    assert torch.equal(model.params["opacity_logits"][low], before["opacity_logits"][low])  # untouched below 0.01
    p = model.params["opacity_logits"]
    group = next(g for g in model.optimizer.param_groups if g["name"] == "opacity_logits")
    assert group["params"][0] is p  # the optimizer steps the new tensor
    st = model.optimizer.state[p]
    assert (st["exp_avg"] == 0).all() and (st["exp_avg_sq"] == 0).all()
    for name, param in model.params.items():
        if name != "opacity_logits":
            assert torch.equal(param, before[name]), name
            for k in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(model.optimizer.state[param][k], moments[name][k]), (name, k)


# ---------------------------------------------------------------------------------------------- pruning
def test_pruning_after_an_opacity_reset_removes_big_screen_and_world_sizes():
    """Six Gaussians, extent 2 (world limit 0.1 x 2 = 0.2), screen limit 20 px; no gradients, so nothing is cloned
    or split. Before the first reset only the transparent one goes; after it the too-big ones go too."""
    cam = front_camera(64, 48)
    scales = torch.tensor([0.05, 0.05, 0.22, 0.19, 0.05, 0.05])  # largest axis, world units
    radii = torch.tensor([5.0, 25.0, 5.0, 19.0, 5.0, 20.0])  # largest screen radius seen, px
    opac = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.004, 0.5])
    # G0 fine, G1 too big on screen, G2 too big in the world, G3 just under both, G4 transparent, G5 exactly 20 px

    def model_at() -> GaussianModel:
        scene = random_scene(6, cam, seed=3)
        scene.log_scales = torch.log(torch.stack([scales, scales / 2, scales / 3], dim=1))
        scene.opacity_logits = torch.logit(opac.double()).float()
        scene.means[:, 0] = torch.arange(6, dtype=torch.float32)  # identifies each Gaussian
        m = GaussianModel(scene, TrainConfig(sh_degree=0, opacity_reset_interval=3000), extent=2.0)
        m.max_radii = radii.clone()
        m.denom[:] = 1.0  # seen, with zero gradient
        return m

    def survivors(m):
        return m.params["means"][:, 0].round().long().tolist()

    m = model_at()
    counts = m.densify_and_prune(iteration=3000)  # not after a reset yet: opacity only
    assert counts == {"cloned": 0, "split": 0, "pruned": 1} and survivors(m) == [0, 1, 2, 3, 5]
    m = model_at()
    counts = m.densify_and_prune(iteration=3001)
    assert counts == {"cloned": 0, "split": 0, "pruned": 3} and survivors(m) == [0, 3, 5]


# ---------------------------------------------------------------------------------------------- initial scales
def test_initial_scale_is_the_root_mean_square_distance_to_the_three_nearest_neighbours():
    g = torch.Generator().manual_seed(7)
    pts = torch.rand(150, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    pts[10] = pts[11]  # a duplicate: distance 0 among its neighbours
    pts[20:24] = pts[20]  # four at one place: all three neighbour distances 0, floored at 1e-7 squared distance
    d = torch.cdist(pts, pts)
    d.fill_diagonal_(math.inf)
    nearest3 = d.sort(dim=1).values[:, :3]
    expected = torch.log(torch.sqrt((nearest3**2).mean(dim=1).clamp_min(1e-7)))  # 3DGS: log(sqrt(distCUDA2))
    scene = gaussians_from_points(pts.float(), torch.full((150, 3), 0.5))
    for axis in range(3):
        torch.testing.assert_close(scene.log_scales[:, axis].double(), expected, rtol=0, atol=2e-6)
    assert scene.log_scales[21, 0] == pytest.approx(0.5 * math.log(1e-7), abs=1e-5)


# ---------------------------------------------------------------------------------------------- schedule
def test_the_schedule_scales_to_short_runs_by_the_documented_rule():
    full, warnings, notes = resolve_schedule(TrainConfig(iterations=30_000))
    assert (full.densify_from_iter, full.densify_until_iter, full.densification_interval,
            full.opacity_reset_interval, full.sh_increase_interval) == (500, 15_000, 100, 3000, 1000)
    assert warnings == [] and notes == []
    assert resolve_schedule(TrainConfig(iterations=100_000))[0].densify_until_iter == 15_000
    # R = 2 (logit(0.5) - logit(0.01)) / 0.025 = 2 * 4.59512 / 0.025 = 367.6
    assert opacity_recovery_iterations(0.025) == 368
    short, warnings, notes = resolve_schedule(TrainConfig(iterations=300))
    assert (short.densify_from_iter, short.densify_until_iter, short.densification_interval,
            short.opacity_reset_interval, short.sh_increase_interval) == (5, 150, 10, 368, 10)
    assert warnings == [] and "300-iteration" in notes[0]
    mid = resolve_schedule(TrainConfig(iterations=7000))[0]
    assert (mid.densify_from_iter, mid.densify_until_iter, mid.densification_interval,
            mid.opacity_reset_interval, mid.sh_increase_interval) == (117, 3500, 23, 700, 233)
    # explicit values are kept; the old CLI default for 300 iterations (from 500, until 150) is reported
    kept, warnings, _ = resolve_schedule(TrainConfig(iterations=300, densify_from_iter=500, densify_until_iter=150))
    assert (kept.densify_from_iter, kept.densify_until_iter) == (500, 150)
    assert len(warnings) == 1 and "never densifies" in warnings[0]
    with pytest.raises(su.SplatupInputError, match="densification_interval"):
        resolve_schedule(TrainConfig(iterations=300, densification_interval=0))


# ---------------------------------------------------------------------------------------------- resume
def test_resume_across_densification_steps_that_clone_and_split(tmp_path, shared_data):
    """Stopped at iteration 17, resumed to 40: the steps at 20 and 25 clone and split (and 20 resets opacities,
    after which size pruning is active); parameters and Adam state end equal to the uninterrupted run's."""
    straight = train(tiny_settings(shared_data, tmp_path / "a", checkpoint_every=1000))
    s = tiny_settings(shared_data, tmp_path / "b", checkpoint_every=1000)
    stopped = train(s, stop_after=17)
    assert stopped["iterations"] == 17 and not stopped["finished"]
    resumed = train(s, resume=True)
    log = {e["iteration"]: e for e in train_log(tmp_path / "b")}
    crossed = [e for it, e in log.items() if it > 17 and e.get("cloned", 0) > 0 and e.get("split", 0) > 0]
    assert crossed, log
    assert len(resumed["model"]) != stopped["gaussians"]
    a, b = straight["model"], resumed["model"]
    assert len(a) == len(b)
    for name, p in a.params.items():
        assert torch.equal(p, b.params[name]), name
        sa, sb = a.optimizer.state[p], b.optimizer.state[b.params[name]]
        for k in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[k], sb[k]), (name, k)


def train_log(run_dir) -> list[dict]:
    import json

    return json.loads((run_dir / "train_summary.json").read_text())["log"]


# ---------------------------------------------------------------------------------------------- evaluate
def test_evaluate_hermite_matches_renders_made_here(shared_data):
    from splatup.io.datasets import load_dataset

    mic = shared_data / "nerf_synthetic_mic"
    ds = load_dataset(str(mic), split="test")
    scene = random_gaussians(3000, 0.6, 1, torch.Generator().manual_seed(2))
    scene.opacity_logits[:] = 1.0
    white = (1.0, 1.0, 1.0)
    res = evaluate(scene, str(mic), split="test", width=48, method="hermite", scale=2, background=white,
                   max_views=2, use_lpips=False)
    assert res["method"] == "hermite" and res["scale"] == 2 and (res["width"], res["height"]) == (48, 48)
    psnrs = []
    for row, view in zip(res["per_view"], ds.views[:2]):
        cam = view.camera.resized(48, 48)
        gt = area_downsample(read_image(view.image_path, background=white), (48, 48))
        img = su.render(scene, cam, scale=2, method="hermite", background=white).clamp(0, 1)
        mse = float(((img.double() - gt.double()) ** 2).mean())
        assert row["psnr"] == pytest.approx(-10 * math.log10(mse), abs=1e-3)
        psnrs.append(row["psnr"])
    native = evaluate(scene, str(mic), split="test", width=48, method="native", background=white, max_views=2,
                      use_lpips=False)
    bicubic = evaluate(scene, str(mic), split="test", width=48, method="bicubic", scale=2, background=white,
                       max_views=2, use_lpips=False)
    for other in (native, bicubic):  # the path matters on this scene: a different method gives other numbers
        assert all(abs(r["psnr"] - p) > 1e-3 for r, p in zip(other["per_view"], psnrs))
