"""The arena planner: no two live tensors overlap, and dead ones share bytes."""
import itertools
import random

from tinycompress.codegen.plan import Buffer, greedy_plan, linear_plan


def overlaps(a: Buffer, b: Buffer) -> bool:
    return a.offset < b.offset + b.size and b.offset < a.offset + a.size


def test_chain_reuses_dead_buffers():
    # a -> b -> c: a and c never live together, so they share bytes.
    bufs = [Buffer(100, 0, 1), Buffer(60, 1, 2), Buffer(100, 2, 3)]
    assert greedy_plan(bufs) == 160
    assert bufs[0].offset == bufs[2].offset


def test_random_lifetimes_never_collide():
    rng = random.Random(1)
    for _ in range(200):
        bufs = []
        for _ in range(rng.randint(1, 12)):
            first = rng.randint(0, 10)
            bufs.append(Buffer(rng.randint(1, 300), first, first + rng.randint(0, 4)))
        size = greedy_plan(bufs)
        for a, b in itertools.combinations(bufs, 2):
            assert not (a.lives_with(b) and overlaps(a, b))
        assert all(b.offset % 4 == 0 and b.offset + b.size <= size for b in bufs)
        assert size <= linear_plan([Buffer(b.size, 0, 0) for b in bufs])


def test_residual_add_writes_into_a_dead_input(zoo):
    """op_add_residual: input 8x8x3 (192 B) -> a 3x3 and a 1x1 convolution (320 B each) -> ADD (320 B).
    The test depends on that structure only, not on the weights or the order in which the converter
    puts the convolutions: the kernels' scratch is left out (it is sized per core, and with it the
    arena's peak could lie at a convolution), so the peak is set by the activations alone. At the
    second convolution 192 + 320 + 320 B are live; at the ADD 320 + 320 B with the overwrite,
    3 x 320 B without."""
    from tinycompress.frontend.load import read_tflite_file
    from tinycompress.ops import lower_layer
    from tinycompress.codegen.plan import plan_arena

    graph = read_tflite_file(zoo("op_add_residual")[0])
    calls = [lower_layer(layer, graph) for layer in graph.layers]
    assert [c.function for c in calls].count("tc_conv2d_s8") == 2 and all(c.scratch_bytes == 0 for c in calls)
    plan = plan_arena(calls, graph.tensors, graph.inputs, graph.outputs)
    add = next(c for c in calls if c.function == "tc_add_s8")
    assert add.overwrites == (0, 1)
    assert plan.offsets[add.outputs[0]] in {plan.offsets[t] for t in add.inputs}
    assert plan.size == 192 + 320 + 320
    # Without the overwrite the ADD's output needs bytes of its own.
    add.overwrites = ()
    assert plan_arena(calls, graph.tensors, graph.inputs, graph.outputs).size == 3 * 320
