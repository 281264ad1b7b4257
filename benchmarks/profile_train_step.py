"""Where a training step's time goes, native vs --upscale 2 (issue 4's cost question), side by side in one run.

NeRF-synthetic mic at 400x400, a model of N random Gaussians (the trainer's random init) or a trained .ply (--scene),
SH degree 3 active, white background. Per mode: the median over repeats of the step's stages (render, loss,
backward, Adam) and, from torch.profiler, the self CPU time of the named kernels (projection, compositing, Hermite
upscaling, SSIM, fused Adam forward and backward), from which the per-Gaussian work (the same in both modes) and the
per-pixel work (which upscaling reduces) can be read off.

usage: python benchmarks/profile_train_step.py [--gaussians 100000 | --scene point_cloud.ply] [--repeats 20] [--out ...]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from splatup.bench.report import write_json
from splatup.io.datasets import load_dataset
from splatup.train.losses import photometric_loss
from splatup.train.model import GaussianModel, TrainConfig
from splatup.train.trainer import TrainSettings, initial_scene, load_views, render_for_training, scene_extent

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
KERNELS = ("_ProjectFunction", "_ProjectFunctionBackward", "_Composite", "_CompositeBackward", "HermiteUpscale",
           "HermiteUpscaleBackward", "_SSIMFunction", "_SSIMFunctionBackward", "aten::_fused_adam_")


def _step(model: GaussianModel, views: list, st: TrainSettings, cfg: TrainConfig, i: int) -> list[float]:
    """One training step on view i; seconds of render, loss, backward and Adam."""
    v = views[i % len(views)]
    ts = [time.perf_counter()]
    img, _, _ = render_for_training(model, v, st)
    ts.append(time.perf_counter())
    loss = photometric_loss(img, v.image, cfg.lambda_dssim)
    ts.append(time.perf_counter())
    loss.backward()
    ts.append(time.perf_counter())
    with torch.no_grad():
        model.optimizer.step()
        model.optimizer.zero_grad(set_to_none=True)
    ts.append(time.perf_counter())
    return [b - a for a, b in zip(ts, ts[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaussians", type=int, default=100_000)
    ap.add_argument("--scene", type=Path, default=None,
                    help="start from this trained .ply (e.g. the experiment's point_cloud.ply) instead of random init")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_step.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dataset = str(SHARED / "data" / "nerf_synthetic_mic")
    ds = load_dataset(dataset, split="train")
    cfg = TrainConfig(iterations=7000, densify_until_iter=3500)
    results = {}
    for upscale in (1.0, 2.0):
        st = TrainSettings(dataset=dataset, out_dir="unused", upscale=upscale, width=400, white_background=True,
                           init="random", random_points=args.gaussians, seed=0, config=cfg)
        views = load_views(ds, 400, st.background, 8)
        scene = su.load_scene(args.scene) if args.scene else initial_scene(st, ds, torch.Generator().manual_seed(0))
        model = GaussianModel(scene, cfg, scene_extent([v.camera for v in views]))
        model.active_sh_degree = cfg.sh_degree

        def step(i: int, m=model, vs=views, s=st) -> list[float]:
            return _step(m, vs, s, cfg, i)

        for i in range(5):
            step(i)
        rows = [step(i) for i in range(args.repeats)]
        stages = {k: 1e3 * statistics.median(r[j] for r in rows) for j, k in enumerate(("render", "loss", "backward",
                                                                                         "adam"))}
        stages["step"] = 1e3 * statistics.median(sum(r) for r in rows)
        n_prof = 10
        with torch.profiler.profile() as prof:
            for i in range(n_prof):
                step(i)
        kern = {e.key: 1e-3 * e.self_cpu_time_total / n_prof for e in prof.key_averages() if e.key in KERNELS}
        results[f"upscale {upscale:g}"] = {"stages_ms": stages, "kernel_self_cpu_ms": kern, "gaussians": len(model)}
    a, b = results["upscale 1"], results["upscale 2"]
    what = f"{args.scene.name} ({a['gaussians']} Gaussians)" if args.scene else f"{args.gaussians} random Gaussians"
    print(f"mic 400x400, {what}, SH degree 3; ms, medians of {args.repeats} steps")
    print(f"{'':28s} {'native':>8s} {'upscale 2':>10s}")
    for k in a["stages_ms"]:
        print(f"{k:28s} {a['stages_ms'][k]:8.1f} {b['stages_ms'][k]:10.1f}")
    print("kernels (self CPU per step, profiled):")
    for k in KERNELS:
        print(f"  {k:26s} {a['kernel_self_cpu_ms'].get(k, 0.0):8.1f} {b['kernel_self_cpu_ms'].get(k, 0.0):10.1f}")
    print(f"step upscale 2 / native: {b['stages_ms']['step'] / a['stages_ms']['step']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
