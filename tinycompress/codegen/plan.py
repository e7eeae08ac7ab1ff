"""Stage 4, plan: place every activation tensor in one static arena by lifetime.

The interface follows TFLite Micro's planners: add buffers as (size, first_use,
last_use), get offsets back. The greedy planner places the largest buffers
first, each at the lowest offset that overlaps no already-placed buffer whose
lifetime intersects its own; buffers that never live at the same time share
bytes. First-fit placements in three other orders are tried too, and the smallest arena kept.

An in-place layer (RESHAPE) gives its output the input's buffer; an element-wise
layer (ADD) gives its output an input's buffer when that input is read for the last time; a layer run by
bands of rows (codegen/rows.py, chosen by choose_in_place where it lowers the arena) puts its output over
its dead input. A kernel's scratch memory (im2col) is one more buffer, alive only during its own layer.
The plan's lower bound is the most bytes live at any one step (the overlapped layers' input and output
counted as the span they share): no placement of the same buffers can do with less.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

ALIGNMENT = 4  # word-aligned tensors let kernels load four int8 values at once


@dataclass(eq=False)
class Buffer:
    size: int
    first_use: int   # index of the first layer that writes or reads it
    last_use: int    # index of the last layer that reads it
    offset: int = -1
    below: list = field(default_factory=list)   # (buffer, d): this one may share bytes with that one where
                                                # it starts at most d bytes after it (codegen/rows.py)

    def lives_with(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _clash(a: Buffer, at: int, b: Buffer) -> bool:
    """Whether `a` placed at `at` shares bytes with the placed `b` where that is not allowed."""
    if at >= b.offset + b.size or b.offset >= at + a.size:
        return False
    return not (any(x is b and at <= b.offset + d for x, d in a.below) or
                any(x is a and b.offset <= at + d for x, d in b.below))


def _place(buffers: list[Buffer], key) -> int:
    """Place `buffers` in the order of `key`, each at the lowest offset where it clashes with no placed
    buffer whose lifetime intersects its own; the arena size."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=key):
        near = [p for p in placed if p.lives_with(buf)]
        starts = {0} | {_align(p.offset + p.size) for p in near}
        starts |= {(p.offset + d) // ALIGNMENT * ALIGNMENT for p, d in buf.below if p in near}
        starts |= {_align(p.offset - d) for p in near for x, d in p.below if x is buf}
        buf.offset = min(at for at in starts if at >= 0 and not any(_clash(buf, at, p) for p in near))
        placed.append(buf)
    return max((_align(b.offset + b.size) for b in buffers), default=0)


STRATEGIES = (   # the first is TFLite Micro's greedy planner's order; greedy_plan keeps the smallest arena
    lambda b: (-b.size, b.first_use),
    lambda b: (b.first_use, -b.size),
    lambda b: (-b.first_use, -b.size),      # backwards: a chain of outputs over inputs fits from its end
    lambda b: (-(b.last_use - b.first_use), -b.size),
)


def greedy_plan(buffers: list[Buffer]) -> int:
    """Assign offsets in place by the order that gives the smallest arena (the first on a tie); return
    the arena size."""
    best = None
    for key in STRATEGIES:
        size = _place(buffers, key)
        if best is None or size < best[0]:
            best = (size, [b.offset for b in buffers])
    for buf, offset in zip(buffers, best[1]):
        buf.offset = offset
    return best[0]


def linear_plan(buffers: list[Buffer]) -> int:
    """No reuse at all: every buffer gets its own bytes (the baseline the report compares with)."""
    offset = 0
    for buf in buffers:
        buf.offset = offset
        offset = _align(offset + buf.size)
    return offset


@dataclass
class ArenaPlan:
    size: int                     # bytes of the arena
    offsets: dict[int, int]       # tensor index -> byte offset
    unshared_size: int            # all activation tensors and scratch buffers side by side, aligned
                                  # (no reuse)
    scratch: dict[int, int] = field(default_factory=dict)   # layer index -> offset of its scratch
    overlapped: frozenset = frozenset()   # layer indices whose output shares bytes with their input
    live: list = field(default_factory=list)   # bytes live at each step (tensors and scratch)
    unpatched: int | None = None  # with chains run by patches: the arena without them (choose_patches)

    @property
    def lower_bound(self) -> int:
        """The most bytes live at any one step: no placement of the same buffers needs less."""
        return max(self.live, default=0)


def chains(calls) -> dict[int, int]:
    """The chains run by patches (codegen/patches.py): first step -> last step."""
    return {step: call.patches.steps[1] for step, call in enumerate(calls) if call.patches is not None}


def chained(calls) -> dict[int, int]:
    """Each step of a chain run by patches -> the chain's first step (itself for the first)."""
    return {step: first for first, end in chains(calls).items() for step in range(first, end + 1)}


def _last_uses(calls, graph_outputs: list[int]) -> dict[int, int]:
    last: dict[int, int] = {}
    for step, call in enumerate(calls):
        for t in list(call.inputs) + list(call.outputs):
            last[t] = step
    for first, end in chains(calls).items():    # a chain reads its input until its last step
        last[calls[first].inputs[0]] = max(last[calls[first].inputs[0]], end)
    for t in graph_outputs:
        last[t] = len(calls)
    return last


def plan_arena(calls, tensors, graph_inputs: list[int], graph_outputs: list[int]) -> ArenaPlan:
    """Plan the activation tensors of a list of KernelCalls (in execution order)."""
    owner: dict[int, int] = {}          # tensor -> buffer id (in-place outputs share their input's)
    buffers: list[Buffer] = []
    last = _last_uses(calls, graph_outputs)
    spans = chains(calls)
    inside = {calls[step].outputs[0] for first, end in spans.items() for step in range(first, end)}

    def use(tensor: int, step: int) -> None:   # a tensor inside a chain lives in its line buffers alone
        size = 0 if tensor in inside else tensors[tensor].nbytes
        if tensor not in owner:
            owner[tensor] = len(buffers)
            buffers.append(Buffer(size, step, step))
        buf = buffers[owner[tensor]]
        buf.size = max(buf.size, size)
        buf.first_use, buf.last_use = min(buf.first_use, step), max(buf.last_use, step)

    def dead_after(t: int, step: int) -> bool:    # nothing reads t's buffer after `step`
        return all(last[u] <= step for u, b in owner.items() if b == owner[t])

    for t in graph_inputs:
        use(t, 0)
    rows, overlapped = [], set()
    for step, call in enumerate(calls):
        for t in call.inputs:
            use(t, step)
        for t in call.outputs:
            if t not in owner and call.inputs:
                if call.in_place:
                    owner[t] = owner[call.inputs[0]]
                elif call.rows is not None and dead_after(call.inputs[0], step):
                    if call.rows.band_rows:
                        rows.append((step, t, call.inputs[0], call.rows.delta))
                    else:                                 # the kernel writes over its own input
                        owner[t] = owner[call.inputs[0]]
                        overlapped.add(step)
                else:
                    for position in call.overwrites:   # element-wise: each element read before it is written
                        src = call.inputs[position]
                        if dead_after(src, step) and tensors[src].nbytes >= tensors[t].nbytes:
                            owner[t] = owner[src]
                            break
            use(t, step)
    for first, end in spans.items():    # a chain's input and output live over all its steps
        use(calls[first].inputs[0], end)
        use(calls[end].outputs[0], first)
    for t in graph_outputs:
        use(t, len(calls))
    for step, out, inp, delta in rows:   # the output may start up to delta bytes after its dead input
        a, b = buffers[owner[out]], buffers[owner[inp]]
        if a is not b and a.first_use == step and b.last_use == step:
            a.below.append((b, delta))
            overlapped.add(step)
    live = [buffers[b] for b in sorted(set(owner.values()))]
    scratch = {step: Buffer(call.scratch_bytes, step, spans.get(step, step))
               for step, call in enumerate(calls) if call.scratch_bytes}
    every = live + list(scratch.values())
    steps = [sum(b.size for b in every if b.first_use <= step <= b.last_use) -
             sum(min(a.size, x.size) for a in live for x, _ in a.below if a.first_use == step)
             for step in range(len(calls) + 1)]
    unshared = linear_plan([Buffer(tensors[t].nbytes, 0, 0) for t in owner] +
                           [Buffer(buf.size, 0, 0) for buf in scratch.values()])
    size = greedy_plan(every)
    return ArenaPlan(size=size, offsets={t: buffers[b].offset for t, b in owner.items()},
                     unshared_size=unshared, scratch={step: buf.offset for step, buf in scratch.items()},
                     overlapped=frozenset(overlapped), live=steps)


def choose_in_place(calls, tensors, graph_inputs: list[int], graph_outputs: list[int], scratch_of,
                    over_input=lambda call: False) -> ArenaPlan:
    """Run layers by bands of rows over their dead input (codegen/rows.py) where that lowers the arena.

    Greedily, one layer at a time, those at the fullest steps first, with its smallest temporary: the layer
    that lowers the arena most, or, where none does (several steps hold the peak), the one that lowers the
    bytes live at the fullest steps without growing the arena; until none helps. Then each chosen layer
    goes back to one call where the arena stays as small, else takes the tallest bands (fewest calls)
    that keep it. `scratch_of(call)` is a call's kernel scratch (ops/scratch.py). Sets `rows`
    and `scratch_bytes` on the chosen calls; returns the plan."""
    from .rows import OverOwnInput, band_sizes, eligible, schedule

    last = _last_uses(calls, graph_outputs)
    in_chains = chained(calls)
    options = {}
    for step, call in enumerate(calls):
        if (eligible(call) and last.get(call.inputs[0], -1) == step and call.rows is None
                and step not in in_chains):
            out_h = call.params["output"][1]
            choices = [schedule(call, b, lambda p, c=call: scratch_of(replace(c, params=p)), apart)
                       for b in reversed(band_sizes(out_h, call.params["output"][2]))
                       for apart in (False, True)[:1 + bool(out_h % b)]]
            choices = [rows for rows in choices if len(rows.bands) > 1]   # one band: a copy, no overlap
            if over_input(call):
                choices.insert(0, OverOwnInput(call.scratch_bytes))
            if choices:
                options[step] = choices
    base = {step: calls[step].scratch_bytes for step in options}

    def use(step: int, rows) -> None:
        calls[step].rows = rows
        calls[step].scratch_bytes = base[step] if rows is None else rows.scratch_bytes

    def score(plan: ArenaPlan) -> tuple:
        return (plan.size, sorted(plan.live, reverse=True))

    plan = plan_arena(calls, tensors, graph_inputs, graph_outputs)
    left = dict(options)
    while left:
        best = None
        for fullest in sorted({plan.live[step] for step in left}, reverse=True):   # the fullest steps first
            for step in (step for step in left if plan.live[step] == fullest):
                use(step, min(left[step], key=lambda r: r.scratch_bytes))
                trial = plan_arena(calls, tensors, graph_inputs, graph_outputs)
                if score(trial) < score(best[0] if best else plan):
                    best = (trial, step)
                use(step, None)
            if best is not None:
                break
        if best is None:
            break
        plan, step = best
        use(step, min(left.pop(step), key=lambda r: r.scratch_bytes))
    for step in options:        # back to one call where the arena stays as small
        if calls[step].rows is not None:
            kept = calls[step].rows
            use(step, None)
            trial = plan_arena(calls, tensors, graph_inputs, graph_outputs)
            if trial.size <= plan.size:
                plan = trial
            else:
                use(step, kept)
    smallest = plan.size
    for step in options:
        if calls[step].rows is not None:
            for rows in options[step]:          # the tallest bands first
                kept = calls[step].rows
                use(step, rows)
                trial = plan_arena(calls, tensors, graph_inputs, graph_outputs)
                if trial.size <= smallest:
                    plan = trial
                    break
                use(step, kept)
    return plan


def choose_patches(calls, tensors, graph_inputs: list[int], graph_outputs: list[int], scratch_of,
                   over_input=lambda call: False, longest: int = 6) -> ArenaPlan:
    """Layers over their own inputs (choose_in_place), then chains of layers run by patches
    (codegen/patches.py) where they lower the arena further.

    A chain must hold a step whose live bytes set the arena's lower bound. Of the chains of up to `longest`
    layers and the patch heights, the one that gives the smallest arena (on the layers over their inputs
    chosen so far) is taken, and the layers over their inputs chosen again around it; while the arena
    shrinks, another chain. `scratch_of(call)` is a call's kernel scratch (ops/scratch.py)."""
    from .patches import chainable, patch_sizes, schedule, worthwhile

    def reset() -> None:            # every layer back to one call of its own kernel
        for call in calls:
            if call.rows is not None:
                call.rows, call.scratch_bytes = None, scratch_of(call)

    def chain(first: int, patches) -> None:
        end = (patches or calls[first].patches).steps[1]
        for step in range(first, end + 1):
            calls[step].rows = None
            calls[step].patches = patches if step == first else None
            calls[step].scratch_bytes = scratch_of(calls[step]) if patches is None else 0
        if patches is not None:
            calls[first].scratch_bytes = patches.scratch_bytes

    plan = choose_in_place(calls, tensors, graph_inputs, graph_outputs, scratch_of, over_input)
    unpatched = plan.size
    reads: dict[int, int] = {}
    for call in calls:
        for t in call.inputs:
            reads[t] = reads.get(t, 0) + 1
    for t in graph_outputs:
        reads[t] = reads.get(t, 0) + 1
    while True:
        taken = set(chained(calls))
        peak = {step for step, live in enumerate(plan.live) if live == plan.lower_bound}
        rows = {step: (call.rows, call.scratch_bytes) for step, call in enumerate(calls)}
        best = None
        for first in range(len(calls)):
            for end in range(first + 1, min(len(calls), first + longest)):
                steps = set(range(first, end + 1))
                if steps & taken or not steps & peak or not chainable(calls, first, end, reads):
                    continue
                ends = tensors[calls[first].inputs[0]].nbytes + tensors[calls[end].outputs[0]].nbytes
                rest = max(live for step, live in enumerate(plan.live) if step not in steps)
                for band in patch_sizes(calls[end].params["output"][1]):
                    patches = schedule(calls[first:end + 1], first, band, scratch_of)
                    least = max(rest, ends + patches.scratch_bytes)     # no arena of the chain is smaller
                    if least >= (best[0].size if best else plan.size) or not worthwhile(patches):
                        continue
                    chain(first, patches)
                    trial = plan_arena(calls, tensors, graph_inputs, graph_outputs)
                    if trial.size < (best[0].size if best else plan.size):
                        best = (trial, first, patches)
                    chain(first, None)
                    for step in steps:
                        calls[step].rows, calls[step].scratch_bytes = rows[step]
        if best is None:
            return replace(plan, unpatched=unpatched) if chains(calls) else plan
        _, first, patches = best
        reset()
        chain(first, patches)
        trial = choose_in_place(calls, tensors, graph_inputs, graph_outputs, scratch_of, over_input)
        if trial.size >= plan.size:         # no better once the layers over their inputs are chosen again
            chain(first, None)
            reset()
            plan = choose_in_place(calls, tensors, graph_inputs, graph_outputs, scratch_of, over_input)
            return replace(plan, unpatched=unpatched) if chains(calls) else plan
        plan = trial
