"""Property-based tests of every file reader on mutated real files (see tests/reader_fuzz.py for the seeds, the
mutations and the property: a valid, finite result, or a SplatupInputError naming the file).

Derandomized and database-free, so CI runs the same cases every time; the example counts keep the whole module
at about 20-30 s on two cores. tools/fuzz_readers.py runs the same targets with many more, random, examples.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from reader_fuzz import TARGETS, build_seeds

# warnings the readers give on purpose on damaged but readable files: Pillow on corrupt metadata, .splat on zero
# quaternions (documented in splat.py)
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
              pytest.mark.filterwarnings("ignore:.*zero quaternion:UserWarning")]

EXAMPLES = {"ply": 250, "splat": 250, "nerf_synthetic_json": 200, "nerfstudio_json": 200, "colmap_text": 200,
            "colmap_binary": 200, "image": 250}


@pytest.fixture(scope="module")
def seeds(shared_data, tmp_path_factory):
    return build_seeds(shared_data, tmp_path_factory.mktemp("fuzz_seeds"))


def _fuzz_test(name: str):
    target = TARGETS[name]

    @settings(max_examples=EXAMPLES[name], deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(spec=target.strategy)
    def test(seeds, tmp_path_factory, spec):
        work = seeds.root.parent / f"fuzz_work_{name}"
        assert target.run(seeds, spec, work) in ("ok", "error")

    test.__name__ = f"test_{name}_reader_keeps_its_contract_on_mutated_files"
    return test


test_ply_reader = _fuzz_test("ply")
test_splat_reader = _fuzz_test("splat")
test_nerf_synthetic_reader = _fuzz_test("nerf_synthetic_json")
test_nerfstudio_reader = _fuzz_test("nerfstudio_json")
test_colmap_text_reader = _fuzz_test("colmap_text")
test_colmap_binary_reader = _fuzz_test("colmap_binary")
test_image_reader = _fuzz_test("image")


def test_seeds_are_valid_inputs(seeds, tmp_path):
    """The unmutated seeds read as valid results: the mutations start from files the readers accept."""
    for name, target in TARGETS.items():
        empty = (0, []) if name in ("ply", "splat", "image") else ([], [], ()) if "json" in name else []
        if name in ("ply", "splat", "image"):
            for i in range(len(getattr(seeds, "images" if name == "image" else name))):
                assert target.run(seeds, (i, []), tmp_path / name) == "ok", (name, i)
        else:
            assert target.run(seeds, empty, tmp_path / name) == "ok", name
