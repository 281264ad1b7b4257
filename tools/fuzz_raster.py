"""Long fuzz campaign over rasterize / render and their backward: the strategies and property of
tests/test_raster_fuzz.py (the CI suite runs a few dozen derandomized examples), here with many random examples
per target and every failure recorded instead of stopping at the first.

Usage (from the repository root, with the test extra installed):

    python tools/fuzz_raster.py --examples 2000 --seed 1 --json docs/results/fuzz_raster.json

A case is "ok" when it returned finite images and finite gradients, "error" when it raised a SplatupInputError
whose one-line message names the argument or scene field at fault, and a failure otherwise (any other exception,
a non-finite image or gradient, an unhelpful message). Prints one line per target and writes a JSON summary.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import splatup as su  # noqa: E402  (first: it sets the OpenMP spin policy before torch loads)
from test_raster_fuzz import _check_backward, _finite, _leaves, _names_something, cameras, scenes  # noqa: E402

METHODS = [m for m in ("native", "hermite", "hermite-first", "fd-hermite", "bicubic", "lanczos", "nearest")
           if m in su.pipeline.METHODS]


def run_rasterize(scene, cam, derivatives, background, dilation, mode) -> str:
    leaves = _leaves(scene)
    try:
        out = su.rasterize(leaves, cam, derivatives=derivatives, background=background, dilation=dilation, mode=mode)
    except su.SplatupInputError as e:
        if not _names_something(e):
            raise AssertionError(f"unhelpful message: {e!r}") from e
        return "error"
    if not _finite(out.color, out.alpha, out.depth, out.dx, out.dy, out.dxy):
        raise AssertionError("non-finite image")
    loss = out.color.sum() + out.alpha.sum() + (out.dx.sum() + out.dy.sum() + out.dxy.sum() if out.dx is not None
                                                else 0.0)
    _check_backward(leaves, loss)
    return "ok"


def run_render(scene, cam, method, scale) -> str:
    leaves = _leaves(scene)
    try:
        img = su.render(leaves, cam, scale=scale, method=method, clamp=False)
    except su.SplatupInputError as e:
        if not _names_something(e):
            raise AssertionError(f"unhelpful message: {e!r}") from e
        return "error"
    if not _finite(img):
        raise AssertionError("non-finite image")
    if img.requires_grad:
        _check_backward(leaves, img.sum())
    return "ok"


TARGETS = {
    "rasterize": (run_rasterize, dict(
        scene=scenes(), cam=cameras(), derivatives=st.sampled_from([False, True, "first"]),
        background=st.one_of(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
                             st.sampled_from([(1e38,) * 3, (2.0, 2.0, 2.0), (-0.5, 0.0, 0.0)])),
        dilation=st.sampled_from([0.0, 0.3, 0.3 / 16, 5.0, -1.0, float("nan")]),
        mode=st.sampled_from(["classic", "antialiased"]))),
    "render": (run_render, dict(scene=scenes(), cam=cameras(), method=st.sampled_from(METHODS + ["bogus"]),
                                scale=st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0, 7.3, 0.5, -2.0, float("nan")]))),
}


def fuzz(name: str, examples: int, run_seed: int) -> dict:
    fn, strategies = TARGETS[name]
    stats = {"cases": 0, "ok": 0, "error": 0, "failures": {}, "seconds": 0.0}

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(run_seed)
    @given(**strategies)
    def case(**kw):
        stats["cases"] += 1
        try:
            stats[fn(**kw)] += 1
        except Exception as e:  # noqa: BLE001 - every failure is recorded, the campaign goes on
            frames = traceback.extract_tb(e.__traceback__)
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
            key = f"{type(e).__name__} at {where}: {str(e)[:200]}"
            stats["failures"][key] = stats["failures"].get(key, 0) + 1

    t0 = time.perf_counter()
    case()
    stats["seconds"] = time.perf_counter() - t0
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=500, help="examples per target")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results = {}
    for name in args.targets.split(","):
        r = fuzz(name, args.examples, args.seed)
        results[name] = r
        print(f"{name:10s} {r['cases']:6d} cases: {r['ok']:6d} finite, {r['error']:6d} named errors, "
              f"{sum(r['failures'].values()):4d} failures ({r['seconds']:.0f} s)", flush=True)
        for k, v in r["failures"].items():
            print(f"    {v:4d} x {k}")
    if args.json:
        meta = dict(date=datetime.date.today().isoformat(), examples=args.examples, seed=args.seed,
                    python=platform.python_version(), command=" ".join(sys.argv))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(meta=meta, targets=results), indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
