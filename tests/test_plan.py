"""The arena planner: no two live tensors overlap, and dead ones share bytes."""
import itertools
import random

from tinycompress.plan import Buffer, greedy_plan, linear_plan


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
