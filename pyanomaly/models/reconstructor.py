"""A reconstruction method: an autoencoder of the last ``T`` frames (or optical-flow fields).

Trained on normal videos only, an autoencoder (:class:`~pyanomaly.networks.meta.conv_ae.ConvAE`,
Hasan et al. 2016; :class:`~pyanomaly.networks.meta.memae.MemAE`, Gong et al. 2019; any
registered network mapping a window ``(B, T, C, H, W)`` to its reconstruction of the same
shape) reconstructs normal appearance or motion well and the rest badly. Frame ``t``'s window
is frames ``t-T+1 .. t``: it ends at frame ``t`` and reads nothing later, so the method is
causal; a video's first frames without a full window have no prediction (``valid`` False,
counted by the protocol, never zero-filled).

``modality``:

* ``"frame"``: the window of frames is reconstructed; the prediction of frame ``t`` is the
  reconstruction of frame ``t`` (the last of its window), a *reconstruction* from frames
  ``<= t`` rather than a prediction from earlier frames (``reconstructs = True``), scored as
  a predicted frame is (``SCORE.ERROR PSNR`` or ``AREA``). The first ``T - 1`` frames of a
  video are not valid.
* ``"flow"``: the window of optical flows into frames ``t-T+1 .. t`` (dx, dy in pixels,
  divided by ``flow_scale``) is reconstructed; the prediction of frame ``t`` is an anomaly map
  ``(N, 1, H, W)``: the per-pixel endpoint error, in pixels, between the reconstructed and the
  actual flow into frame ``t`` (``output = "anomaly_map"``, reduced by ``SCORE.ERROR
  CELL_TOP`` or ``CELL_MAX``). Training reads each clip's cached flow (``batch["flow"]``:
  ``DATASET.FLOW``); test time computes the flow causally from the frames
  (:meth:`~pyanomaly.flow.OpticalFlow.stream`, the same ``flow`` spec), its state carried
  across chunks. The first frame has no flow, so the first ``T`` frames are not valid.

The loss is the mean squared error of the reconstruction, plus ``entropy_weight`` times the
mean entropy of the memory's addressing weights for a network with a
:class:`~pyanomaly.networks.meta.memory.Memory` (MemAE).

Example:
    >>> model = Reconstructor(network=dict(type="MemAE", in_channels=1, base_channels=16, depth=3),
    ...                       frames=4)
    >>> losses = model({"frames": torch.rand(2, 4, 1, 64, 64)})   # loss_mse, loss_entropy
    >>> recon, valid, state = model.predict_stream(frames)        # (N, 1, 64, 64); valid[:3] False
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pyanomaly.errors import ConfigError
from pyanomaly.flow import OpticalFlow
from pyanomaly.networks.meta.memory import Memory
from pyanomaly.registry import MODELS, NETWORKS, accepted_arguments, build

from .base import VADModel

MODALITIES = {"frame": "frame", "flow": "anomaly_map"}  # modality -> output


@MODELS.register_module()
class Reconstructor(VADModel):
    """Args:
        network: keyword arguments with ``type`` of a network mapping a window ``(B, T, C, H,
            W)`` to its reconstruction ``(B, T, C, H, W)`` (``ConvAE``, ``MemAE``); its
            ``frames`` (and, for flow, ``in_channels`` 2 and ``activation`` ``"none"``) are
            filled in when it takes them.
        modality: ``"frame"`` (reconstruct the frames) or ``"flow"`` (reconstruct the optical flow).
        frames: ``T``, frames per window; ``clip_length`` must be at least ``T`` (frames) or
            ``T + 1`` (flow: a clip of ``L`` frames has ``L - 1`` flows).
        clip_length: frames per training clip (``DATASET.CLIP_LENGTH``), checked against ``frames``.
        flow: the optical flow computed at test time, ``{type: dis | farneback, preset: ...}``
            (:class:`~pyanomaly.flow.OpticalFlow`); set ``DATASET.FLOW`` to the same for training.
        flow_scale: pixels per unit of the reconstructed flow (the network sees flow / flow_scale).
        entropy_weight: weight of the addressing entropy loss (a network with a ``Memory``;
            0.0002 as in MemAE).
        batch_windows: test-time windows reconstructed per forward pass.
    """

    inference_args = ("batch_windows",)

    def __init__(self, network: dict, modality: str = "frame", frames: int = 4, clip_length: int | None = None,
                 flow: dict | None = None, flow_scale: float = 2.0, entropy_weight: float = 0.0002,
                 batch_windows: int = 16):
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"Reconstructor modality must be one of {sorted(MODALITIES)}, got {modality!r}")
        self.modality, self.output = modality, MODALITIES[modality]
        self.reconstructs = modality == "frame"
        self.frames = int(frames)
        if self.frames < 1:
            raise ValueError(f"Reconstructor frames (the window T) must be >= 1, got {frames}")
        need = self.frames + (modality == "flow")
        if clip_length is not None and int(clip_length) < need:
            raise ValueError(f"Reconstructor of {self.frames} {modality} windows needs DATASET.CLIP_LENGTH >= {need}"
                             f"{' (a clip of L frames has L - 1 flows)' if modality == 'flow' else ''}, "
                             f"got {clip_length}")
        if float(flow_scale) <= 0:
            raise ValueError(f"Reconstructor flow_scale must be > 0 pixels, got {flow_scale}")
        self.training_flow = OpticalFlow(**(flow or {})) if modality == "flow" else None
        self.flow_scale, self.entropy_weight = float(flow_scale), float(entropy_weight)
        self.batch_windows = int(batch_windows)
        self.net = build(NETWORKS, self._network_args(dict(network)))

    def _network_args(self, network: dict) -> dict:
        """The network's arguments with what the method fixes filled in where it takes them: the
        window ``frames`` and, for flow, 2 channels and an unbounded output."""
        kind = network.get("type")
        cls = kind if isinstance(kind, type) else NETWORKS.get(kind) if isinstance(kind, str) else None
        accepted = (accepted_arguments(cls) or ()) if cls is not None else ()
        fixed = {"frames": self.frames}
        if self.modality == "flow":
            fixed.update(in_channels=2, activation="none")
        for key, value in fixed.items():
            if key not in accepted:
                continue
            if key in network and network[key] != value:
                why = "the window, MODEL.ARGS.frames" if key == "frames" else "what a flow needs"
                raise ValueError(f"MODEL.ARGS.network.{key} {network[key]!r} differs from {why} ({value!r}) of a "
                                 f"{self.modality} Reconstructor; leave it out")
            network[key] = value
        return network

    # -- training ------------------------------------------------------------------------------
    def target(self, batch: dict) -> torch.Tensor:
        """The window a training clip is reconstructed from: ``(B, T, C, H, W)`` (frames in [0, 1],
        or flow / flow_scale with ``C`` = 2)."""
        if self.modality == "frame":
            source, name = batch["frames"], "frames"
        else:
            if "flow" not in batch:
                raise ConfigError("Reconstructor(modality='flow') trains on each clip's optical flow, but the batch "
                                 "holds none: set DATASET.FLOW (e.g. {type: dis, preset: medium}, as MODEL.ARGS.flow)")
            source, name = batch["flow"] / self.flow_scale, "flow"
        if source.shape[1] < self.frames:
            raise ConfigError(f"Reconstructor needs {self.frames} {name} per clip, the batch holds {source.shape[1]} "
                             "(raise DATASET.CLIP_LENGTH)")
        return source[:, -self.frames:]

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        window = self.target(batch)
        losses = {"loss_mse": F.mse_loss(self.net(window), window)}
        if isinstance(getattr(self.net, "memory", None), Memory) and self.entropy_weight > 0:
            losses["loss_entropy"] = self.entropy_weight * Memory.entropy(self.net.weights)
        return losses

    # -- streaming -----------------------------------------------------------------------------
    def reconstruct_last(self, windows: torch.Tensor) -> torch.Tensor:
        """Reconstruction of the last entry of each window ``(B, T, C, H, W)``: ``(B, C, H, W)``."""
        return self.net(windows)[:, -1]

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        if self.modality == "frame":
            return self.stream_windows(frames, states, self.frames, self.reconstruct_last, self.batch_windows,
                                       current=True)
        return self._flow_streams(frames, states)

    def _flow_streams(self, frames: list[torch.Tensor], states: list):
        """Flow modality: a video's state is ``(last frame for the flow, last flows of the window)``."""
        flows, leads, flow_states = [], [], []
        for f, state in zip(frames, states):
            prev, _ = state if state is not None else (None, None)
            flow, _, prev_next = self.training_flow.stream(f, prev)
            lead = int(prev is None and f.shape[0] > 0)  # the video's first frame has no flow
            flows.append(flow)
            leads.append(lead)
            flow_states.append(prev_next)
        windows = [(fl[lead:] / self.flow_scale) for fl, lead in zip(flows, leads)]
        recon, valid, window_states = self.stream_windows(
            windows, [s[1] if s is not None else None for s in states], self.frames, self.reconstruct_last,
            self.batch_windows, current=True)
        maps, valids = [], []
        for fl, lead, r, v in zip(flows, leads, recon, valid):
            epe = torch.zeros(fl.shape[0], 1, *fl.shape[-2:], dtype=fl.dtype, device=fl.device)
            ok = torch.cat([torch.zeros(lead, dtype=torch.bool), v])  # frame i of the chunk is window i - lead
            rows = ok.to(fl.device)
            rebuilt = r[v.to(r.device)].to(fl.dtype) * self.flow_scale
            epe[rows] = torch.linalg.vector_norm(rebuilt - fl[rows], dim=1, keepdim=True)
            maps.append(epe)
            valids.append(ok)
        return maps, valids, list(zip(flow_states, window_states))
