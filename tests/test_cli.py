"""The splatup command line: render, info and error handling (upscaling commands are tested in test_pipeline)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import splatup as su
from splatup.cli import main


def test_info_reports_the_scene(shared_data):
    r = CliRunner().invoke(main, ["info", str(shared_data / "gshairlod_donut" / "fused.ply")])
    assert r.exit_code == 0, r.output
    assert "45624" in r.output and "sh degree" in r.output


def test_render_writes_the_image_rasterize_gives(tmp_path, shared_data):
    scene = shared_data / "padilla_splats" / "spot" / "spot_10k.splat"
    out = tmp_path / "spot.png"
    r = CliRunner().invoke(main, ["render", str(scene), "-o", str(out), "-W", "96", "-H", "64", "--azimuth", "40",
                                  "--background", "white", "--save-derivatives"])
    assert r.exit_code == 0, r.output
    img = np.asarray(Image.open(out))
    assert img.shape == (64, 96, 3)
    # the same camera through the Python API gives the same pixels (8-bit rounding aside)
    from splatup.viewpoints import orbit_camera

    g = su.load_scene(scene)
    cam = orbit_camera(g, 96, 64, azimuth_deg=40)
    ref = su.rasterize(g, cam, background=(1, 1, 1)).color.clamp(0, 1)
    assert np.abs(img / 255.0 - ref.numpy()).max() <= 0.5 / 255 + 1e-6
    assert (img < 250).any()  # the cow is in view, not just background
    for name in ("dx", "dy", "dxy"):
        assert (tmp_path / f"spot_{name}.png").is_file()


def test_render_from_dataset_camera(tmp_path, shared_data):
    out = tmp_path / "donut.png"
    r = CliRunner().invoke(main, ["render", str(shared_data / "gshairlod_donut" / "fused.ply"), "-o", str(out),
                                  "--dataset", str(shared_data / "nerf_synthetic_mic" / "transforms_test.json"),
                                  "--view", "2", "-W", "80"])
    assert r.exit_code == 0, r.output
    assert np.asarray(Image.open(out)).shape == (80, 80, 3)


def test_errors_are_one_line_and_exit_2(tmp_path, shared_data):
    runner = CliRunner()
    r = runner.invoke(main, ["render", str(tmp_path / "missing.ply"), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "missing.ply" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.splat"
    bad.write_bytes(b"\x00" * 33)
    r = runner.invoke(main, ["info", str(bad)])
    assert r.exit_code == 2 and "bad.splat" in r.output
    spot = str(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")
    r = runner.invoke(main, ["render", spot, "-o", str(tmp_path / "x.png"), "--up", "sideways"])
    assert r.exit_code == 2 and "--up" in r.output
    r = runner.invoke(main, ["render", spot, "-o", str(tmp_path / "x.png"), "-W", "0"])
    assert r.exit_code == 2
    assert not (tmp_path / "x.png").exists()


def test_render_warns_when_nothing_is_visible(tmp_path):
    g = su.Gaussians.from_activated(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[1.0, 0, 0, 0]]),
                                    torch.full((1, 3), 0.1), torch.tensor([0.9]), colors=torch.tensor([[1.0, 0, 0]]))
    path = tmp_path / "one.ply"
    su.save_ply(g, path)
    r = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "o.png"), "-W", "32", "-H", "32",
                                  "--target", "10,10,10", "--distance", "1"])
    assert r.exit_code == 0, r.output
    assert "no Gaussian is in view" in r.output


def test_python_dash_m_splatup_is_the_cli():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "splatup", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    from splatup.cli import COMMANDS

    for name in COMMANDS:
        assert f"  {name} " in r.stdout, (name, r.stdout)


def test_every_registered_command_loads_under_its_name():
    import click

    from splatup.cli import COMMANDS

    ctx = click.Context(main)
    for name in COMMANDS:
        cmd = main.get_command(ctx, name)
        assert isinstance(cmd, click.Command) and cmd.name == name
    assert main.get_command(ctx, "no-such-command") is None


@pytest.mark.parametrize("field, value, option", [
    ("width", 0, "--width"), ("height", -3, "--height"), ("elevation", 90.0, "--elevation"),
    ("elevation", float("nan"), "--elevation"), ("azimuth", float("inf"), "--azimuth"), ("fov", 180.0, "--fov"),
    ("fov", 0.0, "--fov"), ("distance", 0.0, "--distance"), ("distance", -1.0, "--distance"),
    ("up", "sideways", "--up"), ("up", "0,0,0", "--up"), ("target", "1,2", "--target"),
])
def test_camera_spec_names_the_option_at_fault(field, value, option):
    from splatup.cli.camera_spec import CameraSpec
    from splatup.errors import SplatupInputError

    with pytest.raises(SplatupInputError, match=option):
        CameraSpec(**{field: value})


def test_camera_spec_views_are_consecutive_dataset_views_or_an_even_orbit(shared_data):
    from splatup.cli.camera_spec import CameraSpec
    from splatup.io.datasets import load_dataset

    mic = shared_data / "nerf_synthetic_mic" / "transforms_test.json"
    spec = CameraSpec(width=40, dataset=mic, view="3", split="test")
    ds = load_dataset(mic, split="test")
    for i, cam in enumerate(spec.views(None, 3)):
        ref = ds.views[3 + i].camera
        assert (cam.width, cam.height) == (40, 40)
        assert torch.equal(cam.world_to_camera, ref.world_to_camera)
        assert torch.allclose(cam.K[:2], ref.K[:2] * 40 / 800)
    g = su.load_scene(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")
    spec = CameraSpec(width=32, height=24, azimuth=10.0, up="+z")
    centres = [c.center for c in spec.views(g, 4)]
    from splatup.viewpoints import scene_frame

    c0, _ = scene_frame(g)
    d = [(c - c0) / torch.linalg.vector_norm(c - c0) for c in centres]
    # four cameras a quarter turn apart about +z at the same elevation
    for a, b in zip(d, d[1:] + d[:1]):
        assert abs(float(a[:2] @ b[:2])) < 1e-9 and abs(float(a[2] - b[2])) < 1e-9


def test_up_auto_is_the_default_and_info_reports_it(tmp_path, shared_data):
    """The donut stands on +z (not the -y of the old default): `render` without --up renders what --up=+z
    renders, and `info` says where the axis came from."""
    donut = shared_data / "gshairlod_donut" / "fused.ply"
    r = CliRunner().invoke(main, ["info", str(donut)])
    assert r.exit_code == 0, r.output
    assert "up axis" in r.output and "+z" in r.output and "support" in r.output
    runner = CliRunner()
    outs = {}
    for up in (None, "+z"):
        out = tmp_path / f"donut_{up}.png"
        r = runner.invoke(main, ["render", str(donut), "-o", str(out), "-W", "48", "-H", "32"]
                          + ([f"--up={up}"] if up else []))
        assert r.exit_code == 0, r.output
        outs[up] = np.asarray(Image.open(out))
    assert np.array_equal(outs[None], outs["+z"])
    from splatup.viewpoints import orbit_camera

    g = su.load_scene(donut)
    ref = su.rasterize(g, orbit_camera(g, 48, 32, up=(0.0, 0.0, 1.0))).color.clamp(0, 1)
    assert np.abs(outs[None] / 255.0 - ref.numpy()).max() <= 0.5 / 255 + 1e-6
