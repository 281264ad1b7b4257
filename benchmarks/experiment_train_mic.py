"""Training with gradient-aware upscaling in the loop, on NeRF-synthetic mic at 400x400 (issue 4's experiment).

Three runs with the same number of iterations, one after the other in this process (so seconds per iteration
are measured on the same machine in one run; with --runs a subset runs and is merged into an existing --out file,
whose meta then describes the last invocation; peak_rss_gb is the process's maximum over its runs):
  (a) native      train at 400x400 (images area-downsampled from 800)
  (b) upscale 2   train at 400x400 rendering at 200x200 with derivatives + Hermite upscaling in the loop
                  (the 200x200 render keeps the native filter, dilation 0.3 / 4 low-res px^2)
  (c) low-res     train natively at 200x200; at test time render at 200x200 (its own 0.3 px^2 filter) and
                  upscale with bicubic to 400x400
Test split (200 views) at 400x400 against the ground truth on white: PSNR, SSIM, LPIPS-Alex, time per view.
(b) is evaluated both through its training path (render at 200 + Hermite x2) and rendered natively at 400.

usage: python benchmarks/experiment_train_mic.py [--iterations 7000] [--test-views 200] [--out docs/results/...]
"""

from __future__ import annotations

# isort: off
import splatup  # noqa: F401  first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numba
import torch

from splatup.bench.report import write_json
from splatup.train.evaluate import evaluate
from splatup.train.model import TrainConfig
from splatup.train.trainer import TrainSettings, train

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=7000)
    ap.add_argument("--test-views", type=int, default=200)
    ap.add_argument("--work", type=Path, default=ROOT / "splatup-out" / "experiment_mic")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "train_mic.json")
    ap.add_argument("--runs", default="a,b,c")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dataset = str(SHARED / "data" / "nerf_synthetic_mic")
    n = args.iterations
    cfg = TrainConfig(iterations=n, densify_until_iter=n // 2)
    runs = {
        "a": dict(label="(a) native 400", upscale=1.0, width=400),
        "b": dict(label="(b) --upscale 2 at 400", upscale=2.0, width=400),
        "c": dict(label="(c) native 200", upscale=1.0, width=200),
    }
    results = {}
    if args.out.is_file():
        results = json.loads(args.out.read_text()).get("runs", {})
    for key in args.runs.split(","):
        spec = runs[key]
        settings = TrainSettings(dataset=dataset, out_dir=str(args.work / key), upscale=spec["upscale"],
                                 width=spec["width"], white_background=True, init="random", random_points=100_000,
                                 seed=0, checkpoint_every=1000, config=cfg)
        print(f"training {spec['label']} for {n} iterations ...", flush=True)
        t0 = time.perf_counter()
        res = train(settings, on_iteration=lambda it, e: (it % 500 == 0) and print(
            f"  it {it}: loss {e['loss']:.4f} train PSNR {e['psnr']:.2f} N {e['gaussians']}", flush=True))
        wall = time.perf_counter() - t0
        scene = res["model"].export()
        evals = {}
        kw = dict(dataset=dataset, split="test", width=400, background=(1.0, 1.0, 1.0), max_views=args.test_views)
        if key == "a":
            evals["native"] = evaluate(scene, method="native", **kw)
        elif key == "b":
            evals["hermite x2"] = evaluate(scene, method="hermite", scale=2.0, **kw)
            evals["native"] = evaluate(scene, method="native", **kw)
        else:
            evals["bicubic x2"] = evaluate(scene, method="bicubic", scale=2.0, lowres_dilation="usual", **kw)
        results[key] = {"label": spec["label"], "train_seconds": wall,
                        "seconds_per_iteration": res["seconds_per_iteration"],
                        "median_seconds_per_iteration": res["median_seconds_per_iteration"],
                        "gaussians": res["gaussians"],
                        "eval": {k: v["mean"] for k, v in evals.items()}}
        for k, v in evals.items():
            m = v["mean"]
            print(f"  {spec['label']} eval {k}: PSNR {m['psnr']:.2f} SSIM {m['ssim']:.4f} LPIPS {m['lpips']:.4f} "
                  f"{1e3 * m['median_time_s']:.1f} ms/view", flush=True)
        meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(),
                    python=platform.python_version(), torch=torch.__version__, numba=numba.__version__,
                    threads=numba.get_num_threads(), iterations=n, test_views=args.test_views,
                    peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, {"meta": meta, "runs": results})
    if all(k in results for k in "abc"):
        a, b = results["a"], results["b"]
        print(f"\n(b)/(a) seconds per iteration: {b['seconds_per_iteration'] / a['seconds_per_iteration']:.3f}")
        print(f"(b) hermite - (a) native PSNR: {b['eval']['hermite x2']['psnr'] - a['eval']['native']['psnr']:+.2f} dB")
        print(f"(b) hermite - (c) bicubic PSNR: "
              f"{b['eval']['hermite x2']['psnr'] - results['c']['eval']['bicubic x2']['psnr']:+.2f} dB")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
