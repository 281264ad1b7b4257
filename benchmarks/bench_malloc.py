"""Effect of splatup's glibc malloc tuning (splatup/_malloc.py) on frame times, side by side in one run.

Child processes alternate between SPLATUP_MALLOC_TUNING=1 (the default) and =0 (glibc's own thresholds). Each runs
benchmarks/bench_upscale.py (plant.splat at 1920x1080; its interleaved mix of native frames, low-res renders and
every upscaler, the allocation pattern of a comparison session) with --no-lpips and reads back its timings.
Reported per setting: the median over the child processes, the tuned / untuned ratios, and the children's system
CPU time (page faults are counted there; it covers the whole child run, JIT and the quality pass included).

usage: python benchmarks/bench_malloc.py [--rounds 3] [--repeats 5] [--out benchmarks/results/malloc.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from splatup.bench.report import write_json

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("native/plain", "native/derivatives", "x1.5/render_hermite", "x1.5/upscale_hermite", "x2/render_hermite",
        "x2/upscale_hermite", "x4/render_hermite", "x4/upscale_hermite")


def child(setting: str, repeats: int) -> dict:
    """One bench_upscale.py run with SPLATUP_MALLOC_TUNING=setting: its timings (s) and the child's system time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "upscale.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_upscale.py"), "--no-lpips", "--repeats",
                        str(repeats), "--out", str(out)], env={**os.environ, "SPLATUP_MALLOC_TUNING": setting},
                       check=True, capture_output=True, text=True)
        sys_s = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime - before
        t = json.loads(out.read_text())["timings_s"]
    return {**{k: t[k] for k in KEYS}, "system_cpu_s": sys_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "malloc.json")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"1": [], "0": []}
    for r in range(args.rounds):
        for setting in ("1", "0") if r % 2 == 0 else ("0", "1"):
            runs[setting].append(child(setting, args.repeats))
    med = {s: {k: statistics.median(r[k] for r in runs[s]) for k in (*KEYS, "system_cpu_s")} for s in runs}
    print(f"plant.splat 1920x1080 (bench_upscale.py timing mix), median of {args.rounds} processes per setting")
    print(f"{'':24s} {'tuned':>9s} {'glibc':>9s} {'tuned/glibc':>12s}")
    for k in KEYS:
        print(f"{k + ' (ms)':24s} {1e3 * med['1'][k]:9.2f} {1e3 * med['0'][k]:9.2f} {med['1'][k] / med['0'][k]:12.2f}")
    k = "system_cpu_s"
    print(f"{'system CPU (s)':24s} {med['1'][k]:9.2f} {med['0'][k]:9.2f} {med['1'][k] / med['0'][k]:12.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"tuned": med["1"], "glibc_defaults": med["0"], "runs": runs})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
