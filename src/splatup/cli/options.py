"""Option parsers and display helpers shared by several commands."""

from __future__ import annotations

import click

BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}


def parse_background(text: str, option: str = "--background") -> tuple[float, float, float]:
    """'black', 'white' or 'r,g,b' (each in [0, 1]) -> an RGB triple."""
    if text.lower() in BACKGROUNDS:
        return BACKGROUNDS[text.lower()]
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(0.0 <= v <= 1.0 for v in vals):
        raise click.BadParameter(f"expected 'black', 'white' or 'r,g,b' in [0, 1], got {text!r}", param_hint=option)
    return vals  # type: ignore[return-value]


def parse_methods(text: str, option: str = "--methods") -> tuple[str, ...]:
    """Comma-separated upscaling methods (not 'native'), or 'all' for the compare defaults."""
    from ..bench.compare import DEFAULT_METHODS
    from ..pipeline import METHODS

    if text == "all":
        return DEFAULT_METHODS
    ms = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in ms if m not in METHODS or m == "native"]
    if bad or not ms:
        raise click.BadParameter(f"unknown method(s) {bad or text!r}; choose from {', '.join(METHODS[1:])} or 'all'",
                                 param_hint=option)
    return ms


def check_method(method: str, option: str = "--method") -> str:
    """One method of :data:`splatup.pipeline.METHODS` (native included)."""
    from ..pipeline import METHODS

    if method not in METHODS:
        raise click.BadParameter(f"choose from {', '.join(METHODS)}; got {method!r}", param_hint=option)
    return method


def print_summary(console, summary: dict, title: str) -> None:
    """A rich table of a comparison summary (method -> psnr, ssim, lpips, time_s, speedup)."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("method", "PSNR dB", "SSIM", "LPIPS", "ms/frame", "speed-up"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for m, r in summary.items():
        lp = r.get("lpips", float("nan"))
        t.add_row(m, "ref" if m == "native" else f"{r['psnr']:.2f}", "ref" if m == "native" else f"{r['ssim']:.4f}",
                  "ref" if m == "native" else ("n/a" if lp != lp else f"{lp:.4f}"), f"{r['time_s'] * 1e3:.1f}",
                  f"{r['speedup']:.2f}x")
    console.print(t)


def fanout_options(f):
    """--workers N (a local Dask cluster of N processes), --scheduler ADDRESS (an existing dask.distributed
    cluster) and --retries R (extra attempts of a failed job), passed as ``workers``, ``scheduler``, ``retries``."""
    f = click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Extra attempts Dask makes for a failed frame or view before the run stops.")(f)
    f = click.option("--scheduler", default=None,
                     help="Address of a running dask.distributed scheduler (e.g. tcp://host:8786) to fan out to; the "
                          "scene is sent to its workers, dataset images are read from the same path.")(f)
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Fan out over a local Dask cluster of N processes.")(f)
    return f
