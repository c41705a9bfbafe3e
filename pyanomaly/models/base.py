"""The contract every method (registered in ``MODELS``) fulfils.

A method owns its networks and its loss, and says how a video is predicted as a stream:

* ``forward(batch) -> dict[str, Tensor]``: training losses for a batch of clips
  (``batch["frames"]``: ``(B, T, C, H, W)`` in [0, 1]); their sum is minimised.
* ``train_step(batch, optimizer, forward)``: one optimisation step. The default sums the
  losses and steps ``optimizer``; a method with a special step (two optimizers, ...)
  overrides it. ``forward`` is the (possibly DDP-wrapped) module to call for the losses.
* ``predict_stream(frames, state) -> (prediction, valid, state)``: next-frame predictions for
  the frames ``(N, C, H, W)`` of one video, continuing from ``state`` (``None`` at the start
  of a video). ``prediction[i]`` predicts ``frames[i]`` from earlier frames only;
  ``valid[i]`` is False where there is not enough history yet. Feeding a video in chunks
  gives the same result as feeding it whole.
* ``online = True`` with ``fit_online(train_set, device, save, position, ...)``: a method
  that learns from the stream in one pass instead of by optimisation steps;
  ``tools/train.py`` calls it in place of the trainer (see :mod:`pyanomaly.engine.launch`).
* ``output``: what ``predict_stream``'s prediction is: ``"frame"`` (the predicted frame,
  compared with the real one by a scorer such as PSNR or AREA) or ``"anomaly_map"`` (a
  per-pixel anomaly map ``(N, 1, H, W)`` of frame ``i`` made from frames ``<= i``, higher =
  more anomalous, reduced by a cell scorer: :mod:`pyanomaly.scoring.cells`).
* ``has_weights = False``: a method that learns nothing by optimisation (a baseline,
  :mod:`pyanomaly.models.baseline`); whatever it needs of the training videos it fits in
  ``fit_online``.
* ``task``: the name of the evaluation task (``TASKS``) that measures the method:
  ``"anomaly_detection"`` (frames scored by prediction error) unless a method says otherwise
  (``"forecasting"``, ``"classification"``); the task, not the method, computes metrics and
  writes files (:mod:`pyanomaly.evaluation.tasks`).
* optionally ``write_outputs(out_dir, names, split)``: files a method makes of the videos it
  has just predicted, besides their scores (STREAMER's ``events.json``).

A method never sees the config: :mod:`pyanomaly.models.build` builds it from ``MODEL.*``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class VADModel(nn.Module):
    """Base class of the methods; see the module docstring for the contract."""

    #: constructor arguments that only change how a trained model is run, not its weights;
    #: a checkpoint is accepted whatever their values
    inference_args: tuple[str, ...] = ()
    #: the evaluation task (registered in ``TASKS``) that measures the method
    task: str = "anomaly_detection"
    #: ``"frame"`` (a predicted frame) or ``"anomaly_map"`` (see the module docstring)
    output: str = "frame"
    #: False for a method without learned weights (a baseline)
    has_weights: bool = True

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def train_step(self, batch: dict, optimizer: torch.optim.Optimizer, forward: Any = None,
                   grad_clip: float = 0.0, scaler: Any = None) -> dict[str, torch.Tensor]:
        """One step: losses (detached, with their sum under ``"loss"``) after the update."""
        forward = forward if forward is not None else self
        losses = forward(batch)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.unscale_(optimizer)
        else:
            total.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        out = {k: v.detach() for k, v in losses.items()}
        out["loss"] = total.detach()
        return out

    @torch.no_grad()
    def predict_stream(self, frames: torch.Tensor, state: Any = None):
        raise NotImplementedError

    @torch.no_grad()
    def stream_windows(self, frames: torch.Tensor, state: Any, history: int, predict_next,
                       batch: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``predict_stream`` for methods that predict a frame from a fixed window.

        Frame ``t`` is predicted by ``predict_next(windows)`` from frames ``t-history .. t-1``
        (``windows``: ``(B, history, C, H, W)`` -> ``(B, C, H, W)``), ``batch`` windows per call;
        the first ``history`` frames of a video are not valid. ``state`` holds the last
        ``history`` frames seen, so chunks join seamlessly.
        """
        past = state if state is not None else frames[:0]
        seq = torch.cat([past, frames])
        offset = past.shape[0]  # seq[offset + i] is frames[i]
        prediction = torch.zeros_like(frames)
        valid = torch.zeros(frames.shape[0], dtype=torch.bool)
        targets = [i for i in range(frames.shape[0]) if offset + i >= history]
        for s in range(0, len(targets), batch):
            idx = targets[s:s + batch]
            windows = torch.stack([seq[offset + i - history: offset + i] for i in idx])
            prediction[idx] = predict_next(windows).to(prediction.dtype)
            valid[idx] = True
        return prediction, valid, seq[-history:].clone()

    @torch.no_grad()
    def predict_video(self, frames: torch.Tensor, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole-video prediction ``(N, C, H, W)`` and validity ``(N,)``, fed in chunks."""
        preds, valids, state = [], [], None
        for start in range(0, frames.shape[0], chunk):
            p, v, state = self.predict_stream(frames[start:start + chunk], state)
            preds.append(p)
            valids.append(v)
        return torch.cat(preds), torch.cat(valids)
