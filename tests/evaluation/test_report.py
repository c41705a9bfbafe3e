"""report.html: self-contained, labelled; and it renders in a real browser when one is installed."""
import io
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch

from pyanomaly.evaluation.metrics import frame_metrics, threshold_metrics
from pyanomaly.evaluation.plots import plot_roc, plot_video
from pyanomaly.evaluation.report import render_report, write_report
from pyanomaly.evaluation.topk import TopFrames, select_top

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def png(plot, *args, **kwargs) -> bytes:
    buf = io.BytesIO()
    plot(buf, *args, **kwargs)
    return buf.getvalue()


def make_report(tmp_path):
    rng = np.random.default_rng(0)
    names = ["01_001", "01_002", "02_001"]
    labels = [(np.arange(40) >= 25).astype(np.uint8), np.zeros(40, np.uint8), (np.arange(40) < 5).astype(np.uint8)]
    scores = [rng.random(40) + 0.5 * l for l in labels]
    scores[0][0] = np.nan
    m = frame_metrics(names, scores, labels)
    m["at_threshold"] = threshold_metrics(scores, labels, [0.8])
    m["protocol"] = {"error": "PSNR (frame mean)", "normalization": "per-video min-max", "frames_without_score": 1,
                     "frames_without_score_handling": "excluded from metrics", "image_size": [16, 16]}
    m["per_group"] = {"01": {"videos": 2, "auc_micro": 0.9}, "02": {"videos": 1, "auc_micro": 0.7}}
    tops = []
    for n, s in zip(names, scores):
        t = TopFrames(n, 2)
        t.offer(s, 0, torch.rand(40, 3, 16, 16), torch.rand(40, 3, 16, 16))
        tops.append(t)
    top = select_top(tops, dict(zip(names, scores)), 6, dict(zip(names, labels)))
    curves = {n: png(plot_video, n, s, l, threshold=0.8, threshold_label="fixed threshold")
              for n, s, l in zip(names, scores, labels)}
    path = tmp_path / "report.html"
    write_report(path, m, names, scores, labels, ["01", "01", "02"], top=top, curves=curves,
                 roc=png(plot_roc, scores, labels, m["auc_micro"]), title="test run")
    return path, m


def test_report_is_self_contained_and_labelled(tmp_path):
    path, m = make_report(tmp_path)
    text = path.read_text()
    assert "Frame AUC, micro" in text and "Frame AUC, macro" in text
    assert f"{m['auc_micro']:.4f}" in text and f"{m['auc_macro']:.4f}" in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 1 + 6 * 3 + 3  # ROC, 6 top frames x (frame, prediction, error map), 3 curves
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in text and "http" not in text.replace("http-equiv", "")
    for table in ("metrics", "protocol", "per-video", "thresholds", "groups"):
        assert f'id="{table}"' in text
    assert "PSNR (frame mean)" in text and "ground truth: anomalous" in text
    empty = render_report(m, ["a"], [np.array([0.1])], [None], top_note="nothing kept here")
    assert "nothing kept here" in empty


def find_browser() -> str:
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip(f"no Chromium/Chrome binary found on PATH (looked for {', '.join(BROWSERS)}); "
                    "install one (Debian: apt-get install chromium; .ci/run does) to render report.html")
    return browser


def headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--hide-scrollbars", *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(tmp_path):
    browser = find_browser()
    path, m = make_report(tmp_path)
    r = headless(browser, "--dump-dom", path.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    table = re.search(r'<table id="metrics">(.*?)</table>', dom, re.S)
    assert table, dom[:2000]
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    assert any("Frame AUC, micro" in row and f"{m['auc_micro']:.4f}" in row for row in rows)
    assert any("Frame AUC, macro" in row and f"{m['auc_macro']:.4f}" in row for row in rows)
    assert dom.count("<img") == 1 + 18 + 3


def test_report_screenshot_shows_metrics_and_plots(tmp_path):
    """What a person sees: the rendered page is not blank, its top shows the metrics table's
    text, and the plots are drawn (coloured pixels, which the text and tables have none of)."""
    browser = find_browser()
    path, m = make_report(tmp_path)
    shot = tmp_path / "report.png"
    r = headless(browser, f"--screenshot={shot}", "--window-size=1280,2400", path.as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (2400, 1280)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    ink = gray < 128  # text, lines and plot marks on the white page
    assert 0.005 < ink.mean() < 0.6, f"page looks blank or solid: {ink.mean():.4f} dark pixels"
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    coloured = (hsv[..., 1] > 80) & (hsv[..., 2] > 60)
    assert coloured.mean() > 0.001, "no coloured pixels: the ROC and score curves were not drawn"
    # the metrics are the first thing on the page: dark pixels in its top screenful, rows of text
    top = ink[:800]
    assert (top.sum(axis=1) > 0).sum() > 40, "nothing rendered in the first screenful"
