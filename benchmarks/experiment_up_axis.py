"""The up-axis estimate (splatup.viewpoints.estimate_up) on every scene and camera set in ../shared/data, and on
randomly rotated copies of the scenes.

For each: the cue that decided, the angle between the unsnapped estimate and the known up axis (listed in
padilla_splats/*/meta.json; +z for the donut, whose icing is on +z, for the garden, whose ground its cameras stand
above, and for the NeRF-synthetic cameras, Blender's convention), whether the snapped answer is that axis, and over
``--rotations`` random rotations of the scene the largest angle to the rotated axis and the largest departure from
turning with the scene. Time: median of 3 after a warm-up.

usage: python benchmarks/experiment_up_axis.py [--rotations 8] [--out docs/results/up_axis.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from splatup.gaussians import quat_to_rotmat
from splatup.io.datasets import load_dataset
from splatup.viewpoints import estimate_up, parse_vector

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b)))))


def rotated(scene: su.Gaussians, seed: int) -> tuple[su.Gaussians, torch.Tensor]:
    q = torch.randn(4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / q.norm()
    R = quat_to_rotmat(q[None])[0]
    w1, x1, y1, z1 = q.tolist()
    w2, x2, y2, z2 = scene.quats.double().unbind(-1)
    quats = torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                         w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], -1)
    g = su.Gaussians(scene.means.double() @ R.T, quats, scene.log_scales.double(), scene.opacity_logits.double(),
                     scene.sh.double()).to(scene.dtype)
    return g, R


def garden() -> tuple[su.Gaussians, list[su.Camera]]:
    z = np.load(DATA / "gsplat_test_garden" / "test_garden.npz")
    pts = torch.from_numpy(z["means3d"]).float()
    n = len(pts)
    g = su.Gaussians.from_activated(pts, torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).contiguous(),
                                    torch.full((n, 3), 0.01), torch.full((n,), 0.9),
                                    colors=torch.from_numpy(z["colors"]).float() / 255)
    cams = [su.Camera(torch.from_numpy(z["viewmats"][i]).double(), torch.from_numpy(z["Ks"][i]).double(),
                      int(z["width"]), int(z["height"])) for i in range(len(z["viewmats"]))]
    return g, cams


def timed(fn) -> tuple[object, float]:
    fn()
    ts, out = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rotations", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    def listed(p: Path) -> str:
        return json.loads((p.parent / "meta.json").read_text())["geometry"]["up_axis"]

    g_garden, garden_cams = garden()
    cases = [(f"{p.name}", su.load_scene(p), None, listed(p)) for p in
             [DATA / "padilla_splats/plant/plant.splat", DATA / "padilla_splats/spot/spot_10k.splat",
              DATA / "padilla_splats/spot/spot_100k.splat"]]
    cases += [("donut fused.ply", su.load_scene(DATA / "gshairlod_donut/fused.ply"), None, "+z"),
              ("garden points", g_garden, None, "+z"), ("garden, its 3 cameras", None, garden_cams, "+z"),
              ("mic, 100 train cameras", None,
               [v.camera for v in load_dataset(DATA / "nerf_synthetic_mic", split="train").views], "+z")]
    rows = []
    print(f"{'case':<24} {'N':>8} {'source':>8} {'conf':>6} {'raw err':>8} {'snapped':>8} {'ok':>3} "
          f"{'rot err max':>11} {'turn dev max':>12} {'ms':>7}")
    for name, scene, cams, axis in cases:
        true_up = torch.tensor(parse_vector(axis, "up"), dtype=torch.float64)
        (up, est), t = timed(lambda s=scene, c=cams: estimate_up(s, c))
        rot_err = turn_dev = None
        if scene is not None and args.rotations:
            errs, devs = [], []
            for seed in range(args.rotations):
                g, R = rotated(scene, seed)
                _, e = estimate_up(g)
                errs.append(angle(e.raw, R @ true_up))
                devs.append(angle(e.raw, R @ est.raw))
            rot_err, turn_dev = max(errs), max(devs)
        row = {"case": name, "gaussians": None if scene is None else len(scene), "source": est.source,
               "confidence": est.confidence, "raw_error_deg": angle(est.raw, true_up), "snapped_to": est.snapped_to,
               "correct_axis": bool(torch.equal(up, true_up)), "rotated_error_max_deg": rot_err,
               "turn_deviation_max_deg": turn_dev, "time_s": t, "cues": est.cues}
        rows.append(row)
        rot = "-" if rot_err is None else f"{rot_err:.1f}d"
        dev = "-" if turn_dev is None else f"{turn_dev:.1f}d"
        print(f"{name:<24} {row['gaussians'] or '-':>8} {est.source:>8} {est.confidence:>6} "
              f"{row['raw_error_deg']:>7.1f}d {str(est.snapped_to):>8} {'yes' if row['correct_axis'] else 'NO':>3} "
              f"{rot:>11} {dev:>12} {t * 1e3:>7.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rotations": args.rotations, "threads": torch.get_num_threads(),
                                        "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
