"""How many Gaussian-pixel evaluations a frame needs, and how many each lane-block shape makes, at 1/s.

For plant.splat at 1920x1080 / s (the matched dilation of render(scale=s)), walking every tile list in depth order
per pixel in float64 (alpha >= 1/255 evaluated exactly, stopping where T (1 - alpha) < 1e-4):

  useful hits   entries a pixel really composites (the floor for any exact kernel)
  B blocks      lane evaluations of a kernel whose blocks of B pixels walk the union of their pixels' hits
                (entries that hit no pixel of a block skipped): 16 x (entries hitting the block) per 16 pixels
  lockstep B    lanes walking each its own pixel's hit list in lockstep, B pixels per vector: B x (longest list)

This is the analysis behind the block shape of render/lanes.py (docs/benchmarks.md); scalar numba, slow.

usage: python benchmarks/block_occupancy.py [--factors 1,2,4]
"""

from __future__ import annotations

# isort: off
import splatup as su  # noqa: F401  first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import math
import os
from pathlib import Path

import numpy as np
from numba import njit, prange

from splatup.pipeline import lowres_camera, matched_dilation
from splatup.render.project import project
from splatup.render.tiles import TILE_SIZE, bin_gaussians
from splatup.viewpoints import orbit_camera

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
SHAPES = ((4, 4), (4, 2), (2, 2), (8, 2), (2, 4))
LOCKSTEP = ((4, 4), (4, 2))


@njit(parallel=True)
def _occupancy(m2, con, op, offsets, gids, W, H, tiles_x, out):
    for t in prange(offsets.shape[0] - 1):
        s = offsets[t]
        n = offsets[t + 1] - s
        tx = t % tiles_x
        ty = t // tiles_x
        hit = np.zeros((n, 16, 16), np.bool_)
        T = np.ones((16, 16))
        for j in range(n):
            g = gids[s + j]
            for ly in range(16):
                for lx in range(16):
                    px = tx * 16 + lx
                    py = ty * 16 + ly
                    if px >= W or py >= H or T[ly, lx] == 0:
                        continue
                    dx = px + 0.5 - m2[g, 0]
                    dy = py + 0.5 - m2[g, 1]
                    a = min(0.99, op[g] * math.exp(-0.5 * (con[g, 0] * dx * dx + 2 * con[g, 1] * dx * dy
                                                           + con[g, 2] * dy * dy)))
                    if a < 1 / 255:
                        continue
                    tn = T[ly, lx] * (1 - a)
                    if tn < 1e-4:
                        T[ly, lx] = 0
                    else:
                        T[ly, lx] = tn
                        hit[j, ly, lx] = True
        for c in range(len(SHAPES)):
            bw, bh = SHAPES[c]
            tot = 0
            for by in range(0, 16, bh):
                for bx in range(0, 16, bw):
                    for j in range(n):
                        if hit[j, by:by + bh, bx:bx + bw].any():
                            tot += bw * bh
            out[t, c] = tot
        for c in range(len(LOCKSTEP)):
            bw, bh = LOCKSTEP[c]
            tot = 0
            for by in range(0, 16, bh):
                for bx in range(0, 16, bw):
                    longest = 0
                    for yy in range(by, by + bh):
                        for xx in range(bx, bx + bw):
                            longest = max(longest, hit[:, yy, xx].sum())
                    tot += longest * bw * bh
            out[t, len(SHAPES) + c] = tot
        out[t, len(SHAPES) + len(LOCKSTEP)] = hit.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factors", default="1,2,4")
    args = ap.parse_args()
    scene = su.load_scene(SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    cam = orbit_camera(scene, 1920, 1080, azimuth_deg=30, elevation_deg=20)
    names = [f"{w}x{h} blocks" for w, h in SHAPES] + [f"lockstep {w}x{h}" for w, h in LOCKSTEP] + ["useful hits"]
    print("lane evaluations per pixel:")
    for s in (float(f) for f in args.factors.split(",")):
        lr = cam if s == 1 else lowres_camera(cam, s)
        p = project(scene, lr, dilation=matched_dilation(cam, lr))
        b = bin_gaussians(p.means2d.detach().numpy(), p.bin_extents.numpy(), p.depths.numpy(), p.alive.numpy(),
                          lr.width, lr.height, TILE_SIZE, p.reach.numpy(), p.tile_rects.numpy())
        out = np.zeros((b.offsets.shape[0] - 1, len(names)), np.int64)
        f64 = lambda x: x.detach().numpy().astype(np.float64)  # noqa: E731
        _occupancy(f64(p.means2d), f64(p.conics), f64(p.opacities), b.offsets, b.gids, lr.width, lr.height,
                   b.tiles_x, out)
        px = lr.width * lr.height
        print(f"  s={s:g} ({lr.width}x{lr.height}): " + ", ".join(f"{n} {v / px:.1f}" for n, v in
                                                                 zip(names, out.sum(0), strict=True)))


if __name__ == "__main__":
    main()
