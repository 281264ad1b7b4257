"""``splatup render``: a scene to an image."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .camera_spec import CameraSpec, camera_options
from .options import parse_background


@click.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output image (.png or .jpg).")
@camera_options(default_size=(800, 600))
@click.option("--background", "-b", default="black", show_default=True, help="'black', 'white' or 'r,g,b'.")
@click.option("--mode", type=click.Choice(["classic", "antialiased"]), default="classic", show_default=True)
@click.option("--save-derivatives", is_flag=True,
              help="Also write dC/dx, dC/dy, d2C/dxdy visualisations next to the output (_dx, _dy, _dxy).")
def render(scene: Path, output: Path, camera: CameraSpec, background: str, mode: str, save_derivatives: bool) -> None:
    """Render SCENE (.ply or .splat) to an image."""
    from rich.console import Console

    from ..io import load_scene
    from ..io.images import write_image
    from ..render.rasterize import rasterize

    console = Console(stderr=True)
    bg = parse_background(background)
    with console.status(f"loading {scene}"):
        g = load_scene(scene)
    cam = camera.camera(g)
    with console.status(f"rendering {len(g):,} Gaussians at {cam.width}x{cam.height}"):
        t0 = time.perf_counter()
        out = rasterize(g, cam, derivatives=save_derivatives, background=bg, mode=mode)
        dt = time.perf_counter() - t0
    write_image(output, out.color)
    n_vis = int(out.visible.sum())
    console.print(f"{output}: {cam.width}x{cam.height}, {n_vis:,} of {len(g):,} Gaussians visible, "
                  f"{out.n_pairs:,} tile pairs, {dt * 1000:.0f} ms")
    if n_vis == 0:
        console.print("[yellow]warning: no Gaussian is in view; the image is the background. "
                      "Check the camera (--up, --distance, --dataset view).[/yellow]")
    if save_derivatives:
        for name in ("dx", "dy", "dxy"):
            d = getattr(out, name)
            scale = float(d.abs().quantile(0.99)) or 1.0
            p = output.with_name(f"{output.stem}_{name}{output.suffix}")
            write_image(p, 0.5 + 0.5 * (d / scale).clamp(-1, 1))
            console.print(f"{p}: {name} mapped as 0.5 + 0.5 * value / {scale:.3g}")
