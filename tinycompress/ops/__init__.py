"""Operator lowerings: each module turns one TFLite operator into one kernel call.

A module registers itself with @lowering("OP_NAME", inputs=..., shape=...); firmware/kernels/ holds the
matching C kernel, one operator per file. Beside the lowering, each operator states what the model
verifier (verify.py) checks of its layers before anything is lowered: how many inputs it needs, the
options table it reads, and the output shape it computes from its inputs and options.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import TinyCompressError
from ..ir import Graph, Layer, Tensor

# (layer, graph, its inputs as tensors (None where omitted), "layer NAME (OP)" for messages) -> the output
# shape the operator computes, or None where the declared one stands (after the rule's own checks). A rule
# raises a TinyCompressError, naming the layer, on inputs or options the kernel cannot run correctly.
ShapeRule = Callable[[Layer, Graph, list["Tensor | None"], str], "tuple[int, ...] | None"]


@dataclass(frozen=True)
class OpRule:
    """What the verifier checks of an operator's layers (verify.py), declared beside its lowering."""
    inputs: int                      # inputs it needs (the rest are optional)
    shape: ShapeRule                 # the output shape it computes
    check: ShapeRule | None = None   # further checks after the shape is known (weights, rescaling)
    options: str | None = None       # the schema's options table it reads, e.g. "Conv2DOptionsT"
    options_required: bool = False   # without the table TFLite Micro runs it with zeroed parameters


LOWERINGS: dict[str, Callable] = {}
RULES: dict[str, OpRule] = {}


def lowering(*op_names: str, inputs: int, shape: ShapeRule, check: ShapeRule | None = None,  # noqa: F811
             options: str | dict[str, str] | None = None, options_required: bool = False):
    """Register the decorated lowering for `op_names`, with the verifier's rule for them; `options` names
    the options table, or maps each op name to its own."""
    def register(fn):
        for name in op_names:
            table = options.get(name) if isinstance(options, dict) else options
            LOWERINGS[name] = fn
            RULES[name] = OpRule(inputs, shape, check, table, options_required)
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
from . import (batch_matmul, conv2d, depthwise_conv2d, elementwise, fill, fully_connected, gather,  # noqa: E402,F401
               pool2d, prelu, quantize, reduce, reshape, resize, shape, softmax, transpose_conv, unary)
