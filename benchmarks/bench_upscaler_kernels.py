"""Micro-benchmark of the upscaler kernels against cv2.resize(INTER_CUBIC) at the same output size.

For each case (low-res size -> output size, RGB float32, random data) one run times, interleaved round by
round with the order rotating (median and min of the repeats after warm-up):
  hermite         su.upscale(color, dx, dy, dxy, size, clamp=True)   (public API, no autograd graph)
  hermite_bwd     the adjoint alone (gradients of all four inputs from an output gradient)
  hermite_fwd_bwd forward + backward through autograd (what a training step pays)
  bicubic         su.upscale_classic(color, size, "bicubic")
  cv2_cubic       cv2.resize(color, INTER_CUBIC)  (reads only the colour image, a quarter of Hermite's input)
  torch_bicubic   F.interpolate(bicubic, align_corners=False) on NCHW
The claim is the ratio hermite / cv2_cubic measured side by side in this run.

usage: python benchmarks/bench_upscaler_kernels.py [--threads 2] [--repeats 30]
       [--out benchmarks/results/upscaler_kernels.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import os
import platform
import statistics
from pathlib import Path

import cv2
import numba
import numpy as np
import torch
import torch.nn.functional as F

from splatup.bench.report import write_json
from splatup.bench.timing import interleaved_samples
from splatup.upscale.hermite import hermite_backward

ROOT = Path(__file__).resolve().parents[1]
CASES = [((360, 640), (720, 1280)), ((540, 960), (1080, 1920)), ((360, 640), (1080, 1920)), ((455, 810), (1080, 1920))]


def timed(fns: dict, repeats: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median and minimum ms of each callable, interleaved (splatup.bench.timing.interleaved_samples)."""
    samples = interleaved_samples(fns, repeats, warmup)
    return {n: {"median_ms": 1e3 * statistics.median(s), "min_ms": 1e3 * min(s)} for n, s in samples.items()}


def run_case(rng: np.random.Generator, lr: tuple[int, int], hr: tuple[int, int], repeats: int, threads: int) -> dict:
    (h, w), (H, W) = lr, hr
    color, dx, dy, dxy = (torch.from_numpy(rng.random((h, w, 3), dtype=np.float32)) for _ in range(4))
    grad = np.ascontiguousarray(rng.standard_normal((1, H, W, 3)).astype(np.float32))
    leaves = [t.clone().requires_grad_() for t in (color, dx, dy, dxy)]
    gout = torch.from_numpy(grad[0])
    nchw = color.permute(2, 0, 1)[None].contiguous()
    color_np = color.numpy()

    def fwd_bwd():
        for t in leaves:
            t.grad = None
        su.upscale(*leaves, size=(H, W)).backward(gout)

    fns = {
        "hermite": lambda: su.upscale(color, dx, dy, dxy, size=(H, W), clamp=True),
        "hermite_bwd": lambda: hermite_backward(grad, (1, h, w, 3)),
        "hermite_fwd_bwd": fwd_bwd,
        "bicubic": lambda: su.upscale_classic(color, (H, W), "bicubic"),
        "cv2_cubic": lambda: cv2.resize(color_np, (W, H), interpolation=cv2.INTER_CUBIC),
        "torch_bicubic": lambda: F.interpolate(nchw, size=(H, W), mode="bicubic", align_corners=False),
    }
    t = timed(fns, repeats)
    row = {"input": f"{w}x{h}x3", "output": f"{W}x{H}x3", "times": t,
           "hermite_over_cv2_median": t["hermite"]["median_ms"] / t["cv2_cubic"]["median_ms"],
           "hermite_over_cv2_min": t["hermite"]["min_ms"] / t["cv2_cubic"]["min_ms"]}
    print(f"\n{w}x{h} -> {W}x{H} (RGB float32, {threads} threads), ms: median (min)")
    for n, v in t.items():
        print(f"  {n:16s} {v['median_ms']:8.2f} ({v['min_ms']:.2f})")
    print(f"  hermite / cv2 INTER_CUBIC: {row['hermite_over_cv2_median']:.2f}x median, "
          f"{row['hermite_over_cv2_min']:.2f}x min")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upscaler_kernels.json")
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    results = [run_case(rng, lr, hr, args.repeats, args.threads) for lr, hr in CASES]

    report = {"threads": args.threads, "repeats": args.repeats, "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "numba": numba.__version__, "torch": torch.__version__, "opencv": cv2.__version__, "cases": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, report)
    print(f"\nload average before/after: {load_before} / {report['loadavg_after']}; wrote {args.out}")


if __name__ == "__main__":
    main()
