"""antimatter15 .splat decoding, against an independent struct-based decoder, on real and hand-built files."""

from __future__ import annotations

import math
import struct
import warnings

import numpy as np
import pytest
import torch

import splatup as su
from splatup.errors import SceneFormatError

C0 = 0.28209479177387814  # SH band-0 constant (INRIA 3DGS)
PLANT_N = 113_648


def _decode_record(rec: bytes) -> dict:
    """One 32-byte record decoded with struct, in float64."""
    px, py, pz, sx, sy, sz, r, g, b, a, qw, qx, qy, qz = struct.unpack("<6f8B", rec)
    q = [(v - 128) / 128 for v in (qw, qx, qy, qz)]
    nq = math.sqrt(sum(v * v for v in q))
    return {
        "pos": [px, py, pz],
        "scale": [sx, sy, sz],
        "f_dc": [(v / 255 - 0.5) / C0 for v in (r, g, b)],
        "opacity": a / 255,
        "quat": [v / nq for v in q] if nq > 0 else [1.0, 0.0, 0.0, 0.0],
    }


def _check_against_struct(path, scene, indices):
    data = path.read_bytes()
    idx = torch.tensor(indices)
    sub = scene.subset(idx)
    refs = [_decode_record(data[32 * i : 32 * i + 32]) for i in indices]

    def ref(key):
        return np.array([r[key] for r in refs], dtype=np.float64)

    assert sub.means.tolist() == ref("pos").tolist()  # float32 -> float32, exact
    np.testing.assert_allclose(sub.scales.double().numpy(), ref("scale"), rtol=2e-6)
    np.testing.assert_allclose(sub.sh[:, 0].double().numpy(), ref("f_dc"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sub.opacities.double().numpy(), ref("opacity"), atol=1.01e-6)
    np.testing.assert_allclose(sub.quats.double().numpy(), ref("quat"), atol=1e-6)


@pytest.mark.parametrize(("rel", "n"), [("padilla_splats/plant/plant.splat", PLANT_N),
                                        ("padilla_splats/spot/spot_10k.splat", 10_000)])
def test_real_splat_files_match_struct_decoding(shared_data, rel, n):
    path = shared_data / rel
    scene = su.load_scene(path)
    assert len(scene) == n and path.stat().st_size == 32 * n
    assert scene.sh_degree == 0 and scene.dtype == torch.float32
    scene.validate()
    rng = np.random.default_rng(0)
    _check_against_struct(path, scene, [0, 1, n - 1, *rng.integers(0, n, 200).tolist()])
    # unit quaternions; the A channel survives the logit: round(255 * sigmoid(logit)) == A for every record
    assert float((torch.linalg.vector_norm(scene.quats.double(), dim=1) - 1).abs().max()) < 1e-6
    alpha = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(n, 32)[:, 27]
    assert np.array_equal(np.round(scene.opacities.double().numpy() * 255), alpha)


def test_real_plant_has_zero_opacity_records_that_stay_finite(shared_data):
    path = shared_data / "padilla_splats/plant/plant.splat"
    alpha = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, 32)[:, 27]
    zero = np.flatnonzero(alpha == 0)
    assert len(zero) > 0  # the real file has fully transparent records
    scene = su.load_scene(path)
    logits = scene.opacity_logits[torch.from_numpy(zero)]
    assert torch.isfinite(logits).all()
    assert (scene.opacities[torch.from_numpy(zero)] < 1 / 255).all()  # the rasterizer skips them, like opacity 0


def _record(pos, scale, rgba, rot) -> bytes:
    return struct.pack("<6f8B", *pos, *scale, *rgba, *rot)


def test_hand_built_two_record_file(tmp_path):
    path = tmp_path / "two.splat"
    path.write_bytes(
        _record((1.0, -2.0, 3.5), (0.5, 1.0, 2.0), (255, 0, 128, 255), (128 + 64, 128, 128 + 64, 128))
        + _record((0.0, 0.0, 0.0), (0.0, 0.1, 0.25), (10, 20, 30, 0), (128, 128, 128, 128))
    )
    with pytest.warns(UserWarning, match=r"1 of 2 Gaussians have a zero quaternion"):
        scene = su.load_scene(path)
    assert len(scene) == 2
    assert scene.means.tolist() == [[1.0, -2.0, 3.5], [0.0, 0.0, 0.0]]
    # record 0: log of the linear scales; colour (255, 0, 128) -> f_dc = (c/255 - 0.5)/C0
    np.testing.assert_allclose(scene.log_scales[0].numpy(), [math.log(0.5), 0.0, math.log(2.0)], atol=1e-7)
    np.testing.assert_allclose(scene.sh[0, 0].numpy(), [0.5 / C0, -0.5 / C0, (128 / 255 - 0.5) / C0], rtol=1e-6)
    assert abs(float(scene.opacities[0]) - 1.0) <= 1e-6  # A = 255: clamped just below 1, finite logit
    # quaternion (0.5, 0, 0.5, 0) normalised: 90 degrees about y
    np.testing.assert_allclose(scene.quats[0].numpy(), [2**-0.5, 0.0, 2**-0.5, 0.0], atol=1e-7)
    # record 1: zero scale -> finite tiny log scale; A = 0 -> tiny opacity; all-128 quaternion -> identity
    assert torch.isfinite(scene.log_scales[1]).all()
    assert float(scene.scales[1, 0]) < 1e-9 and float(scene.scales[1, 0]) > 0
    np.testing.assert_allclose(scene.scales[1, 1:].numpy(), [0.1, 0.25], rtol=1e-6)
    assert torch.isfinite(scene.opacity_logits).all() and 0 < float(scene.opacities[1]) < 1e-5
    assert scene.quats[1].tolist() == [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(scene.sh[1, 0].numpy(), [(v / 255 - 0.5) / C0 for v in (10, 20, 30)], rtol=1e-6)


def test_no_warning_without_zero_quaternions(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        su.load_scene(shared_data / "padilla_splats/spot/spot_10k.splat")


def test_truncated_splat(shared_data, tmp_path):
    data = (shared_data / "padilla_splats/spot/spot_10k.splat").read_bytes()
    bad = tmp_path / "cut.splat"
    bad.write_bytes(data[: 32 * 100 + 17])
    with pytest.raises(SceneFormatError, match=r"truncated: 3217 bytes is not a multiple of 32") as e:
        su.load_scene(bad)
    assert "cut.splat" in str(e.value)


def test_empty_splat_is_an_error(tmp_path):
    path = tmp_path / "empty.splat"
    path.write_bytes(b"")
    with pytest.raises(SceneFormatError, match="empty") as e:
        su.load_scene(path)
    assert "empty.splat" in str(e.value)


@pytest.mark.parametrize(("field", "pos", "scale"), [("pos", (0.0, float("nan"), 0.0), (1.0, 1.0, 1.0)),
                                                     ("scale", (0.0, 0.0, 0.0), (1.0, float("inf"), 1.0))])
def test_non_finite_splat_fields_are_named(tmp_path, field, pos, scale):
    good = _record((0.0, 0.0, 1.0), (1.0, 1.0, 1.0), (1, 2, 3, 4), (200, 128, 128, 128))
    path = tmp_path / "nan.splat"
    path.write_bytes(good * 3 + _record(pos, scale, (1, 2, 3, 4), (200, 128, 128, 128)) + good)
    with pytest.raises(SceneFormatError, match=rf"'{field}'.*record 3") as e:
        su.load_scene(path)
    assert "nan.splat" in str(e.value)


def test_negative_scale_is_an_error(tmp_path):
    path = tmp_path / "neg.splat"
    path.write_bytes(_record((0.0, 0.0, 1.0), (1.0, -0.5, 1.0), (1, 2, 3, 4), (200, 128, 128, 128)))
    with pytest.raises(SceneFormatError, match=r"'scale' is negative.*record 0"):
        su.load_scene(path)
