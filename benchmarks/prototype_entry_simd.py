"""Prototype: plain forward compositing with SIMD across list entries, side by side with the product's kernel.

The product's composite_forward(..., PLAIN) puts the 16 pixels of a 4x4 block in the SIMD lanes and steps through
the block's bucket of the tile list. The prototype (benchmarks/_entry_simd_kernels.py, variants CP, CB, T, CV,
CV22, CS, CR) keeps the product's gather and block buckets but puts 16 list entries in the lanes instead, one pixel
at a time: a vector hit test, the product's vexp on chunks with a hit, and a scalar or vector composite of the hits in
depth order. This script times the product and the variants on the same inputs (plant.splat, the orbit camera at
1920x1080 and its low-res cameras for render scale s, binned as rasterize() bins them), and compares their colour and
alpha with the product's. --counts adds per-pixel work counts; --parts times the fixed per-tile costs alone (the
product's gather + bucket, the prototype's, and its block compaction) and their share of the product's kernel.

Conclusion: the prototype is slower than the product's pixel-SIMD kernel at every s. Both spend about the same
number of lane evaluations per pixel, and compositing the hits sequentially across entries (scalar, or a prefix
product across lanes) costs more than the product's per-lane recurrence. The product's gather + bucket, which the
prototype shares and cannot save, is a large fixed share (around half) of the product's low-res compositing time
(see --parts).

Timing: every kernel runs twice as warm-up (the first call compiles), then once per round in an order rotated each
round; reported are medians over the rounds of wall time and process CPU time (all threads; the machine is shared).

usage: python benchmarks/prototype_entry_simd.py [--repeats 9] [--threads 2] [--scales 1,2,3,4]
       [--variants CP,CB,T,CV,CV22,CS,CR] [--counts] [--parts] [--out benchmarks/results/prototype_entry_simd.json]
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
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import torch

from splatup.bench.report import write_json
from splatup.pipeline import lowres_camera, matched_dilation
from splatup.render import composite as K
from splatup.render.project import project
from splatup.render.tiles import TILE_SIZE, bin_gaussians
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import _entry_simd_kernels as E  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
BACKGROUND = np.asarray([0.2, 0.5, 0.9], np.float32)  # not black, so that T_final enters the colour


def plant_inputs(scale: float) -> tuple[K.Splats, K.TileLists, K.Frame]:
    """The product kernel's inputs for plant at render scale ``scale`` (what render(scale=s) composites)."""
    scene = su.load_scene(SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    cam = orbit_camera(scene, WIDTH, HEIGHT, azimuth_deg=30.0, elevation_deg=20.0)
    lr = cam if scale == 1 else lowres_camera(cam, scale)
    with torch.no_grad():
        p = project(scene, lr, dilation=matched_dilation(cam, lr))
    bins = bin_gaussians(p.means2d.numpy(), p.bin_extents.numpy(), p.depths.numpy(), p.alive.numpy(), lr.width,
                         lr.height, TILE_SIZE, p.reach.numpy(), p.tile_rects.numpy())

    def f32(x: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(x.numpy(), np.float32)

    splats = K.Splats(f32(p.means2d), f32(p.conics), f32(p.opacities), f32(p.colors), f32(p.depths), bins.reach)
    return splats, K.TileLists(bins.offsets, bins.gids, bins.tiles_x), K.Frame(lr.width, lr.height, BACKGROUND)


def new_images(width: int, height: int) -> K.Images:
    """Plain-variant outputs, NaN-filled so that a pixel a kernel does not write shows in the comparison."""
    empty = np.empty((0, 0, 3), np.float32)
    return K.Images(np.full((height, width, 3), np.nan, np.float32), np.full((height, width), np.nan, np.float32),
                    np.full((height, width), np.nan, np.float32), empty, empty, empty)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def run_scale(scale: float, variants: list[str], parts: bool, repeats: int) \
        -> tuple[dict, tuple[K.Splats, K.TileLists, K.Frame]]:
    """Times and differences at one scale (a JSON row), and the inputs."""
    splats, lists, frame = plant_inputs(scale)
    images = {}
    runners: dict[str, Callable[[], None]] = {}

    def add(name: str, fn: Callable) -> None:
        im = images[name] = new_images(frame.width, frame.height)
        runners[name] = lambda: fn(splats, lists, frame, im)

    add("product", lambda *a: K.composite_forward(*a, K.PLAIN))
    for name in variants:
        add(name, E.kernel(E.VARIANTS[name]))
    if parts:
        for name, mode in E.PARTS.items():
            add(name, E.kernel(mode))
    for fn in runners.values():  # warm-up (and the JIT compile)
        fn()
        fn()

    ref = images["product"]
    diffs = {}
    for name in variants:
        im = images[name]
        diffs[name] = dict(
            color_alpha=max(float(np.abs(im.color - ref.color).max()), float(np.abs(im.alpha - ref.alpha).max())),
            depth_rel=float(np.abs(im.depth - ref.depth).max() / max(1.0, float(np.abs(ref.depth).max()))))

    names = list(runners)
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for i in range(repeats):
        for name in names[i % len(names):] + names[: i % len(names)]:
            samples[name].append(timed(runners[name]))
    wall = {n: 1e3 * statistics.median(x[0] for x in samples[n]) for n in names}
    cpu = {n: 1e3 * statistics.median(x[1] for x in samples[n]) for n in names}
    row = dict(scale=scale, width=frame.width, height=frame.height, wall_ms=wall, cpu_ms=cpu, max_diff=diffs,
               wall_ratio={n: wall[n] / wall["product"] for n in variants},
               cpu_ratio={n: cpu[n] / cpu["product"] for n in variants})
    if parts:
        row["product_gather_bucket_share"] = dict(wall=wall["product gather+bucket"] / wall["product"],
                                                  cpu=cpu["product gather+bucket"] / cpu["product"])
    return row, (splats, lists, frame)


def markdown(rows: list[dict], variants: list[str]) -> str:
    lines = ["| s | size | product ms | " + " | ".join(f"{v} ms (x product)" for v in variants) + " | "
             + " | ".join(f"{v} max diff" for v in variants) + " |",
             "|---|---|---:|" + "---:|" * (2 * len(variants))]
    for r in rows:
        w = r["wall_ms"]
        lines.append(f"| {r['scale']:g} | {r['width']}x{r['height']} | {w['product']:.1f} | "
                     + " | ".join(f"{w[v]:.1f} ({r['wall_ratio'][v]:.2f})" for v in variants) + " | "
                     + " | ".join(f"{r['max_diff'][v]['color_alpha']:.1e}" for v in variants) + " |")
    return "\n".join(lines)


def markdown_parts(rows: list[dict]) -> str:
    names = list(E.PARTS)
    lines = ["| s | product ms | " + " | ".join(f"{n} ms" for n in names) + " | product gather+bucket share |",
             "|---|---:|" + "---:|" * (len(names) + 1)]
    for r in rows:
        w = r["wall_ms"]
        share = r["product_gather_bucket_share"]
        lines.append(f"| {r['scale']:g} | {w['product']:.1f} | " + " | ".join(f"{w[n]:.1f}" for n in names)
                     + f" | {100 * share['wall']:.0f} % (cpu {100 * share['cpu']:.0f} %) |")
    return "\n".join(lines)


def markdown_counts(counts: dict[float, dict[str, float]]) -> str:
    cols = ("tile entries / block", "bucket entries / block", "candidates / pixel", "chunks / pixel", "hits / pixel",
            "terminated pixels", "product lane evaluations / pixel", "2x2 sub-block list / pixel")
    lines = ["| s | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for s, c in counts.items():
        lines.append(f"| {s:g} | " + " | ".join(f"{c[k]:.2f}" for k in cols) + " |")
    return "\n".join(lines)


def count_row(splats: K.Splats, lists: K.TileLists, frame: K.Frame) -> dict[str, float]:
    c = dict(zip(E.COUNT_FIELDS, E.count_work(splats, lists, frame.width, frame.height).tolist()))
    nb, npx = c["blocks"], c["pixels"]
    return {"tile entries / block": c["tile entries"] / nb, "bucket entries / block": c["bucket entries"] / nb,
            "candidates / pixel": c["candidates evaluated"] / npx, "chunks / pixel": c["chunks"] / npx,
            "hits / pixel": c["hits"] / npx, "terminated pixels": c["terminated pixels"] / npx,
            "product lane evaluations / pixel": E.LANES * c["product entries stepped"] / npx,
            "2x2 sub-block list / pixel": c["sub-block list entries"] / npx}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9, help="timed rounds after the warm-up")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads")
    ap.add_argument("--scales", default="1,2,3,4", help="render scales s (comma-separated)")
    ap.add_argument("--variants", default=",".join(E.VARIANTS), help="prototype variants (comma-separated)")
    ap.add_argument("--counts", action="store_true", help="also count candidates and hits per pixel")
    ap.add_argument("--parts", action="store_true", help="also time the gather + bucket (and compaction) alone")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prototype_entry_simd.json")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in E.VARIANTS]
    if unknown or args.repeats < 1:
        ap.error(f"--variants: unknown {unknown}, expected some of {list(E.VARIANTS)}" if unknown
                 else "--repeats must be at least 1")
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    print(f"{numba.get_num_threads()} numba threads, {args.repeats} rounds", flush=True)

    rows, counts = [], {}
    for s in (float(x) for x in args.scales.split(",")):
        row, inputs = run_scale(s, variants, args.parts, args.repeats)
        rows.append(row)
        print(f"s={s:g} {row['width']}x{row['height']}: "
              + ", ".join(f"{n} {t:.1f}" for n, t in row["wall_ms"].items()) + " ms", flush=True)
        if args.counts:
            counts[s] = count_row(*inputs)

    print("\n" + markdown(rows, variants))
    print("\n(wall ms per call, median of interleaved rounds; x product: variant / product at the same s; max diff: "
          "largest |variant - product| over colour and alpha)")
    if args.parts:
        print("\n" + markdown_parts(rows))
    if args.counts:
        print("\n" + markdown_counts(counts))
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), processor=platform.processor(),
                python=platform.python_version(), numba=numba.__version__, threads=numba.get_num_threads(),
                repeats=args.repeats, cpu_count=os.cpu_count(), scene="plant.splat", camera=f"orbit {WIDTH}x{HEIGHT}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, dict(meta=meta, results=rows, counts={f"{s:g}": c for s, c in counts.items()}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
