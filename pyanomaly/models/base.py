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
* ``predict_streams(frames, states) -> (predictions, valids, states)``: the same for several
  videos at once (lists, one entry per video, chunks of any lengths), each with its own
  state, with the same results as one ``predict_stream`` call per video (to float rounding).
  A method implements either: the base class makes the other from it. A method that
  batches implements ``predict_streams`` and predicts the videos' frames in shared forward
  passes (windows: :meth:`VADModel.stream_windows`; recurrent states:
  :mod:`pyanomaly.models.stream_batch`); one that implements only ``predict_stream`` is
  called once per video. ``concurrent_streams = False`` says that the method holds a
  video's stream state in the module itself (STREAMER), so only one video may stream at a time.
* ``online = True`` with ``fit_online(train_set, device, save, position, ...)``: a method
  that learns from the stream in one pass instead of by optimisation steps;
  ``tools/train.py`` calls it in place of the trainer (see :mod:`pyanomaly.engine.launch`).
* ``output``: what ``predict_stream``'s prediction is: ``"frame"`` (the predicted frame,
  compared with the real one by a scorer such as PSNR or AREA) or ``"anomaly_map"`` (a
  per-pixel anomaly map ``(N, 1, H, W)`` of frame ``i`` made from frames ``<= i``, higher =
  more anomalous, reduced by a cell scorer: :mod:`pyanomaly.scoring.cells`) or ``"frame_error"``
  (one error per frame ``(N,)``, higher = more anomalous, read as it is by ``FRAME_ERROR``: a
  method that combines cues, :mod:`pyanomaly.models.fusion`).
* ``training_flow``: the :class:`~pyanomaly.flow.OpticalFlow` of a method that trains on each
  clip's optical flow (``batch["flow"]`` ``(B, T-1, 2, H, W)``, given by the dataset when
  ``DATASET.FLOW`` is set; ``needs_flow`` is then True) and computes the same flow from the
  frames as they stream at test time (:mod:`pyanomaly.models.flow_windows`);
  :func:`~pyanomaly.models.build.check_training_flow` refuses a run whose ``DATASET.FLOW``
  is missing or another flow before any video is read.
* ``reconstructs = True``: the ``"frame"`` of frame ``i`` is a reconstruction made from frames
  ``<= i`` (frame ``i`` included: an autoencoder, :mod:`pyanomaly.models.reconstructor`), not a
  prediction from earlier frames; it is scored the same way.
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
    #: ``"frame"`` (a predicted frame), ``"anomaly_map"`` or ``"frame_error"`` (see the module docstring)
    output: str = "frame"
    #: False for a method without learned weights (a baseline)
    has_weights: bool = True
    #: the optical flow (:class:`~pyanomaly.flow.OpticalFlow`) of a method that trains on each
    #: clip's flow (``batch["flow"]``: ``DATASET.FLOW``, which must name the same) and computes it
    #: itself at test time; None for a method of frames only
    training_flow = None
    #: True when a ``"frame"`` output of frame ``i`` reads frame ``i`` itself (a reconstruction)
    reconstructs: bool = False

    @property
    def needs_flow(self) -> bool:
        """True for a method that trains on each clip's optical flow (:attr:`training_flow`)."""
        return self.training_flow is not None

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

    #: several videos may stream through the module at once (each state is held by the caller);
    #: False for a method whose stream state lives in the module
    concurrent_streams: bool = True

    @torch.no_grad()
    def predict_stream(self, frames: torch.Tensor, state: Any = None):
        """Next-frame predictions of one video's frames ``(N, C, H, W)``: see the module docstring."""
        if type(self).predict_streams is VADModel.predict_streams:
            raise NotImplementedError(f"{type(self).__name__} implements neither predict_stream nor predict_streams")
        predictions, valids, states = self.predict_streams([frames], [state])
        return predictions[0], valids[0], states[0]

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list[Any]) -> tuple[list, list, list]:
        """``predict_stream`` of several videos: ``frames[i]`` ``(n_i, C, H, W)`` continuing from
        ``states[i]``; lists of predictions, validities and states, one per video. This default
        calls ``predict_stream`` once per video (no shared forward pass)."""
        if type(self).predict_stream is VADModel.predict_stream:
            raise NotImplementedError(f"{type(self).__name__} implements neither predict_stream nor predict_streams")
        if len(frames) > 1 and not self.concurrent_streams:
            raise ValueError(f"{type(self).__name__} holds a video's stream state in the module: one video at a time")
        out = [self.predict_stream(f, s) for f, s in zip(frames, states)]
        return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]

    @torch.no_grad()
    def stream_windows(self, frames: list[torch.Tensor], states: list[Any], history: int, predict_next,
                       batch: int = 16, channels: int | None = None, current: bool = False) -> tuple[list, list, list]:
        """``predict_streams`` for methods that predict a frame from a fixed window.

        Frame ``t`` of a video is predicted by ``predict_next(windows)`` from its frames
        ``t-history .. t-1`` (``windows``: ``(B, history, C, H, W)`` -> ``(B, C', H, W)``, with
        ``C' = channels``, ``C`` unless given: a prediction may differ from a frame, e.g. a flow
        predicted from frames and flows stacked on channels); the windows of all videos are
        predicted together, ``batch`` per call. The first ``history`` frames of a video are not
        valid. A video's state holds the last frames seen, so chunks join seamlessly.

        With ``current`` the window of frame ``t`` ends at frame ``t`` itself: frames
        ``t-history+1 .. t`` (a reconstruction of the frames up to ``t``, never a later one);
        then the first ``history - 1`` frames are not valid.
        """
        past_needed = history - 1 if current else history
        end = 1 if current else 0  # the window of frames[k][i] ends before seqs[k][offset + i + end]
        seqs, offsets, targets = [], [], []
        for k, (f, past) in enumerate(zip(frames, states)):
            past = past if past is not None else f[:0]
            seqs.append(torch.cat([past, f]))
            offsets.append(past.shape[0])  # seqs[k][offset + i] is frames[k][i]
            targets += [(k, i) for i in range(f.shape[0]) if past.shape[0] + i >= past_needed]
        predictions = [f.new_zeros((f.shape[0], f.shape[1] if channels is None else channels, *f.shape[2:]))
                       for f in frames]
        valids = [torch.zeros(f.shape[0], dtype=torch.bool) for f in frames]
        for s in range(0, len(targets), batch):
            part = targets[s:s + batch]
            windows = torch.stack([seqs[k][offsets[k] + i + end - history: offsets[k] + i + end] for k, i in part])
            out = predict_next(windows)
            for (k, i), p in zip(part, out):
                predictions[k][i] = p.to(predictions[k].dtype)
                valids[k][i] = True
        return predictions, valids, [seq[max(seq.shape[0] - past_needed, 0):].clone() for seq in seqs]

    @torch.no_grad()
    def predict_video(self, frames: torch.Tensor, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole-video prediction ``(N, C, H, W)`` and validity ``(N,)``, fed in chunks."""
        preds, valids, state = [], [], None
        for start in range(0, frames.shape[0], chunk):
            p, v, state = self.predict_stream(frames[start:start + chunk], state)
            preds.append(p)
            valids.append(v)
        return torch.cat(preds), torch.cat(valids)
