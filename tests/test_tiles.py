"""Tile binning and depth sorting against a plain numpy construction of the same lists."""

from __future__ import annotations

import numpy as np
import pytest

from splatup.render import tiles
from splatup.render.tiles import TILE_SIZE, bin_gaussians, depth_order


def _reference_lists(means2d, extents, depths, visible, width, height):
    """Every (tile, Gaussian) pair by the rule in the tiles module docstring, ordered by tile, then depth, then
    Gaussian index (np.lexsort), as (offsets, gids)."""
    ntx, nty = -(-width // TILE_SIZE), -(-height // TILE_SIZE)
    pairs_t, pairs_g = [], []
    for g in np.flatnonzero(visible):
        x0 = max(0, int(np.floor((means2d[g, 0] - extents[g, 0]) / TILE_SIZE)))
        x1 = min(ntx - 1, int(np.floor((means2d[g, 0] + extents[g, 0]) / TILE_SIZE)))
        y0 = max(0, int(np.floor((means2d[g, 1] - extents[g, 1]) / TILE_SIZE)))
        y1 = min(nty - 1, int(np.floor((means2d[g, 1] + extents[g, 1]) / TILE_SIZE)))
        for ty in range(y0, y1 + 1):
            for tx in range(x0, x1 + 1):
                pairs_t.append(ty * ntx + tx)
                pairs_g.append(g)
    t = np.asarray(pairs_t, np.int64)
    g = np.asarray(pairs_g, np.int64)
    order = np.lexsort((g, depths[g], t))
    offsets = np.zeros(ntx * nty + 1, np.int64)
    np.add.at(offsets, t + 1, 1)
    return np.cumsum(offsets), g[order].astype(np.int32)


def _random_scene(n, width, height, seed, tied_depths=False):
    rng = np.random.default_rng(seed)
    means2d = np.stack([rng.uniform(-40, width + 40, n), rng.uniform(-40, height + 40, n)], 1).astype(np.float32)
    extents = rng.exponential(6.0, (n, 2)).astype(np.float32)
    if tied_depths:  # few distinct values: the index must break the ties
        depths = rng.choice(np.float32([0.5, 1.0, 2.0, 1e3]), n)
    else:
        depths = rng.uniform(0.2, 50.0, n).astype(np.float32)
    visible = rng.random(n) < 0.9
    return means2d, extents, depths, visible


@pytest.mark.parametrize("n, tied", [(0, False), (1, False), (300, False), (20000, False), (20000, True)])
def test_bins_match_reference_lists(n, tied):
    width, height = 173, 131  # partial tiles on both axes
    means2d, extents, depths, visible = _random_scene(n, width, height, seed=n, tied_depths=tied)
    bins = bin_gaussians(means2d, extents, depths, visible, width, height)
    offsets, gids = _reference_lists(means2d, extents, depths, visible, width, height)
    np.testing.assert_array_equal(bins.offsets, offsets)
    np.testing.assert_array_equal(bins.gids, gids)


def test_depth_order_is_a_stable_argsort():
    rng = np.random.default_rng(3)
    depths = rng.choice(np.float32([0.25, 3.0, 3.0000002, 7.5]), 50000)  # ties and nearly equal values
    visible = rng.random(50000) < 0.8
    idx = np.flatnonzero(visible)
    expected = idx[np.argsort(depths[idx], kind="stable")]
    np.testing.assert_array_equal(depth_order(depths, visible), expected)


@pytest.mark.parametrize(
    "lo, hi, n",
    [
        (1.0, 1.0, 5000),  # one key: no pass
        (2.0, 2.0000305, 5000),  # keys differ in 8 bits: one pass
        (2.0, 2.9, 40000),  # 22 bits: two passes
        (1.5, 2.5, 40000),  # 23 bits: three passes of 8 bits
        (1e-3, 1e3, 40000),  # 28 bits: three passes
        (1e-38, 3e38, 40000),  # 31 bits, the whole positive range: three passes of 11 bits
        (0.3, 0.3000001, 1),
    ],
)
def test_depth_order_over_any_key_span(lo, hi, n):
    """The radix sort runs over only the bits in which the depths differ; any span sorts like a stable argsort."""
    rng = np.random.default_rng(int(n + 7 * hi) % 1000)
    depths = np.exp(rng.uniform(np.log(lo), np.log(hi), n)).astype(np.float32)
    depths[::7] = depths[::5][: depths[::7].shape[0]]  # ties
    visible = rng.random(n) < 0.9
    idx = np.flatnonzero(visible)
    expected = idx[np.argsort(depths[idx], kind="stable")]
    np.testing.assert_array_equal(depth_order(depths, visible), expected)


def test_depth_order_non_positive_depths_fall_back_to_argsort():
    depths = np.float32([3.0, -1.0, 0.0, 2.0, -1.0, 5.0])
    visible = np.ones(6, bool)
    np.testing.assert_array_equal(depth_order(depths, visible), np.argsort(depths, kind="stable"))
    np.testing.assert_array_equal(depth_order(depths, np.zeros(6, bool)), np.empty(0, np.int32))


@pytest.mark.parametrize("chunks", [1, 3, 7])
def test_chunking_does_not_change_the_lists(monkeypatch, chunks):
    """The parallel passes cut their input into chunks; any cut gives the numpy construction's lists."""
    width, height = 260, 190
    means2d, extents, depths, visible = _random_scene(30000, width, height, seed=11, tied_depths=True)
    offsets, gids = _reference_lists(means2d, extents, depths, visible, width, height)
    monkeypatch.setattr(tiles, "_n_chunks", lambda n: chunks)
    got = bin_gaussians(means2d, extents, depths, visible, width, height)
    np.testing.assert_array_equal(got.offsets, offsets)
    np.testing.assert_array_equal(got.gids, gids)


def test_mismatched_arrays_raise():
    """visible must match depths, and precomputed rects must have one row per Gaussian; rects for another tile grid
    are clamped to this one (no count outside it)."""
    means2d, extents, depths, visible = _random_scene(50, 64, 48, seed=2)
    with pytest.raises(ValueError, match="visible must have the shape"):
        depth_order(depths, visible[:-1])
    with pytest.raises(ValueError, match=r"rects must have shape \(50, 4\)"):
        bin_gaussians(means2d, extents, depths, visible, 64, 48, rects=np.zeros((49, 4), np.int32))
    huge = np.tile(np.int32([-5, 1000, -5, 1000]), (50, 1))
    bins = bin_gaussians(means2d, extents, depths, visible, 64, 48, rects=huge)
    n_tiles = 4 * 3
    assert bins.offsets.shape == (n_tiles + 1,)
    np.testing.assert_array_equal(np.diff(bins.offsets), np.full(n_tiles, visible.sum()))


def test_tile_range_is_the_one_rule_of_binning_and_projection():
    """tiles.tile_range is the rule's one implementation: bin_gaussians without precomputed ranges lists what the
    numpy construction of the rule lists (above), and the projection kernel stores tile_rects through the same
    function (tests/test_projection.py: check_tile_rects). Its edges: a Gaussian off the grid gets an empty range,
    huge extents the whole grid (not an integer overflow), and bin_gaussians lists a NaN or infinite one nowhere
    even when it is marked visible."""
    from numba import njit

    @njit(cache=False)
    def ranges(m, e, ntx, nty):
        out = np.empty((m.shape[0], 4))
        for k in range(m.shape[0]):
            out[k] = tiles.tile_range(m[k, 0], m[k, 1], e[k, 0], e[k, 1], 16.0, float(ntx), float(nty))
        return out

    m = np.float32([[8.0, 8.0], [200.0, 8.0], [-30.0, -30.0], [30.0, 20.0], [17.0, 33.0]])
    e = np.float32([[1.0, 1.0], [5.0, 5.0], [5.0, 5.0], [3e38, 3e38], [1.0, 15.5]])
    got = ranges(m, e, 4, 3)  # a 64 x 48 image
    np.testing.assert_array_equal(got, [[0, 0, 0, 0], [4, 3, 0, 0], [0, -1, 0, -1], [0, 3, 0, 2], [1, 1, 1, 2]])
    means2d = np.float32([[8.0, 8.0], [np.nan, 8.0], [20.0, 20.0], [np.inf, 5.0]])
    extents = np.float32([[1.0, 1.0], [2.0, 2.0], [3e38, 3e38], [1.0, 1.0]])
    bins = bin_gaussians(means2d, extents, np.float32([1.0, 2.0, 3.0, 4.0]), np.ones(4, bool), 64, 48)
    counts = np.zeros(4, np.int64)
    np.add.at(counts, bins.gids, 1)
    np.testing.assert_array_equal(counts, [1, 0, 12, 0])
