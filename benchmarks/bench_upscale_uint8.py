"""The fused 8-bit display output of the Hermite upscaler against the float32 output, side by side.

Inputs: the real low-res renders with derivatives that su.render(method="hermite") upscales (plant.splat, the orbit
camera of bench_upscale.py, matched dilation) at 1/2 (960x540) and 1/4 (480x270) of 1920x1080. One run times,
interleaved round by round with the order rotating (median of the repeats after warm-up):
  float32           su.upscale(color, dx, dy, dxy, size, clamp=True)            -> [H, W, 3] float32
  uint8             su.upscale(color, dx, dy, dxy, size, dtype=torch.uint8)     -> [H, W, 3] uint8, fused
  float32+to_uint8  the float32 output quantised afterwards (splatup.io.images.to_uint8: the unfused path)
  first/float32, first/uint8   the same with dxy=None (the "hermite-first" patch)
The claims are the ratios uint8 / float32 and uint8 / (float32 + to_uint8) of this run; the machine may be shared
with other jobs, which the medians soften but do not remove.

usage: python benchmarks/bench_upscale_uint8.py [--size 1920x1080] [--factors 2,4] [--repeats 31]
       [--out benchmarks/results/upscale_uint8.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numba
import numpy as np
import torch

from splatup.bench.report import write_text
from splatup.bench.timing import interleaved_samples
from splatup.io.images import to_uint8
from splatup.pipeline import render_lowres
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, default=SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--factors", default="2,4")
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upscale_uint8.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    W, H = (int(v) for v in args.size.lower().split("x"))
    size = (H, W)
    scene = su.load_scene(args.scene)
    cam = orbit_camera(scene, W, H, azimuth_deg=30.0, elevation_deg=20)
    factors = [float(f) for f in args.factors.split(",")]

    fns, lowres = {}, {}
    for s in factors:
        o, lr = render_lowres(scene, cam, s, derivatives=True)
        lowres[s] = [lr.width, lr.height]
        k = f"x{s:g}"
        # the fused output must be the float output quantised, byte for byte (checked here on the real inputs too)
        f = su.upscale(o.color, o.dx, o.dy, o.dxy, size=size, clamp=True)
        if not np.array_equal(su.upscale(o.color, o.dx, o.dy, o.dxy, size=size, dtype=torch.uint8).numpy(),
                              to_uint8(f)):
            raise SystemExit(f"{k}: the uint8 output differs from the float32 output quantised")
        fns[f"{k}/float32"] = lambda o=o: su.upscale(o.color, o.dx, o.dy, o.dxy, size=size, clamp=True)
        fns[f"{k}/uint8"] = lambda o=o: su.upscale(o.color, o.dx, o.dy, o.dxy, size=size, dtype=torch.uint8)
        fns[f"{k}/float32+to_uint8"] = lambda o=o: to_uint8(su.upscale(o.color, o.dx, o.dy, o.dxy, size=size,
                                                                       clamp=True))
        fns[f"{k}/first/float32"] = lambda o=o: su.upscale(o.color, o.dx, o.dy, None, size=size, clamp=True)
        fns[f"{k}/first/uint8"] = lambda o=o: su.upscale(o.color, o.dx, o.dy, None, size=size, dtype=torch.uint8)
    print(f"timing {len(fns)} tasks x {args.repeats} repeats, output {W}x{H} ...", flush=True)
    samples = interleaved_samples(fns, args.repeats, warmup=3)
    t = {n: 1e3 * statistics.median(v) for n, v in samples.items()}

    rows = []
    for s in factors:
        k = f"x{s:g}"
        rows.append({"factor": s, "lowres": lowres[s], "float32_ms": t[f"{k}/float32"], "uint8_ms": t[f"{k}/uint8"],
                     "float32_to_uint8_ms": t[f"{k}/float32+to_uint8"],
                     "first_float32_ms": t[f"{k}/first/float32"], "first_uint8_ms": t[f"{k}/first/uint8"],
                     "uint8_over_float32": t[f"{k}/uint8"] / t[f"{k}/float32"],
                     "uint8_over_unfused": t[f"{k}/uint8"] / t[f"{k}/float32+to_uint8"],
                     "first_uint8_over_float32": t[f"{k}/first/uint8"] / t[f"{k}/float32"]})
    print(f"\nHermite upscale to {W}x{H}, median ms of {args.repeats} interleaved repeats, "
          f"{numba.get_num_threads()} threads\n")
    print(f"{'from':>9s} {'float32':>8s} {'uint8':>7s} {'f32+to_u8':>10s} {'u8/f32':>7s} {'u8/unfused':>11s} "
          f"{'first f32':>10s} {'first u8':>9s}")
    for r in rows:
        print(f"{r['lowres'][0]:>4d}x{r['lowres'][1]:<4d} {r['float32_ms']:8.2f} {r['uint8_ms']:7.2f} "
              f"{r['float32_to_uint8_ms']:10.2f} {r['uint8_over_float32']:7.2f} {r['uint8_over_unfused']:11.2f} "
              f"{r['first_float32_ms']:10.2f} {r['first_uint8_ms']:9.2f}")
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), python=platform.python_version(),
                torch=torch.__version__, numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, size=[W, H], scene=str(args.scene), camera=repr(cam),
                load_average=list(os.getloadavg()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(dict(meta=meta, median_ms=t, rows=rows), indent=1, default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
