"""Operator lowerings: each module turns one TFLite operator into one kernel call.

A module registers itself with @lowering("OP_NAME"); firmware/kernels/ holds the
matching C kernel, one operator per file.
"""
from __future__ import annotations

from typing import Callable

from ..errors import TinyCompressError
from ..ir import Graph, Layer

LOWERINGS: dict[str, Callable] = {}


def lowering(*op_names: str):
    def register(fn):
        for name in op_names:
            LOWERINGS[name] = fn
        return fn
    return register


def lower_layer(layer: Layer, graph: Graph):
    fn = LOWERINGS.get(layer.op)
    if fn is None:
        raise TinyCompressError(
            f"operator {layer.op} (layer {layer.name}) is not supported; "
            f"supported operators: {', '.join(supported_operators())}")
    return fn(layer, graph)


def supported_operators() -> list[str]:
    return sorted(LOWERINGS)


# Importing the modules registers them.
from . import (add, conv2d, depthwise_conv2d, fully_connected, gather, mean, pool2d, prelu, reshape,  # noqa: E402,F401
               softmax, unary)
