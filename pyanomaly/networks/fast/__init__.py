"""The inference fast path: an optimised no-grad step that equals the plain code within float tolerance.

PredNet, the ConvLSTM cell, the encoders and decoders built on it, the PCM, the ERM and the
U-Net each hold a :class:`FastPath` (attribute ``fast_path``, ``FastPath()`` by default) that
says which parts of the fast path run; :func:`set_fast_path` sets it on every module of a
model. The fast path only runs without grad: training is never affected.

* :mod:`.switches`: :class:`FastPath`, :func:`set_fast_path`, :func:`using_fast_path`;
* :mod:`.ops`: convolutions with cached, folded, prepacked weights, channels_last tensors;
* :mod:`.lstm`: the LSTM state update (in place, or one ``torch.compile``'d pass);
* :mod:`.prednet`: PredNet's step.

What each part gains is measured in ``docs/benchmarks.md``.

Example:
    >>> from pyanomaly.networks.fast import FastPath, set_fast_path
    >>> set_fast_path(model, FastPath(fused=True))      # TEST.FUSED_UPDATE
    >>> set_fast_path(model, FastPath.reference())      # the plain code even without grad
"""
from .switches import FastPath, set_fast_path, using_fast_path

__all__ = ["FastPath", "set_fast_path", "using_fast_path"]
