"""A cue scored per object: the foreground regions of each frame, each scored by the cue's mean error over it.

A frame-level error (the worst 16x16 cell of the flow speed, the PSNR of a predicted frame)
mixes what moves with what does not, and cuts objects by a fixed grid. ObjectCue wraps one
cue (:mod:`pyanomaly.models.cue`: a method and its scorer) and the foreground regions of
the frame (:class:`~pyanomaly.objects.Foreground`: background subtraction or frame
difference, cleaned, split into connected components). For each frame:

* the cue's per-pixel error map ``(N, 1, H, W)``: the map itself for a cue giving an anomaly
  map; for a cue predicting frames, the scorer's ``error_map(prediction, frames)`` where the
  scorer has one, else the absolute error averaged over the channels (:func:`cue_error_map`);
* each object's score = the mean of that map over the object's pixels (its region's pixels,
  not its box);
* the output is an anomaly map ``(N, 1, H, W)``: each object's pixels hold its score, the
  background holds 0. ``SCORE.ERROR CELL_MAX`` with ``SCORE.PATCH 1`` (the largest pixel) then
  gives a frame's error = its worst object. A cue map that can be negative (FlowSpeed's
  ``excess``) gives an object below 0 the background's 0: a frame's error is then
  ``max(0, worst object)``.

A frame without any object (nothing in the foreground, or still in the foreground's warm-up)
or that the cue cannot score (the first frame for the flow) is not valid: no zero is made
up for it (its map is NaN). The cue and the foreground each keep their state per video, so
chunks give the same maps as the whole video and several videos stream at once.

The cue's learned weights (if any) are read from its checkpoint by :meth:`ObjectCue.fit`
(``tools/train.py``), as :class:`~pyanomaly.models.fusion.Fusion` does, and are then part
of the ObjectCue's own checkpoint; a cue fitting statistics of its own (FlowSpeed's
quantiles) fits them there too. Its output is an anomaly map, so an ObjectCue is itself a
cue of a Fusion (with ``error: {type: CELL_MAX, patch: 1}``).

Example:
    >>> model = ObjectCue(cue=dict(method=dict(type="FlowSpeed"), error=dict(type="CELL_MAX")),
    ...                   foreground=dict(method="difference", threshold=0.1, min_area=30))
    >>> objects, valid, state = model.predict_stream(frames)   # (N, 1, H, W), (N,)
"""
from __future__ import annotations

import torch

from pyanomaly.objects import build_foreground
from pyanomaly.registry import MODELS
from pyanomaly.scoring.psnr import error_map

from .baseline import Baseline
from .cue import build_cue, load_cue_weights
from .ensemble import EnsembleScorer


def cue_error_map(output: str, scorer, prediction: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """A cue's per-pixel error ``(N, 1, H, W)`` (higher = worse): the method's anomaly map as it
    is (``output == "anomaly_map"``), or of a predicted frame: ``scorer.error_map(prediction,
    frames)`` when the scorer has one, else the absolute error averaged over channels."""
    if isinstance(scorer, EnsembleScorer):  # members' predictions (N, K, ...): their maps, combined
        return scorer.combine_maps(lambda one: cue_error_map(output, scorer.scorer, one, frames), prediction, frames)
    if output == "anomaly_map":
        return prediction.float()
    own = getattr(scorer, "error_map", None)
    err = own(prediction, frames) if callable(own) else error_map(prediction, frames)
    return err.float().unsqueeze(1) if err.dim() == 3 else err.float()


def object_means(errors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each object's mean error spread over its pixels: errors ``(N, 1, H, W)``, labels
    ``(N, H, W)`` int (0 = background) -> ``(N, 1, H, W)``, background 0."""
    n = labels.shape[0]
    labels = labels.to(errors.device).long()
    slots = int(labels.max()) + 1 if labels.numel() else 1
    index = (labels + slots * torch.arange(n, device=labels.device)[:, None, None]).flatten()
    values = errors[:, 0].double().flatten()
    sums = torch.zeros(n * slots, dtype=torch.float64, device=errors.device).index_add_(0, index, values)
    counts = torch.bincount(index, minlength=n * slots).double()
    means = (sums / counts.clamp_min(1.0))[index].view(labels.shape)
    return torch.where(labels > 0, means, torch.zeros_like(means)).float()[:, None]


@MODELS.register_module()
class ObjectCue(Baseline):
    """Args:
        cue: the wrapped cue ``{name, method: {type: METHOD, <arguments>}, error: {type: SCORER,
            <arguments>}, checkpoint: PATH (for a learned method)}`` (as a Fusion cue; no weight).
            Its scorer must read what the method gives; only a frame cue's is used here (for
            its ``error_map``), an anomaly map is taken as it is.
        foreground: the regions, ``{method: difference | mog2 | knn, <arguments>}``
            (:class:`~pyanomaly.objects.Foreground`).
        clip_length: handed to the cue's method if it takes it (``DATASET.CLIP_LENGTH``).
    """

    output = "anomaly_map"

    def __init__(self, cue: dict, foreground: dict | None = None, clip_length: int | None = None):
        super().__init__()
        if isinstance(cue, dict) and "weight" in cue:
            raise ValueError("ObjectCue cue.weight: an ObjectCue has one cue, which takes no weight")
        if isinstance(cue, dict) and "size" in cue:
            raise ValueError("ObjectCue cue.size: an ObjectCue's cue works at the frames' own size, where its "
                             "objects are found")
        if isinstance(cue, dict) and "train" in cue:
            raise ValueError("ObjectCue cue.train: only a Fusion's cues are trained by a recipe; train the method "
                             "yourself and name its checkpoint")
        built = build_cue(0, cue, clip_length, where="ObjectCue cue")
        self.cue, self.scorer, self.name, self.checkpoint = built.method, built.scorer, built.name, built.checkpoint
        self.foreground = build_foreground(foreground, "ObjectCue foreground")

    @property
    def has_weights(self) -> bool:
        """True when the cue has learned weights (read from its checkpoint, never optimised here)."""
        return getattr(self.cue, "has_weights", True)

    @property
    def needs_training_videos(self) -> bool:
        return bool(getattr(self.cue, "needs_training_videos", False))

    @property
    def concurrent_streams(self) -> bool:
        return getattr(self.cue, "concurrent_streams", True)

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        """Each video's object map ``(n_i, 1, H, W)`` (NaN where not valid), validity (the cue
        scored the frame and it has an object) and the new states."""
        states = [s if s is not None else {"cue": None, "foreground": None} for s in states]
        preds, cue_valids, cue_states = self.cue.predict_streams(frames, [s["cue"] for s in states])
        maps, valids, new = [], [], []
        for f, p, ok, s, old in zip(frames, preds, cue_valids, cue_states, states):
            labels, _, has_objects, fg_state = self.foreground.stream(f, old["foreground"])
            valid = ok.cpu() & has_objects
            out = torch.full((f.shape[0], 1, *f.shape[-2:]), float("nan"), device=f.device)
            if valid.any():
                on = valid.to(f.device)
                errors = cue_error_map(self.cue.output, self.scorer, p[on].float(), f[on])
                out[on] = object_means(errors, labels[on]).to(out.device)
            maps.append(out)
            valids.append(valid)
            new.append({"cue": s, "foreground": fg_state})
        return maps, valids, new

    def fit(self, train_set, device: torch.device, progress: bool = True) -> int:
        """The cue's learned weights from its checkpoint, then its own statistics if it fits any."""
        if self.checkpoint is not None:
            load_cue_weights(self.cue, self.checkpoint, "ObjectCue cue")
            self.cue.to(device)
        if self.needs_training_videos:
            return int(self.cue.fit(train_set, device, progress))
        return 0
