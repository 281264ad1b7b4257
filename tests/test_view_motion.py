"""The viewer's frame planner on made-up times: quick frames while the camera moves, one refined frame when it
stops, nothing while nothing changes."""

import pytest

from splatup.view.motion import FramePlanner


def test_nothing_to_do_before_any_change():
    p = FramePlanner(settle_s=0.25)
    assert p.take(0.0) is None and p.wait_s(0.0) is None


def test_moving_frames_then_one_refined_frame():
    p = FramePlanner(settle_s=0.25)
    p.camera_changed(1.00)
    assert p.take(1.01) == "moving"
    assert p.take(1.02) is None  # no new change: nothing until the camera has settled
    assert p.wait_s(1.02) == pytest.approx(0.23)
    p.camera_changed(1.10)
    p.camera_changed(1.12)  # two changes during one render: one frame
    assert p.take(1.15) == "moving" and p.take(1.16) is None
    assert p.take(1.36) is None  # 0.24 s after the last change
    assert p.take(1.38) == "still"  # settled: refine once
    assert p.take(2.00) is None and p.wait_s(2.00) is None


def test_a_change_seen_only_after_the_camera_settled_is_rendered_still():
    p = FramePlanner(settle_s=0.25)
    p.camera_changed(1.0)
    assert p.take(1.5) == "still"  # the render loop was busy for 0.5 s: no point in a quick frame now


def test_settings_change_renders_a_still_frame():
    p = FramePlanner(settle_s=0.25)
    p.settings_changed()
    assert p.wait_s(0.0) == 0.0
    assert p.take(0.0) == "still" and p.take(0.1) is None
