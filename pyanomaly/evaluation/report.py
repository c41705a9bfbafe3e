"""``report.html``: one self-contained page (images embedded as base64 PNG) a person can read.

It shows the metrics (micro and macro AUC each spelled out), the baselines scored beside
them (``EVAL.BASELINES``), a fused method's ablation of its cues, fixed-threshold and
per-group results when present, the scoring protocol, the ROC curve, the top-scoring frames
beside their prediction and error map (or the method's anomaly map, and the optical flow as a
colour wheel when the method uses flow), and a per-video table with each video's score curve.
No script and no external file: it opens in any browser, offline, and can be mailed around.

Example:
    >>> write_report("run/report.html", metrics, names, scores, labels, top=examples,
    ...              curves={"01": png_bytes}, roc=png_bytes, title="run")
"""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from pyanomaly.utils import atomic_write_text

from .topk import FrameExample

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.9em}.frames{display:flex;flex-wrap:wrap;gap:1.2em}
.example{border:1px solid #ddd;padding:.5em;border-radius:4px;flex:0 0 500px;box-sizing:border-box}.example img{width:150px;image-rendering:pixelated}
figure{display:inline-block;margin:.2em}figcaption{font-size:.8em;color:#555;text-align:center}
img.curve{max-width:100%}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return _e(v)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(img: np.ndarray) -> bytes:
    """uint8 ``(H, W)``, ``(H, W, 1)`` (gray) or ``(H, W, 3)`` (RGB) -> PNG bytes."""
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3:
        img = img[..., 0]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise ValueError(f"cannot encode an image of shape {img.shape} as PNG")
    return buf.tobytes()


def heat_png(error: np.ndarray, scale: float) -> bytes:
    """Error map uint8 ``(H, W)`` coloured (inferno), ``scale`` (0..255) mapped to the hottest colour."""
    stretched = np.clip(error.astype(np.float32) * (255.0 / max(scale, 1.0)), 0, 255).astype(np.uint8)
    return image_png(cv2.cvtColor(cv2.applyColorMap(stretched, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB))


def _img(png: bytes, alt: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{_e(alt)}" src="{png_data_uri(png)}">'


def _table(rows: Sequence[Sequence], header: Sequence[str] | None = None, table_id: str = "") -> str:
    tid = f' id="{table_id}"' if table_id else ""
    out = [f"<table{tid}>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
    for r in rows:
        cells = []
        for j, c in enumerate(r):
            num = isinstance(c, (int, float)) or (isinstance(c, str) and c.replace(".", "", 1).isdigit())
            text = _fmt(c) if isinstance(c, float) or c is None else _e(c)
            cells.append(f'<td class="num">{text}</td>' if num and j > 0 else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _metrics_section(m: dict) -> str:
    p = m.get("protocol", {})
    rows = [
        ("Frame AUC, micro — ROC AUC over all labelled, scored frames of all videos concatenated "
         "(the number papers report)", m.get("auc_micro")),
        (f"Frame AUC, macro — mean of the per-video AUCs over the {m.get('videos_in_macro', 'n/a')} videos "
         f"holding both classes ({m.get('videos_single_class', 0)} single-class video(s) left out)", m.get("auc_macro")),
        ("EER — equal error rate of the micro ROC", m.get("eer")),
        ("EER threshold — score where it is met (set on the test labels: for display only)", m.get("eer_threshold")),
        ("AP — average precision, anomalous = positive, micro", m.get("ap")),
        ("Frames evaluated (labelled and scored)", m.get("frames_evaluated")),
        ("Anomalous frames among them", m.get("frames_anomalous")),
        (f"Frames without a score ({p.get('frames_without_score_handling', '')})", p.get("frames_without_score")),
        ("Videos", m.get("videos")),
    ]
    if m.get("inference_fps") is not None:
        rows.append(("Inference speed (frames/s, prediction + scoring)", float(m["inference_fps"])))
    out = ["<h2>Metrics</h2>", _table(rows, ("metric", "value"), "metrics")]
    if m.get("at_threshold"):
        out.append("<h3>At fixed thresholds (EVAL.THRESHOLDS; frame anomalous when score &gt; threshold)</h3>")
        out.append(_table([(t["threshold"], t["precision"], t["recall"], t["f1"], t["tp"], t["fp"], t["fn"], t["tn"])
                           for t in m["at_threshold"]],
                          ("threshold", "precision", "recall", "F1", "TP", "FP", "FN", "TN"), "thresholds"))
    if m.get("baselines"):
        out.append("<h3>Baselines (EVAL.BASELINES: no learning; the same test videos and protocol)</h3>")
        p = m.get("protocol", {})
        rows = [("this run", "", p.get("error", ""), m.get("auc_micro"), m.get("auc_macro"), m.get("eer"), m.get("ap"),
                 p.get("frames_without_score"))]
        rows += [(name, b.get("method", ""), b.get("error", ""), b.get("auc_micro"), b.get("auc_macro"), b.get("eer"),
                  b.get("ap"), b.get("frames_without_score")) for name, b in m["baselines"].items()]
        out.append(_table(rows, ("baseline", "method", "error", "AUC micro", "AUC macro", "EER", "AP",
                                 "frames without score"), "baselines"))
    if m.get("cues"):
        out.append("<h3>Each subset of the fused cues (the same test videos and protocol; cues/ablation.md)</h3>")
        out.append(_table([(name, c.get("auc_micro"), c.get("auc_macro"), c.get("eer"), c.get("ap"),
                            c.get("frames_evaluated"), c.get("frames_unscored")) for name, c in m["cues"].items()],
                          ("cues", "AUC micro", "AUC macro", "EER", "AP", "frames", "frames without score"), "cues"))
    if m.get("per_group"):
        out.append("<h3>Per group (e.g. scene)</h3>")
        out.append(_table([(g, v.get("videos"), v.get("frames_evaluated"), v.get("auc_micro"), v.get("auc_macro"),
                            v.get("eer"), v.get("ap")) for g, v in m["per_group"].items()],
                          ("group", "videos", "frames", "AUC micro", "AUC macro", "EER", "AP"), "groups"))
    return "\n".join(out)


def _protocol_section(p: dict) -> str:
    rows = [(k, ", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in p.items()]
    return "<h2>Scoring protocol</h2>\n" + _table([(k, "n/a" if v is None else str(v)) for k, v in rows],
                                                  ("key", "value"), "protocol")


def _top_section(top: Sequence[FrameExample], note: str) -> str:
    out = ["<h2>Top-scoring frames</h2>"]
    if not top:
        out.append(f'<p class="note">{_e(note)}</p>')
        return "\n".join(out)
    maps = [ex for ex in top if ex.anomaly_map]
    scale = max((int(ex.error.max()) for ex in top if not ex.anomaly_map), default=0)
    map_scale = max((float(ex.error.max()) for ex in maps), default=0.0)
    if maps:
        out.append(f'<p class="note">Highest scores over the test set. Anomaly map: the method\'s per-pixel map, '
                   f"coloured from black (0) to yellow ({map_scale:.3g}, the largest value shown).</p>")
    else:
        out.append(f'<p class="note">Highest scores over the test set. Error map: |prediction − frame| per pixel, '
                   f"coloured from black (0) to yellow ({scale}/255, the largest error shown).</p>")
    if any(ex.flow is not None for ex in top):
        out.append('<p class="note">Optical flow into the frame as a colour wheel: hue = direction (red right, '
                   "yellow-green down, cyan left, violet up), brightness = speed (full at the frame's fastest "
                   "pixel among those shown); grey = no flow.</p>")
    out.append('<div class="frames">')
    for ex in top:
        label = {None: "unknown", 0: "normal", 1: "anomalous"}[ex.label]
        figures = [f"<figure>{_img(image_png(ex.frame), 'frame')}<figcaption>frame</figcaption></figure>"]
        if ex.flow is not None:
            figures.append(f"<figure>{_img(image_png(ex.flow), 'optical flow')}<figcaption>optical flow"
                           "</figcaption></figure>")
        if ex.anomaly_map:
            heat = heat_png(ex.error * (255.0 / max(map_scale, 1e-12)), 255)
            figures.append(f"<figure>{_img(heat, 'anomaly map')}<figcaption>anomaly map</figcaption></figure>")
        else:
            figures.append(f"<figure>{_img(image_png(ex.prediction), 'prediction')}<figcaption>prediction"
                           "</figcaption></figure>")
            figures.append(f"<figure>{_img(heat_png(ex.error, scale), 'error map')}<figcaption>error map"
                           "</figcaption></figure>")
        out.append('<div class="example">'
                   f"<div><b>video {_e(ex.video)}</b>, frame {ex.index} — score {_fmt(ex.score, 3)} "
                   f"(ground truth: {label})</div>" + "".join(figures) + "</div>")
    out.append("</div>")
    return "\n".join(out)


def _videos_section(m: dict, names, scores, labels, groups, curves: dict[str, bytes]) -> str:
    rows = []
    for i, (name, s) in enumerate(zip(names, scores)):
        s = np.asarray(s, dtype=np.float64)
        lab = labels[i]
        finite = s[np.isfinite(s)]
        rows.append((name, groups[i] if groups is not None else "", len(s),
                     "n/a" if lab is None else int((np.asarray(lab) == 1).sum()), int(finite.size),
                     m.get("per_video", {}).get(name), float(finite.max()) if finite.size else None))
    out = ["<h2>Per video</h2>",
           _table(rows, ("video", "group", "frames", "anomalous frames", "scored frames", "AUC", "max score"),
                  "per-video"),
           '<p class="note">AUC is n/a for a video holding one class only.</p>']
    if curves:
        out.append(f"<details><summary>Score curves ({len(curves)} videos)</summary>")
        out.extend(f"<div>{_img(png, f'score curve of video {n}', 'curve')}</div>" for n, png in curves.items())
        out.append("</details>")
    return "\n".join(out)


def render_report(metrics: dict, names: Sequence[str], scores: Sequence[np.ndarray],
                  labels: Sequence[np.ndarray | None], groups: Sequence[str] | None = None,
                  top: Sequence[FrameExample] = (), curves: dict[str, bytes] | None = None,
                  roc: bytes | None = None, title: str = "pyanomaly report",
                  top_note: str = "No frames kept (EVAL.REPORT_TOP_K is 0).") -> str:
    """The HTML text of the report (see the module docstring)."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{_e(title)}</h1>", _metrics_section(metrics)]
    if roc:
        parts.append(f"<h2>ROC (micro)</h2>{_img(roc, 'micro ROC curve')}")
    parts.append(_top_section(top, top_note))
    parts.append(_protocol_section(metrics.get("protocol", {})))
    parts.append(_videos_section(metrics, names, scores, labels, groups, curves or {}))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: str | Path, *args, **kwargs) -> None:
    """:func:`render_report` written atomically to ``path``."""
    atomic_write_text(path, render_report(*args, **kwargs))
