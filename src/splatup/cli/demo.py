"""``splatup demo``: the main job on the bundled scene."""

from __future__ import annotations

from pathlib import Path

import click

from .camera_spec import CameraSpec
from .compare import run_compare
from .options import check_lpips, parse_methods, print_summary
from .outputs import check_output_dir, output_folder


@click.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("splatup-out/demo"),
              show_default=True, help="Report folder (created if missing).")
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS.")
def demo(out_dir: Path, no_lpips: bool) -> None:
    """The main job on the bundled demo scene (CC0 'Spot', 10k Gaussians): compare at 2x, 640x480, 2 views."""
    from importlib.resources import as_file, files

    from rich.console import Console

    console = Console()
    check_output_dir(out_dir, "--out")
    use_lpips = check_lpips(not no_lpips, can_go_on=True, console=console)
    with as_file(files("splatup") / "data" / "spot_10k.splat") as scene, output_folder(out_dir, "--out"):
        summary = run_compare(Path(scene), out_dir, 2.0, parse_methods("all"), 2, 3, use_lpips, (1.0, 1.0, 1.0),
                              CameraSpec(width=640, height=480), console, title="splatup demo")
    print_summary(console, summary, "Spot (10k Gaussians), 640x480, 2x upscaling vs native")
    console.print(f"report: {out_dir / 'report.md'}")
