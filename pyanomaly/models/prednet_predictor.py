"""PredNet as an anomaly detector: trained on normal video, scored by next-frame error.

Training loss (Lotter et al. 2017): the mean error-unit activity of each layer, weighted by
``layer_loss_weights``, averaged over time steps with the first step (no history) ignored.
At test time each frame is predicted, by default, from the ``clip_length - 1`` frames
before it with a fresh state (``test_window``), the regime the model was trained in.
``test_window=0`` instead feeds each video as one stream with the state carried (cost per
frame independent of the window), which is faster but can drift: after an anomaly the
recurrent state of a PredNet trained on short clips may not return to normal.

Example:
    >>> model = PredNetPredictor(network=dict(type="PredNet", stack_sizes=(1, 16, 32),
    ...     R_stack_sizes=(16, 16, 32), A_filter_sizes=(3, 3), Ahat_filter_sizes=(3, 3, 3),
    ...     R_filter_sizes=(3, 3, 3)))
    >>> losses = model({"frames": torch.rand(2, 10, 1, 64, 64)})
"""
from __future__ import annotations

from typing import Sequence

import torch

from pyanomaly.registry import MODELS, NETWORKS, build

from .base import VADModel
from .stream_batch import group_streams, stack_states, unstack_states


@MODELS.register_module()
class PredNetPredictor(VADModel):
    """Args:
        network: PredNet keyword arguments with ``type`` (any network with PredNet's
            ``get_initial_states`` / ``step`` API, whose state counts its steps in ``t``, as
            :class:`~pyanomaly.networks.meta.PredNetState`); ``data_format`` is channels_first.
        layer_loss_weights: weight of each layer's error in the loss (default: ``1`` for
            layer 0 and ``0.1`` above).
        clip_length: frames per training clip (``DATASET.CLIP_LENGTH``).
        test_window: frames of history + 1 used to predict a test frame; ``None`` =
            ``clip_length``; ``0`` = one stream per video, state carried.
        batch_windows: test-time windows predicted per forward pass.
    """

    inference_args = ("test_window", "batch_windows")

    def __init__(self, network: dict, layer_loss_weights: Sequence[float] | None = None,
                 clip_length: int = 10, test_window: int | None = None, batch_windows: int = 16):
        super().__init__()
        self.test_window = clip_length if test_window is None else int(test_window)
        if self.test_window == 1 or self.test_window < 0:
            raise ValueError(f"test_window must be 0 (stream) or >= 2, got {test_window}")
        self.batch_windows = batch_windows
        network = dict(network)
        network["data_format"] = "channels_first"
        self.net = build(NETWORKS, network)
        n = self.net.nb_layers
        if layer_loss_weights is None:
            layer_loss_weights = [1.0] + [0.1] * (n - 1)
        if len(layer_loss_weights) != n:
            raise ValueError(f"layer_loss_weights needs {n} entries (one per PredNet layer), got {layer_loss_weights}")
        self.register_buffer("layer_weights", torch.tensor(layer_loss_weights, dtype=torch.float32), persistent=False)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        x = batch["frames"]
        states = self.net.get_initial_states(x.shape)
        T = x.shape[1]
        total = x.new_zeros(())
        for t in range(T):
            units, states = self.net.step(x[:, t], states)
            if t == 0:
                continue  # the first prediction has no history
            errors = torch.stack([e.mean(dim=(1, 2, 3)) for e in units["E"]], dim=1)  # (B, layers)
            total = total + (errors * self.layer_weights).sum(dim=1).mean() / (T - 1)
        return {"loss_prediction": total}

    @torch.no_grad()
    def predict_next(self, history: torch.Tensor) -> torch.Tensor:
        """Frame after ``history`` ``(B, T, C, H, W)``, from a fresh state: ``(B, C, H, W)``."""
        states = self.net.get_initial_states(history.shape)
        for t in range(history.shape[1]):
            _, states = self.net.step(history[:, t], states)
        if hasattr(self.net, "next_prediction"):  # PredNet: only the part of a step that predicts
            return self.net.next_prediction(states)
        # The prediction of a step is made before its input is seen, so any frame will do.
        units, _ = self.net.step(history[:, -1], states)
        return units["prediction"]

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        if self.test_window:
            return self.stream_windows(frames, states, self.test_window - 1, self.predict_next, self.batch_windows)
        predictions, valids, new_states = [None] * len(frames), [None] * len(frames), [None] * len(frames)
        steps = [0 if s is None else s.t for s in states]
        # the steps taken only matter to a network that extrapolates from some step on
        extrapolates = getattr(self.net, "extrap_start_time", None) is not None
        for idx in group_streams(frames, steps, lambda f, t: (f.shape[0], t if extrapolates else None)):
            x = torch.stack([frames[i] for i in idx])  # (B, n, C, H, W): one sequence per video
            start = [self.net.get_initial_states(x[:1].shape) if states[i] is None else states[i] for i in idx]
            # one step count for the batch: a fresh state's zero-input shortcut is only taken where
            # every row is zero, so a batch of fresh and running streams is computed in full
            state = stack_states([s._replace(t=0) for s in start])._replace(t=min(steps[i] for i in idx))
            preds = []
            for t in range(x.shape[1]):
                units, state = self.net.step(x[:, t], state)
                preds.append(units["prediction"].to(x.dtype))  # bf16 under autocast
            pred = torch.stack(preds, dim=1) if preds else x.clone()
            for j, (i, part) in enumerate(zip(idx, unstack_states(state._replace(t=0), len(idx)))):
                n = x.shape[1]
                predictions[i] = pred[j]
                valids[i] = torch.arange(steps[i], steps[i] + n) > 0
                new_states[i] = part._replace(t=steps[i] + n)
        return predictions, valids, new_states
