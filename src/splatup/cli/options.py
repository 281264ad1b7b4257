"""Option parsers and display helpers shared by several commands.

Every parser names the option it reads and what it expected; a bad value raises :class:`SplatupInputError` (or
click's ``BadParameter`` from a :class:`Number` option), which :mod:`.group` prints as one ``error:`` line, exit 2.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import click

from ..errors import SplatupInputError

BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}


# ------------------------------------------------------------------------------------------------ numbers
def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return ""


def parse_number(text: str | float, option: str, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, what: str = "a number") -> float:
    """``text`` -> a finite float within the given bounds; anything else (not a number, NaN, +-inf, out of range)
    raises :class:`SplatupInputError` naming ``option`` and the expected range."""
    rng = _range_text(lo, hi, lo_open, hi_open)
    expected = f"{what}{' ' + rng if rng else ''}"
    if isinstance(text, bool):
        raise SplatupInputError(f"{option}: expected {expected}, got {text!r}")
    try:
        v = float(text.strip() if isinstance(text, str) else text)
    except (TypeError, ValueError, OverflowError):
        raise SplatupInputError(f"{option}: expected {expected}, got {text!r}") from None
    if not math.isfinite(v):
        raise SplatupInputError(f"{option}: expected {expected}, got {text!r} (not a finite number)")
    if ((lo is not None and (v < lo or (lo_open and v == lo)))
            or (hi is not None and (v > hi or (hi_open and v == hi)))):
        raise SplatupInputError(f"{option}: expected {expected}, got {text!r}")
    return v


class Number(click.ParamType):
    """A click type: a finite float within bounds (NaN and +-inf refused, unlike ``click.FloatRange``)."""

    name = "number"

    def __init__(self, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                 hi_open: bool = False) -> None:
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "FLOAT"

    def convert(self, value, param, ctx) -> float:
        try:
            return parse_number(value, "value", self.lo, self.hi, self.lo_open, self.hi_open)
        except SplatupInputError as e:
            self.fail(str(e).removeprefix("value: "), param, ctx)

    def __repr__(self) -> str:
        return f"Number({_range_text(self.lo, self.hi, self.lo_open, self.hi_open)})"


def parse_dilation(text: str | float, option: str = "--lowres-dilation") -> float | str:
    """'matched', 'usual' or a number of low-res px^2 >= 0 (its text) -> ``evaluate()``'s ``lowres_dilation``."""
    if isinstance(text, str) and text.strip().lower() in ("matched", "usual"):
        return text.strip().lower()
    try:
        return parse_number(text, option, lo=0.0, what="'matched', 'usual' or a number of low-res px^2")
    except SplatupInputError:
        raise SplatupInputError(f"{option}: expected 'matched', 'usual' or a finite number of low-res px^2 >= 0, "
                                f"got {text!r}") from None


def parse_background(text: str, option: str = "--background") -> tuple[float, float, float]:
    """'black', 'white' or 'r,g,b' (each in [0, 1], as the images are) -> an RGB triple."""
    if text.strip().lower() in BACKGROUNDS:
        return BACKGROUNDS[text.strip().lower()]
    expected = f"{option}: expected 'black', 'white' or 'r,g,b' with each value in [0, 1] (e.g. 1,0.5,0)"
    parts = text.split(",")
    if len(parts) != 3:
        raise SplatupInputError(f"{expected}, got {text!r}")
    vals = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise SplatupInputError(f"{expected}, got {text!r}") from None
        if not math.isfinite(v):
            raise SplatupInputError(f"{expected}, got {text!r} (not finite)")
        vals.append(v)
    if not all(0.0 <= v <= 1.0 for v in vals):
        hint = " (colours are fractions of full intensity, not 0-255 values)" if max(vals) > 1 else ""
        raise SplatupInputError(f"{expected}, got {text!r}{hint}")
    return tuple(vals)  # type: ignore[return-value]


def parse_factors(text: str, option: str = "--factors") -> list[float]:
    """'2,3,4' -> [2.0, 3.0, 4.0]: comma-separated finite upscaling factors >= 1."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise SplatupInputError(f"{option}: expected comma-separated factors >= 1 (e.g. 2,3,4), got {text!r}")
    return [parse_number(p, option, lo=1.0, what="comma-separated upscaling factors") for p in parts]


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """'640x480' -> (640, 480): two positive whole numbers of pixels."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise SplatupInputError(f"{option}: expected WIDTHxHEIGHT in whole pixels >= 1 (e.g. 640x480), got {text!r}")
    return int(m.group(1)), int(m.group(2))


# ------------------------------------------------------------------------------------------------ methods
def parse_methods(text: str, option: str = "--methods") -> tuple[str, ...]:
    """Comma-separated upscaling methods (not 'native'), or 'all' for the compare defaults."""
    from ..bench.compare import DEFAULT_METHODS
    from ..pipeline import METHODS

    if text.strip() == "all":
        return DEFAULT_METHODS
    ms = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in ms if m not in METHODS or m == "native"]
    if bad or not ms:
        raise SplatupInputError(f"{option}: unknown method(s) {', '.join(bad) if bad else repr(text)}; choose from "
                                f"{', '.join(METHODS[1:])} or 'all'")
    return ms


def check_method(method: str, option: str = "--method") -> str:
    """One method of :data:`splatup.pipeline.METHODS` (native included)."""
    from ..pipeline import METHODS

    if method not in METHODS:
        raise SplatupInputError(f"{option}: expected one of {', '.join(METHODS)}; got {method!r}")
    return method


# ------------------------------------------------------------------------------------------------ sizes, memory
def check_lowres(width: int, height: int, scale: float, method: str, option: str = "--scale") -> None:
    """An upscaling render at 1/``scale`` needs at least 1 x 1 low-res pixels."""
    from ..memory import lowres_size

    if method == "native":
        return
    w, h = lowres_size(width, height, scale)
    if w < 1 or h < 1:
        raise SplatupInputError(f"{option} {scale:g}: {width}x{height} pixels at 1/{scale:g} leave {w}x{h}; use a "
                                "smaller factor or a larger image")


def check_render_memory(n_gaussians: int, width: int, height: int, scale: float, method: str,
                        derivatives: bool | None = None, copies: int = 1, extra: int = 0,
                        what: str | None = None) -> None:
    """Refuse (:class:`splatup.memory.InsufficientMemoryError`) a render whose estimate
    (:func:`splatup.memory.estimate_render_bytes`, times ``copies`` renders at once, plus ``extra`` bytes) exceeds
    the memory the process may still take, saying what to change."""
    from ..memory import available_bytes, check_memory, estimate_render_bytes

    def need(s: float, m: str) -> int:
        return copies * estimate_render_bytes(n_gaussians, width, height, s, m, derivatives) + extra

    budget = available_bytes()
    advice = "render a smaller image (-W/-H)"
    larger = max(2.0, 2 * scale)  # name a larger factor only where it helps: the raster, not the full-size image
    if need(larger, "hermite") <= budget.bytes:
        advice += f", or at a larger factor (--scale {larger:g} --method hermite)"
    label = "native" if method == "native" else f"{method} x{scale:g}"
    check_memory(need(scale, method), what or f"rendering {width}x{height} ({label}) of {n_gaussians:,} Gaussians",
                 advice, budget)


# ------------------------------------------------------------------------------------------------ datasets
_SPLIT_FILE = re.compile(r"transforms_(.+)\.json", re.IGNORECASE)


def resolve_split(dataset: Path | None, split: str | None, default: str = "test", option: str = "--split") -> str:
    """The split a command reads from ``dataset``. A ``transforms_<name>.json`` given as the dataset holds only the
    split <name>: it is the default, and another ``--split`` is refused (the file would be read as that split while
    holding another one's views). Otherwise ``split`` or ``default``."""
    named = _SPLIT_FILE.fullmatch(Path(dataset).name) if dataset is not None and Path(dataset).is_file() else None
    if named is None:
        return split or default
    if split is not None and split != named.group(1):
        raise SplatupInputError(f"{option} {split}: {dataset} holds the {named.group(1)!r} split only; give the "
                                f"dataset's folder (it has transforms_{split}.json if the dataset has that split) or "
                                f"--split {named.group(1)}")
    return named.group(1)


# ------------------------------------------------------------------------------------------------ LPIPS
def lpips_unavailable_reason() -> str | None:
    """None if the LPIPS (AlexNet) weights load; else why not, with the install command."""
    from ..metrics.lpips import INSTALL_HINT, LPIPSWeightsError, lpips_model

    try:
        lpips_model("alex")
    except LPIPSWeightsError as e:
        text = str(e)
        return text if INSTALL_HINT in text else f"{text}. Install them with `{INSTALL_HINT}`"
    return None


def check_lpips(wanted: bool, can_go_on: bool, console=None) -> bool:
    """Whether LPIPS is computed. Without its weights: ``can_go_on`` False (eval) raises one error that gives the
    install command and --no-lpips; True (compare, bench, demo) says once on ``console`` that LPIPS is skipped and
    returns False, so the tables show n/a for a stated reason."""
    if not wanted:
        return False
    reason = lpips_unavailable_reason()
    if reason is None:
        return True
    if not can_go_on:
        raise SplatupInputError(f"LPIPS: {reason}; or pass --no-lpips to evaluate without it")
    msg = f"warning: LPIPS is skipped (shown as n/a): {reason}; pass --no-lpips to skip it without this warning"
    if console is not None:
        from rich.markup import escape

        console.print(f"[yellow]{escape(msg)}[/yellow]", soft_wrap=True)
    else:
        click.echo(msg, err=True)
    return False


# ------------------------------------------------------------------------------------------------ display
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
