"""``splatup bench``: scenes x factors x methods, with a Markdown report, JSON and quality-versus-time plots."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..camera import Camera
from ..gaussians import Gaussians
from .compare import compare_view, summarise
from .report import quality_time_plot, write_json, write_text


def sweep(
    scenes: dict[str, tuple[Gaussians, list[Camera]]],
    factors: Sequence[float],
    methods: Sequence[str],
    repeats: int = 3,
    use_lpips: bool = True,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    on_step: Callable[[str], None] | None = None,
) -> list[dict]:
    """One row per (scene, factor, method) with mean metrics over the scene's views and the median time per frame;
    plus one "native" row per (scene, factor) holding the native time measured alongside."""
    rows: list[dict] = []
    for name, (scene, cams) in scenes.items():
        for s in factors:
            views = [compare_view(scene, cam, s, methods, background=background, repeats=repeats, use_lpips=use_lpips)
                     for cam in cams]
            for m, r in summarise(views).items():
                rows.append({"scene": name, "factor": float(s), "method": m, "width": cams[0].width,
                             "height": cams[0].height, "views": len(cams), **r})
            if on_step:
                on_step(f"{name} x{s:g}")
    return rows


def write_sweep_report(rows: list[dict], out_dir: Path, meta: dict) -> Path:
    """report.md, results.json and one <scene>_quality_time.png per scene in ``out_dir``; returns report.md's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", {"meta": meta, "rows": rows})
    md = ["# splatup bench", "",
          f"Date {time.strftime('%Y-%m-%d %H:%M')}; {meta.get('threads', '?')} threads; timing repeats "
          f"{meta.get('repeats')}. Quality against the native full-size render (mean over views), time per frame = "
          "median of repeats (render + upscale). Every method upscales the same low-res render (dilation matched "
          "to the native 0.3 px^2).", ""]
    for scene in dict.fromkeys(r["scene"] for r in rows):
        srows = [r for r in rows if r["scene"] == scene]
        r0 = srows[0]
        md += [f"## {scene} ({r0['width']}x{r0['height']}, {r0['views']} view(s))", "",
               "| factor | method | PSNR (dB) | SSIM | LPIPS | ms / frame | speed-up vs native |",
               "|---:|---|---:|---:|---:|---:|---:|"]
        for r in srows:
            if r["method"] == "native":
                continue
            lp = r.get("lpips", float("nan"))
            md.append(f"| x{r['factor']:g} | {r['method']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                      f"{'n/a' if lp != lp else f'{lp:.4f}'} | {r['time_s'] * 1e3:.1f} | {r['speedup']:.2f}x |")
        nat = [r for r in srows if r["method"] == "native"]
        md += ["", f"Native render: {min(r['time_s'] for r in nat) * 1e3:.1f} to "
                   f"{max(r['time_s'] for r in nat) * 1e3:.1f} ms per frame (measured alongside each factor).", ""]
        plot = out_dir / f"{Path(scene).stem}_quality_time.png"
        quality_time_plot([r for r in srows if r["method"] != "native"] + nat[:1], plot,
                          f"{scene} at {r0['width']}x{r0['height']}")
        md += [f"![{scene}]({plot.name})", ""]
    path = out_dir / "report.md"
    write_text(path, "\n".join(md))
    return path
