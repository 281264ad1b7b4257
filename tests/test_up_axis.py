"""estimate_up: the up axis of every scene in ../shared/data, of randomly rotated copies, and from cameras.

Oracles: the up axes listed in ../shared/data (padilla_splats/*/meta.json: geometry.up_axis), the NeRF-synthetic
convention (Blender, +z up) for mic's cameras, and, for the two scenes whose up axis is not listed, what a person
sees: the donut's icing and sprinkles are on +z (checked in renders), and the garden's ground is the plane
orthogonal to +z that its three real cameras stand above. A rotated copy must give the rotated answer.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import splatup as su
from splatup.gaussians import quat_to_rotmat
from splatup.viewpoints import estimate_up, parse_vector


def _angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b)))))


def _random_rotation(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(unit quaternion w x y z, its 3x3 matrix), float64."""
    q = torch.randn(4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / torch.linalg.vector_norm(q)
    return q, quat_to_rotmat(q[None])[0]


def _rotated(scene: su.Gaussians, q: torch.Tensor, R: torch.Tensor) -> su.Gaussians:
    """The scene turned by R about the origin: means R m, orientations q * q_i (Hamilton product)."""
    w1, x1, y1, z1 = q.tolist()
    w2, x2, y2, z2 = scene.quats.double().unbind(-1)
    quats = torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                         w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], -1)
    out = su.Gaussians(scene.means.double() @ R.T, quats, scene.log_scales.double(), scene.opacity_logits.double(),
                       scene.sh.double()).to(scene.dtype)
    # the product really turns every Gaussian's axes by R
    k = torch.arange(0, len(scene), max(1, len(scene) // 50))
    assert torch.allclose(quat_to_rotmat(quats[k]), R @ quat_to_rotmat(scene.quats[k].double()), atol=1e-9)
    return out


def _garden(shared_data) -> tuple[su.Gaussians, list[su.Camera]]:
    """gsplat's garden fixture: real COLMAP points as small round Gaussians, and its three real cameras."""
    z = np.load(shared_data / "gsplat_test_garden" / "test_garden.npz")
    pts = torch.from_numpy(z["means3d"]).float()
    n = len(pts)
    g = su.Gaussians.from_activated(pts, torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).contiguous(),
                                    torch.full((n, 3), 0.01), torch.full((n,), 0.9),
                                    colors=torch.from_numpy(z["colors"]).float() / 255)
    cams = [su.Camera(torch.from_numpy(z["viewmats"][i]).double(), torch.from_numpy(z["Ks"][i]).double(),
                      int(z["width"]), int(z["height"])) for i in range(len(z["viewmats"]))]
    return g, cams


def _listed_up(path) -> str:
    return json.loads((path.parent / "meta.json").read_text())["geometry"]["up_axis"]


SCENES = ["padilla_splats/plant/plant.splat", "padilla_splats/spot/spot_10k.splat",
          "padilla_splats/spot/spot_100k.splat", "gshairlod_donut/fused.ply", "gsplat_test_garden"]


@pytest.mark.parametrize("name", SCENES)
def test_up_of_every_shared_scene_and_of_a_rotated_copy(shared_data, name):
    if name == "gsplat_test_garden":
        scene, _ = _garden(shared_data)
        axis = "+z"
    else:
        scene = su.load_scene(shared_data / name)
        axis = _listed_up(shared_data / name) if name.startswith("padilla") else "+z"
    true_up = torch.tensor(parse_vector(axis, "up"), dtype=torch.float64)

    up, est = estimate_up(scene)
    assert up.dtype == torch.float64 and up.shape == (3,)
    assert torch.equal(up, true_up), est.describe()  # snapped to the listed axis exactly
    assert est.snapped_to == ("+" + axis.lstrip("+") if axis[0] != "-" else axis)
    assert _angle_deg(est.raw, true_up) <= est.uncertainty_deg, est.describe()
    assert est.source in ("support", "shading")

    q, R = _random_rotation(seed=len(name))
    up_r, est_r = estimate_up(_rotated(scene, q, R))
    # the estimate turns with the scene: the same cue, the same direction (a few degrees of search grid)
    assert est_r.source == est.source
    assert _angle_deg(est_r.raw, R @ est.raw) < 3.0, (est.describe(), est_r.describe())
    assert _angle_deg(est_r.raw, R @ true_up) <= est_r.uncertainty_deg
    assert abs(float(torch.linalg.vector_norm(up_r)) - 1) < 1e-12


def test_up_from_cameras_nerf_synthetic_and_garden(shared_data):
    from splatup.io.datasets import load_dataset

    z_up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    cams = [v.camera for v in load_dataset(shared_data / "nerf_synthetic_mic", split="train").views]
    up, est = estimate_up(None, cams)
    assert est.source == "cameras" and est.confidence == "high" and torch.equal(up, z_up)
    assert _angle_deg(est.raw, z_up) < 0.1  # Blender renders: no roll at all
    garden, gcams = _garden(shared_data)
    up, est = estimate_up(garden, gcams)  # cameras take precedence over the scene
    assert est.source == "cameras" and torch.equal(up, z_up) and _angle_deg(est.raw, z_up) < 3.0
    # the cameras turned with the world give the turned up axis
    _, R = _random_rotation(3)
    turned = [su.Camera(c.world_to_camera @ torch.block_diag(R.T, torch.ones(1, 1, dtype=torch.float64)), c.K,
                        c.width, c.height) for c in cams]
    _, est_r = estimate_up(None, turned)
    assert _angle_deg(est_r.raw, R @ z_up) < 0.1


def test_up_from_cameras_that_all_look_one_way_is_their_mean_up():
    """A forward-facing capture (every camera looks along +x, pitched up and down, no roll): the x axes are all the
    same, so the up axis is only known to lie orthogonal to them; the answer is the mean image-up, which is the true
    up when the pitches cancel (and off by the mean pitch otherwise)."""
    true_up = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    fwd = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    cams = []
    for i, pitch in enumerate((-20.0, -5.0, 0.0, 5.0, 20.0)):
        p = math.radians(pitch)
        d = math.cos(p) * fwd + math.sin(p) * true_up
        eye = torch.tensor([0.0, 0.1 * i, -0.05 * i], dtype=torch.float64)
        cams.append(su.Camera.look_at(eye, eye + d, true_up, 60.0, 32, 24))
    up, est = estimate_up(None, cams)
    assert est.cues["cameras"]["method"] == "mean camera up"
    assert _angle_deg(est.raw, true_up) < 1e-6
    assert abs(float(est.raw @ cams[0].R[0])) < 1e-12
    cams[-1] = su.Camera.look_at(cams[-1].center, cams[-1].center + fwd, true_up, 60.0, 32, 24)  # pitch 20 -> 0
    _, est2 = estimate_up(None, cams)
    assert _angle_deg(est2.raw, true_up) == pytest.approx(4.0, abs=0.05)  # the mean pitch, (-20-5+0+5+0)/5
    assert est.snapped_to is None and torch.equal(up, est.raw)  # 37 degrees from +y: nothing to snap to


def test_up_from_an_orbit_of_cameras_ignores_their_pitch():
    """Cameras all around a point at different heights (pitched up and down), no roll: exactly the up axis."""
    true_up = torch.nn.functional.normalize(torch.tensor([0.3, -1.0, 0.2], dtype=torch.float64), dim=0)
    cams = [su.Camera.orbit((1.0, 2.0, 3.0), 4.0, az, el, up=true_up, width=16, height=16)
            for az, el in [(0, 30), (70, -10), (150, 60), (220, 5), (300, -40)]]
    _, est = estimate_up(None, cams)
    assert _angle_deg(est.raw, true_up) < 1e-6 and est.cues["cameras"]["method"] == "orthogonal to the camera x axes"


def test_estimate_up_needs_something():
    from splatup.errors import SplatupInputError

    with pytest.raises(SplatupInputError, match="scene, cameras"):
        estimate_up(None)
    tiny = su.Gaussians.from_activated(torch.zeros(2, 3), torch.tensor([[1.0, 0, 0, 0]] * 2), torch.full((2, 3), 0.1),
                                       torch.full((2,), 0.5), colors=torch.zeros(2, 3))
    up, est = estimate_up(tiny)
    assert est.source == "default" and est.confidence == "low" and up.tolist() == [0.0, -1.0, 0.0]
