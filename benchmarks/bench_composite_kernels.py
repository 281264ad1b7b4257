"""Forward compositing kernels: the working tree's against a git revision's, side by side, same inputs.

Inputs: plant.splat (a trained 3DGS of a real capture) seen by splatup.viewpoints.orbit_camera(scene, 1920, 1080)
and its low-res cameras splatup.pipeline.lowres_camera(cam, s) for s = 1, 2, 3, 4 (--scales) with the matched
dilation (what render(scale=s) composites), binned as rasterize() bins them; and the kernel bake-off's synthetic
2D scene (100k Gaussians, 640x480, benchmarks/bench_raster.py ``bakeoff_2d_inputs``). Each configuration runs the
plain and the derivative kernel of both revisions; every output plane of the two revisions is checked bit for bit first.

Timing: per round every (configuration, kernel, revision) runs once, in an order rotated each round; medians over
the rounds after warm-up. Reported per call: wall time and process CPU time (all threads; the machine is shared,
so CPU time is the steadier measure of work), and the new / old ratios of both.

usage: python benchmarks/bench_composite_kernels.py [--ref 09848b8] [--repeats 15] [--threads 2]
       [--out benchmarks/results/composite_kernels.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import hashlib
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch

from splatup.bench.report import write_json
from splatup.pipeline import lowres_camera, matched_dilation
from splatup.render import composite as K
from splatup.render.project import project
from splatup.render.tiles import bin_gaussians
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_raster import bakeoff_2d_inputs  # noqa: E402

DEFAULT_REF = "09848b8be642b624a4bd5d1b5d58360dc8b6ec68"  # the last revision with 16-pixel-row forward kernels


def kernels_at(rev: str):
    """composite.py (with its fastexp.py) of git revision ``rev`` as an importable module. The files go to a
    folder named by their content hash under the temp dir, written once, so numba's on-disk cache stays valid."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True,
                              text=True).stdout

    comp, fexp = show("src/splatup/render/composite.py"), show("src/splatup/render/fastexp.py")
    name = "composite_" + hashlib.sha1((comp + fexp).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "splatup_git_kernels" / name
    if not (folder / "__init__.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fastexp.py").write_text(fexp)
        (folder / "composite.py").write_text(comp)
        (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module(f"{name}.composite")


def plant_inputs(scale: float) -> tuple[dict, int, int]:
    scene = su.load_scene(SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    cam = orbit_camera(scene, 1920, 1080)
    lr = cam if scale == 1 else lowres_camera(cam, scale)
    with torch.no_grad():
        p = project(scene, lr, dilation=matched_dilation(cam, lr))
    bins = bin_gaussians(p.means2d.numpy(), p.bin_extents.numpy(), p.depths.numpy(), p.alive.numpy(), lr.width,
                         lr.height, reach=p.reach.numpy())
    arrs = {k: np.ascontiguousarray(getattr(p, a).numpy(), np.float32) for k, a in
            (("means", "means2d"), ("conics", "conics"), ("opac", "opacities"), ("colors", "colors"),
             ("depths", "depths"))}
    return dict(arrs, bins=bins), lr.width, lr.height


def make_call(mod, inp, width, height, derivatives):
    """A closure running one kernel of module ``mod`` into its own output buffers; returns the buffers."""
    H, W = height, width
    bg = np.asarray([0.1, 0.2, 0.3], np.float32)
    bufs = [np.empty((H, W, 3), np.float32), np.empty((H, W), np.float32), np.empty((H, W), np.float32)]
    dbufs = [np.empty((H, W, 3), np.float32) for _ in range(4)] if derivatives else []
    b = inp["bins"]
    args = (inp["means"], inp["conics"], inp["opac"], inp["colors"], inp["depths"], b.reach, b.offsets, b.gids, W, H,
            b.tiles_x, bg)
    fn = mod.composite_forward_derivatives if derivatives else mod.composite_forward

    def run():
        fn(*args, *bufs, *dbufs)
        return bufs + dbufs

    return run


def timed(run) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default=DEFAULT_REF, help="git revision of the old kernels")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scales", default="1,2,3,4")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "composite_kernels.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    old = kernels_at(args.ref)

    configs = {}
    for s in (float(x) for x in args.scales.split(",")):
        inp, w, h = plant_inputs(s)
        configs[f"plant s={s:g} {w}x{h}"] = (inp, w, h)
    configs["bakeoff 2D 640x480"] = (bakeoff_2d_inputs(), 640, 480)

    runners = {}
    for cname, (inp, w, h) in configs.items():
        for d in (False, True):
            kname = "deriv" if d else "plain"
            runners[(cname, kname, "new")] = make_call(K, inp, w, h, d)
            runners[(cname, kname, "old")] = make_call(old, inp, w, h, d)
    outs = {k: r() for k, r in runners.items()}  # also the warm-up (and the JIT compile)
    # numba's freshly JIT-compiled code and the code it loads from its on-disk cache can differ (measured: the
    # rounding of d2T/dxdy); compare and time what a user runs, the cached code: after compiling, start over once
    misses = sum(sum(f.stats.cache_misses.values()) for m in (K, old)
                 for f in (m.composite_forward, m.composite_forward_derivatives))
    if misses and not os.environ.get("SPLATUP_BENCH_RESTARTED"):
        print("kernels compiled (not loaded from numba's cache): restarting once to time the cached code", flush=True)
        os.environ["SPLATUP_BENCH_RESTARTED"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    for cname, kname, rev in runners:
        if rev == "new":
            for a, b in zip(outs[(cname, kname, "new")], outs[(cname, kname, "old")], strict=True):
                if not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
                    raise SystemExit(f"{cname} {kname}: outputs differ from {args.ref[:10]} "
                                     f"({int((a != b).sum())} values)")
    print(f"outputs bit-identical to {args.ref[:10]} on all {len(configs)} inputs; timing {len(runners)} kernels x "
          f"{args.repeats} rounds, {numba.get_num_threads()} threads ...", flush=True)
    for r in runners.values():
        r()
    samples: dict = {k: [] for k in runners}
    keys = list(runners)
    for i in range(args.repeats):
        for k in keys[i % len(keys):] + keys[: i % len(keys)]:
            samples[k].append(timed(runners[k]))

    rows = []
    for cname in configs:
        for kname in ("plain", "deriv"):
            med = {rev: [statistics.median(x[i] for x in samples[(cname, kname, rev)]) for i in (0, 1)]
                   for rev in ("old", "new")}
            rows.append(dict(config=cname, kernel=kname, old_wall_ms=med["old"][0] * 1e3,
                             new_wall_ms=med["new"][0] * 1e3, old_cpu_ms=med["old"][1] * 1e3,
                             new_cpu_ms=med["new"][1] * 1e3, wall_ratio=med["new"][0] / med["old"][0],
                             cpu_ratio=med["new"][1] / med["old"][1]))
    hdr = (f"{'configuration':26s} {'kernel':6s} {'old wall':>9s} {'new wall':>9s} {'new/old':>8s}  "
           f"{'old cpu':>9s} {'new cpu':>9s} {'new/old':>8s}")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in rows:
        print(f"{r['config']:26s} {r['kernel']:6s} {r['old_wall_ms']:9.2f} {r['new_wall_ms']:9.2f} "
              f"{r['wall_ratio']:8.3f}  {r['old_cpu_ms']:9.2f} {r['new_cpu_ms']:9.2f} {r['cpu_ratio']:8.3f}")
    print(f"\n(ms per call, medians of {args.repeats} interleaved rounds; cpu = process CPU time of all threads)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), ref=args.ref, machine=platform.machine(),
                python=platform.python_version(), numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, cpu_count=os.cpu_count())
    write_json(args.out, dict(meta=meta, results=rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
