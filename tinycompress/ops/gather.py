"""GATHER and EMBEDDING_LOOKUP of rows of a constant int8 table: an embedding lookup.

The indices are int32 token ids. With `--embedding` the pipeline has put a compressed form of the table
(tinycompress/compress/embeddings.py) in the layer's options: the call then goes to that method's kernel,
which decodes each row on the fly, and the table itself never reaches flash.
"""
from __future__ import annotations

from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, scalar_quant, unsupported, weight_array

EMBEDDING = "embedding"   # layer.options key of the compressed table


def table_and_ids(layer: Layer, graph: Graph) -> tuple[int, int]:
    """(table tensor, ids tensor) of an embedding lookup; EMBEDDING_LOOKUP lists the ids first."""
    return (layer.inputs[1], layer.inputs[0]) if layer.op == "EMBEDDING_LOOKUP" else tuple(layer.inputs[:2])


def is_embedding_lookup(layer: Layer, graph: Graph) -> bool:
    """A lookup of whole rows of a constant 2-D int8 table by int32 ids, which the kernels run."""
    if layer.op not in ("GATHER", "EMBEDDING_LOOKUP"):
        return False
    table, ids = (graph.tensors[i] for i in table_and_ids(layer, graph))
    return (table.is_constant and table.dtype == "int8" and len(table.shape) == 2 and ids.dtype == "int32"
            and layer.options.get("axis", 0) == 0 and layer.options.get("batch_dims", 0) == 0)


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...] | None:
    """One table row per id: the ids' shape plus the row (GATHER), or (ids, row) for EMBEDDING_LOOKUP."""
    table, ids = (graph.tensors[i] for i in table_and_ids(layer, graph))
    o = layer.options
    if len(table.shape) != 2 or o.get("axis", 0) != 0 or o.get("batch_dims", 0) != 0:
        return None   # lowering refuses it
    return (ids.size, table.shape[1]) if layer.op == "EMBEDDING_LOOKUP" else ids.shape + (table.shape[1],)


@lowering("GATHER", "EMBEDDING_LOOKUP", inputs=2, shape=output_shape, options={"GATHER": "GatherOptionsT"})
def lower(layer: Layer, graph: Graph) -> KernelCall:
    table_index, ids_index = table_and_ids(layer, graph)
    table, ids, out = graph.tensors[table_index], graph.tensors[ids_index], graph.tensors[layer.outputs[0]]
    if not is_embedding_lookup(layer, graph):
        raise unsupported(layer, f"a lookup other than whole rows of a constant 2-D int8 table by int32 ids "
                                 f"(table {table.dtype} {'x'.join(map(str, table.shape))}, ids {ids.dtype})")
    if scalar_quant(table) != scalar_quant(out):
        raise unsupported(layer, "a lookup whose output is quantized unlike its table")
    vocab_size, width = table.shape
    shared = {"count": ids.size, "vocab_size": vocab_size, "width": width}
    compressed = layer.options.get(EMBEDDING)
    if compressed is None:
        array = weight_array(layer, table, "table")
        return KernelCall(layer, "tc_gather_s8", "tc_gather_params", {**shared, "table": array.name},
                          inputs=[ids_index], outputs=[layer.outputs[0]], arrays=[array],
                          summary=f"{ids.size} of {vocab_size} rows x {width}")
    return KernelCall(layer, compressed.function, compressed.params_type,
                      {**shared, **compressed.params(layer.name)}, inputs=[ids_index],
                      outputs=[layer.outputs[0]],
                      arrays=compressed.arrays(layer.name), macs=ids.size * compressed.macs_per_token(),
                      summary=f"{ids.size} of {vocab_size} rows x {width}, {compressed.spec.label}")
