"""An ensemble cue: several trainings of one learned method, their errors of each frame combined.

The same predictor trained with different seeds makes partly different errors on normal
frames (a seed may learn to carry a cyclist's motion forward, another not), while an event
that no training video holds should be mispredicted by every member. An :class:`Ensemble` runs
``K`` members (the cue's ``checkpoint`` is a list of ``K`` paths, one per training) on the same
frames; its prediction of a frame is the members' predictions stacked, ``(n, K, C, H, W)``, and
its :class:`EnsembleScorer` turns them into one error per frame by the cue's ``ensemble`` rule:

* ``mean`` (the default): the mean of the members' errors, the rule the pseudo-anomaly
  validation on Ped2's training videos preferred (``docs/results.md``);
* ``min``: the smallest of the members' errors (the largest PSNR), a frame anomalous only as
  far as no member explains it. The errors are compared as they are: when the members' error
  levels differ, the smallest mostly follows the member with the lowest level (on Ped2 one
  member of three gave 99 % of the frames' errors).

A :class:`~pyanomaly.models.fusion.Fusion` or an :class:`~pyanomaly.models.object_cue.ObjectCue`
scores it as any other cue; a per-pixel error map is the chosen member's (``min``) or the
members' mean map (``mean``).

Built by :func:`~pyanomaly.models.cue.build_cue` from a cue spec whose ``checkpoint`` is a
list; the members' weights are read by :func:`~pyanomaly.models.cue.load_cue_weights`.

Example:
    >>> cue = build_cue(0, dict(method=dict(type="FramePredictor", network=dict(type="UNet")), ensemble="mean",
    ...                         error=dict(type="AREA"), checkpoint=["s0/last.pth", "s1/last.pth"]), 5)
    >>> predictions, valids, states = cue.method.predict_streams([frames], [None])  # [(N, K, C, H, W)], [(N,)]
    >>> errors = cue.scorer(predictions[0][valids[0]], frames[valids[0]])            # (n,)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .base import VADModel

RULES = ("mean", "min")
DEFAULT_RULE = "mean"  # the rule the pseudo-anomaly validation on training videos preferred


class EnsembleScorer:
    """The cue's scorer applied to each member's prediction ``(n, K, ...)`` against the frames
    ``(n, C, H, W)``, the ``K`` errors of a frame combined by ``rule`` (``RULES``) into ``(n,)``."""

    def __init__(self, scorer, rule: str = DEFAULT_RULE):
        if rule not in RULES:
            raise ValueError(f"expected one of {RULES}, got {rule!r}")
        self.scorer, self.rule = scorer, rule
        self.higher_is_anomalous = bool(getattr(scorer, "higher_is_anomalous", True))
        self.reads = getattr(scorer, "reads", "frame")

    def member_errors(self, predictions: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``(K, n)``: each member's error of each frame, oriented so that lower = better explained."""
        sign = 1.0 if self.higher_is_anomalous else -1.0
        return torch.stack([sign * self.scorer(predictions[:, k].float(), frames).double()
                            for k in range(predictions.shape[1])])

    def __call__(self, predictions: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        errors = self.member_errors(predictions, frames)
        combined = errors.mean(dim=0) if self.rule == "mean" else errors.min(dim=0).values
        return combined if self.higher_is_anomalous else -combined

    def combine_maps(self, member_map: Callable[[torch.Tensor], torch.Tensor], predictions: torch.Tensor,
                     frames: torch.Tensor) -> torch.Tensor:
        """The ensemble's per-pixel map ``(n, 1, H, W)`` from ``member_map(prediction of one member)``:
        the mean of the members' maps, or per frame the map of the member with the smallest error."""
        maps = torch.stack([member_map(predictions[:, k]) for k in range(predictions.shape[1])])  # (K, n, 1, H, W)
        if self.rule == "mean":
            return maps.mean(dim=0)
        pick = self.member_errors(predictions, frames).argmin(dim=0).to(maps.device)
        return maps[pick, torch.arange(maps.shape[1], device=maps.device)]


class Ensemble(VADModel):
    """A member class may offer ``predict_streams_together(members, frames, states)``: the members'
    predictions computed at once, sharing what their inputs have in common
    (:meth:`FlowConditionedPredictor.predict_streams_together
    <pyanomaly.models.flow_conditioned.FlowConditionedPredictor.predict_streams_together>`
    computes the flows once for all).

    Args:
        members: ``K >= 2`` builds of one method spec (each to be given its own weights).
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an Ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
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
        """Each video's members' predictions ``(n_i, K, ...)``, valid where every member predicts,
        and the new states."""
        together = getattr(type(self.members[0]), "predict_streams_together", None)
        if together is not None:  # the members share what their inputs have in common (a flow method's flows)
            preds, valids, new = together(list(self.members), frames, states)
        else:
            states = [s if s is not None else [None] * len(self.members) for s in states]
            runs = [m.predict_streams(frames, [s[j] for s in states]) for j, m in enumerate(self.members)]
            preds = [run[0] for run in runs]
            valids = [torch.stack([run[1][i].cpu() for run in runs]).all(dim=0).to(runs[0][1][i].device)
                      for i in range(len(frames))]
            new = [[run[2][i] for run in runs] for i in range(len(frames))]
        stacked = [torch.stack([p[i] for p in preds], dim=1) for i in range(len(frames))]
        return stacked, valids, new
