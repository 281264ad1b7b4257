"""Shared test fixtures: where the real data lives, and small random scenes."""

from __future__ import annotations

import os

# numba's and torch's OpenMP threads must not spin-wait for each other (2 cores): set before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
