"""bf16 and the fp32 fast path against the plain fp32 code, on a briefly trained model."""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Callable

import torch

from pyanomaly.registry import build

from .models import MODEL_CONFIGS, _variant, build_model


def precision_check(device: torch.device, train_steps: int = 150, size: int = 64,
                    log: Callable[[str], None] = print) -> dict:
    """bf16 against fp32 on a briefly trained synthetic PredNet: predictions, PSNR and AUC.

    The model (configs/prednet.yaml's network) is trained ``train_steps`` steps on a small
    generated dataset, then its test videos are predicted in both test modes with the plain
    fp32 code, the fp32 fast path and the bf16 fast path.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from pyanomaly.datasets.synthetic import make_synthetic
    from pyanomaly.registry import DATASETS

    out: dict = {"train_steps": train_steps, "size": size}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(Path(tmp) / "synthetic", seed=0, size=size, num_train=2, num_test=3, frames_per_video=90)
        kw = dict(clip_length=10, image_size=(size, size), channels=1, cache_dir=None)
        train_set = build(DATASETS, dict(type="synthetic", root=str(root), split="training", **kw))
        test_set = build(DATASETS, dict(type="synthetic", root=str(root), split="testing", **kw))
        cfg = MODEL_CONFIGS["prednet_synthetic"]
        model = build_model(cfg, "window", device).train()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(0)
        log(f"  training the synthetic PredNet {train_steps} steps ...")
        for _ in range(train_steps):
            idx = torch.randint(len(train_set), (4,), generator=gen).tolist()
            model.train_step({"frames": torch.stack([train_set[i]["frames"] for i in idx]).to(device)}, opt)
        model.eval()
        state = copy.deepcopy(model.state_dict())
        for mode in MODEL_CONFIGS["prednet_synthetic"].modes:
            m = build_model(cfg, mode, device)
            m.load_state_dict(state)
            preds: dict[str, list] = {}
            for v in ("reference", "fp32", "bf16"):
                with _variant(v, m, device):
                    preds[v] = [m.predict_video(test_set.video_frames(i).to(device)) for i in range(len(test_set.videos))]
            frames = [test_set.video_frames(i).to(device) for i in range(len(test_set.videos))]
            labels = np.concatenate([test_set.labels(i)[valid.cpu().numpy()] for i, (_, valid) in enumerate(preds["reference"])])

            def psnr(v):
                per_video = []
                for (p, valid), x in zip(preds[v], frames):
                    mse = ((p.float() - x) ** 2).mean(dim=(1, 2, 3))[valid]
                    per_video.append((10 * torch.log10(1 / mse.clamp_min(1e-10))).double().cpu().numpy())
                return per_video

            def auc(per_video):
                scores = [1 - (s - s.min()) / max(s.max() - s.min(), 1e-12) for s in per_video]
                return float(roc_auc_score(labels, np.concatenate(scores)))
            ref = psnr("reference")
            res = {"frames": int(labels.size), "auc_reference": auc(ref)}
            for v in ("fp32", "bf16"):
                d = torch.cat([(p.float() - q.float()).abs()[valid].flatten()
                               for (p, valid), (q, _) in zip(preds[v], preds["reference"])])
                dp = np.abs(np.concatenate(psnr(v)) - np.concatenate(ref))
                res[v] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
                          "psnr_mean_abs_diff_db": float(dp.mean()), "psnr_max_abs_diff_db": float(dp.max()),
                          "auc": auc(psnr(v))}
            out[mode] = res
    return out
