"""Upscaling benchmark: the whole frame of render(native) against render(scale=s, "hermite" / "hermite-first"),
where the time goes, and the quality of every method against native.

Scenes (splatup.bench.scenes): plant.splat (a trained 3DGS of a real capture), spot_100k.splat and gsplat's garden
points, at 1920x1080 by default. Per scene and factor s the same run measures, interleaved (medians of repeats
after warm-up; 2 threads):
  native         su.render(method="native"): a plain full-size rasterization
  hermite        su.render(scale=s, method="hermite"): a 1/s render with derivatives + the Hermite upscale
  hermite-first  the same with first-order derivatives (d2C/dxdy = 0)
  parts          the 1/s render with derivatives split into projection, binning and compositing (its own timings),
                 the Hermite upscale alone, cv2.resize(INTER_CUBIC) of the same low-res image (a yardstick)
  per pixel      the 1/s plain render's time per pixel divided by the native frame's time per pixel
Quality: PSNR / SSIM (/ LPIPS-Alex) of each method's image against the native render, from the same 1/s render
(matched dilation, 0.3 native px^2; on plant also the usual 0.3 low-res px^2 as the ablation).

--ref REV also times the native frame of git revision REV against this tree's, each in its own process (the two
packages cannot share one), alternating processes for --ref-rounds rounds; the ratio of the medians is reported.

usage: python benchmarks/bench_upscale.py [--scenes plant,spot100k,garden] [--size 1920x1080] [--factors 2,3,4]
       [--repeats 9] [--ref c109237] [--ref-rounds 5] [--no-lpips] [--out benchmarks/results/upscale.json]
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import torch

from splatup.bench.compare import quality_metrics
from splatup.bench.report import json_ready, write_text
from splatup.bench.scenes import ORBIT_SCENES, SCENES, benchmark_view
from splatup.bench.timing import interleaved_samples
from splatup.pipeline import METHODS, render_lowres, upscale_lowres

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
QUALITY_METHODS = [m for m in ("hermite", "hermite-first", "fd-hermite", "bicubic", "bicubic-pil", "lanczos",
                               "bilinear", "nearest") if m in METHODS]
FAST = [m for m in ("hermite", "hermite-first") if m in METHODS]

# timing of one native frame in a separate process (for --ref): prints the median of `reps` frames after warm-up
NATIVE_PROBE = r"""
import json, sys, time, statistics
import splatup as su
import numba, torch
torch.set_num_threads(2)
a = json.loads(sys.argv[1])
scene = su.load_scene(a["scene_file"]) if a["scene_file"] else None
if scene is None:
    sys.path.insert(0, a["bench_src"])
    from splatup_bench_scenes import garden_scene  # noqa
    scene = garden_scene(a["shared"], 1.0)[0]
cam = su.Camera(torch.tensor(a["w2c"], dtype=torch.float64), torch.tensor(a["K"], dtype=torch.float64), a["W"], a["H"])
for _ in range(3):
    su.rasterize(scene, cam)
ts = []
for _ in range(a["reps"]):
    t0 = time.perf_counter(); su.rasterize(scene, cam); ts.append(time.perf_counter() - t0)
print(statistics.median(ts))
"""


def ref_tree(rev: str) -> Path:
    """``src`` of git revision ``rev``, exported once under the temp dir (numba caches its kernels there)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    folder = Path(tempfile.gettempdir()) / "splatup_ref" / sha[:12]
    if not (folder / "src" / "splatup" / "__init__.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def native_in_process(src: Path, scene_name: str, cam: su.Camera, reps: int) -> float:
    """Median native frame time (s) of the package under ``src``, measured in a fresh process."""
    files = {name: SHARED / "data" / path for name, path in ORBIT_SCENES.items()}
    bench_src = Path(tempfile.gettempdir()) / "splatup_ref" / "scenes_module"
    if scene_name == "garden":  # the scene builder of this tree, importable by either package
        bench_src.mkdir(parents=True, exist_ok=True)
        text = (ROOT / "src" / "splatup" / "bench" / "scenes.py").read_text()
        text = text.replace("from ..camera import Camera", "from splatup.camera import Camera").replace(
            "from ..gaussians import Gaussians", "from splatup.gaussians import Gaussians").replace(
            "from ..io import load_scene", "from splatup.io import load_scene").replace(
            "from ..viewpoints import orbit_camera", "from splatup.viewpoints import orbit_camera")
        (bench_src / "splatup_bench_scenes.py").write_text(text)
    if scene_name not in files and scene_name != "garden":
        raise ValueError(f"native_in_process: no scene file for {scene_name!r}")
    arg = json.dumps(dict(scene_file=str(files[scene_name]) if scene_name in files else "", shared=str(SHARED / "data"),
                          bench_src=str(bench_src), w2c=cam.world_to_camera.tolist(), K=cam.K.tolist(), W=cam.width,
                          H=cam.height, reps=reps))
    env = dict(os.environ, PYTHONPATH=str(src))
    r = subprocess.run([sys.executable, "-c", NATIVE_PROBE, arg], check=True, capture_output=True, text=True, env=env)
    return float(r.stdout.strip().splitlines()[-1])


def bench_scene(name: str, W: int, H: int, factors: list[float], repeats: int, lpips: bool) -> dict:
    import cv2

    scene, cam = benchmark_view(name, SHARED / "data", W, H)
    size = (H, W)
    fns = {"native": lambda: su.render(scene, cam, method="native")}
    lowres = {}
    for s in factors:
        out_d, lr = render_lowres(scene, cam, s, derivatives=True)
        lowres[s] = (out_d, lr)
        color_np = out_d.color.numpy()
        for m in FAST:
            fns[f"x{s:g}/{m}"] = lambda s=s, m=m: su.render(scene, cam, scale=s, method=m)
        fns[f"x{s:g}/lowres_plain"] = lambda s=s: render_lowres(scene, cam, s, derivatives=False)[0]
        fns[f"x{s:g}/lowres_derivatives"] = lambda s=s: render_lowres(scene, cam, s, derivatives=True)[0]
        fns[f"x{s:g}/lowres_first"] = lambda s=s: render_lowres(scene, cam, s, derivatives="first")[0]
        fns[f"x{s:g}/upscale_hermite"] = lambda o=out_d: upscale_lowres(o, size, "hermite")
        fns[f"x{s:g}/cv2_inter_cubic"] = lambda c=color_np: cv2.resize(c, (W, H), interpolation=cv2.INTER_CUBIC)
    print(f"{name}: timing {len(fns)} tasks x {repeats} repeats at {W}x{H} ...", flush=True)
    phases: dict[str, list[dict]] = {k: [] for k in fns if "/lowres_" in k}

    def timed_phases(k, f):
        def run():
            out = f()
            phases[k].append(out.timings)
        return run

    samples = interleaved_samples({k: (timed_phases(k, f) if k in phases else f) for k, f in fns.items()},
                                  repeats, warmup=2)
    t = {k: statistics.median(v) for k, v in samples.items()}
    parts = {k: {ph: statistics.median(x[ph] for x in v[-repeats:]) for ph in v[0]} for k, v in phases.items()}

    native = su.render(scene, cam, method="native")
    quality: dict[str, dict] = {}
    for s in factors:
        dils = ("matched", "usual") if name == "plant" else ("matched",)
        for dil in dils:
            if dil == "matched":
                out = lowres[s][0]
            else:
                out = render_lowres(scene, cam, s, derivatives=True, lowres_dilation="usual")[0]
            for m in QUALITY_METHODS:
                if m == "hermite-first":
                    img = su.render(scene, cam, scale=s, method=m, lowres_dilation="matched" if dil == "matched"
                                    else "usual")
                else:
                    img = upscale_lowres(out, size, m)
                quality[f"x{s:g}/{dil}/{m}"] = quality_metrics(img, native, use_lpips=lpips)
    rows = []
    px = W * H
    for s in factors:
        k = f"x{s:g}"
        lr = lowres[s][1]
        lpx = lr.width * lr.height
        row = {"factor": s, "lowres": [lr.width, lr.height], "native_ms": 1e3 * t["native"],
               "lowres_plain_ms": 1e3 * t[f"{k}/lowres_plain"],
               "lowres_derivatives_ms": 1e3 * t[f"{k}/lowres_derivatives"],
               "lowres_first_ms": 1e3 * t[f"{k}/lowres_first"],
               "upscale_hermite_ms": 1e3 * t[f"{k}/upscale_hermite"],
               "cv2_inter_cubic_ms": 1e3 * t[f"{k}/cv2_inter_cubic"],
               "per_pixel_plain_vs_native": (t[f"{k}/lowres_plain"] / lpx) / (t["native"] / px),
               "parts_ms": {ph: 1e3 * v for ph, v in parts[f"{k}/lowres_derivatives"].items()}}
        for m in FAST:
            row[f"{m}_ms"] = 1e3 * t[f"{k}/{m}"]
            row[f"{m}_speedup"] = t["native"] / t[f"{k}/{m}"]
        rows.append(row)
    return dict(scene=name, camera=repr(cam), n_gaussians=len(scene), timings_s=t, rows=rows, quality=quality)


def print_scene(r: dict, lpips: bool) -> None:
    print(f"\n{r['scene']} ({r['n_gaussians']:,} Gaussians): native frame {r['rows'][0]['native_ms']:.1f} ms")
    hdr = (f"{'s':>4s} {'low-res':>9s} " + " ".join(f"{m + ' ms':>17s} {'x':>6s}" for m in FAST) +
           f" {'proj':>6s} {'bin':>6s} {'comp':>6s} {'upsc':>6s} {'cv2':>6s} {'px ratio':>9s}")
    print(hdr)
    for row in r["rows"]:
        p = row["parts_ms"]
        fast = " ".join(f"{row[f'{m}_ms']:17.1f} {row[f'{m}_speedup']:5.2f}x" for m in FAST)
        print(f"{row['factor']:4g} {row['lowres'][0]:>4d}x{row['lowres'][1]:<4d} {fast} {p['project']:6.1f} "
              f"{p['bin_sort']:6.1f} {p['composite']:6.1f} {row['upscale_hermite_ms']:6.1f} "
              f"{row['cv2_inter_cubic_ms']:6.1f} {row['per_pixel_plain_vs_native']:9.2f}")
    print("quality against native (PSNR dB / SSIM" + (" / LPIPS" if lpips else "") + "):")
    for key, q in r["quality"].items():
        lp = f" / {q['lpips']:.4f}" if lpips and "lpips" in q else ""
        print(f"  {key:32s} {q['psnr']:7.2f} / {q['ssim']:.4f}{lp}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--factors", default="2,3,4")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--ref", default=None, help="git revision whose native frame is timed against this tree's")
    ap.add_argument("--ref-rounds", type=int, default=5)
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upscale.json")
    args = ap.parse_args()
    import cv2

    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    W, H = (int(v) for v in args.size.lower().split("x"))
    factors = [float(f) for f in args.factors.split(",")]
    lpips = not args.no_lpips
    results = []
    for name in args.scenes.split(","):
        r = bench_scene(name, W, H, factors, args.repeats, lpips)
        print_scene(r, lpips)
        results.append(r)
    ref = None
    if args.ref:
        src = ref_tree(args.ref)
        ref = {"rev": args.ref, "scenes": {}}
        for name in args.scenes.split(","):
            _, cam = benchmark_view(name, SHARED / "data", W, H)
            cur, old = [], []
            for _ in range(args.ref_rounds):
                old.append(native_in_process(src, name, cam, args.repeats))
                cur.append(native_in_process(ROOT / "src", name, cam, args.repeats))
            ref["scenes"][name] = dict(native_ref_ms=1e3 * statistics.median(old),
                                       native_now_ms=1e3 * statistics.median(cur),
                                       now_over_ref=statistics.median(cur) / statistics.median(old))
            print(f"native {name}: {args.ref} {1e3 * statistics.median(old):.1f} ms, this tree "
                  f"{1e3 * statistics.median(cur):.1f} ms (ratio {statistics.median(cur) / statistics.median(old):.2f},"
                  f" medians of {args.ref_rounds} processes x {args.repeats} frames)", flush=True)
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), python=platform.python_version(),
                torch=torch.__version__, numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, size=[W, H], load_average=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(json_ready(dict(meta=meta, scenes=results, ref=ref)), indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
