"""Process-level settings that ``import splatup`` makes: the OpenMP spin policy, the glibc malloc thresholds and
LLVM's vectorisation limits, each applied only when the user has not chosen otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    drop = ("MALLOC_", "GLIBC_TUNABLES", "SPLATUP_MALLOC_TUNING", "SPLATUP_LLVM_VECTORIZE", "GOMP_SPINCOUNT",
            "OMP_WAIT_POLICY")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=_clean_env(env), capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("env, expected", [({}, "10000"), ({"GOMP_SPINCOUNT": "5"}, "5"),
                                           ({"OMP_WAIT_POLICY": "passive"}, "None")])
def test_openmp_spin_policy_respects_the_users_choice(env, expected):
    assert _run("import os, splatup; print(os.environ.get('GOMP_SPINCOUNT'))", env) == expected


@pytest.mark.parametrize("env, expected", [({}, True), ({"SPLATUP_MALLOC_TUNING": "0"}, False),
                                           ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, False)])
def test_malloc_tuning_respects_the_users_choice(env, expected):
    """On glibc, import splatup raises the malloc thresholds unless the user opted out or tuned malloc."""
    if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
        pytest.skip("glibc only")
    assert _run("import splatup; print(splatup.MALLOC_TUNED)", env) == str(expected)


@pytest.mark.parametrize("env, expected", [({}, "True PackageKeyedCache"),
                                           ({"SPLATUP_LLVM_VECTORIZE": "0"}, "False NullCache")])
def test_llvm_vectorize_limits_respect_the_users_choice(env, expected):
    """Loading the projection kernels raises LLVM's runtime-check limits (render._vectorize) unless
    SPLATUP_LLVM_VECTORIZE=0; with the opt-out the kernel is not read from or written to numba's disk cache. That the
    limits make the projection vectorise is tested in test_projection.py."""
    code = ("from splatup.render import project_kernels as PK, _vectorize; "
            "print(_vectorize.APPLIED, PK.project_forward._cache.__class__.__name__)")
    assert _run(code, {**env}) == expected
