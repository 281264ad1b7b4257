"""benchmarks/experiment_train_upscale.py end to end on a tiny setting (mic at 32 px, 3 views, 20 iterations): it
trains (a) and (b) with the schedule it pins, evaluates each model through the paths it names (checked against
``evaluate`` run here on the written models), and writes the JSON and the Markdown table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import splatup as su
from splatup.train.evaluate import evaluate
from splatup.train.schedule import scaled_schedule

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "experiment_train_upscale.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("experiment_train_upscale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_experiment_runs_end_to_end_on_a_tiny_setting(tmp_path, shared_data, capsys):
    exp = _load_script()
    mic = shared_data / "nerf_synthetic_mic"
    results = exp.main(["--widths", "32", "--scales", "2", "--iterations", "20", "--schedule", "scaled",
                        "--train-views", "3", "--test-views", "2", "--random-points", "300", "--no-lpips",
                        "--dataset", str(mic), "--work", str(tmp_path / "work"), "--out-dir", str(tmp_path / "res"),
                        "--loop", "native_every=5"])
    printed = capsys.readouterr().out
    written = json.loads((tmp_path / "res" / "train_upscale_32.json").read_text())
    assert set(written["runs"]) == {"a", "b2"} == set(results[32]["runs"])
    # the schedule is pinned: the scaled rule's counts for 20 iterations, and the trainer used exactly those
    assert written["schedule"] == scaled_schedule(20, 0.025)
    assert written["meta"]["upscale_loop"]["native_every"] == 5
    for key in ("a", "b2"):
        summary = json.loads((tmp_path / "work" / "w32" / key / "train_summary.json").read_text())
        assert summary["schedule"] == written["schedule"]
        assert summary["result"]["iterations"] == 20
        assert summary["settings"]["upscale"] == (1.0 if key == "a" else 2.0)
        assert summary["settings"]["upscale_loop"]["native_every"] == 5
    a, b = written["runs"]["a"], written["runs"]["b2"]
    assert set(a["eval"]) == {"native", "hermite x2"} and set(b["eval"]) == {"native", "hermite x2"}
    # each number is the model rendered through the path it names (evaluate run here on the written .ply)
    kw = dict(dataset=str(mic), split="test", width=32, background=(1.0, 1.0, 1.0), max_views=2, use_lpips=False)
    for run in (a, b):
        scene = su.load_scene(run["ply"])
        assert len(scene) == run["gaussians"]
        assert run["eval"]["native"]["psnr"] == pytest.approx(evaluate(scene, **kw)["mean"]["psnr"], abs=1e-4)
        herm = evaluate(scene, method="hermite", scale=2.0, **kw)["mean"]
        assert run["eval"]["hermite x2"]["psnr"] == pytest.approx(herm["psnr"], abs=1e-4)
        assert run["eval"]["hermite x2"]["ssim"] == pytest.approx(herm["ssim"], abs=1e-5)
        assert run["seconds_per_iteration"] > 0 and run["median_seconds_per_iteration"] > 0
    t = written["targets"]["b2"]
    assert t["psnr_gain_over_a_hermite"] == pytest.approx(b["eval"]["hermite x2"]["psnr"] -
                                                          a["eval"]["hermite x2"]["psnr"])
    assert t["cost_mean"] == pytest.approx(b["seconds_per_iteration"] / a["seconds_per_iteration"])
    assert "| (a) native | native |" in printed and "| (b) --upscale 2 | hermite x2 |" in printed
    assert f"{b['eval']['hermite x2']['psnr']:.2f}" in printed
