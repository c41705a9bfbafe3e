"""A U-Net that predicts the next frame from a short history stacked on channels.

The generator of FFP (Liu et al., "Future Frame Prediction for Anomaly Detection - A New
Baseline", CVPR 2018), after Ronneberger et al. 2015: the ``T`` observed frames are
concatenated on channels, an encoder of two 3x3 convolutions per level halves the
resolution ``depth`` times (channels doubling), and a decoder upsamples back, joining each
level's encoder features (skip connections) so that fine detail need not pass through the
bottleneck. No recurrence: the history length is fixed when the network is built.

Its output need not be a frame: ``out_channels`` and ``out_activation="none"`` make it predict
an unbounded field of another size, such as the optical flow into the next frame ``(B, 2, H, W)``
(:class:`~pyanomaly.models.flow_predictor.FlowPredictor`); a method that stacks other inputs
with the frames (flows) gives them as one step of ``in_channels`` channels (``history=1``).

Example:
    >>> net = UNet(in_channels=1, history=4, base_channels=32, depth=3)
    >>> nxt = net(torch.rand(2, 4, 1, 128, 128))   # (2, 1, 128, 128) in [0, 1]
    >>> flow = UNet(in_channels=10, history=1, out_channels=2, out_activation="none")
    >>> f = flow(torch.rand(2, 1, 10, 128, 128))    # (2, 2, 128, 128), unbounded
"""
from __future__ import annotations

import torch
from torch import nn

from pyanomaly.networks.fast import FastPath
from pyanomaly.networks.fast import ops as fast
from pyanomaly.registry import NETWORKS

from .convlstm_forecaster import check_divisible

#: output activations: name -> the head's activation (also the fast path's fused post-op)
OUT_ACTIVATIONS = {"sigmoid": torch.sigmoid, "none": lambda x: x}


def _double_conv(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@NETWORKS.register_module()
class UNet(nn.Module):
    """History ``(B, T, C, H, W)`` (frames in [0, 1], or inputs stacked on channels) -> next frame
    ``(B, C_out, H, W)`` in [0, 1] (unbounded with ``out_activation="none"``).

    Args:
        in_channels: channels ``C`` of each history step (a frame's, or all inputs stacked).
        history: ``T``, observed frames (``DATASET.CLIP_LENGTH - 1`` in a ``FramePredictor``).
        base_channels: channels of the full-resolution level (doubled at each halving).
        depth: halvings; ``H`` and ``W`` must be multiples of ``2 ** depth``.
        batch_norm: batch normalisation after each convolution (as FFP's generator).
        out_channels: channels ``C_out`` of the output; ``None`` = ``in_channels`` (a frame).
        out_activation: ``"sigmoid"`` (an output in [0, 1], a frame) or ``"none"`` (unbounded,
            e.g. a flow).

    ``fast_path``: which parts of the inference fast path run in eval mode without grad (see
    :func:`pyanomaly.networks.fast.set_fast_path`).
    """

    fast_path: FastPath = FastPath()

    def __init__(self, in_channels: int = 1, history: int = 4, base_channels: int = 32, depth: int = 3,
                 batch_norm: bool = True, out_channels: int | None = None, out_activation: str = "sigmoid"):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if min(int(depth), int(history), int(base_channels), int(in_channels), int(out_channels)) < 1:
            raise ValueError(f"UNet needs depth, history, base_channels, in_channels and out_channels >= 1, got "
                             f"{depth}, {history}, {base_channels}, {in_channels}, {out_channels}")
        if out_activation not in OUT_ACTIVATIONS:
            raise ValueError(f"UNet out_activation must be one of {sorted(OUT_ACTIVATIONS)}, got {out_activation!r}")
        self.in_channels, self.history, self.depth = int(in_channels), int(history), int(depth)
        self.out_channels, self.out_activation = int(out_channels), out_activation
        widths = [int(base_channels) * 2 ** i for i in range(self.depth + 1)]
        self.down = nn.ModuleList([_double_conv(self.in_channels * self.history, widths[0], batch_norm)])
        self.down.extend(_double_conv(widths[i], widths[i + 1], batch_norm) for i in range(self.depth))
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                      for i in reversed(range(self.depth)))
        self.up = nn.ModuleList(_double_conv(2 * widths[i], widths[i], batch_norm)
                                for i in reversed(range(self.depth)))
        self.head = nn.Conv2d(widths[0], self.out_channels, 1)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """``history`` ``(B, T, C, H, W)`` -> prediction of what follows it ``(B, C_out, H, W)``."""
        if history.dim() != 5 or history.shape[1:3] != (self.history, self.in_channels):
            raise ValueError(f"UNet expects (B, {self.history}, {self.in_channels}, H, W) (history={self.history} "
                             f"frames of in_channels={self.in_channels}), got {tuple(history.shape)}")
        b, t, c, h, w = history.shape
        check_divisible(h, w, 2 ** self.depth, "UNet")
        # batch statistics (training mode) cannot be folded into the weights
        foldable = not any(m.training or m.running_var is None for m in self.modules() if isinstance(m, nn.BatchNorm2d))
        dtype = fast.compute_dtype(self.head.weight, self.fast_path) if foldable else None
        if dtype is not None:  # evaluation without grad: the optimised path
            return self._fast_forward(history.reshape(b, t * c, h, w), dtype)
        x = self.down[0](history.reshape(b, t * c, h, w))
        skips = [x]
        for level in self.down[1:]:
            x = level(self.pool(x))
            skips.append(x)
        skips.pop()  # the bottleneck itself
        for upsample, level in zip(self.upsample, self.up):
            x = level(torch.cat([upsample(x), skips.pop()], dim=1))
        return OUT_ACTIVATIONS[self.out_activation](self.head(x))

    def _fast_forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """:meth:`forward` in eval mode without grad on stacked frames ``(B, T C, H, W)``:
        channels_last ``dtype`` tensors, each convolution with its batch norm folded into
        its (cached) weights and the ReLU fused (equal to the plain code within float tolerance)."""
        switches = self.fast_path
        x = self._fast_level(self.down[0], fast.to_fast(x, dtype, switches), dtype)
        skips = [x]
        for level in self.down[1:]:
            x = self._fast_level(level, self.pool(x), dtype)
            skips.append(x)
        skips.pop()
        for upsample, level in zip(self.upsample, self.up):
            w, bias = fast.conv_weights(upsample, dtype, switches)
            up = torch.nn.functional.conv_transpose2d(x, w, bias, upsample.stride, upsample.padding,
                                                      upsample.output_padding, upsample.groups, upsample.dilation)
            x = self._fast_level(level, torch.cat([up, skips.pop()], dim=1), dtype)
        post = None if self.out_activation == "none" else self.out_activation
        return fast.conv(x, fast.conv_weights(self.head, dtype, switches), self.head, switches, post=post)

    def _fast_level(self, seq: nn.Sequential, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A :func:`_double_conv` block: (conv, [batch norm], ReLU) twice, each as one convolution."""
        switches = self.fast_path
        convs = [m for m in seq if isinstance(m, nn.Conv2d)]
        norms = [m for m in seq if isinstance(m, nn.BatchNorm2d)]
        for i, conv in enumerate(convs):
            weights = (fast.conv_bn_weights(conv, norms[i], dtype, switches) if norms
                       else fast.conv_weights(conv, dtype, switches))
            x = fast.conv(x, weights, conv, switches, post="relu")
        return x

