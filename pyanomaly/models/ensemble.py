"""An ensemble cue: several trainings of one learned method; each frame is scored by the member that predicts it best.

The same predictor trained with different seeds makes partly different errors on normal
frames (one seed learns to carry a cyclist's motion forward, another does not), while an
event that no training video holds is mispredicted by every member. An :class:`Ensemble` runs
``K`` members (the cue's ``checkpoint`` is a list of ``K`` paths, one per training) on the same
frames and, frame by frame, keeps the prediction of the member whose error under the cue's
scorer is smallest: the ensemble's error of a frame is the smallest of its members' errors,
so a frame is anomalous only as far as no member explains it. Its output is a predicted frame
(or an anomaly map) like its members', so a :class:`~pyanomaly.models.fusion.Fusion` or an
:class:`~pyanomaly.models.object_cue.ObjectCue` scores it as any other cue, and a per-pixel
error map is that of the chosen member.

Built by :func:`~pyanomaly.models.cue.build_cue` from a cue spec whose ``checkpoint`` is a
list; the members' weights are read by :func:`~pyanomaly.models.cue.load_cue_weights`.

Example:
    >>> cue = build_cue(0, dict(method=dict(type="FramePredictor", network=dict(type="UNet")),
    ...                         error=dict(type="AREA"), checkpoint=["s0/last.pth", "s1/last.pth"]), 5)
    >>> predictions, valids, states = cue.method.predict_streams([frames], [None])  # [(N, C, H, W)], [(N,)]
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import VADModel


class Ensemble(VADModel):
    """A member class may offer ``predict_streams_together(members, frames, states)``: the members'
    predictions computed at once, sharing what their inputs have in common
    (:meth:`FlowConditionedPredictor.predict_streams_together
    <pyanomaly.models.flow_conditioned.FlowConditionedPredictor.predict_streams_together>`
    computes the flows once for all).

    Args:
        members: ``K >= 2`` builds of one method spec (each to be given its own weights).
        scorer: the cue's scorer ``(predictions (n, ...), frames (n, C, H, W)) -> errors (n,)``
            that picks, per frame, the member with the smallest error (the largest PSNR).
    """

    def __init__(self, members: Sequence[nn.Module], scorer):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an Ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.scorer = scorer
        self.output = members[0].output
        self.reconstructs = bool(getattr(members[0], "reconstructs", False))

    @property
    def needs_training_videos(self) -> bool:
        return any(getattr(m, "needs_training_videos", False) for m in self.members)

    @property
    def concurrent_streams(self) -> bool:
        return all(getattr(m, "concurrent_streams", True) for m in self.members)

    def fit(self, train_set, device: torch.device, progress: bool = True) -> int:
        """Each member's own statistics of the training videos, for members that fit any."""
        return sum(int(m.fit(train_set, device, progress)) for m in self.members
                   if getattr(m, "needs_training_videos", False))

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        """Each video's prediction ``(n_i, ...)``: per frame, that of the member with the smallest
        error; valid where every member predicts; the new states."""
        together = getattr(type(self.members[0]), "predict_streams_together", None)
        if together is not None:  # the members share what their inputs have in common (a flow method's flows)
            preds, valid_of, new = together(list(self.members), frames, states)
        else:
            states = [s if s is not None else [None] * len(self.members) for s in states]
            runs = [m.predict_streams(frames, [s[j] for s in states]) for j, m in enumerate(self.members)]
            preds = [run[0] for run in runs]
            valid_of = [torch.stack([run[1][i].cpu() for run in runs]).all(dim=0).to(runs[0][1][i].device)
                        for i in range(len(frames))]
            new = [[run[2][i] for run in runs] for i in range(len(frames))]
        sign = 1.0 if getattr(self.scorer, "higher_is_anomalous", True) else -1.0
        predictions = []
        for i, f in enumerate(frames):
            best = preds[0][i].clone()
            on = valid_of[i].to(f.device)
            if on.any():
                chosen = torch.stack([p[i][on.to(p[i].device)] for p in preds])  # (K, n, ...)
                errors = torch.stack([sign * self.scorer(c.float(), f[on]).double().cpu() for c in chosen])
                pick = torch.nan_to_num(errors, nan=float("inf")).argmin(dim=0).to(chosen.device)
                best[on.to(best.device)] = chosen[pick, torch.arange(chosen.shape[1], device=chosen.device)]
            predictions.append(best)
        return predictions, valid_of, new
