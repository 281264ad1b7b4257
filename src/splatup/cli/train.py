"""``splatup train``: a 3DGS model from a dataset, natively or with gradient-aware upscaling in the loop."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (checkpoint.pt, point_cloud.ply, train_summary.json).")
@click.option("--upscale", type=click.FloatRange(min=1.0), default=1.0, show_default=True,
              help="Render at 1/S with derivatives and Hermite-upscale to full size during training.")
@click.option("--iterations", type=click.IntRange(min=1), default=30_000, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Training resolution (width in px; images are area-downsampled) [default: image size].")
@click.option("--white-background", is_flag=True, help="Composite RGBA images on white (default black).")
@click.option("--init", type=click.Choice(["auto", "points", "random"]), default="auto", show_default=True)
@click.option("--random-points", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--densify-until", type=click.IntRange(min=0), default=None,
              help="Last densification iteration [default: 15000, or half the iterations if fewer than 30000].")
@click.option("--sh-degree", type=click.IntRange(0, 3), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--max-views", type=click.IntRange(min=1), default=None, help="Use only the first N training views.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
def train(dataset, out_dir, upscale, iterations, width, white_background, init, random_points, densify_until,
          sh_degree, seed, checkpoint_every, max_views, resume) -> None:
    """Train a 3DGS model on DATASET (NeRF-synthetic transforms_*.json folder or COLMAP), natively or with
    gradient-aware upscaling in the loop (--upscale S)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..train.model import TrainConfig
    from ..train.trainer import TrainSettings
    from ..train.trainer import train as run_train

    until = densify_until if densify_until is not None else (15_000 if iterations >= 30_000 else iterations // 2)
    cfg = TrainConfig(iterations=iterations, densify_until_iter=until, sh_degree=sh_degree)
    settings = TrainSettings(dataset=str(dataset), out_dir=str(out_dir), upscale=upscale, width=width,
                             white_background=white_background, init=init, random_points=random_points, seed=seed,
                             checkpoint_every=checkpoint_every, max_views=max_views, config=cfg)
    console = Console()
    cols = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*cols, console=console) as prog:
        task = prog.add_task("train", total=iterations, info="loading")

        def step(it, e):
            prog.update(task, completed=it, info=f"loss {e['loss']:.4f}  PSNR {e['psnr']:.2f}  N {e['gaussians']:,}")

        res = run_train(settings, resume=resume, on_iteration=step)
    console.print(f"{res['iterations']} iterations, {res['gaussians']:,} Gaussians, "
                  f"{res['seconds_per_iteration']:.3f} s/iteration; model: {res.get('ply', out_dir / 'checkpoint.pt')}")
