"""Property-based tests (hypothesis) over the command line's arguments (issue 11).

Generated command lines for render, compare, bench, eval and info mix valid and hostile option values: numbers
(NaN, +-inf, huge, negative, zero, malformed text), colours, methods, sizes and paths to missing, unwritable or
file-blocked places, on the bundled spot_10k scene at tiny sizes. The property: exit code 0 with a finite output
written, or exit code 2 whose last line is one ``error: ...`` naming an option, an argument or a file; never a
traceback, never an output left behind by a refused command. Bounded (derandomized, a fixed number of examples)
to stay within a few tens of seconds.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from splatup.cli import main

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ------------------------------------------------------------------------------------------------ strategies
hostile_numbers = st.sampled_from(["nan", "-nan", "inf", "-inf", "1e308", "-1e308", "1e-300", "0", "-0", "-1",
                                   "", " ", "1e", "0x10", "1,5", "ten", "1e400", "9" * 40, "--", "1/2"])
tiny_sizes = st.sampled_from(["1", "2", "7", "12", "16"])
hostile_sizes = st.sampled_from(["0", "-1", "1e3", "16.5", "x", "999999999999", "100000"])
valid_colours = st.one_of(st.sampled_from(["black", "white", "BLACK", "1,0.5,0", "0,0,0", "1,1,1"]),
                          st.tuples(*[st.floats(0, 1)] * 3).map(lambda t: ",".join(repr(v) for v in t)))
hostile_colours = st.one_of(st.sampled_from(["2,2,2", "255,0,0", "-0.1,0,0", "nan,0,0", "inf,0,0", "1,1", "1,1,1,1",
                                             "red", ",,", "0.5,,0.5", ""]),
                            st.tuples(*[st.floats(allow_nan=True, allow_infinity=True, width=32)] * 3).map(
                                lambda t: ",".join(repr(v) for v in t)))
valid_methods = st.sampled_from(["native", "hermite", "hermite-first", "fd-hermite", "bicubic", "bicubic-pil",
                                 "lanczos", "bilinear", "nearest"])
hostile_methods = st.sampled_from(["sharpen", "", "HERMITE", "hermite,"])

CAMERA_VALID = {
    "--azimuth": st.floats(-720, 720).map(repr),
    "--elevation": st.floats(-89.9, 89.9).map(repr),
    "--distance": st.floats(0.05, 50).map(repr),
    "--fov": st.floats(1, 179).map(repr),
    "--up": st.sampled_from(["auto", "+z", "-y", "x", "0,1,0", "1e-300,0,0", "1,1,0"]),
    "--target": st.sampled_from(["0,0,0", "0.1,-0.2,0.3"]),
}
CAMERA_HOSTILE = {
    "--azimuth": hostile_numbers,
    "--elevation": st.one_of(hostile_numbers, st.sampled_from(["90", "-90", "89.99999999"])),
    "--distance": hostile_numbers, "--fov": st.one_of(hostile_numbers, st.sampled_from(["180", "1e-300"])),
    "--up": st.sampled_from(["0,0,0", "sideways", "1,2", "nan,1,0", ""]),
    "--target": st.sampled_from(["1e308,0,0", "a,b,c", "1e99,0,0", "0,0"]),
}


def command_line(valid: dict, hostile: dict, optional: tuple[str, ...] = ()) -> st.SearchStrategy:
    """Option values: every option of ``valid`` valid (those in ``optional`` sometimes left out), then at most two
    of them replaced by a value of ``hostile``. So both outcomes, a result and a refusal, are drawn often."""
    def with_hostile(v: dict) -> st.SearchStrategy:
        keys = st.lists(st.sampled_from(sorted(hostile)), max_size=2, unique=True)
        return keys.flatmap(lambda ks: st.fixed_dictionaries({k: hostile[k] for k in ks}).map(lambda h: {**v, **h}))

    required = {k: s for k, s in valid.items() if k not in optional}
    maybe = {k: s for k, s in valid.items() if k in optional}
    return st.fixed_dictionaries(required, optional=maybe).flatmap(with_hostile)


def flatten(opts: dict) -> list[str]:
    return list(itertools.chain.from_iterable((k, v) for k, v in opts.items()))


# ------------------------------------------------------------------------------------------------ the property
OPTION = re.compile(r"(--[a-z][a-z-]*|-[A-Za-z]\b|'[A-Z_]+'|SCENE|DATASET)")


def check_outcome(r, places: list[Path]) -> str:
    """0 with what was written, or 2 with one error line naming an option / argument / file. Returns the outcome."""
    out = r.output
    assert "Traceback" not in out, out
    assert r.exit_code in (0, 2), (r.exit_code, out, r.exc_info)
    if r.exit_code == 0:
        event("exit 0")
        return "ok"
    assert isinstance(r.exception, SystemExit), r.exc_info
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: "), out
    named = OPTION.search(last) or any(str(p) in last for p in places) or re.search(r"/\S+", last)
    assert named, last
    event(f"refused: {(OPTION.search(last) or re.search(r'[a-z]+', last)).group(0)}")
    return "refused"


def finite_or_null(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and math.isfinite(v))


def destinations(tmp: Path) -> dict[str, Path]:
    afile = tmp / "afile"
    if not afile.exists():
        afile.write_text("x")
    return {"new": tmp / "new" / "sub", "here": tmp, "file": afile / "sub", "proc": Path("/proc/splatup-fuzz"),
            "long": tmp / ("n" * 260)}


out_place = st.sampled_from(["new", "new", "here", "here", "file", "proc", "long"])


@pytest.fixture(scope="module")
def spot() -> str:
    from importlib.resources import files

    return str(files("splatup") / "data" / "spot_10k.splat")


def snapshot(tmp: Path) -> set[Path]:
    return {p for p in tmp.rglob("*")}


# ------------------------------------------------------------------------------------------------ commands
RENDER_VALID = {"-W": tiny_sizes, "-H": tiny_sizes, "-b": valid_colours, "--method": valid_methods,
                "--scale": st.sampled_from(["1", "1.5", "2", "3"]), **CAMERA_VALID}
RENDER_HOSTILE = {"-W": hostile_sizes, "-H": hostile_sizes, "-b": hostile_colours, "--method": hostile_methods,
                  "--scale": st.one_of(hostile_numbers, st.just("0.5")), **CAMERA_HOSTILE}


@FUZZ
@given(opts=command_line(RENDER_VALID, RENDER_HOSTILE, optional=("--method", "--scale", *CAMERA_VALID)),
       place=out_place, suffix=st.sampled_from([".png", ".png", ".png", ".jpg", ".bmp", ""]))
def test_render_command_lines(tmp_path_factory, spot, opts, place, suffix):
    tmp = tmp_path_factory.mktemp("render")
    dest = (tmp if place == "here" else destinations(tmp)[place]) / f"img{suffix}"
    before = snapshot(tmp)
    r = CliRunner().invoke(main, ["render", spot, "-o", str(dest), *flatten(opts)])
    if check_outcome(r, [dest, Path(spot)]) == "ok":
        img = np.asarray(Image.open(dest))
        assert img.shape == (int(opts["-H"]), int(opts["-W"]), 3)
    else:
        assert snapshot(tmp) == before, "a refused render wrote something"


COMPARE_VALID = {"-W": st.sampled_from(["8", "12", "16"]), "-b": valid_colours,
                 "--scale": st.sampled_from(["1", "2", "2.5"]),
                 "--methods": st.sampled_from(["nearest", "nearest,bilinear", "hermite,bicubic", "fd-hermite"]),
                 "--views": st.sampled_from(["1", "2"]), **CAMERA_VALID}
COMPARE_HOSTILE = {"-W": hostile_sizes, "-b": hostile_colours, "--scale": hostile_numbers,
                   "--methods": hostile_methods, "--views": st.sampled_from(["0", "-1", "x"]), **CAMERA_HOSTILE}


@FUZZ
@given(opts=command_line(COMPARE_VALID, COMPARE_HOSTILE, optional=tuple(CAMERA_VALID)), place=out_place)
def test_compare_command_lines(tmp_path_factory, spot, opts, place):
    tmp = tmp_path_factory.mktemp("compare")
    dest = destinations(tmp)[place]
    before = snapshot(tmp)
    r = CliRunner().invoke(main, ["compare", spot, "-H", opts.get("-W", "8"), "--repeats", "1", "--no-lpips",
                                  "--out", str(dest), *flatten(opts)])
    if check_outcome(r, [dest]) == "ok":
        metrics = json.loads((dest / "metrics.json").read_text())
        assert metrics["summary"]["native"]["psnr"] is None  # +inf, as strict JSON
        for row in metrics["summary"].values():  # a PSNR is a number, or null for identical images (+inf)
            assert finite_or_null(row["psnr"]) and math.isfinite(row["ssim"])
    else:
        assert snapshot(tmp) == before, "a refused compare wrote something"


BENCH_VALID = {"--factors": st.sampled_from(["2", "2,3", "1.5"]), "--size": st.sampled_from(["16x12", "8X8"]),
               "-b": valid_colours}
BENCH_HOSTILE = {"--factors": st.one_of(hostile_numbers, st.just("2,nan"), st.just("0.5")),
                 "--size": st.sampled_from(["0x5", "16", "16x", "axb", "-1x5", "16x12x3", "1e3x5", ""]),
                 "-b": hostile_colours}


@settings(FUZZ, max_examples=20)  # a bench run writes plots: the slowest command
@given(opts=command_line(BENCH_VALID, BENCH_HOSTILE), place=out_place)
def test_bench_command_lines(tmp_path_factory, spot, opts, place):
    tmp = tmp_path_factory.mktemp("bench")
    dest = destinations(tmp)[place]
    before = snapshot(tmp)
    r = CliRunner().invoke(main, ["bench", spot, "--methods", "nearest", "--views", "1", "--repeats", "1",
                                  "--no-lpips", "--out", str(dest), *flatten(opts)])
    if check_outcome(r, [dest]) == "ok":
        rows = json.loads((dest / "results.json").read_text())["rows"]
        assert rows and all(finite_or_null(row["psnr"]) and math.isfinite(row["ssim"]) for row in rows)
    else:
        assert snapshot(tmp) == before


@pytest.fixture(scope="module")
def mic_test(shared_data) -> Path:
    return shared_data / "nerf_synthetic_mic" / "transforms_test.json"


EVAL_VALID = {"--method": valid_methods, "--scale": st.sampled_from(["1", "2", "2.5"]),
              "--lowres-dilation": st.sampled_from(["matched", "usual", "0.1", "0"]), "--split": st.just("test"),
              "--width": st.sampled_from(["8", "16"])}
EVAL_HOSTILE = {"--method": hostile_methods, "--scale": hostile_numbers, "--lowres-dilation": hostile_numbers,
                "--split": st.sampled_from(["train", "nope", ""]), "--width": st.sampled_from(["0", "x", "-3"])}


@FUZZ
@given(opts=command_line(EVAL_VALID, EVAL_HOSTILE, optional=("--method", "--scale", "--lowres-dilation", "--split")),
       place=st.sampled_from([None, None, "new", "file", "proc", "long"]))
def test_eval_command_lines(tmp_path_factory, spot, mic_test, opts, place):
    tmp = tmp_path_factory.mktemp("eval")
    args = ["eval", spot, str(mic_test), "--max-views", "1", "--no-lpips", *flatten(opts)]
    dest = None
    if place is not None:
        dest = destinations(tmp)[place] / "r.json"
        args += ["--json", str(dest)]
    before = snapshot(tmp)
    r = CliRunner().invoke(main, args)
    if check_outcome(r, [mic_test] + ([dest] if dest else [])) == "ok":
        assert opts.get("--split", "test") == "test" and " test views" in r.output
        if dest is not None:
            res = json.loads(dest.read_text())
            assert finite_or_null(res["mean"]["psnr"]) and math.isfinite(res["mean"]["ssim"])
    else:
        assert snapshot(tmp) == before


@FUZZ
@given(scene=st.sampled_from(["spot", "missing", "folder", "empty", "text"]),
       split=st.sampled_from([None, "test", "train"]), dataset=st.booleans())
def test_info_command_lines(tmp_path_factory, spot, mic_test, scene, split, dataset):
    tmp = tmp_path_factory.mktemp("info")
    paths = {"spot": Path(spot), "missing": tmp / "missing.ply", "folder": tmp, "empty": tmp / "e.splat",
             "text": tmp / "t.ply"}
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("ply\nformat ascii 1.0\nelement vertex 1e9\nend_header\n")
    args = ["info", str(paths[scene])]
    args += ["--dataset", str(mic_test)] if dataset else []
    args += ["--split", split] if split is not None else []
    check_outcome(CliRunner().invoke(main, args), list(paths.values()) + [mic_test])
