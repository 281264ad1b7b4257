"""Camera conventions: OpenCV axes, pixel centres at +0.5, scaled() / resized(), look_at, orbit, validation."""

import math

import pytest
import torch

import splatup as su
from splatup.camera import opengl_c2w_to_w2c
from splatup.errors import SplatupInputError


def project(cam: su.Camera, X) -> torch.Tensor:
    """Pixel coordinates of a world point, independent of splatup's projection code."""
    Xh = torch.cat([torch.as_tensor(X, dtype=torch.float64), torch.ones(1, dtype=torch.float64)])
    p = (cam.world_to_camera @ Xh)[:3]
    uvw = cam.K @ p
    return uvw[:2] / uvw[2]


def test_look_at_centres_target_and_orients_up():
    cam = su.Camera.look_at(eye=(1.0, 2.0, 3.0), target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0), fov_x_deg=60,
                            width=200, height=100)
    # the target lands on the image centre (W/2, H/2) under the +0.5 pixel-centre convention
    assert torch.allclose(project(cam, (0.0, 0.0, 0.0)), torch.tensor([100.0, 50.0], dtype=torch.float64))
    # a point above the target (world +z = up) appears higher in the image: smaller row coordinate
    assert project(cam, (0.0, 0.0, 0.5))[1] < 50.0
    # the camera looks along +z of its own frame at the target
    p = cam.world_to_camera @ torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    assert p[2] > 0 and abs(p[0]) < 1e-12 and abs(p[1]) < 1e-12
    assert torch.allclose(cam.center, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert math.isclose(cam.fov_x_deg, 60.0)
    assert math.isclose(cam.fx, 100.0 / math.tan(math.radians(30.0)))


def test_right_handed_right_down_forward():
    cam = su.Camera.look_at(eye=(0, 0, -5), target=(0, 0, 0), up=(0, 1, 0), fov_x_deg=50, width=64, height=64)
    R = cam.R
    assert torch.allclose(torch.linalg.cross(R[0], R[1]), R[2])  # x cross y = z
    # world +y is up: it must map to image -y (up in the image)
    assert project(cam, (0.0, 1.0, 0.0))[1] < 32.0
    # world +x is to the right when looking down +z with +y up? x_right = forward x up = (0,0,1)x(0,1,0) = (-1,0,0)
    assert project(cam, (-1.0, 0.0, 0.0))[0] > 32.0


def test_scaled_keeps_pose_and_field_of_view():
    cam = su.Camera.look_at((0, 0, -3), (0, 0, 0), (0, -1, 0), 50, 1920, 1080)
    for s in (2, 3, 1.5, 4, 2.37):
        lr = cam.scaled(1 / s)
        assert (lr.width, lr.height) == (math.floor(1920 / s), math.floor(1080 / s))
        assert torch.equal(lr.world_to_camera, cam.world_to_camera)
        # the continuous image is the same: a world point lands at the same normalised position u/W, v/H
        X = (0.3, -0.2, 0.4)
        assert torch.allclose(project(lr, X) / torch.tensor([lr.width, lr.height]),
                              project(cam, X) / torch.tensor([cam.width, cam.height]), atol=1e-12)
    assert cam.scaled(1 / 3).width == 640  # 1920 * (1/3) must not floor to 639


def test_opengl_conversion_matches_look_at():
    # an OpenGL camera-to-world: camera at (0,0,5) looking down -z with +y up
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[2, 3] = 5.0
    w2c = opengl_c2w_to_w2c(c2w)
    ref = su.Camera.look_at((0, 0, 5), (0, 0, 0), (0, 1, 0), 40, 10, 10).world_to_camera
    assert torch.allclose(w2c, ref, atol=1e-12)


def test_orbit_distance_and_elevation():
    cam = su.Camera.orbit(target=(1, 1, 1), distance=2.0, azimuth_deg=10, elevation_deg=30, up=(0, 0, 1),
                          fov_x_deg=45, width=32, height=24)
    c = cam.center - torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    assert math.isclose(float(c.norm()), 2.0, rel_tol=1e-12)
    assert math.isclose(math.degrees(math.asin(float(c[2]) / 2.0)), 30.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(width=0), "width"),
        (dict(height=-3), "height"),
        (dict(width=10.5), "width"),
        (dict(K=torch.tensor([[0.0, 0, 1], [0, 1, 1], [0, 0, 1]])), "focal"),
        (dict(K=torch.tensor([[1.0, 0.1, 1], [0, 1, 1], [0, 0, 1]])), "K must be"),
        (dict(world_to_camera=torch.full((4, 4), float("nan"))), "world_to_camera"),
        (dict(world_to_camera=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))), "orthonormal"),
        (dict(world_to_camera=torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0]))), "determinant"),
        (dict(world_to_camera=torch.eye(3)), "shape"),
    ],
)
def test_invalid_cameras_are_rejected(kwargs, needle):
    args = dict(world_to_camera=torch.eye(4), K=torch.tensor([[10.0, 0, 5], [0, 10, 5], [0, 0, 1]]), width=10,
                height=10)
    args.update(kwargs)
    with pytest.raises(SplatupInputError, match=needle):
        su.Camera(**args)


def test_scaled_to_nothing_and_bad_look_at():
    cam = su.Camera.look_at((0, 0, -3), (0, 0, 0), (0, -1, 0), 50, 8, 8)
    with pytest.raises(SplatupInputError, match="factor"):
        cam.scaled(1 / 16)
    with pytest.raises(SplatupInputError, match="factor"):
        cam.scaled(0)
    with pytest.raises(SplatupInputError, match="same point"):
        su.Camera.look_at((0, 0, 0), (0, 0, 0), (0, 1, 0), 50, 8, 8)
    with pytest.raises(SplatupInputError, match="parallel"):
        su.Camera.look_at((0, 0, 0), (0, 0, 1), (0, 0, 1), 50, 8, 8)
    with pytest.raises(SplatupInputError, match="fov"):
        su.Camera.look_at((0, 0, 0), (0, 0, 1), (0, 1, 0), 180, 8, 8)
