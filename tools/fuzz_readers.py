"""Long fuzz campaign over splatup's file readers: the targets, mutations and property of tests/reader_fuzz.py
(the CI suite tests/test_io_fuzz.py runs them with a few hundred derandomized examples), here with many random
examples per reader, a time limit per case, and every failure recorded instead of stopping at the first.

Usage (from the repository root, with the test extra installed):

    python tools/fuzz_readers.py --examples 6000 --seed 1 --json docs/results/fuzz_readers.json

Prints one line per reader and writes a JSON summary: cases run, how many read as valid results and how many
raised a SplatupInputError naming the file, and each distinct failure (exception type, where it was raised, the
message, and the mutation spec that triggered it, which ``--replay`` runs again).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

import splatup  # noqa: E402,F401  (first: it sets the OpenMP spin policy before torch loads)
from reader_fuzz import TARGETS, build_seeds  # noqa: E402


class CaseTimeout(Exception):
    """A case ran longer than --timeout seconds (a hang counts as a failure)."""


def _alarm(signum, frame):
    raise CaseTimeout()


def _signature(e: BaseException) -> str:
    """Exception type and the innermost splatup frame (or the innermost frame): one entry per distinct bug."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if "splatup" in f.filename and "reader_fuzz" not in f.filename] or frames[-1:]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(e).__name__} at {where}"


def fuzz(name: str, seeds, work: Path, examples: int, run_seed: int, timeout: float) -> dict:
    target = TARGETS[name]
    stats = {"cases": 0, "ok": 0, "error": 0, "failures": {}, "seconds": 0.0}

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(run_seed)
    @given(spec=target.strategy)
    def campaign(spec):
        stats["cases"] += 1
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            result = target.run(seeds, spec, work)
        except Exception as e:  # every failure is recorded; the campaign goes on
            sig = _signature(e)
            entry = stats["failures"].setdefault(sig, {"count": 0, "message": str(e)[:500], "spec": repr(spec)[:4000]})
            entry["count"] += 1
        else:
            stats[result] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    t0 = time.process_time()
    campaign()
    stats["seconds"] = round(time.process_time() - t0, 1)
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=6000, help="examples per reader (default 6000)")
    ap.add_argument("--seed", type=int, default=1, help="hypothesis seed (default 1)")
    ap.add_argument("--readers", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--json", type=Path, default=None, help="write the summary here (also printed)")
    ap.add_argument("--shared-data", type=Path, default=Path(os.environ.get("SPLATUP_SHARED_DATA",
                                                                               REPO.parent / "shared" / "data")))
    ap.add_argument("--replay", default=None, help="run one spec (a repr from a summary) on --readers and raise")
    args = ap.parse_args()
    names = [n.strip() for n in args.readers.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        ap.error(f"unknown readers {unknown}; choose from {sorted(TARGETS)}")
    signal.signal(signal.SIGALRM, _alarm)
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # Pillow on corrupt metadata: expected
    warnings.filterwarnings("ignore", message=".*zero quaternion", category=UserWarning)  # documented in splat.py

    with tempfile.TemporaryDirectory(prefix="splatup_fuzz_") as tmp:
        seeds = build_seeds(args.shared_data, Path(tmp) / "seeds")
        if args.replay is not None:
            for n in names:
                print(n, TARGETS[n].run(seeds, eval(args.replay), Path(tmp) / "work"))  # noqa: S307 - our own repr
            return 0
        summary = {
            "command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "seed": args.seed,
            "examples_per_reader": args.examples,
            "readers": {},
        }
        for n in names:
            stats = fuzz(n, seeds, Path(tmp) / f"work_{n}", args.examples, args.seed, args.timeout)
            summary["readers"][n] = stats
            nfail = sum(f["count"] for f in stats["failures"].values())
            print(f"{n:22s} cases {stats['cases']:6d}  valid {stats['ok']:6d}  documented errors {stats['error']:6d}  "
                  f"failures {nfail:4d} ({len(stats['failures'])} distinct)  cpu {stats['seconds']:.0f} s", flush=True)
            for sig, f in stats["failures"].items():
                print(f"    {sig} x{f['count']}: {f['message'][:200]}")
    total = {k: sum(r[k] for r in summary["readers"].values()) for k in ("cases", "ok", "error")}
    total["failures"] = sum(sum(f["count"] for f in r["failures"].values()) for r in summary["readers"].values())
    summary["total"] = total
    print(f"{'total':22s} cases {total['cases']:6d}  valid {total['ok']:6d}  documented errors {total['error']:6d}  "
          f"failures {total['failures']:4d}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if total["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
