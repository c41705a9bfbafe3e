"""Event demarcation: when a STREAMER layer closes its current event.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. A layer predicts its next input; when
the input arrives, the prediction loss says how surprising it is. A surprising input starts
a new event. Two rules, registered in ``DEMARCATIONS`` by the names ``demarcation_mode``
takes, and one forced boundary shared by both:

* ``average``: boundary when the loss exceeds the mean of the previous ``window_size``
  losses, multiplied by ``modifier`` (``modifier_type="multiply"``) or plus ``modifier``
  (``"add"``). The first loss has no history and never closes an event. With
  ``window_scope="event"`` (default) the window starts empty again after each boundary, so
  it only holds losses of the current event: right after a scene change the model is still
  learning the new scene and its loss stays high for a few inputs; measured against the calm
  losses of the old event each of them would close another one-input event (and the jump
  itself, kept in the window, would hide the next change). ``"stream"`` keeps the last
  ``window_size`` losses across boundaries.
* ``fixed``: boundary when the loss exceeds ``loss_threshold``.
* ``force_fixed_buffer``: boundary when the layer's buffer already holds ``buffer_size``
  inputs (else the oldest input is dropped and the event goes on).

A rule is called once per input with the loss and the buffer length and answers why it
closes the event (``"loss"``, ``"buffer_full"``) or ``None``. Its state (the recent losses)
is plain Python, for checkpoints.

Example:
    >>> rule = AverageDemarcation(window_size=3, modifier=1.5)
    >>> [rule(x, 1) for x in (1.0, 1.0, 2.0, 2.5, 1.0)]
    [None, None, 'loss', None, None]
"""
from __future__ import annotations

from collections import deque

from pyanomaly.registry import DEMARCATIONS, build

from .settings import MODIFIER_TYPES, WINDOW_SCOPES, StreamerSettings


class EventDemarcation:
    """Base of the rules: the forced boundary of a full buffer, and the state API.

    Args:
        buffer_size: inputs a layer's buffer holds.
        force_fixed_buffer: close the event when the buffer is full.
    """

    def __init__(self, buffer_size: int = 10, force_fixed_buffer: bool = False):
        self.buffer_size, self.force_fixed_buffer = int(buffer_size), bool(force_fixed_buffer)

    def __call__(self, loss: float, buffer_len: int) -> str | None:
        """Why an input of prediction loss ``loss`` closes the event of ``buffer_len`` inputs, or None."""
        if self.boundary(float(loss)):
            return "loss"
        if self.force_fixed_buffer and buffer_len >= self.buffer_size:
            return "buffer_full"
        return None

    def boundary(self, loss: float) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the stream so far (a new video)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@DEMARCATIONS.register_module(name="average")
class AverageDemarcation(EventDemarcation):
    """Boundary when the loss exceeds the (modified) mean of the last ``window_size`` losses.

    Args:
        window_size: losses remembered.
        modifier_type: ``"multiply"`` or ``"add"``.
        modifier: factor or offset applied to the mean.
        window_scope: ``"event"`` (the window starts empty after a boundary; the surprising loss
            is left out of it) or ``"stream"`` (it runs across boundaries).
    """

    def __init__(self, window_size: int = 50, modifier_type: str = "multiply", modifier: float = 1.0,
                 window_scope: str = "event", buffer_size: int = 10, force_fixed_buffer: bool = False):
        super().__init__(buffer_size, force_fixed_buffer)
        if modifier_type not in MODIFIER_TYPES:
            raise ValueError(f"modifier_type: unknown value {modifier_type!r}; expected one of {list(MODIFIER_TYPES)}")
        if window_scope not in WINDOW_SCOPES:
            raise ValueError(f"window_scope: unknown value {window_scope!r}; expected one of {list(WINDOW_SCOPES)}")
        self.window_scope = window_scope
        if int(window_size) < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self.modifier_type, self.modifier = modifier_type, float(modifier)
        self.history: deque[float] = deque(maxlen=int(window_size))

    def threshold(self) -> float | None:
        """The loss above which the next input closes the event (None: no history yet)."""
        if not self.history:
            return None
        mean = sum(self.history) / len(self.history)
        return mean * self.modifier if self.modifier_type == "multiply" else mean + self.modifier

    def boundary(self, loss: float) -> bool:
        limit = self.threshold()
        hit = limit is not None and loss > limit
        if hit and self.window_scope == "event":
            self.history.clear()  # the new event's window starts after the surprising input
        else:
            self.history.append(loss)
        return hit

    def reset(self) -> None:
        self.history.clear()

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history.clear()
        self.history.extend(float(v) for v in state.get("history", []))


@DEMARCATIONS.register_module(name="fixed")
class FixedDemarcation(EventDemarcation):
    """Boundary when the loss exceeds ``loss_threshold``."""

    def __init__(self, loss_threshold: float = 0.1, buffer_size: int = 10, force_fixed_buffer: bool = False):
        super().__init__(buffer_size, force_fixed_buffer)
        self.loss_threshold = float(loss_threshold)

    def boundary(self, loss: float) -> bool:
        return loss > self.loss_threshold


def build_demarcation(settings: StreamerSettings) -> EventDemarcation:
    """The rule named by ``settings.demarcation_mode``, given the settings it takes."""
    return build(DEMARCATIONS, dict(type=settings.demarcation_mode), window_size=settings.window_size,
                 modifier_type=settings.modifier_type, modifier=settings.modifier, window_scope=settings.window_scope,
                 loss_threshold=settings.loss_threshold, buffer_size=settings.buffer_size,
                 force_fixed_buffer=settings.force_fixed_buffer)
