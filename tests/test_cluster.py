"""Clustered weights (`cluster:K`, tinycompress/compress/cluster.py): the deterministic k-means, the .tflite
rewrite, the palette kernels (the `_p4` entry points) in QEMU bit-exact with TFLite Micro on the clustered
model (tests/zoo_cluster.py), and their flash."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import firmware_vs_tflm, needs_emulator, zoo_graph

from tinycompress.compress.cluster import PALETTE, ClusterMethod, nearest, palette_of
from tinycompress.compress.plan import Context, parse_plan
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.frontend.reference import tflm_outputs
from tinycompress.ops import nibbles

WEIGHTED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def cluster(graph, arg):
    return ClusterMethod("cluster", arg).apply_graph(graph, Context())


def clustered_zoo(zoo, name):
    """The zoo's clustered .tflite, read and clustered again: the same weights, now with their palettes."""
    from zoo_cluster import K
    graph, _ = zoo_graph(zoo, name)
    again, _ = cluster(graph, str(K[name]))
    assert again.source == graph.source
    return again


# ---- the k-means, on the host -----------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3, 7, 16])
def test_kmeans_is_deterministic_and_exact(k):
    rng = np.random.default_rng(k)
    values = np.clip(np.round(rng.laplace(0, 25, 3000)), -128, 127).astype(np.int8)
    palette = palette_of(values, k)
    assert np.array_equal(palette, palette_of(values.copy(), k))
    assert np.array_equal(palette, palette_of(rng.permutation(values), k))    # counts only: order is no input
    assert palette.dtype == np.int8 and 2 <= palette.size <= k and np.all(np.diff(palette.astype(int)) > 0)
    clustered = palette[nearest(palette, values)]
    assert set(clustered.tolist()) <= set(palette.tolist())
    assert np.array_equal(np.abs(values.astype(int)[:, None] - palette.astype(int)).min(axis=1),
                          np.abs(clustered.astype(int) - values))     # each weight took its nearest entry
    # Lloyd's fixed point: each entry is the rounded mean of the values it took
    member = nearest(palette, values)
    for i, entry in enumerate(palette):
        assert entry == np.floor(values[member == i].astype(np.float64).mean() + 0.5)


def test_kmeans_beats_uniform_levels():
    """On bell-shaped weights the palette's error is below k evenly spaced levels' over the same range."""
    values = np.clip(np.round(np.random.default_rng(1).normal(0, 20, 4000)), -128, 127).astype(np.int8)
    palette = palette_of(values, 8)
    uniform = np.unique(np.round(np.linspace(values.min(), values.max(), 8))).astype(np.int8)

    def error(p):
        return float(((p[nearest(p, values)].astype(float) - values) ** 2).mean())
    assert error(palette) < error(uniform)


def test_few_distinct_values_are_their_own_palette():
    values = np.array([3, 3, -7, 100, 3, -7], np.int8)
    assert palette_of(values, 4).tolist() == [-7, 3, 100]
    assert palette_of(np.full(9, -128, np.int8), 2).tolist() == [-128]


# ---- the rewrite -----------------------------------------------------------------------------------------

def test_cluster_rewrites_every_weighted_layer_and_tflm_runs_it(zoo):
    graph, _ = zoo_graph(zoo, "op_add_residual")
    new, steps = cluster(graph, "4")
    weighted = [i for i, layer in enumerate(graph.layers) if layer.op in WEIGHTED]
    assert [s.layer for s in steps] == [graph.layers[i].name for i in weighted]
    for i in weighted:
        index = graph.layers[i].inputs[1]
        before, after = graph.tensors[index], new.tensors[index]
        palette = new.layers[i].options[PALETTE]
        assert palette.size <= 4 and np.array_equal(after.data, palette[nearest(palette, before.data)])
        assert np.array_equal(after.scale, before.scale)
    for step in steps:
        assert step.bytes_after == (step.bytes_before + 1) // 2 + 4 and step.method == "cluster"
    x = np.random.default_rng(0).integers(-128, 128, (8,) + graph.input_tensor().shape[1:]).astype(np.int8)
    assert tflm_outputs(new.source, x).shape == tflm_outputs(graph.source, x).shape
    again, _ = cluster(read_tflite(new.source), "4")          # clustering the clustered model changes nothing
    assert again.source == new.source


def test_per_layer_sizes_cluster_only_those(zoo):
    graph, _ = zoo_graph(zoo, "op_add_residual")
    convs = [layer.name for layer in graph.layers if layer.op == "CONV_2D"]
    new, steps = cluster(graph, f"{convs[1]}=2")
    assert [s.layer for s in steps] == [convs[1]]
    assert [PALETTE in layer.options for layer in new.layers if layer.op == "CONV_2D"] == [False, True]
    layer = next(layer for layer in new.layers if layer.name == convs[1])
    assert len(np.unique(new.tensors[layer.inputs[1]].data)) <= 2


@pytest.mark.parametrize("spec,fragment", [
    ("cluster:17", "K must lie in 2..16"), ("cluster:1", "K must lie in 2..16"),
    ("cluster:nosuch=4", "has no layer nosuch"), ("cluster:x", "not a palette size"),
    ("cluster", "needs a value"),
])
def test_a_bad_cluster_spec_is_refused_in_one_line(zoo, spec, fragment):
    graph, _ = zoo_graph(zoo, "op_fc_relu")
    step = parse_plan(spec).steps[0]
    with pytest.raises(TinyCompressError, match=fragment) as error:
        step.apply_graph(graph, Context())
    assert "\n" not in str(error.value)


def test_a_model_with_nothing_to_cluster_is_refused(zoo):
    from tinycompress.compress.int4 import Int4Method
    graph, _ = zoo_graph(zoo, "op_fc_relu")
    int4, _ = Int4Method("int4", None).apply_graph(graph, Context())
    with pytest.raises(TinyCompressError, match="no FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D layer"):
        cluster(int4, "8")


# ---- firmware ----------------------------------------------------------------------------------------------

BOARDS = ["mps2-an386", "mps2-an385"]     # Cortex-M4 (DSP paths), Cortex-M3 (portable)


@needs_emulator
def test_clustered_conv_matches_tflm_on_m4(zoo, tmp_path):
    graph = clustered_zoo(zoo, "cluster_conv")
    project = firmware_vs_tflm(graph, "mps2-an386", zoo("cluster_conv")[1], tmp_path, min_inputs=100)
    assert {c.function for c in project.calls} == {"tc_conv2d_p4"}
    assert all(c.scratch_bytes for c in project.calls)     # the DSP path


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["cluster_fc", "cluster_conv", "cluster_dw"])
def test_clustered_models_match_tflm(zoo, tmp_path, name, board):
    if (name, board) == ("cluster_conv", "mps2-an386"):
        pytest.skip("the fast tier's case")
    graph = clustered_zoo(zoo, name)
    project = firmware_vs_tflm(graph, board, zoo(name)[1], tmp_path, min_inputs=100)
    assert all(c.function.endswith("_p4") for c in project.calls if c.arrays)
    # the kernels' own scratch (a layer run by bands of rows also has their temporary: codegen/rows.py)
    scratch = [(c.rows.kernel_scratch if c.rows is not None and c.rows.band_rows else c.scratch_bytes) > 0
               for c in project.calls if c.arrays]
    assert any(scratch) if board == "mps2-an386" else not any(scratch)   # the DSP paths, or the portable


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("name", ["op_fc_pairs", "op_conv_3x3_same", "op_dw_3x3_same"])
def test_clustered_weights_take_half_the_flash_plus_the_palette(zoo, tmp_path, name):
    """The weight arrays in the ELF: half the int8 ones, plus at most a word's padding per row, and the
    palette; the clustered firmware still matches TFLite Micro."""
    from tinycompress.pipeline import compile_graph
    from tinycompress.target.boards import load_board
    from tinycompress.target.build import build
    from tinycompress.target.elfsize import elf_sizes

    graph, _ = zoo_graph(zoo, name)
    clustered, _ = cluster(graph, "16")
    board = load_board("mps2-an386")
    sizes, palettes = {}, 0
    for label, g in (("int8", graph), ("cluster", clustered)):
        project = compile_graph(g, board, tmp_path / label, name)
        symbols = elf_sizes(build(project)).symbols
        sizes[label] = sum(symbols[f"{layer.name}_weights"] for layer in g.layers)
        palettes = sum(symbols.get(f"{layer.name}_palette", 0) for layer in g.layers)
    assert palettes == sum(layer.options[PALETTE].size for layer in clustered.layers)
    rows = sum(len(nibbles.row_view(layer.op, graph.tensors[layer.inputs[1]].data)) for layer in graph.layers)
    assert sizes["int8"] <= 2 * sizes["cluster"] <= sizes["int8"] + 8 * rows
    firmware_vs_tflm(clustered, "mps2-an386", zoo(name)[1], tmp_path / "run", min_inputs=50)
