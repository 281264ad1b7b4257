"""Reports of comparisons and benchmarks: Markdown tables, JSON, and PNG plots of quality against time per frame."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from ..io._atomic import atomic_write

METRIC_LABELS = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓"}


def _fmt(v: float, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def markdown_table(summary: dict[str, dict[str, float]]) -> str:
    """Markdown table: method, PSNR, SSIM, LPIPS, ms/frame, speed-up over native."""
    lines = ["| method | PSNR (dB) | SSIM | LPIPS | ms / frame | speed-up vs native |",
             "|---|---:|---:|---:|---:|---:|"]
    for m, r in summary.items():
        lines.append(f"| {m} | {_fmt(r.get('psnr'), 2)} | {_fmt(r.get('ssim'), 4)} | {_fmt(r.get('lpips'), 4)} | "
                     f"{r['time_s'] * 1e3:.1f} | {r['speedup']:.2f}x |")
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


#: keys whose null means +inf: a PSNR of identical images (as lists too: per frame, per pair of frames)
INFINITE_KEYS = frozenset({"psnr", "tpsnr", "tpsnr_per_pair", "psnr_per_frame"})
#: keys whose null means NaN: a metric that was not computed (LPIPS without its weights)
NAN_KEYS = frozenset({"lpips", "ssim", "relative"})


def json_ready(obj: object) -> object:
    """``obj`` with every non-finite float replaced by None, so that it is strict JSON (RFC 8259 has no NaN or
    Infinity; a string "inf" would not be a number). What a null means is fixed by its key: +inf under
    :data:`INFINITE_KEYS` (a PSNR of identical images), NaN under :data:`NAN_KEYS` (not computed);
    :func:`read_json` restores both. -inf has no such meaning and is refused."""
    if isinstance(obj, float) and not math.isfinite(obj):
        if obj == -math.inf:
            raise ValueError("json_ready: -inf is no value of any metric written here")
        return None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


def _restore(obj: object, key: str | None = None) -> object:
    if obj is None:
        return math.inf if key in INFINITE_KEYS else (math.nan if key in NAN_KEYS else None)
    if isinstance(obj, dict):
        return {k: _restore(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v, key) for v in obj]
    return obj


def write_json(path: Path, obj: object) -> None:
    """Write ``obj`` as strict JSON (atomically): non-finite numbers as null, see :func:`json_ready`."""
    write_text(path, json.dumps(json_ready(obj), indent=1, allow_nan=False))


def read_json(path: Path) -> object:
    """Read a JSON file written by :func:`write_json` with the metrics' nulls turned back into numbers: +inf under
    :data:`INFINITE_KEYS`, NaN under :data:`NAN_KEYS`; any other null stays None."""
    return _restore(json.loads(Path(path).read_text()))


def write_compare_report(out_dir: Path, scene_name: str, views: Sequence, repeats: int, scene: str | None = None,
                         title: str | None = None) -> dict[str, dict[str, float]]:
    """Write a comparison of ``views`` (:class:`splatup.bench.compare.ViewComparison`, one per camera) to
    ``out_dir``: compare_view<i>.png grids, report.md and metrics.json. Returns the summary (method -> mean metrics,
    median time, speed-up over native)."""
    from .compare import comparison_figure, summarise

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(views):
        cam = v.camera
        comparison_figure(v, out_dir / f"compare_view{i}.png",
                          title=f"{scene_name}, view {i}: {cam.width}x{cam.height} from "
                                f"{v.lowres_size[1]}x{v.lowres_size[0]} (x{v.scale:g})")
    summary = summarise(views)
    v0 = views[0]
    cam0 = v0.camera
    md = [f"# {title or 'splatup compare'}: {scene_name}", "",
          f"{len(views)} view(s) at {cam0.width}x{cam0.height}, factor x{v0.scale:g} (low-res render "
          f"{v0.lowres_size[1]}x{v0.lowres_size[0]}, dilation matched to the native 0.3 px^2). "
          "Metrics are against the native full-size render, averaged over views; time per frame is the median of "
          f"{repeats} repeats (render + upscale).", "", markdown_table(summary), ""]
    md += [f"![view {i}](compare_view{i}.png)" for i in range(len(views))]
    write_text(out_dir / "report.md", "\n".join(md) + "\n")
    write_json(out_dir / "metrics.json", {
        "scene": scene or scene_name, "scale": v0.scale, "width": cam0.width, "height": cam0.height,
        "lowres": list(v0.lowres_size), "repeats": repeats, "summary": summary,
        "views": [{m: {"time_s": r.time_s, **r.metrics} for m, r in v.methods.items()} | {
            "native": {"time_s": v.native.time_s}} for v in views]})
    return summary


def write_path_report(out_dir: Path, scene_name: str, cmp, path_kind: str, scene: str | None = None,
                      title: str | None = None) -> Path:
    """Write a path comparison (:class:`splatup.bench.temporal.PathComparison`) to ``out_dir``: report.md with the
    temporal-stability table, temporal.json (with per-frame PSNR and per-pair tPSNR) and frame_strip.png. Returns
    report.md's path."""
    from .temporal import frame_strip

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h, w = cmp.size
    lh, lw = cmp.lowres_size
    frame_strip(cmp, out_dir / "frame_strip.png",
                title=f"{scene_name}: {path_kind} path, {w}x{h} from {lw}x{lh} (x{cmp.scale:g}), first frames")
    md = [f"# {title or 'splatup compare --path'}: {scene_name}", "",
          f"{cmp.frames} frames of a {path_kind} path at {w}x{h}, factor x{cmp.scale:g} (low-res {lw}x{lh}, dilation "
          "matched to the native 0.3 px^2). Temporal figures compare each method's frame-to-frame change with the "
          "native path's (tPSNR: PSNR of the difference of the changes; relative: its RMS over the RMS of native's "
          "change); PSNR / SSIM: per frame against native, averaged.", "",
          "| method | tPSNR (dB) | tRMSE | relative flicker | PSNR (dB) | SSIM |", "|---|---:|---:|---:|---:|---:|"]
    for m, r in cmp.methods.items():
        md.append(f"| {m} | {_fmt(r['tpsnr'], 2)} | {r['trmse']:.5f} | {_fmt(r['relative'], 3)} | "
                  f"{_fmt(r['psnr'], 2)} | {_fmt(r['ssim'], 4)} |")
    md += ["", "![frame strip](frame_strip.png)", ""]
    write_text(out_dir / "report.md", "\n".join(md))
    write_json(out_dir / "temporal.json", {"scene": scene or scene_name, "path": path_kind, "frames": cmp.frames,
                                           "scale": cmp.scale, "width": w, "height": h, "lowres": [lw, lh],
                                           "methods": cmp.methods})
    return out_dir / "report.md"


def quality_time_plot(rows: Sequence[dict], path: Path, title: str) -> None:
    """Scatter of each metric against time per frame for one scene: one marker per (method, factor), native as a
    vertical line. ``rows``: dicts with method, factor, time_s and metric values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("psnr", "ssim", "lpips") if any(not math.isnan(r.get(m, math.nan)) for r in rows
                                                          if r["method"] != "native")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.0), squeeze=False)
    methods = sorted({r["method"] for r in rows if r["method"] != "native"}, key=lambda m: (m != "hermite", m))
    markers = dict(zip(sorted({r["factor"] for r in rows}), "os^Dvp*"))
    cmap = plt.get_cmap("tab10")
    native = [r for r in rows if r["method"] == "native"]
    for ax, metric in zip(axes[0], metrics):
        for i, m in enumerate(methods):
            pts = sorted((r for r in rows if r["method"] == m), key=lambda r: r["factor"])
            xs = [1e3 * r["time_s"] for r in pts]
            ys = [r[metric] for r in pts]
            ax.plot(xs, ys, "-", color=cmap(i), alpha=0.5, lw=1)
            for r, x, y in zip(pts, xs, ys):
                ax.plot(x, y, markers[r["factor"]], color=cmap(i), ms=6,
                        label=m if r is pts[0] else None)
        if native:
            ax.axvline(1e3 * native[0]["time_s"], color="k", ls="--", lw=1, label="native (time)")
        ax.set_xlim(left=0)  # linear from 0: distances to the native line read as speed-ups
        ax.set_xlabel("time per frame (ms)")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fac = ", ".join(f"{mk} x{f:g}" for f, mk in markers.items())
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"{title}  (markers: {fac})", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_write(path) as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)
