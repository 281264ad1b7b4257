"""Temporal stability along camera paths: the flicker figures on sequences with hand-computed answers, and
`splatup compare --path` against the same figures recomputed from ``su.render`` frames."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

import splatup as su
from splatup.bench.temporal import TemporalStability, temporal_stability
from splatup.cli import main


def _native_ramp(n: int, seed: int = 0) -> list[torch.Tensor]:
    """Native frames N_t = base + t * step (a steady change of known size)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(6, 5, 3, generator=g, dtype=torch.float64) * 0.5
    step = torch.full((6, 5, 3), 0.02, dtype=torch.float64)
    return [base + t * step for t in range(n)]


def test_native_itself_and_a_steady_error_do_not_flicker():
    nat = _native_ramp(5)
    r = temporal_stability(nat, nat)
    assert r["tpsnr"] == math.inf and r["trmse"] == 0 and r["relative"] == 0 and r["pairs"] == 4
    blur = torch.rand(6, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.1
    r = temporal_stability([n + blur for n in nat], nat)  # the same error in every frame: no flicker at all
    assert r["trmse"] < 1e-15


def test_an_alternating_error_flickers_by_twice_its_size():
    """F_t = N_t + (-1)^t a: every change is off by 2a, so mse = 4 a^2, tPSNR = -10 log10(4 a^2), and relative =
    2a / 0.02 (native changes by 0.02 per frame everywhere)."""
    a = 0.01
    nat = _native_ramp(7)
    r = temporal_stability([n + a * (-1) ** t for t, n in enumerate(nat)], nat)
    assert r["tpsnr"] == pytest.approx(-10 * math.log10(4 * a * a), abs=1e-9)
    assert r["trmse"] == pytest.approx(2 * a, rel=1e-12)
    assert r["relative"] == pytest.approx(2 * a / 0.02, rel=1e-12)
    # one glitch in one frame of six pairs: e = +g then -g on the two pairs around it
    glitch = [n.clone() for n in nat]
    glitch[3][2, 2, 0] += 0.3
    acc = TemporalStability()
    for f, n in zip(glitch, nat):
        acc.add(f, n)
    assert acc.pair_mse == pytest.approx([0, 0, 0.09 / 90, 0.09 / 90, 0, 0], abs=1e-15)
    with pytest.raises(ValueError, match="two frames"):
        TemporalStability().result()


def test_compare_path_reports_the_figures_recomputed_from_su_render(tmp_path, shared_data):
    from splatup.viewpoints import estimate_up, orbit_path

    scene = shared_data / "padilla_splats" / "spot" / "spot_10k.splat"
    out = tmp_path / "cmp"
    r = CliRunner().invoke(main, ["compare", str(scene), "--path", "orbit", "--frames", "6", "-W", "64", "-H", "48",
                                  "--elevation", "10", "--methods", "hermite,nearest", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "temporal.json").read_text())
    assert (out / "frame_strip.png").stat().st_size > 5_000 and "| hermite |" in (out / "report.md").read_text()
    g = su.load_scene(scene)
    cams = orbit_path(g, 6, 64, 48, elevation_deg=10, up=tuple(estimate_up(g)[0].tolist()))
    native = [su.render(g, c, method="native").clamp(0, 1) for c in cams]
    for m in ("hermite", "nearest"):
        ref = temporal_stability([su.render(g, c, scale=2, method=m) for c in cams], native)
        got = rec["methods"][m]
        assert got["tpsnr"] == pytest.approx(ref["tpsnr"], abs=1e-6), m
        assert got["relative"] == pytest.approx(ref["relative"], rel=1e-6), m
        assert len(got["psnr_per_frame"]) == 6 and len(got["tpsnr_per_pair"]) == 5
    # gradient-aware upscaling follows native's motion more closely than nearest-neighbour upscaling
    assert rec["methods"]["hermite"]["tpsnr"] > rec["methods"]["nearest"]["tpsnr"] + 3
