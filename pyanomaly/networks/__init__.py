"""Networks: the meta parts methods are built from (see :mod:`pyanomaly.networks.meta`)."""
