"""``splatup info``: what a scene file holds."""

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
def info(scene: Path) -> None:
    """Print what a scene file (.ply or .splat) holds."""
    from rich.console import Console
    from rich.table import Table

    from ..io import load_scene

    g = load_scene(scene)
    table = Table(title=str(scene), show_header=False)
    table.add_row("file size", f"{scene.stat().st_size:,} bytes")
    for k, v in g.summary().items():
        table.add_row(k.replace("_", " "), _fmt(v))
    Console().print(table)
