"""One client's frame loop without a browser: camera reports and settings in, frames and status lines out.

The session is driven step by step on a made-up clock; what it sends is checked against ``render_frame`` for the
camera built from the same pose, and its choices (kind, factor, JPEG quality) against the rules of the viewer:
quick frames at the auto factor while the camera moves, a refined frame at the user's factor once it stops.
"""

import math
import threading
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import splatup as su
from splatup.errors import SplatupInputError
from splatup.view.frame import render_frame
from splatup.view.session import JPEG_QUALITY, CameraPose, ClientSession
from splatup.view.settings import ViewSettings
from splatup.view.status import status_text
from splatup.viewpoints import orbit_camera


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture(scope="module")
def spot(shared_data):
    return su.load_scene(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")


def pose_of(cam: su.Camera, stamp: float = 0.0) -> CameraPose:
    c2w = cam.world_to_camera[:3, :3].numpy().T
    x, y, z, w = Rotation.from_matrix(c2w).as_quat()
    fov_y = 2 * math.atan(0.5 * cam.height / cam.fy)
    return CameraPose(tuple(cam.center.tolist()), (w, x, y, z), fov_y, cam.width, cam.height, stamp)


def make_session(spot, settings):
    sent, status = [], []
    clock = Clock()
    s = ClientSession(spot, settings, lambda img, q: sent.append((img, q)), status.append, clock=clock)
    return s, sent, status, clock


def test_moving_frames_at_the_auto_factor_then_a_refined_frame(spot):
    s, sent, status, clock = make_session(spot, ViewSettings(method="hermite", factor=1.5, auto=True))
    s.controller.factor = 3.0
    cam = orbit_camera(spot, 96, 64, azimuth_deg=10.0)
    assert s.step() is None  # no camera yet
    s.camera_changed(pose_of(cam, 1.0))
    rec = s.step()
    assert (rec.kind, rec.factor, rec.auto, rec.jpeg_quality) == ("moving", 3.0, True, JPEG_QUALITY["moving"])
    img, q = sent[-1]
    assert q == JPEG_QUALITY["moving"] and img.shape == (64, 96, 3)
    # the frame of the camera the pose came from (through scipy's quaternion, not the viewer's)
    ref = render_frame(spot, cam, "hermite", 3.0).image
    assert np.abs(img.astype(int) - ref).max() <= 1 and (img != ref).mean() < 1e-3
    assert s.controller.fixed_s is not None  # the moving frame was measured
    assert s.step() is None
    clock.t += 0.3
    rec = s.step()
    assert (rec.kind, rec.factor, rec.auto, rec.jpeg_quality) == ("still", 1.5, False, JPEG_QUALITY["still"])
    assert status[-1] == status_text(rec) and "still" in status[-1]
    assert s.step() is None


def test_auto_off_moves_at_the_users_factor_and_native_ignores_auto(spot):
    s, sent, _, clock = make_session(spot, ViewSettings(method="bicubic", factor=2.0, auto=False))
    s.controller.factor = 4.0
    s.camera_changed(pose_of(orbit_camera(spot, 80, 60), 1.0))
    assert s.step().factor == 2.0
    s.update_settings(method="native", auto=True)
    clock.t += 0.01
    s.camera_changed(pose_of(orbit_camera(spot, 80, 60, azimuth_deg=50.0), 2.0))
    rec = s.step()
    assert (rec.kind, rec.method, rec.factor, rec.auto) == ("moving", "native", 1.0, False)


def test_settings_change_renders_a_still_frame_with_the_new_settings(spot):
    s, sent, _, _ = make_session(spot, ViewSettings(method="hermite", factor=4.0, auto=True))
    s.camera_changed(pose_of(orbit_camera(spot, 80, 60), 1.0))
    s.step()
    s.update_settings(method="nearest", split=True, background=(1.0, 1.0, 1.0))
    rec = s.step()
    assert (rec.kind, rec.method, rec.split, rec.factor) == ("still", "nearest", True, 4.0)
    assert rec.settings.background == (1.0, 1.0, 1.0)
    assert s.controller.fixed_s is None  # a new method: the cost model starts over


def test_older_camera_reports_are_ignored(spot):
    s, _, _, _ = make_session(spot, ViewSettings())
    new, old = orbit_camera(spot, 80, 60, azimuth_deg=10.0), orbit_camera(spot, 80, 60, azimuth_deg=70.0)
    s.camera_changed(pose_of(new, 5.0))
    s.camera_changed(pose_of(old, 4.0))
    rec = s.step()
    assert np.allclose(rec.camera.world_to_camera.numpy(), new.world_to_camera.numpy(), atol=1e-9)


def test_thread_renders_on_its_own_and_stops(spot):
    got = threading.Event()
    s = ClientSession(spot, ViewSettings(auto=False), lambda img, q: got.set(), lambda text: None)
    s.start()
    try:
        s.camera_changed(pose_of(orbit_camera(spot, 64, 48), time.time()))
        assert got.wait(30.0)
        deadline = time.monotonic() + 30.0
        while not any(r.kind == "still" for r in s.history) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.kind for r in s.history][-1] == "still"
    finally:
        s.stop()
    assert not s._thread.is_alive()


def test_status_line_names_time_rate_factor_and_phases(spot):
    s, _, status, _ = make_session(spot, ViewSettings(method="lanczos", factor=2.5, auto=False))
    s.camera_changed(pose_of(orbit_camera(spot, 100, 80), 1.0))
    rec = s.step()
    text = status[-1]
    assert f"{rec.frame_s * 1e3:.1f} ms" in text and f"{1 / rec.frame_s:.1f} fps" in text
    assert "lanczos ×2.50" in text and "100×80 from 40×32" in text
    for label in ("project", "sort", "composite", "upscale", "encode"):  # (8-bit: written by the upscaler)
        assert label in text


def test_bad_settings_are_refused_with_the_field_named_and_nothing_changes(spot):
    s, _, _, _ = make_session(spot, ViewSettings())
    before = s.settings
    for changes, field in (({"factor": 5.0}, "factor"), ({"method": "bicubik"}, "method"),
                           ({"target_ms": 0.0}, "target frame time"), ({"background": (1.2, 0, 0)}, "background"),
                           ({"fov_deg": 170.0}, "field of view")):
        with pytest.raises(SplatupInputError, match=field):
            s.update_settings(**changes)
    assert s.settings == before
