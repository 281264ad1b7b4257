"""The 3DGS training loop, natively or with gradient-aware upscaling in the loop.

Per iteration: pick a training view (a fresh random permutation per epoch), render it — at full size, or at 1/S
with derivatives and Hermite-upscaled to full size (the 1/S render keeps the native filter: dilation 0.3 / S^2
low-res px^2, so the model also renders natively at full size) — take 0.8 L1 + 0.2 D-SSIM against the full-size
image, backpropagate through the upscaler, the derivative images and the rasterizer into the Gaussians, update
densification statistics (in full-resolution units), densify / prune / reset opacity on the 3DGS schedule, and step
Adam. Checkpoints are written atomically and a resumed run continues bit-for-bit where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..io._atomic import atomic_write
from ..io.datasets import Dataset, load_dataset
from ..io.images import area_downsample, read_image
from ..io.ply import save_ply
from ..pipeline import render_lowres
from ..render.rasterize import rasterize
from ..upscale.hermite import upscale
from .init import gaussians_from_points, random_gaussians
from .losses import photometric_loss
from .model import GaussianModel, TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainSettings:
    """Everything that defines a training run (stored in checkpoints; a resumed run must match)."""

    dataset: str
    out_dir: str
    upscale: float = 1.0
    width: int | None = None  # training (full) resolution width; height keeps the aspect; None = image size
    white_background: bool = False
    init: str = "auto"  # "points" (COLMAP sparse points), "random" (NeRF-synthetic style) or "auto"
    random_points: int = 100_000
    seed: int = 0
    checkpoint_every: int = 1000
    max_views: int | None = None  # use only the first N training views (tests, quick runs)
    config: TrainConfig = field(default_factory=TrainConfig)

    @property
    def background(self) -> tuple[float, float, float]:
        return (1.0, 1.0, 1.0) if self.white_background else (0.0, 0.0, 0.0)


@dataclass
class TrainView:
    camera: Camera  # at the training (full) resolution
    image: torch.Tensor  # [H, W, 3] ground truth composited on the background
    name: str


def scene_extent(cameras: list[Camera]) -> float:
    """3DGS's ``cameras_extent``: 1.1 x the largest distance of a camera centre from their mean."""
    centers = torch.stack([c.center for c in cameras])
    return 1.1 * float(torch.linalg.vector_norm(centers - centers.mean(0), dim=1).max().clamp_min(1e-6))


def load_views(ds: Dataset, width: int | None, background, max_views: int | None = None) -> list[TrainView]:
    """Cameras resized to ``width`` (aspect kept) and images area-downsampled to match."""
    views = []
    for v in ds.views[:max_views] if max_views else ds.views:
        cam = v.camera
        if width is not None and width != cam.width:
            cam = cam.resized(width, max(1, round(cam.height * width / cam.width)))
        img = read_image(v.image_path, background=background)
        if img.shape[:2] != (cam.height, cam.width):
            img = area_downsample(img, (cam.height, cam.width))
        views.append(TrainView(cam, img.contiguous(), v.name))
    if not views:
        raise SplatupInputError(f"{ds.root}: no training views")
    return views


def initial_scene(settings: TrainSettings, ds: Dataset, generator: torch.Generator):
    use_points = settings.init == "points" or (settings.init == "auto" and ds.points is not None and len(ds.points))
    if use_points:
        if ds.points is None or not len(ds.points):
            raise SplatupInputError(f"{ds.root}: --init points needs a dataset with sparse points (COLMAP)")
        colors = ds.point_colors if ds.point_colors is not None else torch.full_like(ds.points, 0.5)
        return gaussians_from_points(ds.points, colors, settings.config.sh_degree)
    if settings.init not in ("random", "auto"):
        raise SplatupInputError(f"init must be 'auto', 'points' or 'random', got {settings.init!r}")
    return random_gaussians(settings.random_points, 1.3, settings.config.sh_degree, generator)


def render_for_training(model: GaussianModel, view: TrainView, settings: TrainSettings):
    """Image [H, W, 3] at the view's full size plus the raster output and the render size (H_r, W_r)."""
    scene = model.scene()
    cam = view.camera
    if settings.upscale == 1.0:
        out = rasterize(scene, cam, background=settings.background, sh_degree=model.active_sh_degree)
        return out.color, out, (cam.height, cam.width)
    out, lr = render_lowres(scene, cam, settings.upscale, derivatives=True, background=settings.background,
                            sh_degree=model.active_sh_degree)
    img = upscale(out.color, out.dx, out.dy, out.dxy, size=(cam.height, cam.width), clamp=False)
    return img, out, (lr.height, lr.width)


def _save_checkpoint(path: Path, iteration: int, model: GaussianModel, generator: torch.Generator,
                     perm: torch.Tensor, pos: int, settings: TrainSettings, log: list) -> None:
    state = {"iteration": iteration, "model": model.state_dict(), "generator": generator.get_state(),
             "perm": perm, "pos": pos, "settings": asdict(settings), "log": log}
    with atomic_write(path) as f:
        torch.save(state, f)


def _check_resume(saved: dict, settings: TrainSettings, path: Path) -> None:
    now = asdict(settings)
    for key in ("dataset", "upscale", "width", "white_background", "init", "random_points", "seed", "max_views",
                "config"):
        if saved.get(key) != now.get(key):
            raise SplatupInputError(f"{path}: cannot resume, the checkpoint was made with {key}={saved.get(key)!r} "
                                    f"but this run has {key}={now.get(key)!r}")


def train(settings: TrainSettings, resume: bool = False, stop_after: int | None = None,
          on_iteration: Callable[[int, dict], None] | None = None) -> dict:
    """Run (or resume) a training run; returns a summary dict. ``stop_after`` ends the loop early at that
    iteration after writing a checkpoint (used to simulate an interrupted run)."""
    cfg = settings.config
    if not (isinstance(settings.upscale, (int, float)) and math.isfinite(settings.upscale) and settings.upscale >= 1):
        raise SplatupInputError(f"--upscale must be a number >= 1, got {settings.upscale!r}")
    if cfg.iterations < 1:
        raise SplatupInputError(f"--iterations must be >= 1, got {cfg.iterations}")
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT_NAME
    ds = load_dataset(settings.dataset, split="train")
    views = load_views(ds, settings.width, settings.background, settings.max_views)
    generator = torch.Generator().manual_seed(settings.seed)
    model = GaussianModel(initial_scene(settings, ds, generator), cfg, scene_extent([v.camera for v in views]))
    start, perm, pos, log = 0, torch.randperm(len(views), generator=generator), 0, []
    if resume:
        if not ckpt_path.is_file():
            raise SplatupInputError(f"--resume: no checkpoint at {ckpt_path}")
        saved = torch.load(ckpt_path, weights_only=False)
        _check_resume(saved["settings"], settings, ckpt_path)
        model.load_state_dict(saved["model"])
        generator.set_state(saved["generator"])
        start, perm, pos, log = saved["iteration"], saved["perm"], saved["pos"], saved["log"]
    t_start = time.perf_counter()
    iter_times: list[float] = []
    it = start
    for it in range(start + 1, cfg.iterations + 1):
        t0 = time.perf_counter()
        model.update_learning_rate(it)
        model.maybe_increase_sh(it)
        if pos >= len(perm):
            perm, pos = torch.randperm(len(views), generator=generator), 0
        view = views[int(perm[pos])]
        pos += 1
        img, out, render_size = render_for_training(model, view, settings)
        out.means2d.retain_grad()
        loss = photometric_loss(img, view.image, cfg.lambda_dssim)
        loss.backward()
        stats: dict[str, int] = {}
        with torch.no_grad():
            if it < cfg.densify_until_iter:
                model.add_stats(out.means2d.grad, out.radii, out.visible, render_size,
                                (view.camera.height, view.camera.width))
                if it > cfg.densify_from_iter and it % cfg.densification_interval == 0:
                    stats = model.densify_and_prune(it, generator)
                if it % cfg.opacity_reset_interval == 0 or (settings.white_background and it == cfg.densify_from_iter):
                    model.reset_opacity()
            model.optimizer.step()
            model.optimizer.zero_grad(set_to_none=True)
            mse = float(((img.detach().clamp(0, 1) - view.image) ** 2).mean())
        iter_times.append(time.perf_counter() - t0)
        entry = {"iteration": it, "loss": float(loss.detach()), "psnr": -10 * math.log10(max(mse, 1e-12)),
                 "gaussians": len(model), **stats}
        if it % 10 == 0 or stats:
            log.append(entry)
        if on_iteration:
            on_iteration(it, entry)
        if it % settings.checkpoint_every == 0 or it == cfg.iterations or it == stop_after:
            _save_checkpoint(ckpt_path, it, model, generator, perm, pos, settings, log)
        if stop_after is not None and it >= stop_after:
            break
    total = time.perf_counter() - t_start
    result = {"iterations": it, "gaussians": len(model), "seconds": total,
              "seconds_per_iteration": total / max(1, it - start),
              "median_seconds_per_iteration": sorted(iter_times)[len(iter_times) // 2] if iter_times else None,
              "final_loss": log[-1]["loss"] if log else None}
    if it == cfg.iterations:
        ply = out_dir / "point_cloud.ply"
        save_ply(model.export(), ply)
        result["ply"] = str(ply)
    with atomic_write(out_dir / "train_summary.json") as f:
        f.write(json.dumps({"settings": asdict(settings), "result": result}, indent=1, default=str).encode())
    result["model"] = model
    return result
