"""Training with gradient-aware upscaling in the loop against inference-only upscaling, on NeRF-synthetic mic.

For each width (training and test resolution; images area-downsampled from 800x800), one after the other in this
process so that seconds per iteration are measured side by side:
  (a)    native training at the width;
  (b) s  ``--upscale s`` for each s of --scales: rendered at 1/s with derivatives, Hermite-upscaled in the loop
         (the trainer's defaults for upscale > 1, ``UpscaleLoop()``, unless --loop overrides them).
Every model is evaluated on the test split at the width against the ground truth on white: (a) natively and through
Hermite at each s (inference-only upscaling: render at 1/s with the matched dilation, upscale), (b) s through its
own path (1/s + Hermite) and natively. PSNR / SSIM / LPIPS-Alex, seconds per training iteration (mean and median)
and the number of Gaussians go to one JSON file per width (--out-dir/train_upscale_<width>.json) and a Markdown
table is printed.

The densification schedule is pinned (--schedule), whatever the trainer's defaults are:
  3dgs    the 3DGS counts: densify from iteration 500 to iterations / 2 every 100, opacity reset every 3000 (and
          at 500 on white), SH degree raised every 1000;
  scaled  the counts of splatup.train.schedule.scaled_schedule for the run's length (for short runs).
Every run: random initialisation with --random-points points, seed --seed, white background.

usage: python benchmarks/experiment_train_upscale.py [--widths 400,800] [--scales 2,4] [--iterations 7000]
           [--schedule 3dgs] [--test-views 200] [--loop native_every=4 ...]
"""

from __future__ import annotations

# isort: off
import splatup  # noqa: F401  first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import dataclasses
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numba
import torch

from splatup.bench.report import write_json
from splatup.pipeline import render_lowres
from splatup.train.evaluate import evaluate
from splatup.train.model import TrainConfig
from splatup.train.schedule import scaled_schedule
from splatup.train.trainer import TrainSettings, train
from splatup.train.upscale_loop import UpscaleLoop
from splatup.upscale.hermite import upscale

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
WHITE = (1.0, 1.0, 1.0)


def pinned_schedule(kind: str, iterations: int) -> dict[str, int]:
    """The schedule's iteration counts, all explicit (see the module docstring)."""
    if kind == "3dgs":
        return {"densify_from_iter": 500, "densify_until_iter": iterations // 2, "densification_interval": 100,
                "opacity_reset_interval": 3000, "sh_increase_interval": 1000}
    if kind == "scaled":
        return scaled_schedule(iterations, TrainConfig.opacity_lr)
    raise SystemExit(f"--schedule must be '3dgs' or 'scaled', got {kind!r}")


def parse_loop(items: list[str]) -> UpscaleLoop:
    """``UpscaleLoop()`` with ``name=value`` overrides (values parsed as int, float, True/False or kept as text)."""
    fields = {f.name for f in dataclasses.fields(UpscaleLoop)}
    kw: dict[str, object] = {}
    for item in items:
        name, _, text = item.partition("=")
        if name not in fields or not text:
            raise SystemExit(f"--loop {item!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(fields))}")
        kw[name] = _value(text)
    loop = UpscaleLoop(**kw)
    loop.check()
    return loop


def _value(text: str) -> object:
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def train_run(dataset: str, out_dir: Path, width: int, upscale_factor: float, iterations: int, schedule: dict,
              loop: UpscaleLoop, seed: int = 0, random_points: int = 100_000, train_views: int | None = None,
              log_every: int = 500) -> dict:
    """Train one model from scratch into ``out_dir``; the trainer's result (with ``"model"``) and wall seconds."""
    cfg = TrainConfig(iterations=iterations, **schedule)
    settings = TrainSettings(dataset=dataset, out_dir=str(out_dir), upscale=upscale_factor, width=width,
                             white_background=True, init="random", random_points=random_points, seed=seed,
                             checkpoint_every=max(iterations, 1000), max_views=train_views, config=cfg,
                             upscale_loop=loop)
    t0 = time.perf_counter()
    res = train(settings, overwrite=True, on_message=lambda m: print(f"  {m}", flush=True),
                on_iteration=lambda it, e: (it % log_every == 0) and print(
                    f"  it {it}: loss {e['loss']:.4f} train PSNR {e['psnr']:.2f} N {e['gaussians']}", flush=True))
    res["wall_seconds"] = time.perf_counter() - t0
    return res


def warm_up(dataset: str, width: int, scales: list[float], loop: UpscaleLoop) -> None:
    """One forward and backward of every training path (native, and 1/s + Hermite for each s) and of the test
    renders, so that the first timed iteration does not include compiling (or loading) the kernels."""
    from splatup.io.datasets import load_dataset
    from splatup.train.init import random_gaussians
    from splatup.train.losses import photometric_loss
    from splatup.train.model import GaussianModel
    from splatup.train.trainer import load_views, render_for_training

    view = load_views(load_dataset(dataset, split="train"), width, WHITE, 1)[0]
    model = GaussianModel(random_gaussians(2000, 1.3, 3, torch.Generator().manual_seed(0)), TrainConfig(), 1.0)
    model.active_sh_degree = 3
    every_iteration_upscaled = dataclasses.replace(loop, native_fraction=0.0, native_every=0)
    for s in [1.0, *scales]:
        st = TrainSettings(dataset=dataset, out_dir="unused", upscale=s, width=width, white_background=True,
                           upscale_loop=every_iteration_upscaled)
        img, _, _ = render_for_training(model, view, st)
        photometric_loss(img, view.image).backward()
        model.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            if s > 1:
                render_lowres(model.scene(), view.camera, s, derivatives=True, background=WHITE)


def evaluate_model(scene, dataset: str, width: int, how: str, scale: float, test_views: int | None,
                   loop: UpscaleLoop | None = None, use_lpips: bool = True) -> dict:
    """Means over the test split of the model rendered ``how``: "native" or "hermite" at ``scale``. A ``loop``
    (the model's own training path) sets the low-res dilation and, for derivatives="first", renders with
    d2C/dxdy = 0 as it was trained."""
    kw = dict(dataset=dataset, split="test", width=width, background=WHITE, max_views=test_views,
              use_lpips=use_lpips)
    if how == "native":
        return evaluate(scene, method="native", **kw)["mean"]
    loop = loop or UpscaleLoop()
    if loop.derivatives is True:
        return evaluate(scene, method="hermite", scale=scale, lowres_dilation=loop.lowres_dilation, **kw)["mean"]
    return _evaluate_first_order(scene, scale, loop.lowres_dilation, **kw)


def _evaluate_first_order(scene, scale: float, lowres_dilation, dataset: str, split: str, width: int, background,
                          max_views: int | None, use_lpips: bool) -> dict:
    """:func:`evaluate` for the first-order Hermite path (d2C/dxdy = 0), which ``evaluate`` has no method for."""
    from splatup.io.datasets import load_dataset
    from splatup.metrics import lpips, psnr, ssim
    from splatup.train.trainer import load_views

    views = load_views(load_dataset(dataset, split=split), width, background, max_views)

    def render(cam):
        out, _ = render_lowres(scene, cam, scale, derivatives="first", background=background,
                               lowres_dilation=lowres_dilation)
        return upscale(out.color, out.dx, out.dy, out.dxy, size=(cam.height, cam.width)).clamp(0, 1)

    rows = []
    with torch.no_grad():
        render(views[0].camera)
        for v in views:
            t0 = time.perf_counter()
            img = render(v.camera)
            row = {"time_s": time.perf_counter() - t0, "psnr": float(psnr(img, v.image)),
                   "ssim": float(ssim(img, v.image))}
            if use_lpips:
                row["lpips"] = float(lpips(img, v.image))
            rows.append(row)
    mean = {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
    mean["median_time_s"] = statistics.median(r["time_s"] for r in rows)
    return mean


def run_width(dataset: str, work: Path, width: int, scales: list[float], iterations: int, schedule_kind: str,
              loop: UpscaleLoop, test_views: int | None, train_views: int | None, seed: int, random_points: int,
              use_lpips: bool, runs: list[str]) -> dict:
    """Train and evaluate (a) and (b) s at one width; the JSON-ready result."""
    schedule = pinned_schedule(schedule_kind, iterations)
    warm_up(dataset, width, scales, loop)
    out: dict = {"runs": {}, "load_average_at_start": os.getloadavg()}
    evals = {}
    for key in runs:
        s = 1.0 if key == "a" else float(key[1:])
        label = "(a) native" if key == "a" else f"(b) --upscale {s:g}"
        print(f"[{width}] training {label} for {iterations} iterations ...", flush=True)
        res = train_run(dataset, work / f"w{width}" / key, width, s, iterations, schedule, loop, seed,
                        random_points, train_views)
        scene = res["model"].export()
        if key == "a":
            rows = {"native": evaluate_model(scene, dataset, width, "native", 1.0, test_views, use_lpips=use_lpips)}
            for t in scales:
                rows[f"hermite x{t:g}"] = evaluate_model(scene, dataset, width, "hermite", t, test_views,
                                                         use_lpips=use_lpips)
        else:
            rows = {f"hermite x{s:g}": evaluate_model(scene, dataset, width, "hermite", s, test_views, loop,
                                                      use_lpips=use_lpips),
                    "native": evaluate_model(scene, dataset, width, "native", 1.0, test_views, use_lpips=use_lpips)}
        evals[key] = rows
        out["runs"][key] = {"label": label, "upscale": s, "ply": res["ply"], "wall_seconds": res["wall_seconds"],
                            "seconds_per_iteration": res["seconds_per_iteration"],
                            "median_seconds_per_iteration": res["median_seconds_per_iteration"],
                            "gaussians": res["gaussians"], "load_average_after": os.getloadavg(), "eval": rows}
        for how, m in rows.items():
            lp = f" LPIPS {m['lpips']:.4f}" if "lpips" in m else ""
            print(f"  {label} as {how}: PSNR {m['psnr']:.2f} SSIM {m['ssim']:.4f}{lp}", flush=True)
    out["schedule"] = schedule
    out["targets"] = targets(out["runs"])
    return out


def targets(runs: dict) -> dict:
    """(b) s through Hermite minus (a) through Hermite at s (PSNR, dB), and (b) s / (a) seconds per iteration."""
    t = {}
    a = runs.get("a")
    for key, r in runs.items():
        if key == "a" or a is None:
            continue
        how = f"hermite x{r['upscale']:g}"
        t[key] = {"psnr_gain_over_a_hermite": r["eval"][how]["psnr"] - a["eval"][how]["psnr"],
                  "cost_mean": r["seconds_per_iteration"] / a["seconds_per_iteration"],
                  "cost_median": r["median_seconds_per_iteration"] / a["median_seconds_per_iteration"]}
    return t


def markdown(width: int, result: dict) -> str:
    """The table of docs/training.md for one width."""
    lines = [f"| run ({width}x{width}) | evaluated as | test PSNR | SSIM | LPIPS (Alex) | render ms / view "
             "| s / iteration (mean, median) | Gaussians |", "|---|---|---:|---:|---:|---:|---|---:|"]
    for r in result["runs"].values():
        first = True
        for how, m in r["eval"].items():
            lp = f"{m['lpips']:.4f}" if "lpips" in m else "n/a"
            cost = (f"{r['seconds_per_iteration']:.4f}, {r['median_seconds_per_iteration']:.4f}" if first else "")
            gauss = f"{r['gaussians']:,}" if first else ""
            lines.append(f"| {r['label'] if first else ''} | {how} | {m['psnr']:.2f} | {m['ssim']:.4f} | {lp} | "
                         f"{1e3 * m['median_time_s']:.1f} | {cost} | {gauss} |")
            first = False
    for key, t in result["targets"].items():
        lines.append(f"\n{result['runs'][key]['label']}: through Hermite {t['psnr_gain_over_a_hermite']:+.2f} dB "
                     f"against (a) through Hermite; {t['cost_mean']:.2f}x (mean), {t['cost_median']:.2f}x (median) "
                     "of (a) per iteration")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="400", help="comma-separated training / test widths (e.g. 400,800)")
    ap.add_argument("--scales", default="2,4", help="comma-separated upscaling factors for (b)")
    ap.add_argument("--iterations", type=int, default=7000)
    ap.add_argument("--schedule", choices=("3dgs", "scaled"), default="3dgs")
    ap.add_argument("--test-views", type=int, default=200)
    ap.add_argument("--train-views", type=int, default=None, help="use only the first N training views")
    ap.add_argument("--random-points", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default=None, help="subset of a,b2,b4,... (default: a and every scale)")
    ap.add_argument("--loop", nargs="*", default=[], help="UpscaleLoop overrides NAME=VALUE for the (b) runs")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS (images too small for AlexNet)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dataset", type=Path, default=SHARED / "data" / "nerf_synthetic_mic")
    ap.add_argument("--work", type=Path, default=ROOT / "splatup-out" / "experiment_train_upscale")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    scales = [float(s) for s in args.scales.split(",")]
    runs = args.runs.split(",") if args.runs else ["a"] + [f"b{s:g}" for s in scales]
    loop = parse_loop(args.loop)
    results = {}
    for width in (int(w) for w in args.widths.split(",")):
        t0 = time.perf_counter()
        res = run_width(str(args.dataset), args.work, width, scales, args.iterations, args.schedule, loop,
                        args.test_views, args.train_views, args.seed, args.random_points, not args.no_lpips, runs)
        load = os.getloadavg()
        res["meta"] = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(),
                           python=platform.python_version(), torch=torch.__version__, numba=numba.__version__,
                           threads=numba.get_num_threads(), width=width, iterations=args.iterations,
                           schedule_kind=args.schedule, scales=scales, test_views=args.test_views,
                           train_views=args.train_views, random_points=args.random_points, seed=args.seed,
                           upscale_loop=dataclasses.asdict(loop), wall_seconds=time.perf_counter() - t0,
                           load_average_at_end=load,
                           peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
        path = args.out_dir / f"train_upscale_{width}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, res)
        print("\n" + markdown(width, res) + f"\n\nwrote {path}", flush=True)
        results[width] = res
    return results


if __name__ == "__main__":
    main()
