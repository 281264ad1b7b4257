"""SSIM speed: the numba kernels of splatup.metrics.ssim against the previous torch conv2d implementation.

For each size (RGB float32, a random image and a noisy copy of it) one run times the following, interleaved round
by round with the order rotating (median and min of the repeats after warm-up):
  new_fwd     ssim(img, ref) with no graph (the metric)
  old_fwd     the old implementation likewise
  new_fwd_bwd (1 - ssim(img, ref)).backward() with img requiring grad (what a training step pays for the SSIM term)
  old_fwd_bwd the old implementation likewise (torch autograd)
The old implementation is the plain-torch twin splatup.reference.ssim. The claim is the ratio
old / new measured side by side in this run.

usage: python benchmarks/bench_ssim.py [--threads 2] [--repeats 30] [--sizes 400 800]
       [--out benchmarks/results/ssim.json]
"""

from __future__ import annotations

# isort: off
import splatup  # noqa: F401  (first: it sets the OpenMP spin policy before torch and numba load their runtime)

# isort: on
import argparse
import os
import platform
import statistics
from pathlib import Path

import numba
import torch

from splatup.bench.report import write_json
from splatup.bench.timing import interleaved_samples
from splatup.metrics import ssim
from splatup.reference import ssim as ssim_twin

ROOT = Path(__file__).resolve().parents[1]


def timed(fns: dict, repeats: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median and minimum ms of each callable, interleaved (splatup.bench.timing.interleaved_samples)."""
    samples = interleaved_samples(fns, repeats, warmup)
    return {n: {"median_ms": 1e3 * statistics.median(s), "min_ms": 1e3 * min(s)} for n, s in samples.items()}


def run_size(size: int, repeats: int, threads: int) -> dict:
    gen = torch.Generator().manual_seed(size)
    img = torch.rand(size, size, 3, generator=gen)
    ref = (img + 0.05 * torch.randn(img.shape, generator=gen)).clamp(0, 1)
    leaf = img.clone().requires_grad_(True)

    def fwd_bwd(fn):
        def run():
            leaf.grad = None
            (1 - fn(leaf, ref)).backward()
        return run

    def fwd(fn):
        def run():
            with torch.no_grad():
                fn(img, ref)
        return run

    fns = {"new_fwd": fwd(ssim), "old_fwd": fwd(ssim_twin),
           "new_fwd_bwd": fwd_bwd(ssim), "old_fwd_bwd": fwd_bwd(ssim_twin)}
    t = timed(fns, repeats)
    row = {"size": f"{size}x{size}x3", "times": t,
           "fwd_old_over_new": t["old_fwd"]["median_ms"] / t["new_fwd"]["median_ms"],
           "fwd_bwd_old_over_new": t["old_fwd_bwd"]["median_ms"] / t["new_fwd_bwd"]["median_ms"]}
    print(f"\n{size}x{size}x3 float32, {threads} threads, ms: median (min)")
    for n, v in t.items():
        print(f"  {n:12s} {v['median_ms']:8.2f} ({v['min_ms']:.2f})")
    print(f"  old / new: forward {row['fwd_old_over_new']:.1f}x, forward+backward {row['fwd_bwd_old_over_new']:.1f}x")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 800])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ssim.json")
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    results = [run_size(s, args.repeats, args.threads) for s in args.sizes]
    report = {"threads": args.threads, "repeats": args.repeats, "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "numba": numba.__version__, "torch": torch.__version__, "cases": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, report)
    print(f"\nload average before/after: {load_before} / {report['loadavg_after']}; wrote {args.out}")


if __name__ == "__main__":
    main()
