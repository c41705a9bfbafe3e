"""What an evaluation of frame scores leaves in a run directory.

``metrics.json``, ``scores/`` (CSV, JSON, ``.npy`` and ``index.json``; ``scores/maps/`` with
``EVAL.SAVE_MAPS``), ``plots/`` (a score curve per video, the ROC curve) and ``report.html``.
Every file is written atomically.

Example:
    >>> write_outputs(Path("outputs/run"), names, errors, scores, labels, metrics, OutputOptions(plots=False))
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from pyanomaly.utils import atomic_write

from .export import file_stems, save_npy, write_metrics, write_score_files
from .plots import plot_roc, plot_video
from .report import write_report
from .topk import FrameExample

__all__ = ["OutputOptions", "write_outputs"]


@dataclass
class OutputOptions:
    """Which files an evaluation writes (``EVAL.*``).

    Args:
        plots: ``plots/`` (curves per video and ROC); the report embeds the curves only then.
        npy: ``scores/npy/`` beside the CSV and JSON.
        report: ``report.html``.
        thresholds: fixed score thresholds; the first is drawn on the curves (without one,
            the EER threshold, labelled as set on the test labels).
        maps_downsample: the block side the saved anomaly maps are averaged over
            (``EVAL.MAPS_DOWNSAMPLE``; whether maps are kept is the scoring loop's ``maps``).
    """

    plots: bool = True
    npy: bool = True
    report: bool = False
    thresholds: list[float] = field(default_factory=list)
    maps_downsample: int = 4


def _png(plot, *args, **kwargs) -> bytes | None:
    buf = io.BytesIO()
    if plot(buf, *args, **kwargs) is False:
        return None
    return buf.getvalue()


def write_outputs(out_dir: Path, names, errors, scores, labels, metrics: dict, options: OutputOptions, *,
                  groups: Sequence[str] | None = None, top: Sequence[FrameExample] = (),
                  top_note: str | None = None, maps: Sequence | None = None) -> None:
    """``metrics.json``, ``scores/``, ``plots/`` and ``report.html`` in ``out_dir`` as ``options`` say.

    ``names``, ``errors``, ``scores``, ``labels`` (``None`` = unknown): one entry per video,
    arrays ``(N,)``; ``top``: the frames shown in the report with their predictions; ``maps``:
    per video its anomaly maps ``(N, h, w)`` float16 or None, written to
    ``scores/maps/<stem>.npy`` (the stem of ``index.json``).
    """
    out_dir = Path(out_dir)
    write_score_files(out_dir / "scores", names, errors, scores, labels, groups, metrics.get("protocol"), options.npy)
    for stem, m in zip(file_stems(names), maps or ()):
        if m is not None:
            save_npy(out_dir / "scores" / "maps" / f"{stem}.npy", m)
    write_metrics(out_dir / "metrics.json", metrics)
    if options.thresholds:
        threshold, label = float(options.thresholds[0]), "fixed threshold"
    else:
        threshold, label = metrics.get("eer_threshold"), "EER threshold (set on test labels)"
    curves: dict[str, bytes] = {}
    roc = None
    if options.plots:  # the report shows the curves too, but only draws them when plots are wanted (it costs)
        for name, s, l in zip(names, scores, labels):
            curves[name] = _png(plot_video, name, s, l, threshold=threshold,
                                auc=metrics.get("per_video", {}).get(name), threshold_label=label)
    if options.plots or options.report:
        roc = _png(plot_roc, scores, labels, metrics.get("auc_micro"))
    if options.plots:
        for name, png in curves.items():
            atomic_write(out_dir / "plots" / f"{name.replace('/', '_')}.png",
                         lambda tmp, b=png: Path(tmp).write_bytes(b))
        if roc is not None:
            atomic_write(out_dir / "plots" / "roc.png", lambda tmp: Path(tmp).write_bytes(roc))
    if options.report:
        note = top_note or "No frames kept (EVAL.REPORT_TOP_K is 0)."
        write_report(out_dir / "report.html", metrics, names, scores, labels, groups, top=top, curves=curves,
                     roc=roc, title=f"pyanomaly report — {out_dir.resolve().name}", top_note=note)
