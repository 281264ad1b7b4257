"""Densification schedules for a short run (the rule of splatup/train/schedule.py against its alternatives).

Trains mic natively for ``--iterations`` (default 300) with four schedules and evaluates each on test views:
  A  the 3DGS counts as they are (densify from 500, so a 300-iteration run never densifies): the old behaviour;
  B  every count scaled linearly by iterations / 30,000 with no floor (gsplat's steps_scaler): densify every
     iteration, reset opacities every 30;
  C  splatup's rule: scaled, with floors (densify every >= 10, reset every >= 368);
  D  as C but densifying every 100 (3DGS's interval, unscaled).
Prints a table and writes JSON (test PSNR / SSIM, Gaussians, share below opacity 1/255).

    python benchmarks/ablation_short_schedule.py --out docs/results/short_schedule_300.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from splatup.train.evaluate import evaluate
from splatup.train.model import TrainConfig
from splatup.train.schedule import SCHEDULE_FIELDS, resolve_schedule
from splatup.train.trainer import TrainSettings, train

REPO = Path(__file__).resolve().parents[1]


def variants(n: int) -> dict[str, dict]:
    f = n / 30_000
    return {
        "A: 3DGS counts unscaled": dict(densify_from_iter=500, densify_until_iter=n // 2, densification_interval=100,
                                        opacity_reset_interval=3000, sh_increase_interval=1000),
        "B: scaled, no floors": dict(densify_from_iter=int(500 * f), densify_until_iter=int(15_000 * f),
                                     densification_interval=max(1, int(100 * f)),
                                     opacity_reset_interval=max(1, int(3000 * f)),
                                     sh_increase_interval=max(1, int(1000 * f))),
        "C: splatup rule": {},
        "D: C, densify every 100": dict(densification_interval=100),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(REPO.parent / "shared" / "data" / "nerf_synthetic_mic"))
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--random-points", type=int, default=10_000)
    ap.add_argument("--test-views", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    white = (1.0, 1.0, 1.0)
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        for name, schedule in variants(args.iterations).items():
            cfg = TrainConfig(iterations=args.iterations, **schedule)
            s = TrainSettings(dataset=args.dataset, out_dir=str(Path(work) / name[0]), width=args.width,
                              white_background=True, init="random", random_points=args.random_points, seed=0,
                              checkpoint_every=10**9, config=cfg)
            res = train(s, on_message=lambda m: None)
            model = res["model"]
            opacity = torch.sigmoid(model.params["opacity_logits"].detach())
            ev = evaluate(model.export(), args.dataset, "test", args.width, "native", background=white,
                          max_views=args.test_views, use_lpips=False)["mean"]
            resolved = resolve_schedule(cfg)[0]
            rows[name] = {"schedule": {k: getattr(resolved, k) for k in SCHEDULE_FIELDS}, "psnr": ev["psnr"],
                          "ssim": ev["ssim"], "gaussians": len(model),
                          "below_1_255": float((opacity < 1 / 255).float().mean())}
            print(f"{name:26s} PSNR {ev['psnr']:6.2f}  SSIM {ev['ssim']:.4f}  Gaussians {len(model):7,d}  "
                  f"below 1/255 {rows[name]['below_1_255']:6.1%}  {rows[name]['schedule']}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
