"""Weight clustering: `cluster:K` (every FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D) or
`cluster:LAYER=K,...`.

A GRAPH step on the full-int8 .tflite. Each chosen weight tensor gets a palette of at most K int8 values
(2 <= K <= 16), found by a deterministic one-dimensional k-means on its int8 values (`palette_of`), and
every weight is replaced by its nearest palette entry. The scales, zero points and biases stay as they
were, so the rewritten .tflite is an ordinary int8 model: the verification model TFLite Micro runs.

The firmware stores the palette (K int8) and each weight's index into it, 4 bits, in the nibble form of
INT4 weights (ops/nibbles.py, indices 0..15 instead of signed values); the `_p4` kernels decode them as they
read (firmware/kernels/tc_*_s8.c). The lowering finds the palette in the layer's options (PALETTE), which
this step sets on the graph it returns; a model read back from the rewritten .tflite gets the same palettes
from the same step again, since a tensor of at most K distinct values is its own palette.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from .plan import GRAPH, Context, LayerStep, Method, per_layer, unknown_layers

PALETTE = "cluster_palette"     # a layer's option: its weights' palette (sorted int8), read by the lowering
MIN_K, MAX_K = 2, 16            # 16: an index is one nibble
OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
ITERATIONS = 100                # Lloyd's passes at most; it stops once the palette no longer changes


def palette_of(values: np.ndarray, k: int) -> np.ndarray:
    """At most k int8 values (sorted, distinct) that int8 `values` are replaced by, each by its nearest.

    One-dimensional k-means on the histogram of the 256 int8 values, weighted by their counts: seeded
    from the quantiles (i + 1/2) / k of the values, topped up to k (while distinct values remain) with
    the value of largest count x squared distance to its centre, then Lloyd's passes with integer centres
    (each the rounded weighted mean of its values: the best integer for them, since a cluster's squared
    error is its variance plus count x (centre - mean)^2, so no pass raises the error). A value midway
    between two centres goes to the lower. Deterministic: no random seed. Tensors of at most k distinct
    values are their own palette."""
    counts = np.bincount(np.asarray(values, np.int64).reshape(-1) + 128, minlength=256)
    levels = np.arange(-128, 128)
    present = levels[counts > 0]
    if present.size <= k:
        return present.astype(np.int8)
    cumulative = np.cumsum(counts)
    targets = (np.arange(k) + 0.5) / k * cumulative[-1]
    centres = np.unique(levels[np.searchsorted(cumulative, targets, side="right")])
    while centres.size < k:
        spread = counts * (levels - centres[nearest(centres, levels)]) ** 2
        centres = np.unique(np.append(centres, levels[np.argmax(spread)]))
    for _ in range(ITERATIONS):
        member = nearest(centres, levels)
        weight = np.bincount(member, counts, minlength=centres.size)
        total = np.bincount(member, counts * levels, minlength=centres.size)
        used = weight > 0
        means = total[used] / weight[used]
        new = np.unique(np.floor(means + 0.5).astype(np.int64))
        if np.array_equal(new, centres):
            break
        centres = new
    return centres.astype(np.int8)


def nearest(palette: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's index in the sorted palette of its nearest entry (midway: the lower)."""
    p = np.asarray(palette, np.float64)
    return np.searchsorted((p[1:] + p[:-1]) / 2, np.asarray(values, np.float64), side="left")


def palette_indices(palette: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The indices of `values` in the palette, which must hold every one of them exactly."""
    indices = nearest(palette, values)
    if not np.array_equal(np.asarray(palette)[indices], values):
        raise TinyCompressError("a clustered layer's weights are not all palette values; "
                                "cluster the model again")
    return indices


def parse_k(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TinyCompressError(f"--compress cluster: {text!r} is not a palette size; give an integer K, "
                                f"{MIN_K} <= K <= {MAX_K}") from None


class ClusterMethod(Method):
    names = ("cluster",)
    stage = GRAPH
    usage = f"cluster:K or cluster:LAYER=K,... ({MIN_K} <= K <= {MAX_K})"

    def sizes(self, graph) -> dict[str, int]:
        """K for each layer to cluster, by name: the named ones, or every eligible one."""
        eligible = [layer.name for layer in graph.layers if layer.op in OPS and len(layer.inputs) > 1
                    and graph.tensors[layer.inputs[1]].dtype == "int8"
                    and graph.tensors[layer.inputs[1]].data is not None]
        every, named = per_layer(self, parse_k)
        for k in [every] if every is not None else named.values():
            if not MIN_K <= k <= MAX_K:
                raise self.bad(f"a palette of {k} entries; K must lie in {MIN_K}..{MAX_K} "
                               "(an index is 4 bits)")
        if not eligible:
            raise self.bad("the model has no FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D layer with int8 "
                           "weights to cluster")
        if every is not None:
            return {name: every for name in eligible}
        unknown_layers(self, named, eligible)
        return named

    def apply_graph(self, graph, context: Context) -> tuple[object, list[LayerStep]]:
        from ..frontend.load import constant_bytes_location, read_tflite
        sizes = self.sizes(graph)
        layers = [(i, layer) for i, layer in enumerate(graph.layers) if layer.name in sizes]
        source, palettes, steps, places = bytearray(graph.source), {}, [], {}
        for i, layer in layers:
            index = layer.inputs[1]
            weights = graph.tensors[index]
            palette = palette_of(weights.data, sizes[layer.name])
            place = constant_bytes_location(graph.source, index)
            if places.setdefault(place, (index, palette.tobytes())) != (index, palette.tobytes()):
                raise self.bad(f"layer {layer.name}'s weights share their bytes in the .tflite with another "
                               "tensor clustered differently; give them one K")
            clustered = palette[nearest(palette, weights.data)]
            offset, length = place
            assert length == weights.size and graph.source[offset:offset + length] == weights.data.tobytes()
            source[offset:offset + length] = clustered.tobytes()
            palettes[i] = palette
            count = weights.size
            steps.append(LayerStep(layer.name, "cluster", f"{palette.size}-entry palette, 4-bit indices",
                                   count, count, bytes_before=count,
                                   bytes_after=(count + 1) // 2 + palette.size,
                                   note="" if palette.size == sizes[layer.name] else
                                   f"{palette.size} distinct values: fewer than K = {sizes[layer.name]}"))
        others = {constant_bytes_location(graph.source, t.index) for t in graph.tensors
                  if t.data is not None and t.index not in {index for index, _ in places.values()}}
        if shared := others & set(places):
            raise self.bad(f"a clustered weight tensor shares its bytes in the .tflite with {len(shared)} "
                           "unclustered one(s); cluster every layer that uses them")
        clustered_graph = read_tflite(bytes(source), graph.name)
        for i, palette in palettes.items():
            clustered_graph.layers[i].options[PALETTE] = palette
        return clustered_graph, steps
