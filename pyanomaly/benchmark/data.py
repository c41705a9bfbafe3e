"""The data path: decoded frames/s (JPEG folder, video file; without and with the cache) and the
whole streaming loop, decode to score."""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Callable

import torch

from pyanomaly.networks.fast import using_fast_path
from pyanomaly.registry import build

from .timing import _median_time, interleaved

# ../shared/data beside the repository: real Ped2 frames and a real video, when present
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def benchmark_data(repeats: int = 2, image_size=(256, 256), log: Callable[[str], None] = print) -> dict:
    """Decoded frames/s through the dataset class: a JPEG frame folder and a video file,
    without the cache (decode every time) and with it (the uint8 arrays memory-mapped), both
    up to float tensors ``(N, C, H, W)``."""
    import cv2
    import numpy as np

    from pyanomaly.registry import DATASETS

    out = {"image_size": list(image_size)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = SHARED_DATA / "ped2" / "testing" / "frames" / "01"
        video = SHARED_DATA / "videos" / "vtest.avi"
        sources = {}
        if folder.is_dir():
            sources["jpeg_folder"] = folder
        else:  # a generated stand-in
            sources["jpeg_folder"] = _generated_folder(tmp / "gen" / "frames", 120)
        if video.is_file():
            sources["video_file"] = video
        else:
            sources["video_file"] = tmp / "gen" / "clip.avi"
            wr = cv2.VideoWriter(str(sources["video_file"]), cv2.VideoWriter_fourcc(*"MJPG"), 10, (360, 240))
            for img in np.random.default_rng(1).integers(0, 255, (120, 240, 360, 3), dtype=np.uint8):
                wr.write(img)
            wr.release()
        for label, src in sources.items():
            root = tmp / label
            (root / "testing").mkdir(parents=True)
            (root / "testing" / ("01" + src.suffix if src.is_file() else "01")).symlink_to(src)
            log(f"  data: {label} ({src}) ...")

            def load(cache_dir):
                ds = build(DATASETS, dict(type="folder", root=str(root), split="testing", clip_length=2,
                                          image_size=image_size, channels=1, cache_dir=cache_dir))
                return ds.video_frames(0).shape[0]
            cache = tmp / f"cache-{label}"
            n = load(cache)  # fills the cache
            t_decode = _median_time(lambda: load(None), repeats)
            t_cache = _median_time(lambda: load(cache), max(repeats, 3))
            out[f"{label}_frames"] = n
            out[f"{label}_source"] = str(src)
            out[f"decode_{label}_fps"] = n / t_decode
            out[f"cache_{label}_fps"] = n / t_cache
    return out


def stream_end_to_end(device: torch.device, model: str = "prednet_ped2", variants=("reference", "fp32", "bf16"),
                      repeats: int = 2, log: Callable[[str], None] = print) -> list[dict]:
    """Frames/s of ``tools/score_video.py``'s loop: decode -> resize -> predict (carried state) -> score.

    The source is Ped2's test video 01 (180 JPEG frames, 360x240) when ``SHARED_DATA`` holds
    it, else a generated frame folder; the model is ``MODEL_CONFIGS[model]`` in stream mode
    with random weights (speed does not depend on them), scored as ``configs/ped2_prednet.yaml``
    does (worst 16x16 patch PSNR, causal normalisation).
    """
    from pyanomaly.config import get_cfg
    from pyanomaly.datasets.sources import find_sources, read_chunks, to_tensor
    from pyanomaly.scoring.build import build_scorer, build_stream_pipeline
    from pyanomaly.scoring.video import VideoScorer

    from .models import MODEL_CONFIGS, build_model, variant_switches

    bench = MODEL_CONFIGS[model]
    c, h, w = bench.input
    cfg = get_cfg()
    cfg.SCORE.PATCH = 16
    cfg.DATASET.IMAGE_SIZE, cfg.DATASET.CHANNELS = [h, w], c
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = SHARED_DATA / "ped2" / "testing" / "frames" / "01"
        if not folder.is_dir():
            folder = _generated_folder(Path(tmp) / "frames", 180)
        source = find_sources(folder)[0]
        net = build_model(bench, "stream", device)
        scorer = build_scorer(cfg)

        def run(v: str) -> int:  # exactly score_video's loop, without the writing
            stream = VideoScorer(net, scorer, build_stream_pipeline(cfg, scorer.higher_is_anomalous), device,
                                 "bf16" if v.endswith("bf16") else "fp32").start()
            with using_fast_path(net, variant_switches(v)):
                for frames, _ in read_chunks(source, cfg.TEST.CHUNK, (h, w), c):
                    stream.push(to_tensor(frames))
            return stream.position

        calls = {v: (lambda v=v: run(v)) for v in variants}
        log(f"  end-to-end stream: {model} {', '.join(variants)} on {folder} ...")
        frames = {v: c() for v, c in calls.items()}  # warm-up (and compilation, for the fused variants)
        times = interleaved(calls, repeats, warmup=False)  # in turns, as the model figures
        for v in variants:
            rows.append({"model": model, "variant": v, "source": str(folder), "frames": frames[v],
                         "fps": frames[v] / statistics.median(times[v]), "chunk": cfg.TEST.CHUNK})
    return rows


def _generated_folder(folder: Path, n: int) -> Path:
    """``n`` random 360x240 gray JPEG frames (Ped2's size) in ``folder``: a stand-in source."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), rng.integers(0, 255, (240, 360), dtype=np.uint8))
    return folder
