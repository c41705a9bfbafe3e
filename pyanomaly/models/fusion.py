"""Fusion: several cues (methods, each with its error measure), normalised on the training videos, combined.

A cue (:mod:`pyanomaly.models.cue`) is a method (a baseline such as
:class:`~pyanomaly.models.flow_speed.FlowSpeed`, or a learned method with its weights read
from a checkpoint when the fusion is fitted, then kept in the fusion's own checkpoint) and the
scorer that turns its output into one error per frame (``PSNR``/``AREA`` for a predicted frame, ``CELL_TOP``/``CELL_MAX`` for
an anomaly map). The cues measure in different units, so each cue's error is normalised with
statistics of the TRAINING videos only: its mean and standard deviation over every training
frame the cue scores, fitted by :meth:`Fusion.fit` (``tools/train.py``) and stored in the
checkpoint; a cue whose error is lower when anomalous (PSNR) is negated. The normalised errors
(z-scores) are combined by a rule fixed in the config: ``sum`` (a weighted sum; equal weights
by default) or ``max`` (the largest weighted z-score). No test label and no test statistic is
read.

The method's output is that fused error, one value per frame (``output = "frame_error"``,
``(N,)``), read as it is by the ``FRAME_ERROR`` scorer. A frame that some cue cannot score
(the first frame for the flow or a copy of the last frame, the first ``history`` frames of a
frame predictor) has no fused error: ``valid`` is False there, and the protocol excludes and
counts it (never a zero). Each cue keeps its own stream state, so the fusion streams causally
as every method does. A cue with a ``size`` works on the frames resized to it
(:func:`~pyanomaly.models.cue.resize_frames`): a small network beside a full-size flow.

With ``parallel`` (the default) the cues of a chunk are computed at the same time, one thread
each: OpenCV's optical flow and torch's convolutions both release Python's lock, so on a
2-core machine the flow of one cue runs while the network of another does. The errors are
the same either way.

After scoring a split, :meth:`Fusion.write_outputs` writes ``cues/`` in the run directory: for
every non-empty subset of the cues, its fused error of every frame (the same statistics and
rule) as an export ``cues/<name+name>/`` that ``tools/test.py --scores`` re-scores under the
protocol: the ablation of the cues, from one run.

Example:
    >>> model = Fusion(cues=[
    ...     dict(name="flow", method=dict(type="FlowSpeed"), error=dict(type="CELL_TOP", patch=16)),
    ...     dict(name="copy", method=dict(type="CopyLast"), error=dict(type="AREA", threshold=0.05))])
    >>> model.fit(train_set, torch.device("cpu"))          # per-cue mean and std of the training frames
    >>> fused, valid, state = model.predict_stream(frames)  # (N,), (N,)
"""
from __future__ import annotations

import contextlib
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pyanomaly.datasets.first_frames import FirstFrames
from pyanomaly.registry import MODELS

from .baseline import Baseline
from .cue import CUE_KEYS, ResizedVideos, build_cue, load_cue_weights, resize_frames

logger = logging.getLogger("pyanomaly")

RULES = ("sum", "max")


def in_callers_modes(fn):
    """``fn`` to run in another thread under the calling thread's grad, inference and autocast
    modes (torch keeps them per thread: a worker would otherwise score in float32 with grad)."""
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    amp = {kind: torch.get_autocast_dtype(kind) for kind in ("cpu", "cuda") if torch.is_autocast_enabled(kind)}

    def run(*args):
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode(inference))
            stack.enter_context(torch.set_grad_enabled(grad))
            for kind, dtype in amp.items():
                stack.enter_context(torch.autocast(kind, dtype=dtype))
            return fn(*args)

    return run


@MODELS.register_module()
class Fusion(Baseline):
    """Args:
        cues: the cues, each ``{name: NAME, method: {type: METHOD, <arguments>}, error: {type:
            SCORER, <arguments>}, checkpoint: PATH (the method's weights; for a learned method),
            weight: w (default 1), size: [H, W] (the frame size the cue works at; default the
            frames'), train: CONFIG (the recipe that trains a learned cue's method on the run's own
            dataset when ``checkpoint`` is missing or trained on another; :mod:`pyanomaly.engine.cue_training`)}``.
        rule: ``"sum"`` (weighted sum of the cues' z-scores) or ``"max"`` (their weighted maximum).
        fit_frames: at most this many frames of each training video are read to fit the
            statistics (the first ones; 0 = every frame).
        clip_length: handed to each cue's method that takes it (``DATASET.CLIP_LENGTH``).
        chunk: training frames read at a time while fitting.
        parallel: compute the cues of a chunk at the same time, one thread each.
    """

    output = "frame_error"
    inference_args = ("chunk", "parallel")

    def __init__(self, cues: Sequence[dict], rule: str = "sum", fit_frames: int = 0, clip_length: int | None = None,
                 chunk: int = 64, parallel: bool = True):
        super().__init__()
        if not isinstance(cues, (list, tuple)) or not cues:
            raise ValueError(f"Fusion cues must be a non-empty list of {{{', '.join(CUE_KEYS)}}}, "
                             f"got {cues!r}")
        if rule not in RULES:
            raise ValueError(f"Fusion rule must be one of {RULES}, got {rule!r}")
        if int(fit_frames) < 0:
            raise ValueError(f"Fusion fit_frames must be >= 0 (0 = every frame), got {fit_frames}")
        self.rule, self.fit_frames, self.chunk, self.parallel = rule, int(fit_frames), int(chunk), bool(parallel)
        built = [build_cue(i, spec, clip_length) for i, spec in enumerate(cues)]
        self.scorers = [c.scorer for c in built]
        self.names = [c.name for c in built]
        self.sizes = [c.size for c in built]  # the frame size each cue works at (None: the frames')
        # the checkpoints of the learned cues, read when fitting; a fitted Fusion holds their weights
        self.checkpoints = [c.checkpoint for c in built]
        # the recipes that train a learned cue on the run's own dataset (engine/cue_training.py)
        self.trainings = [c.train for c in built]
        twice = sorted({n for n in self.names if self.names.count(n) > 1})
        if twice:
            raise ValueError(f"Fusion cues: two cues named {twice}; give each a distinct name")
        self.cues = nn.ModuleList(c.method for c in built)
        self.register_buffer("weights", torch.tensor([c.weight for c in built], dtype=torch.float64))
        # per cue: mean and std of its error over the training frames (empty until fitted)
        self.register_buffer("mean", torch.empty(0, dtype=torch.float64))
        self.register_buffer("std", torch.empty(0, dtype=torch.float64))
        self._videos: list[list[np.ndarray]] = []  # the per-cue errors of the videos streamed since the last write_outputs
        self._pool: ThreadPoolExecutor | None = None  # made on first parallel use; never pickled

    @property
    def has_weights(self) -> bool:
        """True when a cue has learned weights (they come from its checkpoint, never optimised here)."""
        return any(getattr(m, "has_weights", True) for m in self.cues)

    @property
    def needs_training_videos(self) -> bool:
        return True

    @property
    def concurrent_streams(self) -> bool:
        """Several videos may stream at once only if every cue allows it."""
        return all(getattr(m, "concurrent_streams", True) for m in self.cues)

    # -- the cues' errors ---------------------------------------------------------------------
    def cue_errors(self, frames: list[torch.Tensor], states: list) -> tuple[list[torch.Tensor], list, list]:
        """Each video's raw error of every cue: ``(K, n_i)`` float64 per video (NaN where the cue
        has no prediction), and the new states (one list of K cue states per video)."""
        states = [s if s is not None else [None] * len(self.cues) for s in states]
        out = [torch.full((len(self.cues), f.shape[0]), float("nan"), dtype=torch.float64) for f in frames]
        new = [[None] * len(self.cues) for _ in frames]

        def one_cue(k: int):
            sized = [resize_frames(f, self.sizes[k]) for f in frames]
            preds, valids, cue_states = self.cues[k].predict_streams(sized, [s[k] for s in states])
            for i, (f, p, ok, s) in enumerate(zip(sized, preds, valids, cue_states)):
                ok = ok.cpu()
                if ok.any():
                    out[i][k, ok] = self.scorers[k](p[ok.to(p.device)].float(), f[ok.to(f.device)]).double().cpu()
                new[i][k] = s

        if self.parallel and len(self.cues) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=len(self.cues), thread_name_prefix="fusion-cue")
            run = in_callers_modes(one_cue)
            for job in [self._pool.submit(run, k) for k in range(len(self.cues))]:
                job.result()  # re-raises a cue's error here
        else:
            for k in range(len(self.cues)):
                one_cue(k)
        return out, new

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}

    def normalise(self, errors: torch.Tensor) -> torch.Tensor:
        """Raw cue errors ``(K, n)`` -> z-scores ``(K, n)`` (higher = more anomalous for every cue)."""
        if self.mean.numel() == 0:
            raise ValueError("Fusion has no fitted statistics: fit it on the training videos first (tools/train.py), "
                             "or test a checkpoint that holds them")
        signs = torch.tensor([1.0 if s.higher_is_anomalous else -1.0 for s in self.scorers], dtype=torch.float64)
        mean, std = self.mean.to(errors.device), self.std.to(errors.device)  # the errors are gathered on the CPU
        return signs[:, None].to(errors.device) * (errors - mean[:, None]) / std[:, None]

    def combine(self, z: torch.Tensor, cues: Sequence[int] | None = None) -> torch.Tensor:
        """The rule over the z-scores ``(K, n)`` of the cues ``cues`` (all by default): ``(n,)``,
        NaN where one of them is NaN."""
        cues = list(range(len(self.cues))) if cues is None else list(cues)
        weighted = self.weights.to(z.device)[cues, None] * z[cues]
        fused = weighted.sum(dim=0) if self.rule == "sum" else weighted.amax(dim=0)
        return torch.where(torch.isnan(weighted).any(dim=0), torch.full_like(fused, float("nan")), fused)

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        """The fused error ``(n_i,)`` of each video's frames, its validity (every cue scored the
        frame) and the new states; each state also holds the video's raw cue errors so far."""
        errors, cue_states = self.cue_errors(frames, [None if s is None else s["cues"] for s in states])
        fused, valids, new = [], [], []
        for f, e, s, old in zip(frames, errors, cue_states, states):
            value = self.combine(self.normalise(e))
            fused.append(value.float().to(f.device))
            valids.append(torch.isfinite(value))
            if old is None:  # a new video: its raw cue errors are kept for write_outputs, in the order videos start
                log: list[np.ndarray] = []
                self._videos.append(log)
            else:
                log = old["log"]
            log.append(e.numpy())
            new.append({"cues": s, "log": log})
        return fused, valids, new

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, train_set, device: torch.device, progress: bool = True) -> int:
        """Each cue's mean and std of its error over the training frames it scores. The learned
        cues' weights are read from their checkpoints first, and cues that fit statistics of
        their own (FlowSpeed's quantiles) fit them first."""
        for i, (method, path) in enumerate(zip(self.cues, self.checkpoints)):
            if path is not None:
                load_cue_weights(method, path, f"Fusion cues[{i}]")
                method.to(device)
            elif getattr(method, "has_weights", True):  # only a train recipe named: tools/train.py runs it first
                raise ValueError(f"Fusion cues[{i}] ({self.names[i]}) has no checkpoint yet: its train recipe is "
                                 "run by tools/train.py before the fusion is fitted")
        for method, size in zip(self.cues, self.sizes):
            if getattr(method, "needs_training_videos", False):
                method.fit(train_set if size is None else ResizedVideos(train_set, size), device, progress)
        videos = train_set if self.fit_frames == 0 else FirstFrames(train_set, self.fit_frames)
        bar = tqdm(total=sum(videos.lengths), desc="fusion statistics", unit="frame", disable=not progress,
                   leave=False)
        seen: list[list[np.ndarray]] = [[] for _ in self.cues]
        for v in range(len(videos.lengths)):
            state = None
            for start in range(0, videos.lengths[v], self.chunk):
                frames = videos.video_frames(v, start, start + self.chunk).to(device)
                (errors,), (state,) = self.cue_errors([frames], [state])
                for k in range(len(self.cues)):
                    e = errors[k].numpy()
                    seen[k].append(e[np.isfinite(e)])
                bar.update(frames.shape[0])
        bar.close()
        mean, std = [], []
        for name, parts in zip(self.names, seen):
            values = np.concatenate(parts) if parts else np.empty(0)
            if values.size < 2:
                raise ValueError(f"Fusion cue '{name}' scores {values.size} training frame(s); its statistics need "
                                 "at least 2 (more or longer training videos, or a larger fit_frames)")
            mean.append(values.mean())
            std.append(values.std())
            if not std[-1] > 0:
                raise ValueError(f"Fusion cue '{name}' gives the same error {mean[-1]:g} on every training frame; "
                                 "it cannot be normalised")
            logger.info("Fusion cue %s: mean %.6g, std %.6g of its error over %d training frames", name, mean[-1],
                        std[-1], values.size)
        self.mean = torch.tensor(mean, dtype=torch.float64, device=self.mean.device)
        self.std = torch.tensor(std, dtype=torch.float64, device=self.std.device)
        self._videos = []
        return sum(videos.lengths)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in ("mean", "std"):  # fitted statistics have the cue count only once fitted
            saved = state_dict.get(prefix + key)
            if saved is not None:
                setattr(self, key, torch.empty_like(saved, device=getattr(self, key).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- the ablation ----------------------------------------------------------------------------
    def subsets(self) -> list[tuple[int, ...]]:
        """Every non-empty subset of the cues (indices), singletons first."""
        k = len(self.cues)
        return [c for r in range(1, k + 1) for c in itertools.combinations(range(k), r)]

    def write_outputs(self, out_dir: str | Path, names: Sequence[str], split: str,
                      labels: Sequence[np.ndarray | None] | None = None) -> None:
        """``cues/<subset>/``: the fused error of every subset of the cues for the videos just
        scored (``names``, in the order they were streamed), as exports ``tools/test.py --scores``
        re-scores; ``cues/statistics.json``: the fitted statistics and the rule, and (``scored``) each
        cue's mean and sd over the scored frames in training standard deviations (no label read)."""
        from pyanomaly.evaluation.export import write_score_files  # the export format of every run
        from pyanomaly.utils import atomic_write_text
        import json

        videos, self._videos = self._videos[-len(names):] if names else [], []
        if len(videos) != len(names):
            logger.warning("Fusion: %d videos streamed, %d named; cues/ not written", len(videos), len(names))
            return
        out = Path(out_dir) / "cues"
        z = [self.normalise(torch.from_numpy(np.concatenate(v, axis=1))) for v in videos]
        labels = list(labels) if labels is not None else [None] * len(names)
        for cues in self.subsets():
            fused = [self.combine(zi, cues).numpy() for zi in z]
            what = "+".join(self.names[c] for c in cues)
            protocol = {"error": f"Fusion {self.rule} of the z-scores of {what}", "higher_error_is_anomalous": True,
                        "split": split}
            write_score_files(out / what, names, fused, [np.full(f.shape, np.nan) for f in fused], labels,
                              protocol=protocol, npy=False)
        stats = {"rule": self.rule, "cues": [{"name": n, "mean": float(m), "std": float(s), "weight": float(w),
                                              "higher_is_anomalous": bool(sc.higher_is_anomalous)}
                                             for n, m, s, w, sc in zip(self.names, self.mean, self.std, self.weights,
                                                                        self.scorers)]}
        # how far the scored videos sit from the training videos, per cue (no label read): a cue whose
        # footage drifted from training weighs more in the sum than the others
        if z:
            zs = torch.cat(z, dim=1).numpy()
            drift = []
            for name, row in zip(self.names, zs):
                row = row[np.isfinite(row)]
                drift.append({"name": name, "mean_z": float(row.mean()) if row.size else None,
                              "std_z": float(row.std()) if row.size else None, "frames": int(row.size)})
            stats["scored"] = {"split": split, "videos": len(names), "cues": drift}
            shown = [f"{d['name']} {d['mean_z']:+.2f} ({d['std_z']:.2f})" for d in drift if d["mean_z"] is not None]
            logger.info("Fusion cues on the %d scored videos, in training standard deviations (mean, sd): %s",
                        len(names), ", ".join(shown))
        atomic_write_text(out / "statistics.json", json.dumps(stats, indent=1))
