"""`splatup render` with --scale/--method and camera paths: videos read back by ffmpeg, PNG frames equal to
``su.render`` quantised, frame-time records, and nothing half-written on failure.

Oracles: ``su.render`` on cameras built independently (``orbit_camera`` at the expected azimuths, the dataset's
own views), rounded to 8 bit as round(255 clamp(v)); ffmpeg's decoder (imageio-ffmpeg's read_frames) for videos.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import splatup as su
from splatup.cli import main
from splatup.viewpoints import estimate_up, orbit_camera


def _u8(img: torch.Tensor) -> np.ndarray:
    return np.round(img.clamp(0, 1).double().numpy() * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def spot(shared_data):
    path = shared_data / "padilla_splats" / "spot" / "spot_10k.splat"
    return path, su.load_scene(path)


def test_orbit_video_reads_back_with_24_frames_of_the_right_size_in_order(tmp_path, spot):
    import imageio_ffmpeg

    path, g = spot
    out = tmp_path / "x.mp4"
    r = CliRunner().invoke(main, ["render", str(path), "--path", "orbit", "--frames", "24", "--scale", "2",
                                  "--method", "hermite", "-W", "64", "-H", "48", "-o", str(out)])
    assert r.exit_code == 0, r.output
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (64, 48)
    decoded = [np.frombuffer(b, np.uint8).reshape(48, 64, 3).astype(np.float64) for b in reader]
    assert len(decoded) == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.frames.json", "x.mp4"]  # no temporary file left
    rec = json.loads((tmp_path / "x.frames.json").read_text())
    assert rec["method"] == "hermite" and rec["scale"] == 2.0 and rec["lowres"] == [32, 24]
    assert [f["index"] for f in rec["frames"]] == list(range(24)) and all(f["time_s"] > 0 for f in rec["frames"])
    assert rec["summary"]["median_s"] > 0 and rec["summary"]["frames"] == 24
    # H.264 is lossy; every decoded frame must still be nearest to its own reference frame (right frames, in order)
    up = tuple(estimate_up(g)[0].tolist())
    refs = [_u8(su.render(g, orbit_camera(g, 64, 48, azimuth_deg=30 + 15 * i, up=up), scale=2, method="hermite"))
            .astype(np.float64) for i in range(24)]
    for i, d in enumerate(decoded):
        err = [np.mean((d - ref) ** 2) for ref in refs]
        assert int(np.argmin(err)) == i and 10 * np.log10(255**2 / err[i]) > 30, (i, err[i])


def test_png_frames_equal_su_render_quantised_and_cameras_are_the_orbit(tmp_path, spot):
    path, g = spot
    out = tmp_path / "frames"
    r = CliRunner().invoke(main, ["render", str(path), "--path", "orbit", "--frames", "5", "-s", "2.5", "-m",
                                  "bicubic", "-W", "50", "-H", "36", "--azimuth", "10", "--elevation", "-15",
                                  "--up", "-y", "-b", "white", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "frames.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.png" for i in range(5)] + ["frames.json"]
    for i in range(5):
        cam = orbit_camera(g, 50, 36, azimuth_deg=10 + 72 * i, elevation_deg=-15)
        assert np.allclose(rec["frames"][i]["world_to_camera"], cam.world_to_camera.numpy(), atol=1e-12)
        ref = _u8(su.render(g, cam, scale=2.5, method="bicubic", background=(1, 1, 1)))
        assert np.array_equal(np.asarray(Image.open(out / f"frame_{i:05d}.png")), ref), i


def test_dataset_path_renders_the_dataset_views(tmp_path, shared_data):
    from splatup.io.datasets import load_dataset

    scene = shared_data / "gshairlod_donut" / "fused.ply"
    mic = shared_data / "nerf_synthetic_mic" / "transforms_test.json"
    out = tmp_path / "views"
    r = CliRunner().invoke(main, ["render", str(scene), "--path", "dataset", "--dataset", str(mic), "--view", "5",
                                  "--frames", "3", "-W", "40", "-o", str(out)])
    assert r.exit_code == 0, r.output
    g = su.load_scene(scene)
    views = load_dataset(mic, split="test").views
    for i in range(3):
        cam = views[5 + i].camera.resized(40, 40)
        ref = _u8(su.render(g, cam, method="native"))
        assert np.array_equal(np.asarray(Image.open(out / f"frame_{i:05d}.png")), ref), i


def test_still_render_with_scale_and_method_is_su_render(tmp_path, spot):
    path, g = spot
    out = tmp_path / "still.png"
    r = CliRunner().invoke(main, ["render", str(path), "-o", str(out), "-W", "60", "-H", "40", "--scale", "3",
                                  "--up=-y"])
    assert r.exit_code == 0, r.output
    ref = _u8(su.render(g, orbit_camera(g, 60, 40), scale=3, method="hermite"))  # --scale alone means Hermite
    assert np.array_equal(np.asarray(Image.open(out)), ref)


def test_path_errors_name_the_option_and_leave_nothing(tmp_path, spot):
    path, _ = spot
    runner = CliRunner()
    base = ["render", str(path), "--path", "orbit", "--frames", "3"]
    r = runner.invoke(main, base + ["-W", "63", "-H", "48", "-o", str(tmp_path / "odd.mp4")])
    assert r.exit_code == 2 and "even width and height" in r.output
    r = runner.invoke(main, base + ["-W", "64", "-H", "48", "-o", str(tmp_path / "one.png")])
    assert r.exit_code == 2 and ".png" in r.output
    r = runner.invoke(main, ["render", str(path), "--path", "dataset", "-o", str(tmp_path / "d")])
    assert r.exit_code == 2 and "--dataset" in r.output
    r = runner.invoke(main, ["render", str(path), "-o", str(tmp_path / "s.png"), "--method", "magic"])
    assert r.exit_code == 2 and "--method" in r.output
    r = runner.invoke(main, ["render", str(path), "-o", str(tmp_path / "s.png"), "--workers", "2"])
    assert r.exit_code == 2 and "--path" in r.output
    assert list(tmp_path.iterdir()) == []


def test_a_failing_frame_is_named_and_leaves_no_video(tmp_path, spot, monkeypatch):
    import splatup.paths as paths

    real = paths.render_frame

    def flaky(cam, scene, settings):
        if abs(float(cam.center[0]) - float(flaky.third_centre[0])) < 1e-12:
            raise RuntimeError("simulated crash")
        return real(cam, scene, settings)

    path, g = spot
    from splatup.viewpoints import orbit_path

    flaky.third_centre = orbit_path(g, 4, 32, 24, up=tuple(estimate_up(g)[0].tolist()))[2].center
    monkeypatch.setattr(paths, "render_frame", flaky)
    r = CliRunner().invoke(main, ["render", str(path), "--path", "orbit", "--frames", "4", "-W", "32", "-H", "24",
                                  "-o", str(tmp_path / "x.mp4")])
    assert r.exit_code == 1 and "frame 2 failed" in r.output and "simulated crash" in r.output
    assert list(tmp_path.iterdir()) == []  # neither the video nor its temporary file nor a frame-time record
