"""Does a numba kernel give the same bits when compiled in the process as when loaded from numba's cache?

Runs one training step (mic, 32x32, 500 random Gaussians, upscale 2, the same inputs every time) in three child
processes that share a fresh NUMBA_CACHE_DIR: the first compiles every kernel (and writes the cache), the second
and third load them from the cache. Each child saves the gradient rows of the compositing backward and the
parameter gradients; the table compares child 1 and child 3 with child 2. A difference between "compiled" and
"cached" with none between the two cached runs means that the result of a run depends on whether its process
compiled the kernels, which is what made a killed-and-resumed training differ from an uninterrupted one once
(docs/training.md).

    python benchmarks/kernel_cache_determinism.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def child(dataset: str, out_path: str) -> None:
    import importlib

    import torch

    from splatup.io.datasets import load_dataset
    from splatup.train.losses import photometric_loss
    from splatup.train.model import GaussianModel, TrainConfig
    from splatup.train.trainer import TrainSettings, initial_scene, load_views, render_for_training, scene_extent

    kb = importlib.import_module("splatup.render.composite_backward")
    rast = importlib.import_module("splatup.render.rasterize")
    captured = {}
    real = kb.composite_backward

    def capture(splats, lists, frame, up, grad_rows, variant, replay_trans=None):
        real(splats, lists, frame, up, grad_rows, variant, replay_trans)
        captured["composite_backward_rows"] = np.array(grad_rows, copy=True)

    rast.KB.composite_backward = capture
    cfg = TrainConfig(iterations=10, sh_degree=1)
    s = TrainSettings(dataset=dataset, out_dir="unused", upscale=2.0, width=32, white_background=True, init="random",
                      random_points=500, seed=1, max_views=4, config=cfg)
    ds = load_dataset(dataset, split="train")
    views = load_views(ds, 32, s.background, 4)
    model = GaussianModel(initial_scene(s, ds, torch.Generator().manual_seed(1)), cfg,
                          scene_extent([v.camera for v in views]))
    img, out, _ = render_for_training(model, views[0], s)
    out.means2d.retain_grad()
    photometric_loss(img, views[0].image).backward()
    arrays = {"image": img.detach().numpy(), "means2d_grad": out.means2d.grad.numpy(), **captured}
    arrays.update({f"grad_{n}": p.grad.numpy() for n, p in model.params.items()})
    np.savez(out_path, **arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(REPO.parent / "shared" / "data" / "nerf_synthetic_mic"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.dataset, args.child)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cache")}
        runs = []
        for i, label in enumerate(("compiled", "cached", "cached again")):
            out = Path(tmp) / f"run{i}.npz"
            subprocess.run([sys.executable, __file__, "--dataset", args.dataset, "--child", str(out)], env=env,
                           check=True)
            runs.append((label, dict(np.load(out))))
        base = runs[1][1]
        print(f"{'array':28s} {'compiled vs cached':>28s} {'cached again vs cached':>28s}")
        for name in base:
            cols = []
            for _label, arrays in (runs[0], runs[2]):
                a, b = arrays[name], base[name]
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                cols.append("identical" if np.array_equal(a, b) else
                            f"{int((a != b).sum())} differ, max {diff.max():.2e}")
            print(f"{name:28s} {cols[0]:>28s} {cols[1]:>28s}")


if __name__ == "__main__":
    main()
