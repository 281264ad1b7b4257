"""``splatup view``: an interactive viewer of a scene in the browser (:mod:`splatup.view`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..view.settings import FACTOR_RANGE, FOV_RANGE
from .camera_spec import CameraSpec
from .options import Number, check_method, parse_background

TARGET_FPS_RANGE = (0.5, 1000.0)


@click.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to serve on (0: any free port; if busy, the next free one is taken).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 makes the viewer reachable from other machines).")
@click.option("--up", default="auto", show_default=True,
              help="World up axis: 'auto' (estimated from the scene), '+z', '-y', ... or 'x,y,z'.")
@click.option("--width", "-W", type=click.IntRange(min=1), default=None,
              help="Rendered image width [default: the browser canvas; with only -H, the canvas's aspect].")
@click.option("--height", "-H", type=click.IntRange(min=1), default=None, help="Rendered image height.")
@click.option("--method", "-m", default=None,
              help="native, hermite, fd-hermite, bicubic, bicubic-pil, lanczos, bilinear or nearest (every method of "
                   "`splatup render`) [default: how SCENE was trained, from the .json beside it; else hermite].")
@click.option("--scale", "-s", type=Number(*FACTOR_RANGE), default=None,
              help=f"Upscaling factor in [{FACTOR_RANGE[0]:g}, {FACTOR_RANGE[1]:g}], of still frames when --auto "
                   "[default: the training factor, else 2].")
@click.option("--auto/--no-auto", default=True, show_default=True,
              help=f"While the camera moves, choose the factor ({FACTOR_RANGE[0]:g} to {FACTOR_RANGE[1]:g}) that "
                   "holds --target-fps.")
@click.option("--target-fps", type=Number(*TARGET_FPS_RANGE), default=30.0, show_default=True,
              help="Frame rate that --auto holds.")
@click.option("--split", is_flag=True, help="Left half native, right half the method.")
@click.option("--background", "-b", default=None,
              help="'black', 'white' or 'r,g,b' with each value in [0, 1] [default: the training background, else "
                   "black].")
@click.option("--fov", type=Number(*FOV_RANGE), default=50.0, show_default=True,
              help=f"Vertical field of view in degrees, in [{FOV_RANGE[0]:g}, {FOV_RANGE[1]:g}] (the browser window "
                   "sets the horizontal one).")
def view(scene: Path, port: int, host: str, up: str, width: int | None, height: int | None, method: str | None,
         scale: float | None, auto: bool, target_fps: float, split: bool, background: str | None,
         fov: float) -> None:
    """Interactive viewer of SCENE (.ply or .splat) in the browser: splatup renders every frame on the CPU, viser
    serves the page. A model trained by `splatup train` opens with the method, factor and background it was
    trained with unless options say otherwise. Ctrl-C stops the server."""
    from rich.console import Console

    from ..io import load_scene
    from ..view.server import Viewer
    from ..view.settings import opening_settings

    spec = CameraSpec(width=width, height=height, up=up)  # -W/-H and --up checked before the scene is read
    bg = parse_background(background) if background is not None else None
    if method is not None:
        check_method(method)
    settings, meta = opening_settings(scene, method=method, factor=scale, background=bg, auto=auto,
                                      target_ms=1000.0 / target_fps, split=split, fov_deg=fov)
    console = Console(stderr=True)
    if meta is not None:
        from ..train.metadata import metadata_path

        how = "natively" if meta["method"] == "native" else f"through {meta['method']} x{meta['upscale']:g}"
        opens = "native" if settings.method == "native" else f"{settings.method} x{settings.factor:g}"
        console.print(f"{scene.name} was trained {how} ({metadata_path(scene).name}); opening with {opens} on "
                      f"background ({', '.join(f'{c:g}' for c in settings.background)}) unless options say "
                      "otherwise", soft_wrap=True)
    with console.status(f"loading {scene}"):
        g = load_scene(scene)
    if width is not None and height is not None:
        check_frame_memory(len(g), width, height)
    viewer = Viewer(g, settings, host=host, port=port, up=spec.up_vector or "auto", size=(width, height),
                    verbose=False)
    console.print(f"{scene}: {len(g):,} Gaussians; up axis ({', '.join(f'{u:.3g}' for u in viewer.up)}), "
                  f"{viewer.up_source}", soft_wrap=True)
    try:
        console.print(f"[bold]splatup view[/bold] at {viewer.url}  (Ctrl-C to stop)")
        viewer.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C as soon as the address is shown, before the serving loop took over
        viewer.stop()


def check_frame_memory(n_gaussians: int, width: int, height: int) -> None:
    """Refuse (:class:`splatup.memory.InsufficientMemoryError`) a fixed frame size whose largest frame does not fit:
    a render at factor 1 with derivatives (every frame, native, split or upscaled at any factor, needs at most
    that) and its 8-bit image."""
    from ..memory import check_memory, estimate_render_bytes

    check_memory(estimate_render_bytes(n_gaussians, width, height, 1.0, "hermite", derivatives=True),
                 f"viewer frames of {width}x{height} ({n_gaussians:,} Gaussians)", "give a smaller -W/-H")
