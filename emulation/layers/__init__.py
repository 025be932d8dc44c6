"""Kernels of the fixed-point graph, one module per concept, each as hls4ml's nnet_utils computes it.

Importing this package fills :data:`KERNELS` (node kind -> kernel) and :data:`READERS`
(``nnet::`` function -> node builder).
"""

from emulation.layers import activation, conv, da, dense, merge, normalize, pooling, reshape  # noqa: F401  (registration)
from emulation.layers.registry import ARITY, CONFIG_ARG, KERNELS, READERS, lookup

__all__ = ["ARITY", "CONFIG_ARG", "KERNELS", "READERS", "lookup"]
