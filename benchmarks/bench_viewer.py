"""Viewer frame rate: the server's work per frame while the camera moves, through the viewer's own frame loop.

plant.splat at 1280x720 (fixed render size), camera orbiting the scene's robust centre by 1 degree per frame from the
viewer's opening view, every frame a "moving" frame. Each configuration has its own ``ClientSession`` (planner,
dynamic-resolution controller, render, 8-bit conversion) whose frames are JPEG-encoded and queued by a real viser
server exactly as for a browser (``scene.set_background_image``, quality 80 for moving frames); no browser is
attached, so the figures are the server's cost, not the browser's drawing.

Configurations: native; hermite x2; hermite with auto at a 30 fps target (33.3 ms). The configurations run in turn,
``--frames`` frames each per round, for ``--rounds`` rounds after ``--warmup`` frames each; the auto session keeps
its controller across rounds. Reported: the median frame time and its fps (1000 / median ms), the 90th percentile,
the median factor, the medians of each phase, and the sustained rate (frames / wall time of the round, loop
overhead included).

usage: python benchmarks/bench_viewer.py [--rounds 5] [--frames 20] [--warmup 10] [--out benchmarks/results/viewer.json]
"""

from __future__ import annotations

# isort: off
import splatup as su  # first: it sets the OpenMP spin policy before torch and numba load their runtime

# isort: on
import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numba
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from splatup.bench.report import write_json
from splatup.view.cameras import opening_view
from splatup.view.session import CameraPose, ClientSession
from splatup.view.settings import ViewSettings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLATUP_SHARED", ROOT.parent / "shared"))
WIDTH, HEIGHT = 1280, 720
UP = (0.0, -1.0, 0.0)  # plant.splat's up axis (shared/data meta.json)

CONFIGS = {
    "native": ViewSettings(method="native", auto=False),
    "hermite x2": ViewSettings(method="hermite", factor=2.0, auto=False),
    "auto (30 fps)": ViewSettings(method="hermite", factor=2.0, auto=True, target_ms=1000.0 / 30.0),
}


def orbit_poses(scene, fov_deg: float):
    """Endless camera poses: the opening view turned about the up axis by 1 degree per frame."""
    view = opening_view(scene, UP, fov_deg)
    cam0 = su.Camera.look_at(view.position, view.look_at, UP, fov_deg, HEIGHT, HEIGHT)  # square: fov_x = fov_y
    c2w0 = np.linalg.inv(cam0.world_to_camera.numpy())
    pivot = np.asarray(view.look_at)
    k = 0
    while True:
        R = Rotation.from_rotvec(math.radians(k) * np.asarray(UP)).as_matrix()
        rot = R @ c2w0[:3, :3]
        pos = pivot + R @ (c2w0[:3, 3] - pivot)
        x, y, z, w = Rotation.from_matrix(rot).as_quat()
        yield CameraPose(tuple(pos), (w, x, y, z), math.radians(fov_deg), WIDTH, HEIGHT, stamp=float(k))
        k += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=20, help="frames per configuration per round")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "viewer.json")
    args = ap.parse_args()
    import viser

    scene = su.load_scene(SHARED / "data" / "padilla_splats" / "plant" / "plant.splat")
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    encoder = "opencv" if _has_cv2() else "imageio"
    load_before = os.getloadavg()
    try:
        sessions, poses = {}, {}
        for name, settings in CONFIGS.items():
            sessions[name] = ClientSession(
                scene, settings, lambda img, q: server.scene.set_background_image(img, format="jpeg", jpeg_quality=q),
                lambda text: None, size=(WIDTH, HEIGHT))
            poses[name] = orbit_poses(scene, settings.fov_deg)

        def frame(name):
            s = sessions[name]
            s.camera_changed(next(poses[name]))
            rec = s.step()
            assert rec is not None and rec.kind == "moving", "the frame loop did not render a moving frame"
            return rec

        print(f"plant.splat {WIDTH}x{HEIGHT}: {args.warmup} warm-up frames, then {args.rounds} rounds x "
              f"{args.frames} frames per configuration ...", flush=True)
        for name in CONFIGS:
            for _ in range(args.warmup):
                frame(name)
        records = {name: [] for name in CONFIGS}
        rates = {name: [] for name in CONFIGS}
        names = list(CONFIGS)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                for _ in range(args.frames):
                    records[name].append(frame(name))
                rates[name].append(args.frames / (time.perf_counter() - t0))
    finally:
        server.stop()
    load_after = os.getloadavg()

    rows = []
    for name, recs in records.items():
        ms = [r.frame_s * 1e3 for r in recs]
        med = statistics.median(ms)
        rows.append(dict(
            config=name, frames=len(recs), median_ms=med, fps=1000.0 / med, p90_ms=float(np.percentile(ms, 90)),
            sustained_fps=statistics.median(rates[name]), median_factor=statistics.median(r.factor for r in recs),
            factor_range=[min(r.factor for r in recs), max(r.factor for r in recs)],
            phases_ms={k: statistics.median(r.phases[k] for r in recs) * 1e3 for k in recs[0].phases},
        ))
    print()
    print(f"| configuration | median ms | fps | p90 ms | sustained fps | factor (median, range) | "
          f"{' | '.join(rows[0]['phases_ms'])} |")
    print("|---|---:|---:|---:|---:|---|" + "---:|" * len(rows[0]["phases_ms"]))
    for row in rows:
        lo, hi = row["factor_range"]
        print(f"| {row['config']} | {row['median_ms']:.1f} | {row['fps']:.1f} | {row['p90_ms']:.1f} | "
              f"{row['sustained_fps']:.1f} | {row['median_factor']:.2f} ({lo:.2f}-{hi:.2f}) | "
              + " | ".join(f"{v:.1f}" for v in row["phases_ms"].values()) + " |")
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=platform.machine(), processor=platform.processor(),
                cpus=os.cpu_count(), python=platform.python_version(), torch=torch.__version__,
                numba=numba.__version__, viser=viser.__version__, threads=numba.get_num_threads(),
                jpeg_encoder=encoder, size=[WIDTH, HEIGHT], rounds=args.rounds, frames=args.frames,
                warmup=args.warmup, loadavg_before=list(load_before), loadavg_after=list(load_after))
    write_json(args.out, dict(meta=meta, results=rows))
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} (shared machine); "
          f"JPEG encoder: {encoder}; JSON: {args.out}")


def _has_cv2() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
