"""Shared test fixtures: where the real data lives, and small random scenes."""

from __future__ import annotations

# isort: off
import splatup  # noqa: F401  (first: it sets the OpenMP spin policy before torch loads its runtime)

# isort: on
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPLATUP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (override with SPLATUP_SHARED_DATA). A missing folder is an error, not a skip."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(
            f"real test data not found at {SHARED_DATA}; clone the repo beside ../shared or set SPLATUP_SHARED_DATA"
        )
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch code on one thread: the reference twins do many small tensor ops, and torch's intra-op
    threads only add contention for them (use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
