"""Other projects' documented APIs, as thin adapters over pyanomaly's networks.

Code written against these APIs runs here with the documented signatures, defaults, return
conventions and method names; the computation is that of :mod:`pyanomaly.networks.meta`.
Nothing here is registered in ``NETWORKS`` (build our own classes from configs).

* :mod:`pyanomaly.compat.convlstm`: the common PyTorch ``ConvLSTM`` / ``ConvLSTMCell``
  (``batch_first``, ``return_all_layers``; outputs and states as lists);
* :mod:`pyanomaly.compat.streamer`: STREAMER's ``streamer.models.networks`` and
  ``streamer.models.layer`` (per-module learning rates, ``optimize_layer``).

PyAnomaly's own 2021 API lives at its documented path,
:mod:`pyanomaly.networks.meta.pcn_parts`. ``docs/networks.md`` ("Seed APIs") lists every
documented name and each deliberate divergence.
"""
