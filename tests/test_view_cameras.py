"""The viewer's cameras: viser poses as splatup Cameras, render sizes, the opening view and the up axis.

Oracles: scipy's rotations for quaternions, ``Camera.look_at`` for a pose built from a look-at, and projections of
the scene's robust centre and up axis for the opening view.
"""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import splatup as su
from splatup import viewpoints
from splatup.errors import SplatupInputError
from splatup.view.cameras import (
    camera_from_pose,
    opening_view,
    quaternion_matrix,
    render_size,
    resolve_up,
)


def project(cam: su.Camera, p) -> tuple[float, float, float]:
    x = cam.world_to_camera.numpy() @ np.append(np.asarray(p, float), 1.0)
    u = cam.K.numpy() @ x[:3]
    return u[0] / u[2], u[1] / u[2], x[2]


def test_quaternion_matrix_matches_scipy():
    q = np.random.default_rng(0).standard_normal((20, 4))
    for wxyz in q:
        ref = Rotation.from_quat([wxyz[1], wxyz[2], wxyz[3], wxyz[0]]).as_matrix()  # scipy is scalar-last
        assert np.allclose(quaternion_matrix(wxyz), ref, atol=1e-12)


def test_pose_of_a_look_at_is_camera_look_at():
    eye, target, up = np.array([1.0, -2.0, 3.0]), np.array([0.2, 0.1, -0.3]), np.array([0.0, 0.0, 1.0])
    width, height, fov_y = 320, 200, math.radians(40.0)
    ref = su.Camera.look_at(eye, target, up, math.degrees(2 * math.atan(width / height * math.tan(fov_y / 2))),
                            width, height)
    # viser's pose: camera-to-world rotation (columns: camera x, y, z in the world) and the camera centre
    c2w = ref.world_to_camera[:3, :3].numpy().T
    x, y, z, w = Rotation.from_matrix(c2w).as_quat()
    cam = camera_from_pose(eye, (w, x, y, z), fov_y, width, height)
    assert torch.allclose(cam.world_to_camera, ref.world_to_camera, atol=1e-12)
    assert torch.allclose(cam.K, ref.K, atol=1e-9)
    u, v, depth = project(cam, target)
    assert (u, v) == pytest.approx((width / 2, height / 2)) and depth > 0
    assert project(cam, target + 0.1 * up)[1] < height / 2  # world up is up in the image


def test_render_size_follows_the_canvas_or_the_options():
    assert render_size(1000, 500) == (1000, 500)
    assert render_size(1000, 500, width=400) == (400, 200)
    assert render_size(1000, 500, height=100) == (200, 100)
    assert render_size(1000, 500, 64, 64) == (64, 64)
    assert render_size(0, 0) == (1, 1)


def test_opening_view_frames_the_robust_centre_upright(shared_data):
    scene = su.load_scene(shared_data / "padilla_splats" / "plant" / "plant.splat")
    centre, radius = viewpoints.scene_frame(scene)
    up = (0.0, -1.0, 0.0)
    view = opening_view(scene, up, fov_deg=50.0)
    assert view.look_at == pytest.approx(tuple(centre.tolist()))
    dist = float(np.linalg.norm(np.subtract(view.position, view.look_at)))
    assert radius / dist == pytest.approx(math.sin(math.radians(25.0)) / 1.05)  # the sphere fills the height
    cam = su.Camera.look_at(view.position, view.look_at, view.up, 50.0, 400, 400)
    u, v, depth = project(cam, centre.numpy())
    assert (u, v) == pytest.approx((200, 200)) and depth > 0
    assert project(cam, centre.numpy() + radius * np.array(up))[1] < 200


def test_resolve_up_given_or_estimated(monkeypatch, shared_data):
    scene = su.load_scene(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")
    assert resolve_up(scene, "+z") == ((0.0, 0.0, 1.0), "given (--up)")
    assert resolve_up(scene, "0,0,-2")[0] == (0.0, 0.0, -1.0)
    assert resolve_up(scene, (3.0, 0.0, 4.0))[0] == pytest.approx((0.6, 0.0, 0.8))
    # 'auto' (the default) is splatup.viewpoints.estimate_up of the Gaussians, with its description
    vec, estimate = viewpoints.estimate_up(scene)
    up, source = resolve_up(scene)
    assert up == pytest.approx(tuple(vec.tolist()), abs=1e-12) and estimate.describe() in source
    seen = {}

    def fake_estimate(g, cameras=None):
        seen["args"] = (g, cameras)
        return torch.tensor([0.0, 3.0, 4.0], dtype=torch.float64), estimate

    monkeypatch.setattr(viewpoints, "estimate_up", fake_estimate)
    assert resolve_up(scene, "AUTO")[0] == pytest.approx((0.0, 0.6, 0.8))
    assert seen["args"] == (scene, None)
    with pytest.raises(SplatupInputError, match="--up"):
        resolve_up(scene, "sideways")
    with pytest.raises(SplatupInputError, match="--up"):
        resolve_up(scene, "0,0,0")
