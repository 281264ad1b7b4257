"""What holds back training through the upscaler: variants of ``UpscaleLoop`` against inference-only upscaling.

NeRF-synthetic mic at --width (400), one upscaling factor s (2), the same iterations, seed and pinned 3DGS schedule
for every run (see experiment_train_upscale.py). (a) is trained natively once and evaluated natively and through
Hermite x s (the baseline); each variant (b) is trained with --upscale s and the variant's ``UpscaleLoop`` (given in
full, so that the table does not depend on the trainer's defaults) and evaluated through its own path and
natively. With --variants a subset runs and is merged into an existing --out file (the costs of runs from
different invocations are then not side by side: compare the medians with care).

usage: python benchmarks/ablation_train_upscale.py [--iterations 3000] [--variants baseline,first,...]
"""

from __future__ import annotations

# isort: off
import splatup  # noqa: F401  first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiment_train_upscale import (  # noqa: E402
    ROOT,
    SHARED,
    evaluate_model,
    pinned_schedule,
    train_run,
    warm_up,
)
from splatup.bench.report import write_json  # noqa: E402
from splatup.train.upscale_loop import UpscaleLoop  # noqa: E402

#: the loop before this ablation: full derivatives, matched dilation, every iteration upscaled, 3DGS rates
BASELINE = UpscaleLoop(derivatives=True, lowres_dilation="matched", native_fraction=0.0, native_every=0,
                       position_lr_mult=1.0, scaling_lr_mult=1.0, densify_grad_threshold_mult=1.0)
VARIANTS = {
    "baseline": {},
    "first": {"derivatives": "first"},
    "dilation usual": {"lowres_dilation": "usual"},
    "dilation 0.15": {"lowres_dilation": 0.15},
    "native first 1/4": {"native_fraction": 0.25},
    "native every 4": {"native_every": 4},
    "means lr x2": {"position_lr_mult": 2.0},
    "means lr x0.5": {"position_lr_mult": 0.5},
    "scales lr x2": {"scaling_lr_mult": 2.0},
    "grad threshold x0.5": {"densify_grad_threshold_mult": 0.5},
    "grad threshold x2": {"densify_grad_threshold_mult": 2.0},
}


def variant_loop(name: str, extra: dict | None = None) -> UpscaleLoop:
    return dataclasses.replace(BASELINE, **VARIANTS[name], **(extra or {}))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--test-views", type=int, default=200)
    ap.add_argument("--variants", default="a," + ",".join(VARIANTS),
                    help="comma-separated: 'a' (native baseline) and names of VARIANTS")
    ap.add_argument("--combine", default=None,
                    help="extra variant: '+'-joined names of VARIANTS applied together (e.g. 'first+native every 4')")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "splatup-out" / "ablation_train_upscale")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "ablation_train_upscale.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = str(SHARED / "data" / "nerf_synthetic_mic")
    schedule = pinned_schedule("3dgs", args.iterations)
    names = [n for n in args.variants.split(",") if n]
    specs: dict[str, UpscaleLoop] = {}
    for n in names:
        if n != "a" and n not in VARIANTS:
            raise SystemExit(f"--variants: unknown {n!r}; expected 'a' or one of {', '.join(VARIANTS)}")
    if args.combine:
        parts = args.combine.split("+")
        kw: dict = {}
        for p in parts:
            kw.update(VARIANTS[p])
        specs[args.combine] = dataclasses.replace(BASELINE, **kw)
    for n in names:
        if n != "a":
            specs[n] = variant_loop(n)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": {}}
    warm_up(dataset, args.width, [args.scale], BASELINE)
    s = args.scale
    how = f"hermite x{s:g}"
    todo = (["a"] if "a" in names else []) + list(specs)
    for name in todo:
        loop = specs.get(name, BASELINE)
        if name != "a":
            warm_up(dataset, args.width, [s], loop)
        print(f"training {name} for {args.iterations} iterations ...", flush=True)
        load0 = os.getloadavg()
        res = train_run(dataset, args.work / name.replace(" ", "_").replace("/", "-"), args.width,
                        1.0 if name == "a" else s, args.iterations, schedule, loop)
        scene = res["model"].export()
        rows = {how: evaluate_model(scene, dataset, args.width, "hermite", s, args.test_views,
                                    None if name == "a" else loop),
                "native": evaluate_model(scene, dataset, args.width, "native", 1.0, args.test_views)}
        results["runs"][name] = {"upscale_loop": None if name == "a" else dataclasses.asdict(loop),
                                 "seconds_per_iteration": res["seconds_per_iteration"],
                                 "median_seconds_per_iteration": res["median_seconds_per_iteration"],
                                 "gaussians": res["gaussians"], "load_average_before": load0,
                                 "load_average_after": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "eval": rows}
        print(f"  {name}: {how} PSNR {rows[how]['psnr']:.2f}, native {rows['native']['psnr']:.2f}, "
              f"{res['median_seconds_per_iteration']:.4f} s/it (median), {res['gaussians']} Gaussians", flush=True)
        results["meta"] = {"width": args.width, "scale": s, "iterations": args.iterations, "schedule": schedule,
                           "test_views": args.test_views, "seed": 0, "random_points": 100_000}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, results)
    print("\n" + markdown(results, how))
    return results


def markdown(results: dict, how: str) -> str:
    runs = results["runs"]
    a = runs.get("a")
    lines = [f"| variant | through its path: PSNR | vs (a) {how} | SSIM | LPIPS | native PSNR "
             "| s / iteration (median) | Gaussians |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in runs.items():
        m = r["eval"][how]
        gain = f"{m['psnr'] - a['eval'][how]['psnr']:+.2f}" if a else "n/a"
        label = "(a) native, through Hermite" if name == "a" else name
        lines.append(f"| {label} | {m['psnr']:.2f} | {gain} | {m['ssim']:.4f} | {m['lpips']:.4f} | "
                     f"{r['eval']['native']['psnr']:.2f} | {r['median_seconds_per_iteration']:.4f} | "
                     f"{r['gaussians']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
