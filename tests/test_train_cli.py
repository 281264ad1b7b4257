"""`splatup train` and `splatup eval` end to end on tiny settings (click's CliRunner), and the trained model's
metadata: written beside the .ply, read back equal to what the run was, ignored when it describes another file,
and used by `eval` as its default path."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch
from click.testing import CliRunner

import splatup as su
from splatup.cli import main
from splatup.errors import SceneFormatError
from splatup.train.evaluate import evaluate, trained_render_options
from splatup.train.metadata import TrainingMetadataWarning, metadata_path, read_training_metadata

TINY = ["--iterations", "12", "--width", "32", "--random-points", "400", "--max-views", "3", "--checkpoint-every",
        "5", "--upscale", "2", "--white-background", "--sh-degree", "1", "--seed", "1", "--init", "random"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """A tiny `splatup train --upscale 2` run: (run folder, mic folder)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    mic = str(shared_data / "nerf_synthetic_mic")
    res = CliRunner().invoke(main, ["train", mic, "--out", str(run), *TINY])
    assert res.exit_code == 0, res.output
    return run, mic


def test_train_writes_the_model_its_metadata_and_a_summary(trained):
    run, mic = trained
    ply = run / "point_cloud.ply"
    assert ply.is_file() and (run / "point_cloud.json").is_file() and (run / "train_summary.json").is_file()
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-00000010.safetensors",
                                                                "checkpoint-00000012.safetensors"]
    meta = read_training_metadata(ply)
    expected = {"format": "splatup.trained-model", "version": 1,
                "ply_sha256": hashlib.sha256(ply.read_bytes()).hexdigest(), "method": "hermite", "upscale": 2.0,
                "lowres_dilation": "matched", "dilation": 0.3, "background": [1.0, 1.0, 1.0], "iterations": 12,
                "width": 32, "height": 32, "sh_degree": 1, "gaussians": len(su.load_scene(ply)), "dataset": mic,
                "splatup_version": su.__version__, "lowres_derivatives": "full"}
    assert meta == expected


def test_train_into_a_run_folder_needs_resume_or_overwrite(trained, tmp_path):
    run, mic = trained
    runner = CliRunner()
    res = runner.invoke(main, ["train", mic, "--out", str(run), *TINY])
    assert res.exit_code == 2 and "already holds a training run" in res.output and "--resume" in res.output
    assert "Traceback" not in res.output
    # a finished run: --resume does nothing and leaves the summary as it was
    summary = (run / "train_summary.json").read_bytes()
    res = runner.invoke(main, ["train", mic, "--out", str(run), *TINY, "--resume"])
    assert res.exit_code == 0 and "already finished" in res.output
    assert (run / "train_summary.json").read_bytes() == summary
    # a different run: the differing settings, one line each
    res = runner.invoke(main, ["train", mic, "--out", str(run), *TINY, "--resume", "--upscale", "1", "--seed", "2"])
    assert res.exit_code == 2
    assert "  seed: 1 in the checkpoint, 2 now" in res.output
    assert "  upscale: 2.0 in the checkpoint, 1.0 now" in res.output
    # a copy extended to more iterations, then started again
    ext = tmp_path / "ext"
    ext.mkdir()
    for p in run.iterdir():
        (ext / p.name).write_bytes(p.read_bytes())
    args = [a if a != "12" else "15" for a in TINY]
    res = runner.invoke(main, ["train", mic, "--out", str(ext), *args, "--resume"])
    assert res.exit_code == 0, res.output
    result = json.loads((ext / "train_summary.json").read_text())["result"]
    assert result["iterations"] == 15 and [(s["start"], s["end"]) for s in result["sessions"]] == [(0, 12), (12, 15)]
    assert read_training_metadata(ext / "point_cloud.ply")["iterations"] == 15
    res = runner.invoke(main, ["train", mic, "--out", str(ext), *TINY, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert (ext / "point_cloud.ply").read_bytes() == (run / "point_cloud.ply").read_bytes()


def test_eval_renders_a_trained_model_the_way_it_was_trained(trained, tmp_path):
    run, mic = trained
    ply = run / "point_cloud.ply"
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(main, ["eval", str(ply), mic, "--max-views", "2", "--no-lpips", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "trained through hermite x2 at width 32" in res.output and "hermite x2" in res.output
    got = json.loads(out.read_text())
    assert (got["method"], got["scale"], got["width"]) == ("hermite", 2.0, 32)
    # the same numbers as the explicit path through the API (white background: the training background)
    ref = evaluate(su.load_scene(ply), mic, "test", 32, "hermite", 2.0, (1.0, 1.0, 1.0), "matched", 2, False)
    assert [r["psnr"] for r in got["per_view"]] == pytest.approx([r["psnr"] for r in ref["per_view"]], abs=1e-9)
    # options given on the command line win
    res = CliRunner().invoke(main, ["eval", str(ply), mic, "--max-views", "1", "--no-lpips", "--method", "native",
                                    "--black-background", "--width", "24", "--json", str(out)])
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert (got["method"], got["width"]) == ("native", 24)
    black = evaluate(su.load_scene(ply), mic, "test", 24, "native", background=(0.0, 0.0, 0.0), max_views=1,
                     use_lpips=False)
    assert got["per_view"][0]["psnr"] == pytest.approx(black["per_view"][0]["psnr"], abs=1e-9)


def test_a_model_without_metadata_evaluates_with_the_plain_defaults(tmp_path):
    scene = su.Gaussians(means=torch.zeros(1, 3), quats=torch.tensor([[1.0, 0, 0, 0]]), log_scales=torch.zeros(1, 3),
                         opacity_logits=torch.zeros(1), sh=torch.zeros(1, 1, 3))
    ply = su.save_ply(scene, tmp_path / "plain.ply")
    assert read_training_metadata(ply) is None
    opts, meta = trained_render_options(ply)
    assert meta is None
    assert opts == {"method": "native", "scale": 2.0, "background": (0.0, 0.0, 0.0), "lowres_dilation": "matched",
                    "width": None}


def test_metadata_of_another_file_is_ignored_and_broken_metadata_is_named(trained, tmp_path):
    run, _ = trained
    ply = tmp_path / "model.ply"
    ply.write_bytes((run / "point_cloud.ply").read_bytes())
    meta_text = (run / "point_cloud.json").read_text()
    metadata_path(ply).write_text(meta_text)
    assert read_training_metadata(ply)["method"] == "hermite"
    opts, _ = trained_render_options(ply, scale=3.0)
    assert opts == {"method": "hermite", "scale": 3.0, "background": (1.0, 1.0, 1.0), "lowres_dilation": "matched",
                    "width": 32}
    # the .ply changed since: the metadata describes another file
    data = bytearray(ply.read_bytes())
    data[-1] ^= 1
    ply.write_bytes(bytes(data))
    with pytest.warns(TrainingMetadataWarning, match="SHA-256"):
        assert read_training_metadata(ply) is None
    # a JSON that is not splatup's is none of our business; splatup's, broken, is an error naming the file
    metadata_path(ply).write_text(json.dumps({"camera": 1}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_training_metadata(ply) is None
    metadata_path(ply).write_text(meta_text[: len(meta_text) // 2])
    with pytest.raises(SceneFormatError, match="model.json.*not valid JSON"):
        read_training_metadata(ply)
    bad = json.loads(meta_text)
    bad["upscale"] = "two"
    metadata_path(ply).write_text(json.dumps(bad))
    with pytest.raises(SceneFormatError, match="'upscale'"):
        read_training_metadata(ply)
