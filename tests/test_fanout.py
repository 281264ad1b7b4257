"""Dask fan-out on a local cluster of 2 processes: path frames and eval metrics identical to the serial run and in
order, eval's defaults taken from a trained model's metadata as in the serial run, a failed job retried, a job that
keeps failing reported with its index.

Oracles: the serial runs (``render_path`` without a client, ``splatup.train.evaluate.evaluate``) and jobs whose
failures are scripted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import splatup as su
from splatup.fanout import FanoutError, dask_client, ordered_map
from splatup.paths import FrameSettings, render_path
from splatup.viewpoints import orbit_path


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        assert len(c.scheduler_info()["workers"]) == 2
        yield c


class _MemorySink:
    def __init__(self):
        self.frames: list[tuple[int, np.ndarray]] = []
        self.closed = self.aborted = False

    def write(self, index, frame):
        self.frames.append((index, frame))

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


def test_path_frames_on_two_processes_equal_the_serial_frames_in_order(client, shared_data):
    g = su.load_scene(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")
    cams = orbit_path(g, 8, 48, 32, up=(0.0, -1.0, 0.0))
    settings = FrameSettings("hermite", 2.0, (1.0, 1.0, 1.0))
    serial, fanned = _MemorySink(), _MemorySink()
    t_serial = render_path(g, cams, serial, settings)
    t_fanned = render_path(g, cams, fanned, settings, client=client)
    assert [i for i, _ in fanned.frames] == list(range(8)) and fanned.closed and not fanned.aborted
    for (_, a), (_, b) in zip(serial.frames, fanned.frames, strict=True):
        assert np.array_equal(a, b)
    assert len(t_fanned) == 8 and all(t > 0 for t in t_serial + t_fanned)
    assert len({f.tobytes() for _, f in fanned.frames}) == 8  # eight different views, not one frame repeated


def test_eval_on_two_processes_gives_the_serial_metrics_in_order(client, shared_data, tmp_path):
    from splatup.bench.eval_fanout import evaluate_fanout
    from splatup.train.evaluate import evaluate

    g = su.load_scene(shared_data / "gshairlod_donut" / "fused.ply")
    mic = str(shared_data / "nerf_synthetic_mic")
    args = dict(split="test", width=64, method="hermite", scale=2.0, background=(1.0, 1.0, 1.0), max_views=5)
    serial = evaluate(g, mic, **args)
    fanned = evaluate_fanout(g, mic, **args, client=client)
    assert [r["view"] for r in fanned["per_view"]] == [r["view"] for r in serial["per_view"]]
    for a, b in zip(serial["per_view"], fanned["per_view"]):
        assert (a["psnr"], a["ssim"], a["lpips"]) == (b["psnr"], b["ssim"], b["lpips"])
    for k in ("psnr", "ssim", "lpips"):
        assert fanned["mean"][k] == serial["mean"][k]
    assert (fanned["width"], fanned["height"], fanned["views"]) == (64, 64, 5)
    # the eval command joins the running cluster with --scheduler and writes the same rows
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(su.cli.main, ["eval", str(shared_data / "gshairlod_donut" / "fused.ply"), mic,
                                         "--width", "64", "--method", "hermite", "--scale", "2", "--white-background",
                                         "--max-views", "5", "--scheduler", client.scheduler.address,
                                         "--json", str(out)])
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())["per_view"]
    assert [(x["view"], x["psnr"], x["ssim"]) for x in rows] == [
        (x["view"], x["psnr"], x["ssim"]) for x in serial["per_view"]]


def test_eval_on_a_cluster_renders_a_trained_model_the_way_its_metadata_says(client, shared_data, tmp_path):
    import hashlib

    from splatup.train.evaluate import evaluate

    ply = tmp_path / "point_cloud.ply"
    ply.write_bytes((shared_data / "gshairlod_donut" / "fused.ply").read_bytes())
    meta = {"format": "splatup.trained-model", "version": 1, "ply_sha256": hashlib.sha256(ply.read_bytes()).hexdigest(),
            "method": "hermite", "upscale": 2.0, "lowres_dilation": "matched", "dilation": 0.3,
            "background": [1.0, 1.0, 1.0], "iterations": 10, "width": 40, "height": 40, "sh_degree": 3,
            "gaussians": 1, "dataset": "mic", "splatup_version": su.__version__}
    (tmp_path / "point_cloud.json").write_text(json.dumps(meta))
    mic = str(shared_data / "nerf_synthetic_mic")
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(su.cli.main, ["eval", str(ply), mic, "--max-views", "3", "--no-lpips",
                                         "--scheduler", client.scheduler.address, "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "trained through hermite x2 at width 40" in r.output
    got = json.loads(out.read_text())
    # the options the metadata names, given explicitly to the serial evaluation
    serial = evaluate(su.load_scene(ply), mic, "test", 40, "hermite", 2.0, (1.0, 1.0, 1.0), "matched", 3, False)
    assert (got["method"], got["scale"], got["width"], got["height"]) == ("hermite", 2.0, 40, 40)
    assert [(x["view"], x["psnr"], x["ssim"]) for x in got["per_view"]] == [
        (x["view"], x["psnr"], x["ssim"]) for x in serial["per_view"]]
    black = evaluate(su.load_scene(ply), mic, "test", 40, "hermite", 2.0, (0.0, 0.0, 0.0), "matched", 1, False)
    assert black["per_view"][0]["psnr"] != got["per_view"][0]["psnr"]  # the background mattered


def test_a_failed_job_is_retried_and_one_that_keeps_failing_is_named(client, tmp_path):
    marker = tmp_path / "failed-once"

    def flaky(x):
        import os

        if x == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first attempt fails")
        return x * x

    seen = []
    assert ordered_map(flaky, list(range(6)), client=client, retries=1, on_result=lambda i, r: seen.append((i, r)),
                       what="frame") == [0, 1, 4, 9, 16, 25]
    assert marker.exists() and seen == [(i, i * i) for i in range(6)]

    def broken(x):
        if x == 3:
            raise ValueError("frame 3 is cursed")
        return x

    with pytest.raises(FanoutError, match=r"frame 3 failed after 2 attempt\(s\).*cursed") as e:
        ordered_map(broken, list(range(6)), client=client, retries=1, what="frame")
    assert e.value.index == 3
    with pytest.raises(FanoutError, match="view 3 failed after 1 attempt"):  # the serial run names it too
        ordered_map(broken, list(range(6)), what="view")


def test_workers_and_scheduler_are_exclusive_and_a_bad_address_is_named():
    from splatup.errors import SplatupInputError

    with pytest.raises(SplatupInputError, match="--workers and --scheduler"):
        with dask_client(2, "tcp://127.0.0.1:1"):
            pass
    with pytest.raises(SplatupInputError, match="--scheduler"):
        with dask_client(None, "tcp://127.0.0.1:1", connect_timeout_s=0.5):
            pass
