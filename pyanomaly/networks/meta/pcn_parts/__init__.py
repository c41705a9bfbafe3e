"""PyAnomaly's ``networks.meta.pcn_parts`` package (2021) at its documented import paths.

Each submodule re-exports our meta parts under the names PyAnomaly documented, so code
written against that API imports and runs unchanged. No network is defined here: the
classes are the ones of :mod:`pyanomaly.networks.meta` (registered there, once).

* :mod:`.convolution_lstm`: ``ConvLSTM``, ``ConvLSTMCell`` (Shi et al., NeurIPS 2015);
* :mod:`.prednet`: ``PredNet`` (Lotter et al., ICLR 2017), ``hard_sigmoid``,
  ``batch_flatten``, ``get_activationFunc``;
* :mod:`.pcm`, :mod:`.erm`: AnoPCN's predictive coding and error refinement modules
  (Ye et al., ACM MM 2019).

Where the behaviour differs from the 2021 package, ``docs/networks.md`` ("Seed APIs") says
how and why.

Example:
    >>> from pyanomaly.networks.meta.pcn_parts.convolution_lstm import ConvLSTM
    >>> outputs, (h, c) = ConvLSTM(1, [8, 8], 3, step=3, effective_step=[3])(torch.rand(2, 1, 16, 16))
"""
from . import convolution_lstm, erm, pcm, prednet

__all__ = ["convolution_lstm", "prednet", "pcm", "erm"]
