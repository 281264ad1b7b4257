"""The 3DGS training loop, natively or with gradient-aware upscaling in the loop.

Per iteration: pick a training view (a fresh random permutation per epoch), render it — at full size, or at 1/S
with derivatives and Hermite-upscaled to full size (the 1/S render keeps the native filter: dilation 0.3 / S^2
low-res px^2, so the model also renders natively at full size) — take 0.8 L1 + 0.2 D-SSIM against the full-size
image, backpropagate through the upscaler, the derivative images and the rasterizer into the Gaussians, update
densification statistics (in full-resolution units), densify / prune / reset opacity on the 3DGS schedule, and step
Adam. Checkpoints (checkpoint.py) are written durably every ``checkpoint_every`` iterations, and a resumed run
continues bit for bit where it stopped: everything the loop reads is in them (parameters, Adam's moments and step
counts, densification statistics, the RNG state, the epoch's view order and position, the active SH degree).
A run folder holds one run: training into it again needs ``resume`` (continue, also to more iterations) or
``overwrite`` (start again). A finished model is written as ``point_cloud.ply`` with ``point_cloud.json`` beside it
(metadata.py: how it was trained, so that eval and the viewer render it that way).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..camera import Camera
from ..errors import SplatupInputError
from ..io.datasets import Dataset, load_dataset
from ..io.images import area_downsample, read_image
from ..io.ply import save_ply
from ..pipeline import render_lowres, upscale_lowres
from ..render.project import DEFAULT_DILATION
from ..render.rasterize import rasterize
from .checkpoint import (
    LEGACY_NAME,
    Checkpoint,
    CheckpointError,
    fsync_dir,
    fsync_file,
    list_checkpoints,
    load_latest_checkpoint,
    remove_stale_temporaries,
    run_lock,
    write_checkpoint,
    write_durably,
)
from .init import gaussians_from_points, random_gaussians
from .losses import photometric_loss
from .metadata import build_training_metadata, metadata_path
from .model import GaussianModel, TrainConfig
from .schedule import SCHEDULE_FIELDS, resolve_schedule
from .upscale_loop import UpscaleLoop

PLY_NAME = "point_cloud.ply"
SUMMARY_NAME = "train_summary.json"
# settings a resumed run may change: where it writes, how often it checkpoints, and (growing only) its length
_RESUMABLE_CHANGES = {"out_dir", "checkpoint_every", "config.iterations"}


class TrainingWarning(UserWarning):
    """Something about a training run the user should know (a schedule that cannot densify, a damaged
    checkpoint that was skipped)."""


@dataclass
class TrainSettings:
    """Everything that defines a training run. Stored in every checkpoint; a resumed run must match it except in
    ``out_dir``, ``checkpoint_every`` and a larger ``config.iterations``."""

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
    upscale_loop: UpscaleLoop = field(default_factory=UpscaleLoop)  # how upscale > 1 trains (upscale_loop.py)

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


def render_for_training(model: GaussianModel, view: TrainView, settings: TrainSettings, iteration: int = 1):
    """Image [H, W, 3] at the view's full size plus the raster output and the render size (H_r, W_r): rendered
    natively, or (``settings.upscale`` > 1, unless ``settings.upscale_loop`` makes ``iteration`` a native one) at
    1/S with derivatives and Hermite-upscaled."""
    scene = model.scene()
    cam = view.camera
    loop = settings.upscale_loop
    if settings.upscale == 1.0 or loop.is_native(iteration, model.config.iterations):
        out = rasterize(scene, cam, background=settings.background, sh_degree=model.active_sh_degree)
        return out.color, out, (cam.height, cam.width)
    out, lr = render_lowres(scene, cam, settings.upscale, derivatives=loop.derivatives,
                            background=settings.background, lowres_dilation=loop.lowres_dilation,
                            sh_degree=model.active_sh_degree)
    img = upscale_lowres(out, (cam.height, cam.width), _trained_method(settings), clamp=False)
    return img, out, (lr.height, lr.width)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def settings_differences(saved: dict, now: dict) -> list[str]:
    """One line per setting that differs between a checkpoint's settings and this run's (the dataset compared as
    a resolved path), leaving out what a resumed run may change (``_RESUMABLE_CHANGES``)."""
    a, b = _flatten(saved), _flatten(now)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key in _RESUMABLE_CHANGES:
            continue
        x, y = a.get(key, "<absent>"), b.get(key, "<absent>")
        if key == "dataset" and isinstance(x, str) and isinstance(y, str):
            same = os.path.realpath(x) == os.path.realpath(y)
        else:
            same = x == y
        if not same:
            lines.append(f"  {key}: {x!r} in the checkpoint, {y!r} now")
    return lines


def _run_files(out_dir: Path) -> list[Path]:
    """The files of a training run in ``out_dir`` (what --overwrite deletes)."""
    names = [PLY_NAME, metadata_path(PLY_NAME).name, SUMMARY_NAME, LEGACY_NAME]
    files = [out_dir / n for n in names if (out_dir / n).is_file()]
    files += list_checkpoints(out_dir) + sorted(out_dir.glob("checkpoint-*.safetensors.damaged"))
    return files


def _check_settings(settings: TrainSettings) -> None:
    cfg = settings.config
    if not (isinstance(settings.upscale, (int, float)) and math.isfinite(settings.upscale) and settings.upscale >= 1):
        raise SplatupInputError(f"--upscale must be a number >= 1, got {settings.upscale!r}")
    if not isinstance(cfg.iterations, int) or cfg.iterations < 1:
        raise SplatupInputError(f"--iterations must be an integer >= 1, got {cfg.iterations!r}")
    if not isinstance(settings.checkpoint_every, int) or settings.checkpoint_every < 1:
        raise SplatupInputError(f"--checkpoint-every must be an integer >= 1, got {settings.checkpoint_every!r}")
    if not isinstance(settings.upscale_loop, UpscaleLoop):
        raise SplatupInputError(f"upscale_loop must be an UpscaleLoop, got {type(settings.upscale_loop).__name__}")
    settings.upscale_loop.check()


def _open_run_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SplatupInputError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SplatupInputError(f"--out {out_dir}: cannot create the run folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise SplatupInputError(f"--out {out_dir}: the folder is not writable")


def train(settings: TrainSettings, resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          on_iteration: Callable[[int, dict], None] | None = None,
          on_message: Callable[[str], None] | None = None) -> dict:
    """Run a training run into ``settings.out_dir``, or continue one; returns the summary's ``result`` dict (and
    ``"model"``, the trained :class:`GaussianModel`).

    Args:
        resume: continue from the newest good checkpoint of the run folder; the settings must match the
            checkpoint's (:func:`settings_differences`). A larger ``config.iterations`` extends the run: from the
            checkpoint on, the learning-rate decay and the schedules follow the new length.
        overwrite: delete the run already in the folder and start again. Without ``resume`` or ``overwrite`` a
            folder that holds a run is refused.
        stop_after: end the loop at that iteration after writing a checkpoint (simulates an interrupted run).
        on_iteration: called after every iteration with (iteration, log entry).
        on_message: receives the notes and warnings of the run (schedule scaling, checkpoints skipped as damaged,
            temporary files removed); warnings start with "warning: ". Without it warnings are issued as
            :class:`TrainingWarning` and notes go only into the summary.

    Raises:
        SplatupInputError: bad settings, a folder that holds a run, a resume that does not match, no usable
            checkpoint (:class:`~splatup.train.checkpoint.CheckpointError` names each file and what is wrong).
    """
    _check_settings(settings)
    if resume and overwrite:
        raise SplatupInputError("--resume and --overwrite exclude each other: continue the run or start it again")
    settings = dataclasses.replace(settings, dataset=os.path.abspath(settings.dataset))
    messages: list[str] = []

    def note(text: str) -> None:
        messages.append(text)
        if on_message:
            on_message(text)

    def warn(text: str) -> None:
        messages.append(f"warning: {text}")
        if on_message:
            on_message(f"warning: {text}")
        else:
            warnings.warn(text, TrainingWarning, stacklevel=4)

    out_dir = Path(settings.out_dir)
    _open_run_dir(out_dir)
    with run_lock(out_dir):
        stale = remove_stale_temporaries(out_dir)
        if stale:
            note(f"removed {len(stale)} temporary file(s) left by an interrupted write: "
                 f"{', '.join(p.name for p in stale)}")
        ckpt = None
        if resume:
            ckpt = load_latest_checkpoint(out_dir, warn)
            if ckpt is None:
                raise SplatupInputError(f"--resume: no checkpoint in {out_dir} (start the run without --resume)")
            diffs = settings_differences(ckpt.state.get("settings", {}), asdict(settings))
            if diffs:
                raise SplatupInputError(f"{ckpt.path}: cannot resume, these settings differ from the run's:\n"
                                        + "\n".join(diffs))
            if ckpt.iteration > settings.config.iterations:
                raise SplatupInputError(f"--iterations {settings.config.iterations}: the run in {out_dir} is already "
                                        f"at iteration {ckpt.iteration}")
        else:
            existing = _run_files(out_dir)
            if existing and not overwrite:
                raise SplatupInputError(
                    f"--out {out_dir}: the folder already holds a training run ({', '.join(p.name for p in existing)})"
                    "; continue it with --resume, start it again with --overwrite, or choose another folder")
            for p in existing:
                p.unlink()
        return _run(settings, out_dir, ckpt, stop_after, on_iteration, note, warn, messages)


def _restore_loop_state(ckpt: Checkpoint, generator: torch.Generator, n_views: int) -> tuple[torch.Tensor, int]:
    """The epoch's view order and position, and the RNG state, from ``ckpt`` (checked)."""
    perm, rng = ckpt.tensors.get("loop.perm"), ckpt.tensors.get("loop.rng_state")
    pos = ckpt.state.get("pos")
    if perm is None or perm.dtype != torch.int64 or not torch.equal(perm.sort().values, torch.arange(n_views)):
        raise CheckpointError(f"{ckpt.path}: 'loop.perm' is not an order of the run's {n_views} views")
    if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos <= n_views:
        raise CheckpointError(f"{ckpt.path}: 'pos' must be an integer in [0, {n_views}], got {pos!r}")
    try:
        generator.set_state(rng)
    except (RuntimeError, TypeError):
        raise CheckpointError(f"{ckpt.path}: 'loop.rng_state' is not a state of torch's CPU generator") from None
    return perm.clone(), pos


def _run(settings, out_dir, ckpt, stop_after, on_iteration, note, warn, messages) -> dict:
    cfg, schedule_warnings, schedule_notes = resolve_schedule(settings.config)
    for w in schedule_warnings:
        warn(w)
    for n in schedule_notes:
        note(n)
    ds = load_dataset(settings.dataset, split="train")
    views = load_views(ds, settings.width, settings.background, settings.max_views)
    generator = torch.Generator().manual_seed(settings.seed)
    lr_mult = None
    if settings.upscale != 1.0:
        loop = settings.upscale_loop
        cfg = dataclasses.replace(cfg, densify_grad_threshold=cfg.densify_grad_threshold
                                  * loop.densify_grad_threshold_mult)
        lr_mult = {"means": loop.position_lr_mult, "log_scales": loop.scaling_lr_mult}
    model = GaussianModel(initial_scene(settings, ds, generator), cfg, scene_extent([v.camera for v in views]),
                          lr_mult=lr_mult)
    start, perm, pos, log, sessions = 0, torch.randperm(len(views), generator=generator), 0, [], []
    if ckpt is not None:
        model.restore_checkpoint_state(ckpt.tensors, ckpt.state.get("model", {}), str(ckpt.path))
        perm, pos = _restore_loop_state(ckpt, generator, len(views))
        start, log, sessions = ckpt.iteration, list(ckpt.state.get("log", [])), list(ckpt.state.get("sessions", []))
        if start == cfg.iterations and _finished_outputs_present(out_dir, cfg.iterations):
            note(f"the run in {out_dir} is already finished at iteration {start}; nothing to do")
            summary = json.loads((out_dir / SUMMARY_NAME).read_text())
            return {**summary["result"], "model": model}
        note(f"resuming from {ckpt.path.name} at iteration {start}")
    session = {"start": start, "end": start, "seconds": 0.0, "median_seconds_per_iteration": None}
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
        img, out, render_size = render_for_training(model, view, settings, it)
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
            session.update(end=it, seconds=sum(iter_times), median_seconds_per_iteration=statistics.median(iter_times))
            _save_checkpoint(out_dir, it, model, generator, perm, pos, settings, log, sessions + [session])
        if stop_after is not None and it >= stop_after:
            break
    if iter_times:
        sessions = sessions + [session]
    return _finish(settings, cfg, out_dir, it, model, views, log, sessions, messages)


def _finished_outputs_present(out_dir: Path, iterations: int) -> bool:
    try:
        summary = json.loads((out_dir / SUMMARY_NAME).read_text())
        done = summary["result"]["finished"] and summary["result"]["iterations"] == iterations
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(done) and (out_dir / PLY_NAME).is_file() and metadata_path(out_dir / PLY_NAME).is_file()


def _save_checkpoint(out_dir: Path, iteration: int, model: GaussianModel, generator: torch.Generator,
                     perm: torch.Tensor, pos: int, settings: TrainSettings, log: list, sessions: list) -> None:
    tensors, model_values = model.checkpoint_state()
    tensors = {**tensors, "loop.rng_state": generator.get_state(), "loop.perm": perm}
    state = {"iteration": iteration, "pos": pos, "settings": asdict(settings), "model": model_values, "log": log,
             "sessions": sessions}
    write_checkpoint(out_dir, tensors, state)


def _write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=1, default=str, allow_nan=False)
    write_durably(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _trained_method(settings: TrainSettings) -> str:
    """The render path the model was trained through: "native", "hermite" or "hermite-first" (the loop's
    first-order derivatives), what ``splatup eval`` and ``view`` use by default."""
    if settings.upscale == 1:
        return "native"
    return "hermite-first" if settings.upscale_loop.derivatives == "first" else "hermite"


def _finish(settings, cfg, out_dir, it, model, views, log, sessions, messages) -> dict:
    """Write the model (when the run is complete) and train_summary.json; return the result."""
    trained = sum(s["end"] - s["start"] for s in sessions)
    seconds = sum(s["seconds"] for s in sessions)
    longest = max(sessions, key=lambda s: s["end"] - s["start"], default=None)
    finished = it == cfg.iterations
    result = {"iterations": it, "finished": finished, "gaussians": len(model), "seconds": seconds,
              "seconds_per_iteration": seconds / trained if trained else None,
              "median_seconds_per_iteration": longest["median_seconds_per_iteration"] if longest else None,
              "final_loss": log[-1]["loss"] if log else None, "sessions": sessions}
    if finished:
        ply = out_dir / PLY_NAME
        save_ply(model.export(), ply)
        fsync_file(ply)
        cam = views[0].camera
        method = _trained_method(settings)
        meta = build_training_metadata(ply, {
            "method": method, "upscale": float(settings.upscale),
            "lowres_dilation": settings.upscale_loop.lowres_dilation if settings.upscale != 1 else "matched",
            "dilation": DEFAULT_DILATION, "background": list(settings.background),
            "iterations": it, "width": cam.width, "height": cam.height, "sh_degree": cfg.sh_degree,
            "gaussians": len(model), "dataset": settings.dataset, "splatup_version": _version(),
            **({"lowres_derivatives": "first" if method == "hermite-first" else "full"} if method != "native" else {})})
        _write_json(metadata_path(ply), meta)
        fsync_dir(out_dir)
        result["ply"] = str(ply)
        result["metadata"] = str(metadata_path(ply))
    schedule = {k: getattr(cfg, k) for k in SCHEDULE_FIELDS}
    _write_json(out_dir / SUMMARY_NAME, {"settings": asdict(settings), "schedule": schedule, "result": result,
                                         "messages": messages, "log": log})
    return {**result, "model": model}


def _version() -> str:
    from .. import __version__

    return __version__
