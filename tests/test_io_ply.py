"""INRIA .ply reading and writing: layout, bit-exact round trips, real files, bad input."""

from __future__ import annotations

import numpy as np
import plyfile
import pytest
import torch

import splatup as su
from splatup.errors import SceneFormatError, SplatupInputError
from splatup.gaussians import Gaussians

DONUT_N = 45_624


def _random_scene(n: int, degree: int, seed: int) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return Gaussians(
        means=torch.randn(n, 3, generator=g) * 10,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) - 3,
        opacity_logits=torch.randn(n, generator=g) * 4,
        sh=torch.randn(n, k, 3, generator=g),
    )


def _expected_names(degree: int) -> list[str]:
    """The INRIA property order, written out here independently of splatup.io.ply."""
    n_rest = {0: 0, 1: 9, 2: 24, 3: 45}[degree]
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(n_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def _inria_columns(scene: Gaussians) -> dict[str, np.ndarray]:
    """Property name -> float32 column, built by explicit index arithmetic (channel-major f_rest)."""
    n, k = scene.sh.shape[:2]
    sh = scene.sh.numpy()
    cols = {
        "x": scene.means[:, 0].numpy(), "y": scene.means[:, 1].numpy(), "z": scene.means[:, 2].numpy(),
        "f_dc_0": sh[:, 0, 0], "f_dc_1": sh[:, 0, 1], "f_dc_2": sh[:, 0, 2],
        "opacity": scene.opacity_logits.numpy(),
    }
    for c in range(3):  # f_rest_{c*(K-1) + (k-1)} is colour channel c of coefficient k
        for coef in range(1, k):
            cols[f"f_rest_{c * (k - 1) + coef - 1}"] = sh[:, coef, c]
    for i in range(3):
        cols[f"scale_{i}"] = scene.log_scales[:, i].numpy()
    for i in range(4):
        cols[f"rot_{i}"] = scene.quats[:, i].numpy()
    return cols


def _write_with_plyfile(path, cols: dict[str, np.ndarray], order: list[str], dtype: str = "<f4", text=False):
    n = len(next(iter(cols.values())))
    arr = np.empty(n, dtype=[(name, dtype) for name in order])
    for name in order:
        arr[name] = cols[name]
    plyfile.PlyData([plyfile.PlyElement.describe(arr, "vertex")], text=text, byte_order="<").write(str(path))


def _assert_same(a: Gaussians, b: Gaussians) -> None:
    for name, t in a.tensors().items():
        u = b.tensors()[name]
        assert u.dtype == torch.float32 and t.shape == u.shape, name
        assert torch.equal(t, u), name


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_save_ply_round_trip_bit_exact_and_inria_layout(tmp_path, degree):
    scene = _random_scene(257, degree, seed=degree)
    path = tmp_path / "scene.ply"
    assert su.save_ply(scene, path) == path
    assert [p.name for p in tmp_path.iterdir()] == ["scene.ply"]  # no temp file left behind

    # the file itself, read with plyfile: header, types, order, channel-major f_rest, zero normals
    raw = plyfile.PlyData.read(str(path))
    assert raw.text is False and raw.byte_order == "<"
    assert [e.name for e in raw.elements] == ["vertex"]
    vertex = raw["vertex"]
    assert [p.name for p in vertex.properties] == _expected_names(degree)
    assert all(p.val_dtype in ("f4", "float32", "float") for p in vertex.properties)
    expected = _inria_columns(scene)
    for name, col in expected.items():
        assert np.array_equal(vertex.data[name], col), name
    for name in ("nx", "ny", "nz"):
        assert not vertex.data[name].any()
    with open(path, "rb") as f:
        assert f.read(40).startswith(b"ply\nformat binary_little_endian 1.0\n")

    _assert_same(scene, su.load_scene(path))


@pytest.mark.parametrize("degree", [1, 3])
def test_read_ply_channel_major_layout_written_independently(tmp_path, degree):
    scene = _random_scene(50, degree, seed=10 + degree)
    path = tmp_path / "indep.ply"
    names = [n for n in _expected_names(degree) if n not in ("nx", "ny", "nz")]
    _write_with_plyfile(path, _inria_columns(scene), names)
    got = su.load_scene(path)
    assert got.sh_degree == degree
    _assert_same(scene, got)
    # a concrete element, spelled out: f_rest_{c*(K-1)+(k-1)} for channel c=2 (blue), coefficient k=1
    k = (degree + 1) ** 2
    column = plyfile.PlyData.read(str(path))["vertex"][f"f_rest_{2 * (k - 1)}"]
    assert torch.equal(got.sh[:, 1, 2], torch.from_numpy(column))


def test_property_order_shuffled_and_double_types_load_the_same(tmp_path):
    scene = _random_scene(64, 2, seed=5)
    cols = _inria_columns(scene)
    names = list(cols)
    rng = np.random.default_rng(0)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    assert shuffled != names
    _write_with_plyfile(tmp_path / "shuffled.ply", cols, shuffled)
    _assert_same(scene, su.load_scene(tmp_path / "shuffled.ply"))
    # float64 properties (values are float32-representable, so the cast is exact)
    _write_with_plyfile(tmp_path / "double.ply", cols, shuffled, dtype="<f8")
    assert plyfile.PlyData.read(str(tmp_path / "double.ply"))["vertex"].properties[0].val_dtype in ("f8", "double")
    _assert_same(scene, su.load_scene(tmp_path / "double.ply"))
    # ASCII PLY, big-endian storage and an integer property also load
    _write_with_plyfile(tmp_path / "ascii.ply", cols, names, text=True)
    ascii_scene = su.load_scene(tmp_path / "ascii.ply")
    for name, t in scene.tensors().items():
        torch.testing.assert_close(ascii_scene.tensors()[name], t, rtol=1e-6, atol=1e-6)
    arr = np.empty(3, dtype=[(n, "<f4") for n in names if n != "opacity"] + [("opacity", ">i2")])
    for n in names:
        arr[n] = 1 if n.startswith("rot") or n == "opacity" else 0
    arr["opacity"] = [-3, 0, 7]
    plyfile.PlyData([plyfile.PlyElement.describe(arr, "vertex")], byte_order="<").write(str(tmp_path / "int.ply"))
    assert su.load_scene(tmp_path / "int.ply").opacity_logits.tolist() == [-3.0, 0.0, 7.0]


def test_float64_scene_is_saved_as_float32(tmp_path):
    scene = _random_scene(10, 1, seed=3).to(torch.float64)
    scene.means += 1e-12  # below float32 resolution for most values
    su.save_ply(scene, tmp_path / "d.ply")
    got = su.load_scene(tmp_path / "d.ply")
    _assert_same(scene.to(torch.float32), got)


def test_empty_scene_round_trips(tmp_path):
    su.save_ply(Gaussians.empty(sh_degree=1), tmp_path / "e.ply")
    got = su.load_scene(tmp_path / "e.ply")
    assert len(got) == 0 and got.sh_degree == 1


# ---------------------------------------------------------------------------------------------- real file


def test_real_donut_fused_ply(shared_data):
    path = shared_data / "gshairlod_donut" / "fused.ply"
    scene = su.load_scene(path)
    assert len(scene) == DONUT_N
    assert scene.sh_degree == 0 and scene.sh.shape == (DONUT_N, 1, 3)
    assert scene.dtype == torch.float32
    v = plyfile.PlyData.read(str(path))["vertex"].data
    assert "nx" not in v.dtype.names
    assert torch.equal(scene.means[:, 1], torch.from_numpy(v["y"].copy()))
    assert torch.equal(scene.sh[:, 0, 2], torch.from_numpy(v["f_dc_2"].copy()))
    assert torch.equal(scene.opacity_logits, torch.from_numpy(v["opacity"].copy()))
    assert torch.equal(scene.log_scales[:, 0], torch.from_numpy(v["scale_0"].copy()))
    assert torch.equal(scene.quats[:, 0], torch.from_numpy(v["rot_0"].copy()))
    assert torch.equal(scene.quats[:, 3], torch.from_numpy(v["rot_3"].copy()))
    scene.validate()
    # a trained scene: opacities and scales are spread, quaternions are not pre-normalised
    assert 0.0 < float(scene.opacities.mean()) < 1.0
    assert float(scene.log_scales.std()) > 0.1


def test_real_donut_shuffled_properties(shared_data, tmp_path):
    src = plyfile.PlyData.read(str(shared_data / "gshairlod_donut" / "fused.ply"))["vertex"].data
    names = list(src.dtype.names)
    order = names[::-1]
    _write_with_plyfile(tmp_path / "rev.ply", {n: src[n] for n in names}, order)
    _assert_same(su.load_scene(shared_data / "gshairlod_donut" / "fused.ply"), su.load_scene(tmp_path / "rev.ply"))


# ---------------------------------------------------------------------------------------------- bad input


def _good_file(tmp_path, degree=0, n=20, name="good.ply"):
    scene = _random_scene(n, degree, seed=1)
    path = tmp_path / name
    su.save_ply(scene, path)
    return path, scene


def test_truncated_ply(shared_data, tmp_path):
    data = (shared_data / "gshairlod_donut" / "fused.ply").read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 300):
        bad = tmp_path / f"cut{cut}.ply"
        bad.write_bytes(data[:cut])
        with pytest.raises(SceneFormatError, match=str(bad.name)) as e:
            su.load_scene(bad)
        assert "truncated" in str(e.value) or "end-of-file" in str(e.value)


def test_garbage_and_empty_ply(tmp_path):
    bad = tmp_path / "garbage.ply"
    bad.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8)))
    with pytest.raises(SceneFormatError, match="garbage.ply"):
        su.load_scene(bad)
    empty = tmp_path / "empty.ply"
    empty.write_bytes(b"")
    with pytest.raises(SceneFormatError, match="empty.ply"):
        su.load_scene(empty)


def test_no_vertex_element(tmp_path):
    arr = np.zeros(3, dtype=[("x", "<f4")])
    path = tmp_path / "faces.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(arr, "face")]).write(str(path))
    with pytest.raises(SceneFormatError, match="no 'vertex' element") as e:
        su.load_scene(path)
    assert "faces.ply" in str(e.value)


def test_missing_property(tmp_path):
    scene = _random_scene(5, 0, seed=2)
    cols = _inria_columns(scene)
    names = [n for n in cols if n != "opacity"]
    path = tmp_path / "noopacity.ply"
    _write_with_plyfile(path, cols, names)
    with pytest.raises(SceneFormatError, match="opacity") as e:
        su.load_scene(path)
    assert "noopacity.ply" in str(e.value)


def test_point_cloud_ply_is_rejected_naming_missing_fields(tmp_path):
    arr = np.zeros(4, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    path = tmp_path / "points.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(arr, "vertex")]).write(str(path))
    with pytest.raises(SceneFormatError, match="f_dc_0") as e:
        su.load_scene(path)
    assert "points.ply" in str(e.value) and "rot_3" in str(e.value)


@pytest.mark.parametrize("count", [10, 3, 44])
def test_wrong_f_rest_count(tmp_path, count):
    scene = _random_scene(5, 0, seed=2)
    cols = _inria_columns(scene)
    for i in range(count):
        cols[f"f_rest_{i}"] = np.zeros(5, dtype=np.float32)
    path = tmp_path / "rest.ply"
    _write_with_plyfile(path, cols, list(cols))
    with pytest.raises(SceneFormatError, match=f"found {count} f_rest") as e:
        su.load_scene(path)
    assert "rest.ply" in str(e.value) and "0, 9, 24 or 45" in str(e.value)


def test_f_rest_with_a_gap_in_numbering(tmp_path):
    scene = _random_scene(5, 0, seed=2)
    cols = _inria_columns(scene)
    for i in [*range(8), 9]:  # nine properties, but f_rest_8 missing
        cols[f"f_rest_{i}"] = np.zeros(5, dtype=np.float32)
    path = tmp_path / "gap.ply"
    _write_with_plyfile(path, cols, list(cols))
    with pytest.raises(SceneFormatError, match="f_rest_8"):
        su.load_scene(path)


@pytest.mark.parametrize(("field", "index", "value"),
                         [("scale_1", 7, np.nan), ("x", 0, np.inf), ("f_dc_2", 19, -np.inf), ("opacity", 11, np.nan)])
def test_non_finite_values_are_named(tmp_path, field, index, value):
    scene = _random_scene(20, 0, seed=4)
    cols = _inria_columns(scene)
    cols[field] = cols[field].copy()
    cols[field][index] = value
    cols[field][index + 1 :] = value  # later bad rows must not hide the first one
    path = tmp_path / "nan.ply"
    _write_with_plyfile(path, cols, list(cols))
    with pytest.raises(SceneFormatError) as e:
        su.load_scene(path)
    msg = str(e.value)
    assert "nan.ply" in msg and f"'{field}'" in msg and f"Gaussian {index};" in msg


def test_double_too_large_for_float32_is_an_error(tmp_path):
    scene = _random_scene(4, 0, seed=4)
    cols = {k: v.astype(np.float64) for k, v in _inria_columns(scene).items()}
    cols["z"][2] = 1e300
    path = tmp_path / "big.ply"
    _write_with_plyfile(path, cols, list(cols), dtype="<f8")
    with pytest.raises(SceneFormatError, match=r"'z'.*Gaussian 2;"):
        su.load_scene(path)


def test_zero_quaternion(tmp_path):
    scene = _random_scene(6, 0, seed=4)
    cols = _inria_columns(scene)
    for i in range(4):
        cols[f"rot_{i}"] = cols[f"rot_{i}"].copy()
        cols[f"rot_{i}"][3] = 0.0
    path = tmp_path / "zeroq.ply"
    _write_with_plyfile(path, cols, list(cols))
    with pytest.raises(SceneFormatError, match=r"zero quaternion at Gaussian 3\b") as e:
        su.load_scene(path)
    assert "zeroq.ply" in str(e.value) and "rot_0" in str(e.value)


def test_missing_file_directory_and_extension(tmp_path):
    with pytest.raises(SplatupInputError, match="not found") as e:
        su.load_scene(tmp_path / "nope.ply")
    assert "nope.ply" in str(e.value)
    with pytest.raises(SplatupInputError, match="directory"):
        su.load_scene(tmp_path)
    other = tmp_path / "scene.obj"
    other.write_text("v 0 0 0\n")
    with pytest.raises(SceneFormatError, match=r"'\.obj'") as e:
        su.load_scene(other)
    assert ".ply" in str(e.value) and ".splat" in str(e.value) and "scene.obj" in str(e.value)
    # extension matching is case-insensitive
    path, scene = _good_file(tmp_path, name="UPPER.PLY")
    _assert_same(scene, su.load_scene(path))


def test_save_ply_refuses_bad_scenes_and_leaves_nothing(tmp_path):
    scene = _random_scene(8, 1, seed=6)
    scene.log_scales[5, 2] = float("nan")
    with pytest.raises(SplatupInputError, match=r"'scale_2'.*Gaussian 5;"):
        su.save_ply(scene, tmp_path / "x.ply")
    zq = _random_scene(8, 0, seed=6)
    zq.quats[2] = 0
    with pytest.raises(SplatupInputError, match="zero quaternion"):
        su.save_ply(zq, tmp_path / "x.ply")
    with pytest.raises(SplatupInputError, match="does not exist"):
        su.save_ply(_random_scene(2, 0, 0), tmp_path / "missing_dir" / "x.ply")
    assert list(tmp_path.iterdir()) == []


def test_save_ply_is_atomic_on_failure(tmp_path, monkeypatch):
    path, scene = _good_file(tmp_path, name="keep.ply")
    before = path.read_bytes()

    def exploding_write(self, stream):
        stream.write(b"ply\nformat binary_little_endian 1.0\n")  # a partial file
        raise OSError("disk full")

    monkeypatch.setattr(plyfile.PlyData, "write", exploding_write)
    with pytest.raises(OSError, match="disk full"):
        su.save_ply(_random_scene(30, 3, seed=9), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.ply"]
