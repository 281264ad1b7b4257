"""`splatup view` from the command line: a command of the CLI package, its options refused in one line (exit 2, nothing
served), a trained model opened the way it was trained (its metadata), and a real server process that serves the
viewer's page on 127.0.0.1 and stops on Ctrl-C."""

import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

import splatup as su
from splatup.cli import COMMANDS, main
from splatup.errors import SceneFormatError
from splatup.view.settings import ViewSettings, opening_settings


@pytest.fixture(scope="module")
def spot(shared_data) -> str:
    return str(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")


class FakeViewer:
    """Stands in for :class:`splatup.view.server.Viewer`: records what the command built, serves nothing."""

    made: list["FakeViewer"] = []

    def __init__(self, scene, settings, host, port, up, size, verbose):
        self.scene, self.settings, self.host, self.port, self.up_arg, self.size = scene, settings, host, port, up, size
        self.up, self.up_source, self.url = (0.0, -1.0, 0.0), "given (--up)", f"http://{host}:{port}"
        FakeViewer.made.append(self)

    def serve_forever(self):
        pass

    def stop(self):
        self.stopped = True


@pytest.fixture
def fake_viewer(monkeypatch):
    FakeViewer.made = []
    monkeypatch.setattr("splatup.view.server.Viewer", FakeViewer)
    return FakeViewer.made


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_view_is_a_command_of_the_cli_package_and_its_help_works():
    assert COMMANDS["view"] == "splatup.cli.view:view"
    cmd = main.get_command(click.Context(main), "view")
    from splatup.cli.view import view

    assert cmd is view and view.callback.__module__ == "splatup.cli.view"
    r = run(["view", "--help"])
    assert r.exit_code == 0, r.output
    for opt in ("--port", "--host", "--up", "--width", "--height", "--method", "--scale", "--auto", "--target-fps",
                "--split", "--background", "--fov"):
        assert opt in r.output
    assert "127.0.0.1" in r.output and "fd-hermite" in r.output and "how SCENE was trained" in r.output
    assert "  view " in run(["--help"]).output


def test_view_options_go_to_the_viewer(spot, fake_viewer):
    r = run(["view", spot, "--port", "0", "--host", "127.0.0.1", "--up", "+z", "-W", "320", "--method", "lanczos",
             "-s", "3.5", "--no-auto", "--target-fps", "20", "--split", "-b", "0.25,0.5,1", "--fov", "70"])
    assert r.exit_code == 0, r.output
    (v,) = fake_viewer
    assert len(v.scene) == 10_000 and (v.host, v.port, v.up_arg, v.size) == ("127.0.0.1", 0, (0.0, 0.0, 1.0),
                                                                                 (320, None))
    assert v.settings == ViewSettings(method="lanczos", factor=3.5, auto=False, target_ms=50.0, split=True,
                                      background=(0.25, 0.5, 1.0), fov_deg=70.0)
    r = run(["view", spot])
    assert r.exit_code == 0, r.output
    assert fake_viewer[1].settings == ViewSettings() and fake_viewer[1].up_arg == "auto"
    assert (fake_viewer[1].settings.method, fake_viewer[1].settings.factor) == ("hermite", 2.0)


@pytest.mark.parametrize("args, names", [
    (["--up", "sideways"], ["--up", "sideways"]),
    (["--up", "0,0,0"], ["--up"]),
    (["--scale", "5"], ["--scale"]),
    (["--scale", "nan"], ["--scale"]),
    (["-s", "0.5"], ["--scale"]),
    (["--fov", "inf"], ["--fov"]),
    (["--fov", "150"], ["--fov"]),
    (["--target-fps", "0"], ["--target-fps"]),
    (["--target-fps", "-inf"], ["--target-fps"]),
    (["--background", "255,0,0"], ["--background", "not 0-255"]),
    (["--background", "0.1,nan,0"], ["--background"]),
    (["--background", "grey"], ["--background"]),
    (["--method", "bicubik"], ["--method", "hermite"]),
    (["-W", "0"], ["--width"]),
    (["--port", "70000"], ["--port"]),
])
def test_view_refuses_bad_options_in_one_line_and_serves_nothing(spot, fake_viewer, args, names):
    r = run(["view", spot, *args])
    assert r.exit_code == 2, (r.output, r.exc_info)
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in r.output, r.output
    for n in names:
        assert n in last, (n, last)
    assert fake_viewer == []


def test_view_names_a_missing_or_broken_scene(tmp_path, fake_viewer):
    r = run(["view", tmp_path / "missing.splat"])
    assert r.exit_code == 2 and "missing.splat" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"ply\nformat ascii 1.0\nend_header\n")
    r = run(["view", bad])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1].startswith("error: ") and "bad.ply" in r.output
    assert fake_viewer == []


def test_view_refuses_a_fixed_size_that_does_not_fit_in_memory(spot, fake_viewer, monkeypatch):
    from splatup import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: memory.MemoryBudget(64 << 20, "test limit"))
    r = run(["view", spot, "-W", "4000", "-H", "3000"])
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "4000x3000" in last and "-W/-H" in last
    assert fake_viewer == []
    assert run(["view", spot, "-W", "64", "-H", "48"]).exit_code == 0


# ---------------------------------------------------------------------------------------------------- trained models
def _trained_model(folder: Path, method: str = "hermite", upscale: float = 3.0, background=(1.0, 1.0, 1.0),
                   seed: int = 0) -> Path:
    """A small .ply with the metadata `splatup train` writes beside it (the fields of train/trainer.py)."""
    g = torch.Generator().manual_seed(seed)
    n = 64
    scene = su.Gaussians(means=torch.randn(n, 3, generator=g), quats=torch.randn(n, 4, generator=g),
                         log_scales=torch.full((n, 3), -2.0), opacity_logits=torch.ones(n),
                         sh=torch.rand(n, 1, 3, generator=g))
    folder.mkdir(parents=True, exist_ok=True)
    ply = su.save_ply(scene, folder / "point_cloud.ply")
    meta = {"format": "splatup.trained-model", "version": 1,
            "ply_sha256": hashlib.sha256(Path(ply).read_bytes()).hexdigest(), "method": method,
            "upscale": upscale, "lowres_dilation": "matched", "dilation": 0.3, "background": list(background),
            "iterations": 10, "width": 64, "height": 48, "sh_degree": 0, "gaussians": n, "dataset": "test",
            "splatup_version": su.__version__}
    (folder / "point_cloud.json").write_text(json.dumps(meta))
    return Path(ply)


def test_a_trained_model_opens_with_its_method_factor_and_background(tmp_path, fake_viewer):
    ply = _trained_model(tmp_path / "run", "hermite", 3.0, (1.0, 1.0, 1.0))
    r = run(["view", ply])
    assert r.exit_code == 0, r.output
    assert "trained through hermite x3" in r.output and "point_cloud.json" in r.output
    s = fake_viewer[-1].settings
    assert (s.method, s.factor, s.background) == ("hermite", 3.0, (1.0, 1.0, 1.0))
    assert (s.auto, s.split, s.fov_deg) == (True, False, 50.0)  # the rest as without metadata
    # options say otherwise: each one wins over the metadata, the others still come from it
    r = run(["view", ply, "--method", "bicubic"])
    assert r.exit_code == 0, r.output
    s = fake_viewer[-1].settings
    assert (s.method, s.factor, s.background) == ("bicubic", 3.0, (1.0, 1.0, 1.0))
    r = run(["view", ply, "-s", "1.5", "-b", "black"])
    s = fake_viewer[-1].settings
    assert (s.method, s.factor, s.background) == ("hermite", 1.5, (0.0, 0.0, 0.0))


def test_opening_settings_follow_the_metadata_as_eval_does(tmp_path):
    # natively trained: native on its background (the factor, for a switch to an upscaler, is the default 2)
    native = _trained_model(tmp_path / "native", "native", 1.0, (0.0, 0.0, 0.0))
    s, meta = opening_settings(native)
    assert meta["method"] == "native" and (s.method, s.factor, s.background) == ("native", 2.0, (0.0, 0.0, 0.0))
    # trained at x8: the viewer's largest factor
    x8 = _trained_model(tmp_path / "x8", "hermite", 8.0, (0.5, 0.5, 0.5), seed=1)
    s, _ = opening_settings(x8, auto=False)
    assert (s.method, s.factor, s.background, s.auto) == ("hermite", 4.0, (0.5, 0.5, 0.5), False)
    # no metadata, or metadata of another file: the viewer's defaults
    plain = tmp_path / "plain.ply"
    plain.write_bytes(native.read_bytes())
    assert opening_settings(plain) == (ViewSettings(), None)
    moved = tmp_path / "x8" / "point_cloud.ply"
    moved.write_bytes(native.read_bytes())
    with pytest.warns(UserWarning, match="SHA-256"):
        assert opening_settings(moved) == (ViewSettings(), None)
    # splatup's metadata, broken: an error naming the file and the field
    meta_file = tmp_path / "native" / "point_cloud.json"
    bad = json.loads(meta_file.read_text())
    bad["upscale"] = "two"
    meta_file.write_text(json.dumps(bad))
    with pytest.raises(SceneFormatError, match="point_cloud.json.*upscale"):
        opening_settings(native)


def test_broken_metadata_is_refused_in_one_line(tmp_path, fake_viewer):
    ply = _trained_model(tmp_path / "run")
    (tmp_path / "run" / "point_cloud.json").write_text('{"format": "splatup.trained-model", "version": 1')
    r = run(["view", ply])
    assert r.exit_code == 2 and "point_cloud.json" in r.output.strip().splitlines()[-1]
    assert fake_viewer == []


def test_ctrl_c_before_the_serving_loop_still_stops_the_server(spot, fake_viewer, monkeypatch):
    """Ctrl-C right after the address is shown (before serve_forever's own handler is in place) stops the
    server and ends the command with exit code 0, not click's "Aborted!" (exit 1)."""
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeViewer, "serve_forever", interrupted)
    r = run(["view", spot, "--up=-y"])
    assert r.exit_code == 0, r.output
    assert fake_viewer and fake_viewer[0].stopped


def test_view_serves_the_page_and_stops_on_ctrl_c(shared_data):
    exe = Path(sys.executable).parent / "splatup"
    spot = shared_data / "padilla_splats" / "spot" / "spot_10k.splat"
    # SIGINT back to its default in the child: pytest-xdist's workers ignore it, and an ignored signal is inherited
    proc = subprocess.Popen([str(exe), "view", str(spot), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        url, lines, deadline = None, [], time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"splatup view at (http://127\.0\.0\.1:(\d+))", line)
            url = m and m.group(1)
        assert url, "no URL printed:\n" + "".join(lines)
        page = urllib.request.urlopen(url, timeout=30).read().decode("utf-8", "replace")
        assert "<html" in page.lower() and "viser" in page.lower()
        assert "10,000 Gaussians" in "".join(lines) and "up axis" in "".join(lines)
        assert "estimated:" in "".join(lines)  # --up auto, the default: splatup.viewpoints.estimate_up
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        assert rc == 0, f"exit code {rc} after Ctrl-C:\n{''.join(lines)}{proc.stdout.read()}"
        port = int(url.rsplit(":", 1)[1])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            raise AssertionError(f"port {port} still open after Ctrl-C")
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
