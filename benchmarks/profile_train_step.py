"""Where a training step's time goes, native against upscaling in the loop, side by side in one run.

NeRF-synthetic mic at --width (400 or 800), a model of N random Gaussians (the trainer's random init) or a trained
.ply (--scene), SH degree 3 active, white background. Modes: native, and ``--upscale S`` with the trainer's
``UpscaleLoop`` (full derivatives) and with derivatives="first". Each mode trains its own copy of the model; the
steps are interleaved (one step of every mode per round, the order rotating) so that a machine whose load changes
slows every mode alike. Per mode: the median over the rounds of the step's stages (render, loss, backward, Adam)
and, from torch.profiler, the self CPU time of the named kernels (projection, compositing, Hermite upscaling, SSIM,
fused Adam forward and backward), from which the per-Gaussian work (the same in every mode) and the per-pixel work
(which upscaling reduces) can be read off.

usage: python benchmarks/profile_train_step.py [--width 400] [--scale 2] [--gaussians 100000 | --scene x.ply]
           [--repeats 20] [--out ...]
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
from splatup.train.upscale_loop import UpscaleLoop

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
KERNELS = ("_ProjectFunction", "_ProjectFunctionBackward", "_Composite", "_CompositeBackward", "HermiteUpscale",
           "HermiteUpscaleBackward", "_SSIMFunction", "_SSIMFunctionBackward", "aten::_fused_adam_")
STAGES = ("render", "loss", "backward", "adam")


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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--gaussians", type=int, default=100_000)
    ap.add_argument("--scene", type=Path, default=None,
                    help="start from this trained .ply (e.g. an experiment's point_cloud.ply) instead of random init")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-first", action="store_true", help="leave out the derivatives='first' mode")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_step.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = str(SHARED / "data" / "nerf_synthetic_mic")
    ds = load_dataset(dataset, split="train")
    cfg = TrainConfig(iterations=7000, densify_until_iter=3500)
    s = args.scale
    modes = {"native": (1.0, UpscaleLoop()), f"upscale {s:g}": (s, UpscaleLoop())}
    if not args.no_first:
        modes[f"upscale {s:g} first"] = (s, UpscaleLoop(derivatives="first"))
    runners = {}
    for name, (upscale, loop) in modes.items():
        st = TrainSettings(dataset=dataset, out_dir="unused", upscale=upscale, width=args.width, white_background=True,
                           init="random", random_points=args.gaussians, seed=0, config=cfg, upscale_loop=loop)
        views = load_views(ds, args.width, st.background, 8)
        scene = su.load_scene(args.scene) if args.scene else initial_scene(st, ds, torch.Generator().manual_seed(0))
        model = GaussianModel(scene, cfg, scene_extent([v.camera for v in views]))
        model.active_sh_degree = cfg.sh_degree
        runners[name] = (model, views, st)
    names = list(runners)
    rows: dict[str, list[list[float]]] = {n: [] for n in names}
    load0 = os.getloadavg()
    for i in range(5 + args.repeats):  # 5 warm-up rounds
        k = i % len(names)
        for n in names[k:] + names[:k]:
            model, views, st = runners[n]
            r = _step(model, views, st, cfg, i)
            if i >= 5:
                rows[n].append(r)
    results = {}
    for n in names:
        model, views, st = runners[n]
        stages = {k: 1e3 * statistics.median(r[j] for r in rows[n]) for j, k in enumerate(STAGES)}
        stages["step"] = 1e3 * statistics.median(sum(r) for r in rows[n])
        n_prof = 10
        with torch.profiler.profile() as prof:
            for i in range(n_prof):
                _step(model, views, st, cfg, i)
        kern = {e.key: 1e-3 * e.self_cpu_time_total / n_prof for e in prof.key_averages() if e.key in KERNELS}
        results[n] = {"stages_ms": stages, "kernel_self_cpu_ms": kern, "gaussians": len(model)}
    a = results["native"]
    what = f"{args.scene.name} ({a['gaussians']} Gaussians)" if args.scene else f"{args.gaussians} random Gaussians"
    print(f"mic {args.width}x{args.width}, {what}, SH degree 3; ms, medians of {args.repeats} interleaved steps")
    print(f"{'':28s}" + "".join(f"{n:>18s}" for n in names))
    for k in a["stages_ms"]:
        print(f"{k:28s}" + "".join(f"{results[n]['stages_ms'][k]:18.1f}" for n in names))
    print("kernels (self CPU per step, profiled):")
    for k in KERNELS:
        print(f"  {k:26s}" + "".join(f"{results[n]['kernel_self_cpu_ms'].get(k, 0.0):18.1f}" for n in names))
    for n in names[1:]:
        print(f"step {n} / native: {results[n]['stages_ms']['step'] / a['stages_ms']['step']:.2f}")
    out = {"meta": {"width": args.width, "scale": s, "scene": str(args.scene) if args.scene else None,
                    "gaussians": a["gaussians"], "repeats": args.repeats, "threads": args.threads,
                    "load_average_before": load0, "load_average_after": os.getloadavg(),
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")}, "modes": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, out)
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
