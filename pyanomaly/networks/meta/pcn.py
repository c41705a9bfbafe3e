"""AnoPCN parts: a Predictive Coding Module (PCM) and an Error Refinement Module (ERM).

Ye, Peng, Li, Gong, Chen and Wang, "AnoPCN: Video Anomaly Detection via Deep Predictive
Coding Network", ACM MM 2019. The PCM is a convolutional recurrent network in which
feedforward connections carry prediction errors and feedback connections carry frame
predictions: at each step it compares the frame with the prediction it made one step
earlier, encodes the frame, the signed error and the motion (frame difference), updates a
ConvLSTM and predicts the next frame. The ERM is a small U-Net that refines the PCM's coarse
prediction. (In the paper the ERM reconstructs the *current* prediction error; here it
refines from the past only, i.e. the coarse prediction plus whatever context the method
passes, so the refined frame is still a prediction.)

Example:
    >>> pcm = PredictiveCodingModule(in_channels=1, hidden_channels=(32,))
    >>> preds, state = pcm(torch.rand(2, 8, 1, 64, 64))   # preds[:, t] predicts frame t
    >>> erm = ErrorRefinementModule(in_channels=1, context_channels=2)
    >>> refined = erm(preds[:, -1], torch.rand(2, 2, 64, 64))   # (2, 1, 64, 64)
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.networks.fast import FastPath
from pyanomaly.networks.fast import ops as fast
from pyanomaly.registry import NETWORKS

from .convlstm import ConvLSTM
from .convlstm_forecaster import StridedEncoder, UpsamplingDecoder, check_divisible


@NETWORKS.register_module()
class PredictiveCodingModule(nn.Module):
    """Recurrent next-frame predictor driven by its own prediction errors.

    At step ``t`` with frame ``x_t`` and the prediction ``p_t`` made at step ``t-1``, the
    input is ``[x_t, relu(x_t - p_t), relu(p_t - x_t), x_t - x_{t-1}]`` (the error terms are 0
    while there is no prediction yet, the motion term 0 at the first frame). It is encoded
    to ``H/downsample``, fed to stacked ConvLSTMs and decoded (with the input's
    full-resolution features) into ``p_{t+1}`` in [0, 1].

    Args:
        in_channels: frame channels ``C``.
        hidden_channels: channels of the stacked ConvLSTM layers.
        kernel_size: odd kernel of the ConvLSTM gate convolutions.
        downsample: power of two; the ConvLSTM runs at ``H/downsample x W/downsample``.
        base_channels: channels of the full-resolution conv features.
        motion: include the frame difference ``x_t - x_{t-1}`` in the input.
        peephole: peephole connections in the ConvLSTM.

    ``fast_path``: which parts of the inference fast path run without grad (see
    :func:`pyanomaly.networks.fast.set_fast_path`).
    """

    fast_path: FastPath = FastPath()

    def __init__(self, in_channels: int = 1, hidden_channels: Sequence[int] = (32,), kernel_size: int = 3,
                 downsample: int = 2, base_channels: int = 16, motion: bool = True, peephole: bool = False):
        super().__init__()
        hidden = [int(hidden_channels)] if isinstance(hidden_channels, int) else [int(h) for h in hidden_channels]
        self.in_channels = int(in_channels)
        self.downsample = int(downsample)
        self.motion = bool(motion)
        self.encoder = StridedEncoder(self.in_channels * (4 if self.motion else 3), base_channels, self.downsample)
        self.rnn = ConvLSTM(self.encoder.out_channels, hidden, kernel_size, return_all_layers=True,
                            peephole=peephole)
        self.decoder = UpsamplingDecoder(hidden[-1], base_channels, self.downsample, self.in_channels,
                                         skip_channels=base_channels)

    def init_state(self, batch: int, spatial: Sequence[int]) -> dict:
        """The state before the first frame of a stream.

        A dict: ``"rnn"`` (one ``(h, c)`` per ConvLSTM layer, at ``H/downsample``),
        ``"frame"`` (the last frame seen, ``(B, C, H, W)``, None at the start) and
        ``"prediction"`` (the pending prediction of the next frame, None at the start).
        """
        h, w = spatial
        check_divisible(h, w, self.downsample, "PredictiveCodingModule")
        small = (h // self.downsample, w // self.downsample)
        return {"rnn": self.rnn.init_hidden(batch, small), "frame": None, "prediction": None}

    def step(self, frame: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """Read ``frame`` ``(B, C, H, W)``; return the prediction of the *next* frame and the state."""
        prediction, previous = state["prediction"], state["frame"]
        if prediction is None:
            error_pos = error_neg = torch.zeros_like(frame)
        else:
            error_pos, error_neg = F.relu(frame - prediction), F.relu(prediction - frame)
        parts = [frame, error_pos, error_neg]
        if self.motion:
            parts.append(torch.zeros_like(frame) if previous is None else frame - previous)
        full, feats = self.encoder(fast.inference_layout(torch.cat(parts, dim=1), self.fast_path))
        outs, rnn_state = self.rnn(feats.unsqueeze(1), hidden_state=state["rnn"])
        nxt = self.decoder(outs[-1][:, 0], full)
        return nxt, {"rnn": rnn_state, "frame": frame, "prediction": nxt}

    def forward(self, frames: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
        """Run over a sequence, continuing from ``state`` (a new stream when None).

        Args:
            frames: ``(B, T, C, H, W)`` in [0, 1].
            state: from :meth:`init_state` or a previous call.

        Returns:
            ``predictions`` ``(B, T, C, H, W)``, where ``predictions[:, t]`` was made before
            frame ``t`` was read (zeros for the first frame of a stream), and the new state.
            Feeding a stream in chunks gives the same predictions as one pass.
        """
        if frames.dim() != 5 or frames.shape[2] != self.in_channels:
            raise ValueError(f"PredictiveCodingModule expects (B, T, {self.in_channels}, H, W), "
                             f"got {tuple(frames.shape)}")
        if state is None:
            state = self.init_state(frames.shape[0], frames.shape[-2:])
        preds = []
        for t in range(frames.shape[1]):
            pending = state["prediction"]
            preds.append(torch.zeros_like(frames[:, t]) if pending is None else pending)
            _, state = self.step(frames[:, t], state)
        return torch.stack(preds, dim=1), state


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2))


@NETWORKS.register_module()
class ErrorRefinementModule(nn.Module):
    """A small U-Net: coarse prediction (+ context) -> refined prediction, both in [0, 1].

    The refinement is a residual in logit space, ``sigmoid(logit(coarse) + r)``, with the
    last convolution initialised to zero: the module starts as the identity, so joint
    training begins from the PCM's prediction instead of from noise.

    Args:
        in_channels: frame channels ``C``.
        context_channels: channels of the optional context (e.g. the previous frame and the
            previous prediction error), concatenated to the input; 0 for none.
        base_channels: channels at full resolution, doubled at each of the ``depth`` halvings.
        depth: number of 2x downsamplings (``H`` and ``W`` must be multiples of ``2**depth``).

    ``fast_path``: which parts of the inference fast path run without grad (here only the
    memory format; see :func:`pyanomaly.networks.fast.set_fast_path`).
    """

    fast_path: FastPath = FastPath()

    def __init__(self, in_channels: int = 1, context_channels: int = 0, base_channels: int = 16, depth: int = 2):
        super().__init__()
        self.in_channels = int(in_channels)
        self.context_channels = int(context_channels)
        self.depth = int(depth)
        chans = [base_channels * 2 ** i for i in range(self.depth + 1)]
        self.down = nn.ModuleList()
        cin = self.in_channels + self.context_channels
        for ch in chans:
            self.down.append(_double_conv(cin, ch))
            cin = ch
        self.upconv = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                    for i in reversed(range(self.depth)))
        self.up = nn.ModuleList(_double_conv(2 * chans[i], chans[i]) for i in reversed(range(self.depth)))
        self.head = nn.Conv2d(chans[0], self.in_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, coarse: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``coarse`` ``(N, C, H, W)`` in [0, 1], ``context`` ``(N, K, H, W)`` -> ``(N, C, H, W)``."""
        if coarse.dim() != 4 or coarse.shape[1] != self.in_channels:
            raise ValueError(f"ErrorRefinementModule expects coarse (N, {self.in_channels}, H, W), got {tuple(coarse.shape)}")
        k = 0 if context is None else context.shape[1]
        if k != self.context_channels:
            raise ValueError(f"ErrorRefinementModule was built for {self.context_channels} context channels, got {k}")
        check_divisible(coarse.shape[-2], coarse.shape[-1], 2 ** self.depth, "ErrorRefinementModule")
        x = fast.inference_layout(coarse if context is None else torch.cat([coarse, context], dim=1), self.fast_path)
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for upconv, block, skip in zip(self.upconv, self.up, reversed(skips[:-1])):
            x = block(torch.cat([upconv(x), skip], dim=1))
        # in float32: under fp16 autocast 1 - 1e-4 rounds to 1 and the logit would be inf
        logit = torch.logit(coarse.float(), eps=1e-4)
        return torch.sigmoid(logit + self.head(x).float()).to(coarse.dtype)
