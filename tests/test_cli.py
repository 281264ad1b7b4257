"""The splatup command line: render, info and error handling (upscaling commands are tested in test_pipeline)."""

import numpy as np
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
