"""Tiny training runs on real data for tests (importable as ``from tiny_training import ...``): mic at 32 px, a
few hundred random Gaussians, a handful of views, densification (clone and split) inside the first 30 iterations."""

from __future__ import annotations

from pathlib import Path

from splatup.train.model import TrainConfig
from splatup.train.trainer import TrainSettings

TINY_CONFIG = dict(iterations=40, densify_from_iter=5, densify_until_iter=30, densification_interval=5,
                   opacity_reset_interval=20, sh_degree=1, sh_increase_interval=10, densify_grad_threshold=0.00005)
TINY_SETTINGS = dict(upscale=2.0, width=32, white_background=True, init="random", random_points=500, seed=1,
                     checkpoint_every=4, max_views=4)


def tiny_settings(shared_data: Path, out_dir: Path, config: dict | None = None, **settings) -> TrainSettings:
    """TINY_SETTINGS / TINY_CONFIG with overrides; on mic with 4 views at 32x32, densification every 5 iterations
    from 5 to 30 (splits from iteration 10, clones from 20), opacity reset at 20 and SH degree 1 from 10."""
    cfg = {**TINY_CONFIG, **(config or {})}
    kw = {**TINY_SETTINGS, **settings}
    return TrainSettings(dataset=str(shared_data / "nerf_synthetic_mic"), out_dir=str(out_dir),
                         config=TrainConfig(**cfg), **kw)
