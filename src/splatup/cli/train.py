"""``splatup train``: a 3DGS model from a dataset, natively or with gradient-aware upscaling in the loop."""

from __future__ import annotations

from pathlib import Path

import click

from .options import Number
from .outputs import check_output_dir


@click.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run folder (checkpoint-*.safetensors, point_cloud.ply with point_cloud.json, train_summary.json); "
                   "created if missing.")
@click.option("--upscale", type=Number(lo=1.0), default=1.0, show_default=True,
              help="Render at 1/S with derivatives and Hermite-upscale to full size during training.")
@click.option("--iterations", type=click.IntRange(min=1), default=30_000, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Training resolution (width in px; images are area-downsampled) [default: image size].")
@click.option("--white-background", is_flag=True, help="Composite RGBA images on white (default black).")
@click.option("--init", type=click.Choice(["auto", "points", "random"]), default="auto", show_default=True)
@click.option("--random-points", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--densify-until", type=click.IntRange(min=0), default=None,
              help="Last densification iteration [default: 15000, scaled to shorter runs: half the iterations].")
@click.option("--sh-degree", type=click.IntRange(0, 3), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--max-views", type=click.IntRange(min=1), default=None, help="Use only the first N training views.")
@click.option("--resume", is_flag=True,
              help="Continue the run in OUT from its newest good checkpoint (also to a larger --iterations).")
@click.option("--overwrite", is_flag=True, help="Delete the run already in OUT and start again.")
def train(dataset, out_dir, upscale, iterations, width, white_background, init, random_points, densify_until,
          sh_degree, seed, checkpoint_every, max_views, resume, overwrite) -> None:
    """Train a 3DGS model on DATASET (NeRF-synthetic transforms_*.json folder or COLMAP), natively or with
    gradient-aware upscaling in the loop (--upscale S)."""
    from rich.console import Console
    from rich.markup import escape
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

    check_output_dir(out_dir, "--out")
    cfg = TrainConfig(iterations=iterations, densify_until_iter=densify_until, sh_degree=sh_degree)
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

        def message(text):
            console.print(f"[yellow]{escape(text)}[/yellow]" if text.startswith("warning:") else escape(text),
                          soft_wrap=True)

        res = run_train(settings, resume=resume, overwrite=overwrite, on_iteration=step, on_message=message)
    spi = res["seconds_per_iteration"]
    console.print(f"{res['iterations']} iterations, {res['gaussians']:,} Gaussians"
                  f"{f', {spi:.3f} s/iteration' if spi else ''}; model: {res.get('ply', out_dir)}", soft_wrap=True)
