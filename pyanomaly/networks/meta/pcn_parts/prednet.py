"""PyAnomaly's ``pcn_parts.prednet``: ``PredNet`` and its helper functions.

``PredNet`` (Lotter, Kreiman and Cox, ICLR 2017) keeps PyAnomaly's signature, argument
meanings and methods (``forward(A0_withTimeStep, initial_states)``, ``step``,
``get_initial_states``, ``make_layers``, ``isNotTopestLayer``). ``get_activationFunc`` is
PyAnomaly's name for :func:`~pyanomaly.networks.meta.activations.get_activation`.

The recurrent state is a :class:`PredNetState` named tuple rather than a flat list of
tensors; ``get_initial_states`` returns one and ``forward`` takes it (see ``docs/networks.md``).

Example:
    >>> net = PredNet((1, 8, 16), (8, 8, 16), (3, 3), (3, 3, 3), (3, 3, 3), output_mode="prediction",
    ...               data_format="channels_first")
    >>> x = torch.rand(2, 5, 1, 32, 32)
    >>> net(x, net.get_initial_states(x.shape)).shape    # the last step's prediction
    torch.Size([2, 1, 32, 32])
"""
from pyanomaly.networks.meta.activations import batch_flatten, get_activation, hard_sigmoid
from pyanomaly.networks.meta.prednet import PredNet, PredNetState

get_activationFunc = get_activation

__all__ = ["PredNet", "PredNetState", "batch_flatten", "get_activationFunc", "hard_sigmoid"]
