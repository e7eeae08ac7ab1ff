"""What the KERAS-stage methods that reshape layers share (prune, cp): the model's layer graph, a clone with
some layers' configs and weights replaced, and a layer's int8 weight bytes.

A method decides, per layer, a new config and new weights, or layers to put in its place; `rebuild` makes the
model again layer by layer, so branches, merges and call arguments stay as they were, and the layer names
too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import TinyCompressError

REQUANT_BYTES = 8     # int32 multiplier + int32 shift of one output channel, in flash


def keras():
    from ..frontend.quantize import _tensorflow
    _tensorflow()
    import keras as k
    return k


@dataclass
class LayerGraph:
    """The model's layers in call order (no InputLayer), who feeds each and whom each feeds."""
    layers: list
    producers: dict[str, list] = field(default_factory=dict)   # name -> the layers it reads, InputLayers too
    consumers: dict[str, list] = field(default_factory=dict)   # name -> the layers that read it
    outputs: set[str] = field(default_factory=set)              # names of the layers the model returns


def layer_graph(model) -> LayerGraph:
    k = keras()
    layers = [layer for layer in model.layers if not isinstance(layer, k.layers.InputLayer)]
    graph = LayerGraph(layers, consumers={layer.name: [] for layer in model.layers})
    for layer in layers:
        nodes = layer._inbound_nodes
        if len(nodes) != 1:
            raise TinyCompressError(f"layer {layer.name} is called {len(nodes)} times (shared, or used in "
                                    "another model too); save the model and load it, so that each layer is "
                                    "called once")
        graph.producers[layer.name] = [parent.operation for parent in nodes[0].parent_nodes]
        for parent in graph.producers[layer.name]:
            graph.consumers[parent.name].append(layer)
    graph.outputs = {t._keras_history.operation.name for t in model.outputs}
    return graph


def rebuild(model, configs: dict[str, dict] | None = None, weights: dict[str, list] | None = None,
            replace: dict[str, Callable] | None = None):
    """The model again, layer by layer in call order, with the same inputs (names and batch size included),
    call arguments and layer names: `configs[name]` (a new get_config()) and `weights[name]` in place of
    those layers' own, and `replace[name](x)` (it builds and calls layers of its own on the layer's input
    tensor, and returns their output) in place of those layers altogether."""
    k = keras()
    configs, weights, replace = configs or {}, weights or {}, replace or {}
    inputs = [k.Input(batch_shape=tuple(t.shape), dtype=t.dtype, name=t._keras_history.operation.name)
              for t in model.inputs]
    made = {id(old): new for old, new in zip(model.inputs, inputs)}

    def new_of(x):
        return made[id(x)] if isinstance(x, k.KerasTensor) else x

    built = []
    for layer in layer_graph(model).layers:
        node = layer._inbound_nodes[0]
        args = k.tree.map_structure(new_of, node.arguments.args)
        kwargs = k.tree.map_structure(new_of, node.arguments.kwargs)
        if layer.name in replace:
            out = replace[layer.name](args[0])
        else:
            new = type(layer).from_config(configs.get(layer.name, layer.get_config()))
            out = new(*args, **kwargs)
            built.append((new, weights.get(layer.name, layer.get_weights())))
        for old, tensor in zip(node.output_tensors, k.tree.flatten(out)):
            made[id(old)] = tensor
    outputs = [new_of(t) for t in model.outputs]
    rebuilt = k.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                      name=model.name)
    for new, values in built:
        new.set_weights(values)
    return rebuilt


def int8_bytes(kernel_size: int, out_channels: int, bias: bool, per_channel: bool = True) -> int:
    """A weight layer's flash once full-int8: 1 B a weight, 4 B a bias, the requantization (8 B per output
    channel, or 8 B for a per-tensor Dense). An estimate made before conversion; the report measures."""
    return kernel_size + 4 * out_channels * bias + REQUANT_BYTES * (out_channels if per_channel else 1)


def weight_layer_bytes(layer, weights: list[np.ndarray]) -> int:
    """int8_bytes of a Dense, Conv2D or DepthwiseConv2D from its (kernel[, bias]) weights."""
    k = keras()
    kernel = weights[0]
    depthwise = isinstance(layer, k.layers.DepthwiseConv2D)
    out = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[-1]
    return int8_bytes(kernel.size, out, len(weights) > 1, per_channel=not isinstance(layer, k.layers.Dense))


def params(weights: list[np.ndarray]) -> int:
    return int(sum(w.size for w in weights))
