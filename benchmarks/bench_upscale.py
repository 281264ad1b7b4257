"""Upscaling benchmark: whole-frame speed of render(native) vs render(scale=s, "hermite"), quality of every method
against native, the dilation ablation, and the upscaler alone against cv2.resize(INTER_CUBIC).

Scene: plant.splat (a trained 3DGS of a real capture) at 1920x1080 by default. For each factor s the same run
measures, interleaved (median of repeats after warm-up):
  native        rasterize at full size (plain)
  hermite       rasterize at 1/s with derivatives + Hermite upscale  (= su.render(scale=s, method="hermite"))
  <classic>     rasterize at 1/s plain + that upscaler
  parts         1/s plain render, 1/s render with derivatives, Hermite upscale alone, cv2 INTER_CUBIC alone
Quality: PSNR / SSIM / LPIPS-Alex of each method's image against the native render, with the low-res render's
dilation matched to the native filter (0.3 native px^2, the default) and, as the ablation, the usual 0.3 low-res px^2.
Speed-up limit: the derivatives raise the per-pixel compositing cost, so the ideal speed-up at factor s is
s^2 x (plain frame time per pixel / derivative frame time per pixel), both measured at the native size; the
fraction of that limit reached is reported.

usage: python benchmarks/bench_upscale.py [--size 1920x1080] [--factors 1.5,2,3,4] [--repeats 7] [--out ...]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numba
import torch

from splatup.bench.compare import quality_metrics
from splatup.bench.report import write_text
from splatup.bench.timing import interleaved_medians
from splatup.pipeline import render_lowres, upscale_lowres
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
METHODS = ("hermite", "fd-hermite", "bicubic", "bicubic-pil", "lanczos", "bilinear", "nearest")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, default=SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--factors", default="1.5,2,3,4")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--azimuth", type=float, default=30.0)
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upscale.json")
    args = ap.parse_args()
    import cv2

    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    W, H = (int(v) for v in args.size.lower().split("x"))
    factors = [float(f) for f in args.factors.split(",")]
    scene = su.load_scene(args.scene)
    cam = orbit_camera(scene, W, H, azimuth_deg=args.azimuth, elevation_deg=20)
    size = (H, W)

    # ------------------------------------------------------------------ speed, all factors interleaved
    fns = {"native/plain": lambda: su.rasterize(scene, cam),
           "native/derivatives": lambda: su.rasterize(scene, cam, derivatives=True)}
    lowres = {}
    for s in factors:
        out_d, lr = render_lowres(scene, cam, s, derivatives=True)
        lowres[s] = (out_d, lr)
        color_np = out_d.color.numpy()
        fns[f"x{s:g}/render_hermite"] = lambda s=s: su.render(scene, cam, scale=s, method="hermite")
        fns[f"x{s:g}/lowres_plain"] = lambda s=s: render_lowres(scene, cam, s, derivatives=False)
        fns[f"x{s:g}/lowres_derivatives"] = lambda s=s: render_lowres(scene, cam, s, derivatives=True)
        fns[f"x{s:g}/upscale_hermite"] = lambda o=out_d: su.upscale(o.color, o.dx, o.dy, o.dxy, size=size, clamp=True)
        fns[f"x{s:g}/cv2_inter_cubic"] = lambda c=color_np: cv2.resize(c, (W, H), interpolation=cv2.INTER_CUBIC)
        for m in METHODS[1:]:
            fns[f"x{s:g}/upscale_{m}"] = lambda o=out_d, m=m: upscale_lowres(o, size, m)
    print(f"timing {len(fns)} tasks x {args.repeats} repeats at {W}x{H} ...", flush=True)
    t = interleaved_medians(fns, args.repeats, warmup=2)

    # ------------------------------------------------------------------ quality, matched vs usual dilation
    native = su.rasterize(scene, cam).color
    quality: dict[str, dict] = {}
    for s in factors:
        for dil in ("matched", "usual"):
            out = lowres[s][0] if dil == "matched" else render_lowres(scene, cam, s, derivatives=True,
                                                                      lowres_dilation="usual")[0]
            for m in METHODS:
                img = upscale_lowres(out, size, m)
                quality[f"x{s:g}/{dil}/{m}"] = quality_metrics(img, native, use_lpips=not args.no_lpips)
            print(f"  quality x{s:g} ({dil}) done", flush=True)

    # ------------------------------------------------------------------ summary
    px_native = W * H
    c_plain = t["native/plain"] / px_native
    c_deriv = t["native/derivatives"] / px_native
    rows = []
    for s in factors:
        k = f"x{s:g}"
        lr = lowres[s][1]
        frame_h = t[f"{k}/lowres_derivatives"] + t[f"{k}/upscale_hermite"]
        speedup = t["native/plain"] / t[f"{k}/render_hermite"]
        s_eff2 = px_native / (lr.width * lr.height)
        limit = s_eff2 * c_plain / c_deriv
        row = {"factor": s, "lowres": [lr.width, lr.height],
               "native_ms": 1e3 * t["native/plain"], "render_hermite_ms": 1e3 * t[f"{k}/render_hermite"],
               "lowres_plain_ms": 1e3 * t[f"{k}/lowres_plain"],
               "lowres_derivatives_ms": 1e3 * t[f"{k}/lowres_derivatives"],
               "upscale_hermite_ms": 1e3 * t[f"{k}/upscale_hermite"],
               "cv2_inter_cubic_ms": 1e3 * t[f"{k}/cv2_inter_cubic"],
               "hermite_parts_ms": 1e3 * frame_h, "speedup": speedup, "speedup_limit": limit,
               "fraction_of_limit": speedup / limit,
               "upscaler_vs_cv2": t[f"{k}/upscale_hermite"] / t[f"{k}/cv2_inter_cubic"]}
        for m in METHODS[1:]:
            row[f"{m}_ms"] = 1e3 * (t[f"{k}/lowres_plain"] + t[f"{k}/upscale_{m}"])
        rows.append(row)

    print(f"\n{W}x{H}, native plain {1e3 * t['native/plain']:.1f} ms, native with derivatives "
          f"{1e3 * t['native/derivatives']:.1f} ms (per-pixel cost ratio {c_deriv / c_plain:.2f})\n")
    print(f"{'factor':>6s} {'low-res':>10s} {'native':>8s} {'hermite':>8s} {'speed-up':>9s} {'limit':>6s} "
          f"{'reached':>8s} {'upscale':>8s} {'cv2':>6s} {'up/cv2':>7s}")
    for r in rows:
        print(f"{r['factor']:6g} {r['lowres'][0]:>5d}x{r['lowres'][1]:<4d} {r['native_ms']:8.1f} "
              f"{r['render_hermite_ms']:8.1f} {r['speedup']:8.2f}x {r['speedup_limit']:5.2f}x "
              f"{100 * r['fraction_of_limit']:7.0f}% {r['upscale_hermite_ms']:8.2f} {r['cv2_inter_cubic_ms']:6.2f} "
              f"{r['upscaler_vs_cv2']:6.2f}x")
    print("\nquality against native (PSNR dB / SSIM / LPIPS):")
    for s in factors:
        for dil in ("matched", "usual"):
            print(f"  x{s:g} {dil:8s} " + "  ".join(
                f"{m} {quality[f'x{s:g}/{dil}/{m}']['psnr']:.2f}/{quality[f'x{s:g}/{dil}/{m}']['ssim']:.4f}/"
                f"{quality[f'x{s:g}/{dil}/{m}'].get('lpips', math.nan):.4f}" for m in METHODS))
    checks = {}
    for s in factors:
        q = {m: quality[f"x{s:g}/matched/{m}"] for m in METHODS}
        h = q["hermite"]
        others = [m for m in METHODS if m != "hermite"]
        checks[f"x{s:g}: hermite best PSNR"] = all(h["psnr"] > q[m]["psnr"] for m in others)
        checks[f"x{s:g}: hermite best SSIM"] = all(h["ssim"] > q[m]["ssim"] for m in others)
        if not args.no_lpips:
            checks[f"x{s:g}: hermite best LPIPS"] = all(h["lpips"] < q[m]["lpips"] for m in others)
        checks[f"x{s:g}: hermite - bicubic PSNR (dB)"] = round(h["psnr"] - q["bicubic"]["psnr"], 2)
    for r in rows:
        checks[f"x{r['factor']:g}: speed-up"] = round(r["speedup"], 2)
        checks[f"x{r['factor']:g}: upscaler / cv2 INTER_CUBIC"] = round(r["upscaler_vs_cv2"], 2)
    print("\nchecks:")
    for k, v in checks.items():
        print(f"  {k:45s} {v}")
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), python=platform.python_version(),
                torch=torch.__version__, numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, size=[W, H], scene=str(args.scene), camera=repr(cam))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(dict(meta=meta, timings_s=t, rows=rows, quality=quality, checks=checks),
                                    indent=1, default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
