"""The memory estimate (splatup.memory) against measured peaks, and the counts its allowances stand in for.

1. For each case, a child process (tests/memory_probe.py) renders the way `splatup render` does and reports the
   resident-set high-water mark above the resident size before the render (VmHWM, reset after a warm-up); the
   table gives it beside ``estimate_render_bytes`` (with the allowances, as the commands use it, and with the exact
   pair count and longest tile list). Also the peak of one `compare` view with every method, per pixel.
2. Tile-Gaussian pairs per pixel and the longest tile list as a fraction of the Gaussians on real scenes, the
   quantities behind PAIRS_PER_PIXEL_ALLOWANCE and LONGEST_LIST_FRACTION.

    python benchmarks/memory_estimate.py --out docs/results/memory_estimate.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPLATUP_SHARED_DATA", REPO.parent / "shared" / "data"))
PROBE = REPO / "tests" / "memory_probe.py"
SPOT = DATA / "padilla_splats" / "spot" / "spot_10k.splat"
PLANT = DATA / "padilla_splats" / "plant" / "plant.splat"
RENDER_CASES = [(SPOT, 1024, 768, "native", 1), (SPOT, 2048, 1536, "native", 1), (SPOT, 2048, 1536, "hermite", 2),
                (SPOT, 2048, 1536, "bicubic", 2), (SPOT, 2048, 1536, "fd-hermite", 2),
                (PLANT, 1280, 720, "native", 1), (PLANT, 1280, 720, "hermite", 3), (PLANT, 1920, 1080, "hermite", 2)]
COMPARE_CASES = [(SPOT, 640, 480, "compare-nolpips"), (SPOT, 1280, 960, "compare-nolpips"),
                 (SPOT, 1280, 960, "compare")]


def probe(scene: Path, w: int, h: int, method: str, scale: float, out: Path) -> dict:
    # as tests/test_memory.py: every large buffer mapped on allocation and unmapped on free, so that the resident
    # size follows the live buffers (splatup's malloc tuning yields to these settings)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    r = subprocess.run([sys.executable, str(PROBE), str(scene), str(w), str(h), method, str(scale), str(out)], env=env,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def list_counts() -> list[dict]:
    import splatup as su
    from splatup.render.project import project
    from splatup.render.tiles import TILE_SIZE, bin_gaussians
    from splatup.viewpoints import orbit_camera

    rows = []
    for path in (SPOT, DATA / "padilla_splats" / "spot" / "spot_100k.splat", PLANT,
                 DATA / "gshairlod_donut" / "fused.ply"):
        g = su.load_scene(path)
        for w, h in ((320, 240), (1280, 720), (3840, 2160)):
            for az in (0.0, 120.0):
                cam = orbit_camera(g, w, h, azimuth_deg=az)
                p = project(g, cam)
                b = bin_gaussians(p.means2d.detach().numpy(), p.bin_extents.numpy(), p.depths.numpy(),
                                  p.alive.numpy(), w, h, TILE_SIZE, p.reach.numpy(), p.tile_rects.numpy())
                longest = int((b.offsets[1:] - b.offsets[:-1]).max())
                rows.append({"scene": path.name, "size": [w, h], "azimuth": az, "gaussians": len(g),
                             "pairs_per_pixel": b.n_pairs / (w * h), "longest_list_fraction": longest / len(g)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from splatup.memory import estimate_compare_bytes, estimate_render_bytes, format_bytes

    results = {"render": [], "compare": [], "lists": []}
    with tempfile.TemporaryDirectory() as tmp:
        print("| scene | size | method | measured peak | estimate | ratio | with exact counts |")
        print("|---|---|---|---:|---:|---:|---:|")
        for scene, w, h, method, scale in RENDER_CASES:
            d = probe(scene, w, h, method, scale, Path(tmp) / "o.png")
            est = estimate_render_bytes(d["n"], w, h, scale, method)
            exact = estimate_render_bytes(d["n"], w, h, scale, method, n_pairs=d["pairs"],
                                          longest_list=d["longest_list"])
            results["render"].append({"scene": scene.name, "size": [w, h], "method": method, "scale": scale,
                                      "peak": d["peak"], "estimate": est, "estimate_exact_counts": exact})
            label = "native" if method == "native" else f"{method} x{scale:g}"
            print(f"| {scene.name} | {w}x{h} | {label} | {format_bytes(d['peak'])} | {format_bytes(est)} | "
                  f"{est / d['peak']:.2f} | {exact / d['peak']:.2f} |")
        print("\n| compare (1 view, 6 methods) | size | measured peak | B/px | estimate | ratio |")
        print("|---|---|---:|---:|---:|---:|")
        for scene, w, h, mode in COMPARE_CASES:
            d = probe(scene, w, h, mode, 2, Path(tmp) / "cmp")
            est = estimate_compare_bytes(d["n"], w, h, 2, 6, 1, mode == "compare")
            results["compare"].append({"scene": scene.name, "size": [w, h], "lpips": mode == "compare",
                                       "peak": d["peak"], "estimate": est})
            print(f"| {scene.name}{'' if mode == 'compare' else ', no LPIPS'} | {w}x{h} | {format_bytes(d['peak'])} | "
                  f"{d['peak'] / (w * h):.0f} | {format_bytes(est)} | {est / d['peak']:.2f} |")
    results["lists"] = list_counts()
    worst_pairs = max(r["pairs_per_pixel"] for r in results["lists"])
    worst_list = max(r["longest_list_fraction"] for r in results["lists"])
    print(f"\npairs per pixel: at most {worst_pairs:.2f}; longest tile list: at most {worst_list:.3f} of the Gaussians "
          f"({len(results['lists'])} scene/size/view cases)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
