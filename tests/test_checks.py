"""The parallel input checks against numpy's element-wise answers."""

from __future__ import annotations

import numpy as np
import pytest

from splatup._checks import _CHUNK, all_finite, any_zero_row


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_one_bad_value_anywhere(dtype, bad):
    rng = np.random.default_rng(0)
    n = 3 * _CHUNK + 17
    a = (rng.standard_normal(n) * 1e30).astype(dtype)  # large finite values: x - x must still be 0
    assert all_finite(a) and np.isfinite(a).all()
    for pos in (0, _CHUNK - 1, _CHUNK, 2 * _CHUNK + 5, n - 1):
        b = a.copy()
        b[pos] = bad
        assert not all_finite(b)
        assert not all_finite(b.reshape(-1, 1)[::1])  # any shape, flattened


def test_all_finite_edge_cases():
    assert all_finite(np.zeros(0, np.float32))
    assert all_finite(np.float32([np.finfo(np.float32).max, -np.finfo(np.float32).max]))
    assert not all_finite(np.float32([[1.0, 2.0], [3.0, np.nan]])[:, ::-1])  # non-contiguous view
    assert all_finite(np.arange(5, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_zero_row_matches_numpy(dtype):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2 * _CHUNK + 3, 4)).astype(dtype)
    q[rng.random(q.shape) < 0.3] = 0.0  # rows with some zeros are not zero rows
    q[(q == 0).all(axis=1)] = 1.0
    assert not any_zero_row(q)
    for pos in (0, _CHUNK, q.shape[0] - 1):
        r = q.copy()
        r[pos] = -0.0 if pos else 0.0
        assert any_zero_row(r) == bool((r == 0).all(axis=1).any()) is True
    assert not any_zero_row(np.zeros((0, 4), dtype))
