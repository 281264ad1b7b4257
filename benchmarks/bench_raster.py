"""Rasterizer benchmark: per-phase and whole-frame times, plain and with derivatives.

Scenes: plant.splat (a trained 3DGS of a real capture) at 1280x720, and the kernel bake-off's synthetic scene
(100k Gaussians, 640x480) as a 3D scene that projects onto the bake-off's 2D Gaussians. For the bake-off
comparison the compositing kernels are also fed the bake-off's exact 2D inputs, side by side with the bake-off's
own numba kernel (research/bakeoff/kern_numba.py) when ../shared is present.

Every configuration runs once per round, rounds repeat (order rotated) after warm-up; medians are reported.
Ratios (derivatives / plain, frame / compositing, ours / bake-off) are taken within this run.

usage: python benchmarks/bench_raster.py [--repeats 9] [--out benchmarks/results/raster.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

from splatup.bench.report import write_json
from splatup.bench.synthetic import bakeoff_gaussians_2d, bakeoff_scene_3d
from splatup.bench.workcount import FLOPS_PER_EVAL, PEAK_GFLOPS, count_evaluations
from splatup.render import composite as K
from splatup.render.project import project
from splatup.render.tiles import bin_gaussians
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))


def frame_runner(scene, cam, derivatives):
    def run():
        t0 = time.perf_counter()
        out = su.rasterize(scene, cam, derivatives=derivatives)
        wall = time.perf_counter() - t0
        return dict(out.timings, frame=wall)

    return run


def bakeoff_2d_inputs(width=640, height=480):
    """The bake-off's 2D Gaussians binned by the bake-off's rule (3-sigma axis box, integer pixel centres)."""
    d = bakeoff_gaussians_2d(100_000, width, height, 0)
    ext = 3 * np.sqrt(d["cov"][:, [0, 2]])
    # the bake-off evaluates pixel i at i; our kernels at i + 0.5: shift the means by +0.5
    means = (d["mean"] + 0.5).astype(np.float32)
    bins = bin_gaussians(means, ext.astype(np.float32), d["depth"].astype(np.float32), np.ones(len(means), bool),
                         width, height)
    return dict(means=means, conics=d["conic"].astype(np.float32), opac=d["opacity"].astype(np.float32),
                colors=d["color"].astype(np.float32), depths=d["depth"].astype(np.float32), bins=bins)


def kernel_runner(inp, width, height, derivatives):
    H, W = height, width
    b = inp["bins"]
    splats = K.Splats(inp["means"], inp["conics"], inp["opac"], inp["colors"], inp["depths"], b.reach)
    lists = K.TileLists(b.offsets, b.gids, b.tiles_x)
    frame = K.Frame(W, H, np.zeros(3, np.float32))
    planes = [np.empty((H, W, 3), np.float32) for _ in range(3)] if derivatives else \
        [np.empty((0, 0, 3), np.float32)] * 3
    images = K.Images(np.empty((H, W, 3), np.float32), np.empty((H, W), np.float32), np.empty((H, W), np.float32),
                      *planes)
    variant = K.SECOND if derivatives else K.PLAIN

    def run():
        t0 = time.perf_counter()
        K.composite_forward(splats, lists, frame, images, variant)
        return {"composite": time.perf_counter() - t0}

    return run


def bakeoff_kernel_runner(width, height, derivatives):
    """The bake-off's own numba kernel on its own inputs (same scene), or None if ../shared is absent."""
    path = SHARED / "research" / "bakeoff"
    if not (path / "kern_numba.py").is_file():
        return None
    sys.path.insert(0, str(path))
    import common as bc  # noqa: PLC0415
    import kern_numba as bk  # noqa: PLC0415

    sc = bc.make_scene(100_000, width, height, seed=0)
    out = np.zeros((4, height, width, 3) if derivatives else (height, width, 3), np.float32)

    def run():
        t0 = time.perf_counter()
        bk.render(sc["ranges"], sc["packed32"], width, height, deriv=derivatives, out=out)
        return {"composite": time.perf_counter() - t0}

    return run


def median_times(runners: dict, repeats: int, warmup: int = 2) -> dict:
    for r in runners.values():
        for _ in range(warmup):
            r()
    samples: dict[str, list[dict]] = {k: [] for k in runners}
    names = list(runners)
    for i in range(repeats):
        rot = names[i % len(names):] + names[: i % len(names)]
        for k in rot:
            samples[k].append(runners[k]())
    out = {}
    for k, s in samples.items():
        out[k] = {ph: statistics.median(x[ph] for x in s) for ph in s[0]}
        out[k]["samples"] = len(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "raster.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))

    plant = su.load_scene(SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    plant_cam = orbit_camera(plant, 1280, 720, azimuth_deg=30, elevation_deg=20)
    synth, synth_cam = bakeoff_scene_3d()
    inp2d = bakeoff_2d_inputs()

    runners = {}
    for name, (scene, cam) in {"plant_1280x720": (plant, plant_cam), "synthetic_640x480": (synth, synth_cam)}.items():
        for d in (False, True):
            runners[f"{name}/{'derivatives' if d else 'plain'}"] = frame_runner(scene, cam, d)
    for d in (False, True):
        runners[f"bakeoff_2d_kernel/{'derivatives' if d else 'plain'}"] = kernel_runner(inp2d, 640, 480, d)
        bk = bakeoff_kernel_runner(640, 480, d)
        if bk is not None:
            runners[f"bakeoff_own_numba_kernel/{'derivatives' if d else 'plain'}"] = bk
    print(f"running {len(runners)} configurations x {args.repeats} repeats (after 2 warm-ups) ...", flush=True)
    res = median_times(runners, args.repeats)

    # work statistics of each frame (exact scalar-kernel evaluations and lane-blocked evaluations), on the tile
    # lists rasterize() composites: opacity-aware extents of the Gaussians that can reach alpha 1/255
    work = {}
    for name, (scene, cam) in {"plant_1280x720": (plant, plant_cam), "synthetic_640x480": (synth, synth_cam)}.items():
        p = project(scene, cam)
        b = bin_gaussians(p.means2d.detach().numpy(), p.bin_extents.numpy(), p.depths.detach().numpy(),
                          p.alive.numpy(), cam.width, cam.height)
        work[name] = count_evaluations(p.means2d.detach().numpy(), p.conics.detach().numpy(),
                                       p.opacities.detach().numpy(), b.offsets, b.gids, cam.width, cam.height,
                                       b.tiles_x)
        work[name]["tile_pairs"] = b.n_pairs
    b = inp2d["bins"]
    work["bakeoff_2d_kernel"] = count_evaluations(inp2d["means"], inp2d["conics"], inp2d["opac"], b.offsets, b.gids,
                                                  640, 480, b.tiles_x)
    work["bakeoff_2d_kernel"]["tile_pairs"] = b.n_pairs

    rows = []
    for key, t in res.items():
        scene, variant = key.split("/")
        wk = work.get(scene if scene in work else "bakeoff_2d_kernel")
        row = {"config": key, **{k: v for k, v in t.items()}}
        if wk:
            evals = wk["exact"]
            floor_s = evals * FLOPS_PER_EVAL[variant] / (PEAK_GFLOPS * 1e9)
            row.update(evals_exact=evals, evals_lanes=wk["lanes"], tile_pairs=wk["tile_pairs"],
                       evals_per_s=evals / t["composite"], floor_ms=floor_s * 1e3,
                       fraction_of_floor=floor_s / t["composite"])
        rows.append(row)

    def get(cfg, ph):
        return res[cfg][ph] if cfg in res else float("nan")

    ratios = {}
    for name in ("plant_1280x720", "synthetic_640x480"):
        ratios[f"{name}: derivatives frame / plain frame"] = get(f"{name}/derivatives", "frame") / get(
            f"{name}/plain", "frame")
        for v in ("plain", "derivatives"):
            ratios[f"{name}: {v} frame / compositing"] = get(f"{name}/{v}", "frame") / get(f"{name}/{v}", "composite")
    for v in ("plain", "derivatives"):
        own = get(f"bakeoff_own_numba_kernel/{v}", "composite")
        ratios[f"bake-off 2D scene, {v}: ours / bake-off kernel (same run)"] = get(
            f"bakeoff_2d_kernel/{v}", "composite") / own
    kernels_md = {"plain": 0.095, "derivatives": 0.224}  # research/kernels.md, numba blocked medians (run1)
    for v, ref in kernels_md.items():
        ratios[f"bake-off 2D scene, {v}: ours / kernels.md figure ({ref * 1e3:.0f} ms)"] = get(
            f"bakeoff_2d_kernel/{v}", "composite") / ref

    print()
    hdr = f"{'configuration':45s} {'project':>8s} {'bin+sort':>9s} {'composite':>10s} {'frame':>8s}  " \
          f"{'evals (M)':>9s} {'Geval/s':>8s} {'floor':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        ms = {k: (f"{r[k] * 1e3:8.1f}" if k in r else f"{'':8s}") for k in ("project", "bin_sort", "composite",
                                                                             "frame")}
        ev = f"{r['evals_exact'] / 1e6:9.1f} {r['evals_per_s'] / 1e9:8.2f} {100 * r['fraction_of_floor']:6.1f}%" \
            if "evals_exact" in r else ""
        print(f"{r['config']:45s} {ms['project']} {ms['bin_sort']:>9s} {ms['composite']:>10s} {ms['frame']}  {ev}")
    print("\n(ms, medians; 'floor' = exact evaluations x flops/eval (48 plain, 104 derivatives) at the "
          f"{PEAK_GFLOPS:.0f} GFLOP/s peak of kernels.md, as a fraction of the measured compositing time)\n")
    for k, v in ratios.items():
        print(f"  {k:70s} {v:6.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), processor=platform.processor(),
                python=platform.python_version(), torch=torch.__version__, numba=numba.__version__,
                threads=numba.get_num_threads(), repeats=args.repeats, cpu_count=os.cpu_count())
    write_json(args.out, dict(meta=meta, results=rows, ratios=ratios, work=work))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
