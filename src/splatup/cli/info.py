"""``splatup info``: what a scene file holds, and its estimated up axis."""

from __future__ import annotations

from pathlib import Path

import click


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"
    return str(v)


@click.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dataset", type=click.Path(exists=True, path_type=Path), default=None,
              help="Also estimate the up axis from this dataset's cameras (transforms_*.json, its folder, COLMAP).")
@click.option("--split", default=None,
              help="Dataset split whose cameras are used [default: train, or the split of a transforms_<split>.json "
                   "given as --dataset].")
def info(scene: Path, dataset: Path | None, split: str | None) -> None:
    """Print what a scene file (.ply or .splat) holds and the up axis that `--up auto` takes."""
    from rich.console import Console
    from rich.table import Table

    from ..io import load_scene
    from ..viewpoints import estimate_up
    from .options import resolve_split

    if dataset is not None:
        split = resolve_split(dataset, split, default="train")
    g = load_scene(scene)
    table = Table(title=str(scene), show_header=False)
    table.add_row("file size", f"{scene.stat().st_size:,} bytes")
    for k, v in g.summary().items():
        table.add_row(k.replace("_", " "), _fmt(v))
    if len(g):
        table.add_row("up axis (scene)", estimate_up(g)[1].describe())
    if dataset is not None:
        from ..io.datasets import load_dataset

        cams = [v.camera for v in load_dataset(dataset, split=split).views]
        if cams:
            table.add_row(f"up axis ({split} cameras)", estimate_up(None, cams)[1].describe())
    Console().print(table)
