"""Training checkpoints: nothing in a checkpoint runs, damaged ones are named and skipped, writes are durable and
leave no temporary files, a run folder holds one run, and a run SIGKILLed at random moments (also in the middle of
a checkpoint write) resumes to the very bytes of an uninterrupted run.

The kill test runs each training in its own process; whether a process compiles the kernels or loads them from
numba's on-disk cache must not matter (it once did, see docs/training.md), so nothing warms the cache first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from splatup.errors import SplatupInputError
from splatup.train import checkpoint as ck
from splatup.train.checkpoint import (
    CheckpointError,
    list_checkpoints,
    read_checkpoint,
    remove_stale_temporaries,
    run_lock,
    write_checkpoint,
)
from splatup.train.trainer import train
from tiny_training import TINY_CONFIG, tiny_settings

# the runs here are a few iterations long on purpose: their "never densifies" warning is expected
pytestmark = pytest.mark.filterwarnings("ignore::splatup.train.trainer.TrainingWarning")


class _Payload:
    """Unpickling this creates the file ``marker`` (a stand-in for any code a crafted pickle could run)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _short(shared_data, out_dir, iterations=8, **kw):
    return tiny_settings(shared_data, out_dir, config={"iterations": iterations}, checkpoint_every=2, **kw)


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------- the file format
def test_checkpoint_round_trips_tensors_and_state_and_keeps_the_newest_two(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {"a": torch.randn(5, 3, generator=g), "step": torch.tensor(7.0), "perm": torch.randperm(9),
               "rng": g.get_state()}
    for it in (3, 6, 9):
        write_checkpoint(tmp_path, tensors, {"iteration": it, "log": [{"loss": 0.5}], "note": "x"})
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-00000009.safetensors",
                                                            "checkpoint-00000006.safetensors"]
    back = read_checkpoint(tmp_path / "checkpoint-00000009.safetensors")
    assert back.iteration == 9 and back.state["log"] == [{"loss": 0.5}] and back.state["note"] == "x"
    assert set(back.tensors) == set(tensors)
    for k, t in tensors.items():
        assert back.tensors[k].dtype == t.dtype and torch.equal(back.tensors[k], t), k
    assert _temporaries(tmp_path) == []


def test_write_durably_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    import stat

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(
        "fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b))[1])
    target = tmp_path / "x.bin"
    ck.write_durably(target, lambda tmp: tmp.write_bytes(b"hello"))
    assert events == ["fsync file", "rename", "fsync dir"]
    assert target.read_bytes() == b"hello" and _temporaries(tmp_path) == []
    # a failing write leaves the destination as it was and no temporary file

    def failing(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ck.write_durably(target, failing)
    assert target.read_bytes() == b"hello" and _temporaries(tmp_path) == []


def test_a_pickled_checkpoint_is_refused_without_running_it(tmp_path, shared_data):
    marker = tmp_path / "payload_ran"
    # the payload is live: unpickling it does create its marker
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(str(probe))))
    assert probe.exists()

    run = tmp_path / "run"
    train(_short(shared_data, run), stop_after=4)  # checkpoints 2 and 4
    newest = run / "checkpoint-00000006.safetensors"
    torch.save({"model": _Payload(str(marker))}, newest)  # torch.save: a zip of pickles
    messages = []
    res = train(_short(shared_data, run), resume=True, on_message=messages.append)
    assert not marker.exists()
    assert any(newest.name in m and "pickle" in m for m in messages), messages
    assert res["sessions"][-1]["start"] == 4  # resumed from the good checkpoint before it

    payload = _Payload(str(marker))
    for name, write in (("checkpoint-00000004.safetensors", lambda p: p.write_bytes(pickle.dumps(payload))),
                        ("checkpoint-00000004.safetensors", lambda p: torch.save(payload, p)),
                        ("checkpoint.pt", lambda p: torch.save({"model": payload}, p))):
        for p in run.iterdir():
            p.unlink()
        write(run / name)
        with pytest.raises(CheckpointError) as e:
            train(_short(shared_data, run), resume=True)
        assert name in str(e.value) and "pickle" in str(e.value)
        if name.endswith(".safetensors"):
            with pytest.raises(CheckpointError, match="pickle"):
                read_checkpoint(run / name)
        assert not marker.exists()


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory, shared_data):
    """A run stopped at iteration 4 (checkpoints 2 and 4) and the uninterrupted run to 8."""
    root = tmp_path_factory.mktemp("ckpt")
    train(_short(shared_data, root / "stopped"), stop_after=4)
    ref = train(_short(shared_data, root / "ref"))
    return root / "stopped", Path(ref["ply"]).read_bytes()


def _flip_byte_in_tensor_data(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-100] ^= 0x01
    p.write_bytes(bytes(data))


DAMAGE = {
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "truncated data": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
    "truncated header": (lambda p: p.write_bytes(p.read_bytes()[:100]), "truncated"),
    "random bytes": (lambda p: p.write_bytes(random.Random(1).randbytes(5000)), "not a safetensors checkpoint"),
    "flipped bit": (_flip_byte_in_tensor_data, "damaged"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_checkpoint_is_named_and_the_run_resumes_from_the_previous_one(tmp_path, shared_data,
                                                                                   two_checkpoints, kind):
    stopped, ref_ply = two_checkpoints
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    newest = run / "checkpoint-00000004.safetensors"
    damage, what = DAMAGE[kind]
    damage(newest)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(newest)
    assert str(newest) in str(e.value) and what in str(e.value), str(e.value)
    messages = []
    res = train(_short(shared_data, run), resume=True, on_message=messages.append)
    warning = next(m for m in messages if m.startswith("warning:"))
    assert newest.name in warning and what in warning and "resuming from checkpoint-00000002" in warning, warning
    assert (run / "checkpoint-00000004.safetensors.damaged").is_file()
    assert res["sessions"][-1]["start"] == 2
    assert Path(res["ply"]).read_bytes() == ref_ply  # falling back costs time, not the result


def test_when_every_checkpoint_is_damaged_the_error_lists_each(tmp_path, shared_data, two_checkpoints):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints[0], run)
    (run / "checkpoint-00000004.safetensors").write_bytes(b"")
    (run / "checkpoint-00000002.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError) as e:
        train(_short(shared_data, run), resume=True)
    lines = str(e.value).splitlines()
    assert lines[0] == "no usable checkpoint:"
    assert "checkpoint-00000004.safetensors: the file is empty" in lines[1]
    assert "checkpoint-00000002.safetensors: the file is truncated" in lines[2]


def test_a_well_formed_checkpoint_with_wrong_contents_is_refused_naming_the_entry(tmp_path, shared_data,
                                                                                   two_checkpoints):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints[0], run)
    good = read_checkpoint(run / "checkpoint-00000004.safetensors")
    cases = {"param.opacity_logits": ("tensor", good.tensors["param.opacity_logits"][:, None]),
             "adam.means.exp_avg": ("tensor", torch.full_like(good.tensors["adam.means.exp_avg"], float("nan"))),
             "loop.perm": ("tensor", torch.zeros_like(good.tensors["loop.perm"])),
             "active_sh_degree": ("model", 5)}
    for entry, (kind, value) in cases.items():
        tensors, state = dict(good.tensors), json.loads(json.dumps(good.state))
        if kind == "tensor":
            tensors[entry] = value
        else:
            state["model"][entry] = value
        path = write_checkpoint(run, tensors, state)  # a valid file (its digest matches) with wrong contents
        with pytest.raises(SplatupInputError) as e:
            train(_short(shared_data, run), resume=True)
        assert str(path) in str(e.value) and entry in str(e.value), str(e.value)


def test_stale_temporary_files_are_removed_at_the_next_start(tmp_path, shared_data, two_checkpoints):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints[0], run)
    stale = [".checkpoint-00000006.safetensors.0123456789ab.tmp", ".point_cloud.ply.a1b2c3d4e5f6.tmp"]
    for name in stale:
        (run / name).write_bytes(b"half a write")
    kept = [".notes.tmp", "mine.tmp.txt"]  # not of the temporary-file form: not ours to delete
    for name in kept:
        (run / name).write_bytes(b"user data")
    messages = []
    train(_short(shared_data, run), resume=True, on_message=messages.append)
    assert _temporaries(run) == [".notes.tmp"]
    assert (run / "mine.tmp.txt").exists()
    assert any(all(n in m for n in stale) for m in messages), messages


def test_a_folder_locked_by_another_training_is_refused(tmp_path, shared_data, two_checkpoints):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints[0], run)
    with run_lock(run), pytest.raises(SplatupInputError, match="another splatup process"):
        train(_short(shared_data, run), resume=True)
    assert remove_stale_temporaries(run) == []


# ---------------------------------------------------------------------------------------------- run folders
def test_a_run_folder_holds_one_run(tmp_path, shared_data):
    run = tmp_path / "run"
    s = _short(shared_data, run, iterations=6)
    train(s)
    with pytest.raises(SplatupInputError) as e:
        train(s)
    assert "already holds a training run" in str(e.value) and "--resume" in str(e.value)
    assert "--overwrite" in str(e.value)
    with pytest.raises(SplatupInputError, match="exclude each other"):
        train(s, resume=True, overwrite=True)

    # resuming a finished run changes nothing
    summary = (run / "train_summary.json").read_bytes()
    ply = (run / "point_cloud.ply").read_bytes()
    messages = []
    res = train(s, resume=True, on_message=messages.append)
    assert res["iterations"] == 6 and any("already finished" in m for m in messages)
    assert (run / "train_summary.json").read_bytes() == summary and (run / "point_cloud.ply").read_bytes() == ply

    # a larger --iterations extends the run
    longer = dataclasses.replace(s, config=dataclasses.replace(s.config, iterations=9))
    res = train(longer, resume=True)
    result = json.loads((run / "train_summary.json").read_text())["result"]
    assert result["iterations"] == 9 and result["finished"]
    assert [(x["start"], x["end"]) for x in result["sessions"]] == [(0, 6), (6, 9)]
    total = sum(x["seconds"] for x in result["sessions"])
    assert result["seconds_per_iteration"] == pytest.approx(total / 9)
    assert read_checkpoint(list_checkpoints(run)[0]).iteration == 9
    with pytest.raises(SplatupInputError, match="already at iteration 9"):
        train(s, resume=True)

    # settings that differ are listed one per line, not as two dumped dicts
    other = dataclasses.replace(longer, upscale=1.0, config=dataclasses.replace(longer.config, sh_degree=0))
    with pytest.raises(SplatupInputError) as e:
        train(other, resume=True)
    msg = str(e.value)
    assert msg.splitlines()[1:] == ["  config.sh_degree: 1 in the checkpoint, 0 now",
                                    "  upscale: 2.0 in the checkpoint, 1.0 now"], msg
    assert "{" not in msg

    res = train(s, overwrite=True)
    assert len(res["sessions"]) == 1 and res["iterations"] == 6
    assert len(list_checkpoints(run)) == 2


def test_output_folder_errors_name_the_folder(tmp_path, shared_data):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        with pytest.raises(SplatupInputError, match=re.escape(str(out))):
            train(_short(shared_data, out))
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save({"x": 1}, legacy / "checkpoint.pt")
    with pytest.raises(SplatupInputError, match="checkpoint.pt"):
        train(_short(shared_data, legacy))
    train(_short(shared_data, legacy, iterations=2), overwrite=True)
    assert not (legacy / "checkpoint.pt").exists()


# ---------------------------------------------------------------------------------------------- kill and resume
_CHILD = r"""
import json, sys, time
import splatup  # first: it sets the OpenMP policy before torch loads
import splatup.train.checkpoint as ck
from splatup.train.model import TrainConfig
from splatup.train.trainer import TrainSettings, train
from splatup.train.upscale_loop import UpscaleLoop

args = json.loads(sys.argv[1])
args["settings"]["upscale_loop"] = UpscaleLoop(**args["settings"]["upscale_loop"])
pause_at = args.get("pause_at_checkpoint_sync")
if pause_at:  # hold the n-th checkpoint write between its complete temporary file and the rename
    real_fsync_file, seen = ck.fsync_file, [0]

    def fsync_file(path):
        if path.name.startswith(".checkpoint-"):
            seen[0] += 1
            if seen[0] == pause_at:
                print("PAUSED", path.name, flush=True)
                time.sleep(600)
        real_fsync_file(path)

    ck.fsync_file = fsync_file
settings = TrainSettings(config=TrainConfig(**args["config"]), **args["settings"])
train(settings, resume=args["resume"], on_iteration=lambda it, entry: print("IT", it, flush=True))
print("DONE", flush=True)
"""


def _train_process(tmp_path: Path, settings: dict, resume: bool, kill_after: int | None = None, delay: float = 0.0,
                   pause_at_checkpoint_sync: int | None = None) -> int:
    """Run a training in a child process; SIGKILL it ``delay`` s after it reports iteration ``kill_after``, or as
    soon as it pauses in its n-th checkpoint write. Returns the exit code (-9 when killed)."""
    args = {"settings": settings, "config": TINY_CONFIG, "resume": resume,
            "pause_at_checkpoint_sync": pause_at_checkpoint_sync}
    with open(tmp_path / "child_stderr.txt", "a") as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], stdout=subprocess.PIPE,
                                stderr=err, text=True)
        try:
            for line in proc.stdout:
                if (kill_after is not None and line == f"IT {kill_after}\n") or line.startswith("PAUSED"):
                    time.sleep(delay)
                    proc.kill()
                    break
            proc.stdout.read()
            return proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()


def test_sigkill_at_random_moments_then_resume_ends_bit_identical(tmp_path, shared_data):
    rng = random.Random(20261205)
    base = dataclasses.asdict(tiny_settings(shared_data, tmp_path))
    base.pop("config")

    def settings(name):
        return {**base, "out_dir": str(tmp_path / name)}

    assert _train_process(tmp_path, settings("straight"), False) == 0
    run = tmp_path / "killed"
    # 1: killed at a random moment after a random iteration (checkpoints every 4: iteration 4's is complete)
    assert _train_process(tmp_path, settings("killed"), False, kill_after=rng.randint(6, 14),
                          delay=rng.uniform(0, 0.05)) == -9
    # 2: resumed, then killed inside its second checkpoint write: the temporary file is complete, not yet renamed
    assert _train_process(tmp_path, settings("killed"), True, pause_at_checkpoint_sync=2) == -9
    left = _temporaries(run)
    assert len(left) == 1 and left[0].startswith(".checkpoint-"), left
    # 3: resumed (the stale temporary file goes), killed again at a random moment after densification with clones
    assert _train_process(tmp_path, settings("killed"), True, kill_after=rng.randint(24, 36),
                          delay=rng.uniform(0, 0.05)) == -9
    # 4: resumed to the end
    assert _train_process(tmp_path, settings("killed"), True) == 0

    assert (run / "point_cloud.ply").read_bytes() == (tmp_path / "straight" / "point_cloud.ply").read_bytes()
    a = read_checkpoint(list_checkpoints(tmp_path / "straight")[0])
    b = read_checkpoint(list_checkpoints(run)[0])
    assert a.iteration == b.iteration == TINY_CONFIG["iterations"] and set(a.tensors) == set(b.tensors)
    for k in a.tensors:  # parameters, Adam's moments and steps, statistics, RNG state, view order
        assert torch.equal(a.tensors[k], b.tensors[k]), k
    assert _temporaries(run) == [] and len(list_checkpoints(run)) == 2
    summary = json.loads((run / "train_summary.json").read_text())
    sessions = summary["result"]["sessions"]
    assert len(sessions) == 4 and sessions[0]["start"] == 0 and sessions[-1]["end"] == TINY_CONFIG["iterations"]
    # the resumed sessions crossed densification steps that cloned and split
    after_first_resume = [e for e in summary["log"] if e["iteration"] > sessions[1]["start"]]
    assert any(e.get("cloned", 0) > 0 and e.get("split", 0) > 0 for e in after_first_resume), summary["log"]
