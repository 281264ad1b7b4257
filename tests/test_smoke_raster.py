import torch

import splatup as su
from scenes import front_camera, random_scene


def test_plain_and_derivative_colour_agree():
    cam = front_camera(64, 48)
    scene = random_scene(300, cam, seed=1)
    a = su.rasterize(scene, cam)
    b = su.rasterize(scene, cam, derivatives=True)
    assert torch.isfinite(b.dxy).all()
    assert (a.color - b.color).abs().max() < 1e-5
