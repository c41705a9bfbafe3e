"""PyAnomaly's ``pcn_parts.convolution_lstm``: ``ConvLSTM`` and ``ConvLSTMCell``.

The documented signatures are those of our classes, which are re-exported as they are:

* ``ConvLSTMCell(input_channels, hidden_channels, kernel_size)``, ``forward(x, h, c)`` ->
  ``(h, c)``, each ``(B, hidden, H, W)``;
* ``ConvLSTM(input_channels, hidden_channels, kernel_size, step=1, effective_step=[1])``,
  ``forward(input)`` with ``input`` ``(B, C, H, W)`` fed ``step`` times -> ``(outputs, (h, c))``:
  ``outputs`` lists the last layer's ``h`` at each step of ``effective_step``, and ``(h, c)``
  is the last layer's final state.

``effective_step`` counts steps from 1 to ``step`` (so the documented defaults return the
one step's output); see ``docs/networks.md``.

Example:
    >>> lstm = ConvLSTM(input_channels=1, hidden_channels=[8, 4], kernel_size=3, step=4, effective_step=[2, 4])
    >>> outputs, (h, c) = lstm(torch.rand(2, 1, 16, 16))   # two (2, 4, 16, 16) outputs
"""
from pyanomaly.networks.meta.convlstm import ConvLSTM, ConvLSTMCell

__all__ = ["ConvLSTM", "ConvLSTMCell"]
