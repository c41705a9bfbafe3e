"""PyAnomaly's ``pcn_parts.erm``: AnoPCN's error refinement module.

Ye et al., "AnoPCN: Video Anomaly Detection via Deep Predictive Coding Network", ACM MM
2019. PyAnomaly's reference lists this module without members; it holds our
:class:`~pyanomaly.networks.meta.pcn.ErrorRefinementModule`.

Example:
    >>> refined = ErrorRefinementModule(in_channels=1)(torch.rand(2, 1, 32, 32))   # (2, 1, 32, 32)
"""
from pyanomaly.networks.meta.pcn import ErrorRefinementModule

__all__ = ["ErrorRefinementModule"]
