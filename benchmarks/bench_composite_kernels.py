"""Compositing kernels, forward and backward: the working tree's against a git revision's, side by side, same inputs.

Inputs: plant.splat (a trained 3DGS of a real capture) seen by splatup.viewpoints.orbit_camera(scene, 1920, 1080)
and its low-res cameras splatup.pipeline.lowres_camera(cam, s) for s = 1, 2, 3, 4 (--scales) with the matched
dilation (what render(scale=s) composites), binned as rasterize() bins them; and the kernel bake-off's synthetic
2D scene (100k Gaussians, 640x480, benchmarks/bench_raster.py ``bakeoff_2d_inputs``). Each configuration runs the
plain and the second-order derivative kernels (forward, and backward under random upstream gradients) of both
revisions, and the new first-order forward against the old derivative forward (its colour, dC/dx and dC/dy). The
reference revision's kernels (the API of c109237: positional arguments, composite.py + composite_backward.py +
fastexp.py) are loaded from git as a package. Every output plane is compared first and the largest difference is
reported: the new kernels evaluate alpha with one expression for every variant, so the images agree to float32
rounding except where a decision (skip, clamp, stop) lies within rounding of its threshold.

Timing: per round every (configuration, kernel, revision) runs once, in an order rotated each round; medians over
the rounds after warm-up. Reported per call: wall time and process CPU time (all threads; the machine is shared,
so CPU time is the steadier measure of work), and the new / old ratios of both.

usage: python benchmarks/bench_composite_kernels.py [--ref c109237] [--repeats 15] [--threads 2]
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
from splatup.render import composite_backward as KB
from splatup.render.project import project
from splatup.render.tiles import bin_gaussians
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_raster import bakeoff_2d_inputs  # noqa: E402

DEFAULT_REF = "c109237"  # the revision before the SIMD-vector kernels
FILES = ("composite.py", "composite_backward.py", "fastexp.py")


def kernels_at(rev: str):
    """(composite, composite_backward) of git revision ``rev`` as an importable package. The files go to a folder
    named by their content hash under the temp dir, written once, so numba's on-disk cache stays valid."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True,
                              text=True).stdout

    texts = {f: show(f"src/splatup/render/{f}") for f in FILES}
    name = "composite_" + hashlib.sha1("".join(texts.values()).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "splatup_git_kernels" / name
    if not (folder / "__init__.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for f, text in texts.items():
            (folder / f).write_text(text)
        (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module(f"{name}.composite"), importlib.import_module(f"{name}.composite_backward")


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


BG = np.asarray([0.1, 0.2, 0.3], np.float32)


def make_old_forward(mod, inp, width, height, derivatives):
    """A closure running the reference revision's forward kernel into its own buffers; returns the buffers
    (colour, alpha, depth and with derivatives dx, dy, dxy)."""
    H, W = height, width
    bufs = [np.empty((H, W, 3), np.float32), np.empty((H, W), np.float32), np.empty((H, W), np.float32)]
    dbufs = [np.empty((H, W, 3), np.float32) for _ in range(3)] if derivatives else []
    b = inp["bins"]
    args = (inp["means"], inp["conics"], inp["opac"], inp["colors"], inp["depths"], b.reach, b.offsets, b.gids, W, H,
            b.tiles_x, BG)
    if derivatives:
        def run():
            mod.composite_forward_derivatives(*args, *bufs, *dbufs, np.empty((0, 0, 3), np.float32))
            return bufs + dbufs
    else:
        def run():
            mod.composite_forward(*args, *bufs)
            return bufs
    return run


def make_new_forward(inp, width, height, variant):
    H, W = height, width
    b = inp["bins"]
    splats = K.Splats(inp["means"], inp["conics"], inp["opac"], inp["colors"], inp["depths"], b.reach)
    lists = K.TileLists(b.offsets, b.gids, b.tiles_x)
    bufs = [np.empty((H, W, 3), np.float32), np.empty((H, W), np.float32), np.empty((H, W), np.float32)]
    dbufs = [np.empty((H, W, 3), np.float32) for _ in range(3)] if variant != K.PLAIN else \
        [np.empty((0, 0, 3), np.float32)] * 3
    images = K.Images(*bufs, *dbufs)

    def run():
        K.composite_forward(splats, lists, K.Frame(W, H, BG), images, variant)
        return bufs + (dbufs if variant != K.PLAIN else [])

    return run


def upstream(width, height, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((height, width, 3)).astype(np.float32) for _ in range(4)] + \
        [rng.standard_normal((height, width)).astype(np.float32)]


def make_old_backward(mod, inp, width, height, derivatives):
    b = inp["bins"]
    gc, gdx, gdy, gdxy, gt = upstream(width, height)
    rows = np.empty((b.n_pairs, 9), np.float32)
    args = (inp["means"], inp["conics"], inp["opac"], inp["colors"], b.reach, b.offsets, b.gids, width, height,
            b.tiles_x, BG)
    if derivatives:
        def run():
            mod.composite_backward_derivatives(*args, gc, gt, gdx, gdy, gdxy, rows, np.empty((0, 0), np.float32))
            return [rows]
    else:
        def run():
            mod.composite_backward(*args, gc, gt, rows, np.empty((0, 0), np.float32))
            return [rows]
    return run


def make_new_backward(inp, width, height, variant):
    b = inp["bins"]
    gc, gdx, gdy, gdxy, gt = upstream(width, height)
    none = np.empty((0, 0, 3), np.float32)
    up = KB.Upstream(gc, gt, gdx, gdy, gdxy) if variant != K.PLAIN else KB.Upstream(gc, gt, none, none, none)
    rows = np.empty((b.n_pairs, 9), np.float32)
    splats = K.Splats(inp["means"], inp["conics"], inp["opac"], inp["colors"], inp["depths"], b.reach)
    lists = K.TileLists(b.offsets, b.gids, b.tiles_x)

    def run():
        KB.composite_backward(splats, lists, K.Frame(width, height, BG), up, rows, variant)
        return [rows]

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
    old_k, old_kb = kernels_at(args.ref)

    configs = {}
    for s in (float(x) for x in args.scales.split(",")):
        inp, w, h = plant_inputs(s)
        configs[f"plant s={s:g} {w}x{h}"] = (inp, w, h)
    configs["bakeoff 2D 640x480"] = (bakeoff_2d_inputs(), 640, 480)

    # (configuration, kernel) -> {"old": run, "new": run}; the first-order forward is compared with the old
    # derivative forward on the planes they share (colour, alpha, depth, dx, dy)
    runners = {}
    for cname, (inp, w, h) in configs.items():
        runners[(cname, "forward plain")] = dict(old=make_old_forward(old_k, inp, w, h, False),
                                                  new=make_new_forward(inp, w, h, K.PLAIN))
        runners[(cname, "forward second")] = dict(old=make_old_forward(old_k, inp, w, h, True),
                                                   new=make_new_forward(inp, w, h, K.SECOND))
        runners[(cname, "forward first")] = dict(old=runners[(cname, "forward second")]["old"],
                                                  new=make_new_forward(inp, w, h, K.FIRST))
        runners[(cname, "backward plain")] = dict(old=make_old_backward(old_kb, inp, w, h, False),
                                                   new=make_new_backward(inp, w, h, K.PLAIN))
        runners[(cname, "backward second")] = dict(old=make_old_backward(old_kb, inp, w, h, True),
                                                    new=make_new_backward(inp, w, h, K.SECOND))
    diffs = {}
    for key, pair in runners.items():  # also the warm-up (and the JIT compile)
        a, b = pair["old"](), pair["new"]()
        n = 5 if key[1] == "forward first" else len(a)
        diffs[key] = [float(np.abs(x.astype(np.float64) - y).max() / max(1.0, np.abs(x).max()))
                      for x, y in zip(a[:n], b[:n], strict=True)]
    print(f"timing {2 * len(runners)} kernels x {args.repeats} rounds, {numba.get_num_threads()} threads ...",
          flush=True)
    flat = {(c, k, rev): pair[rev] for (c, k), pair in runners.items() for rev in ("old", "new")}
    samples: dict = {k: [] for k in flat}
    keys = list(flat)
    for i in range(args.repeats):
        for k in keys[i % len(keys):] + keys[: i % len(keys)]:
            samples[k].append(timed(flat[k]))

    rows = []
    for cname, kname in runners:
        med = {rev: [statistics.median(x[i] for x in samples[(cname, kname, rev)]) for i in (0, 1)]
               for rev in ("old", "new")}
        rows.append(dict(config=cname, kernel=kname, old_wall_ms=med["old"][0] * 1e3,
                         new_wall_ms=med["new"][0] * 1e3, old_cpu_ms=med["old"][1] * 1e3,
                         new_cpu_ms=med["new"][1] * 1e3, wall_ratio=med["new"][0] / med["old"][0],
                         cpu_ratio=med["new"][1] / med["old"][1], max_rel_diff=max(diffs[(cname, kname)])))
    hdr = (f"{'configuration':26s} {'kernel':16s} {'old wall':>9s} {'new wall':>9s} {'new/old':>8s}  "
           f"{'old cpu':>9s} {'new cpu':>9s} {'new/old':>8s} {'max diff':>9s}")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in rows:
        print(f"{r['config']:26s} {r['kernel']:16s} {r['old_wall_ms']:9.2f} {r['new_wall_ms']:9.2f} "
              f"{r['wall_ratio']:8.3f}  {r['old_cpu_ms']:9.2f} {r['new_cpu_ms']:9.2f} {r['cpu_ratio']:8.3f} "
              f"{r['max_rel_diff']:9.1e}")
    print(f"\n(ms per call, medians of {args.repeats} interleaved rounds; cpu = process CPU time of all threads; "
          "max diff: largest |old - new| over the compared planes, relative to max(1, max |old|))")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), ref=args.ref, machine=platform.machine(),
                python=platform.python_version(), numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, cpu_count=os.cpu_count())
    write_json(args.out, dict(meta=meta, results=rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
