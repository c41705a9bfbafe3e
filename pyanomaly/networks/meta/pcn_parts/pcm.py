"""PyAnomaly's ``pcn_parts.pcm``: AnoPCN's predictive coding module.

Ye et al., "AnoPCN: Video Anomaly Detection via Deep Predictive Coding Network", ACM MM
2019. PyAnomaly's reference lists this module without members; it holds our
:class:`~pyanomaly.networks.meta.pcn.PredictiveCodingModule`.

Example:
    >>> preds, state = PredictiveCodingModule(in_channels=1, hidden_channels=(16,))(torch.rand(2, 4, 1, 32, 32))
"""
from pyanomaly.networks.meta.pcn import PredictiveCodingModule

__all__ = ["PredictiveCodingModule"]
