"""Patch-based execution: a chain of sliding-window layers run together, patch by patch of output rows.

Where the largest live set is a big activation between two layers (MobileNetV2's expanded 48x48x48 block,
a convolution before its pooling), the chain of layers around it runs as one unit: the last layer's output
is made `band_rows` rows at a time, and each earlier layer makes only the rows the next one reads for
that patch. The activations inside the chain never exist whole; each lives in a line buffer of the rows
still read (codegen/plan.py gives the chain one scratch buffer for all of them, live over its steps, and
the chain's input lives until its last step).

Rows the next patch reads again (the halo of a window taller than its stride) stay in the line buffer: before
a layer appends its new rows, the rows below the first one the next layer still reads are dropped and the
rest moved to the buffer's start. So nothing is computed twice, unlike MCUNetV2's patches, which split the
columns too and recompute the halo; a patch here spans the whole width, and its memory is the line buffers.

Each layer's calls use its own kernel on parameters cut to the rows (rows.band_params); each call reads
its input rows from the previous layer's line buffer (the first layer's from the chain's input tensor) and
writes its rows after the rows its buffer holds (the last layer's straight into the chain's output).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..ops.common import KernelCall
from .rows import FUNCTIONS, band_params, input_rows

ALIGN = 4


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


@dataclass(frozen=True)
class PatchCall:
    stage: int                  # the layer's place in the chain
    rows: tuple[int, int]       # its output rows [y0, y1)
    input_row: int              # its first input row, counted from the start of what holds its input
                                # (the chain's input tensor, or the previous stage's line buffer)
    output_row: int             # where its first row goes: in its line buffer, or (last stage) the output
    move: tuple[int, int]       # before the call: rows (from, count) of its line buffer moved to its start
    params: dict
    scratch: int                # bytes of scratch its kernel takes for these rows (0: none)


@dataclass(frozen=True)
class Patches:
    steps: tuple[int, int]      # the chain's first and last layer (execution steps, inclusive)
    band_rows: int              # the last layer's output rows per patch
    calls: tuple[PatchCall, ...]
    row_bytes: tuple[int, ...]  # bytes of an output row of each stage
    buffer_rows: tuple[int, ...]  # rows each stage's line buffer holds at most (the last stage: none)
    kernel_scratch: int         # bytes of the kernels' own scratch, at the chain's scratch's start

    @property
    def patches(self) -> int:
        return sum(1 for c in self.calls if c.stage == len(self.row_bytes) - 1)

    @property
    def buffer_offsets(self) -> tuple[int, ...]:
        """Each stage's line buffer's offset in the chain's scratch."""
        offsets, at = [], _align(self.kernel_scratch)
        for rows, ob in zip(self.buffer_rows, self.row_bytes):
            offsets.append(at)
            at = _align(at + rows * ob)
        return tuple(offsets)

    @property
    def scratch_bytes(self) -> int:
        return self.buffer_offsets[-1]


def chainable(calls: list[KernelCall], first: int, last: int, reads: dict[int, int]) -> bool:
    """Whether layers first..last form a chain: sliding-window kernels of batch 1 over one activation, each
    after the first reading the output of the one before, which nothing else reads (`reads`: how many
    calls read each tensor; graph outputs count as a read)."""
    for step in range(first, last + 1):
        call = calls[step]
        if (call.function not in FUNCTIONS or len(call.inputs) != 1 or len(call.outputs) != 1
                or call.params["input"][0] != 1):
            return False
        if step > first and (call.inputs[0] != calls[step - 1].outputs[0] or reads[call.inputs[0]] != 1):
            return False
    return True


def schedule(chain: list[KernelCall], first_step: int, band_rows: int, kernel_scratch) -> Patches:
    """The calls that run `chain` (consecutive layers, chainable) by patches of `band_rows` output rows of
    its last layer; `kernel_scratch(call)` gives a call's kernel scratch (ops/scratch.py)."""
    params = [c.params for c in chain]
    n = len(chain)
    row_bytes = tuple(p["output"][2] * p["output"][3] for p in params)
    out_h = params[-1]["output"][1]
    made, base, most = [0] * n, [0] * n, [0] * n     # rows made, the first row each buffer holds
    calls, scratch = [], 0
    for end in [*range(band_rows, out_h, band_rows), out_h]:
        upto = [0] * n                      # the rows each stage makes by the end of this patch
        upto[-1] = end
        for i in range(n - 1, 0, -1):
            upto[i - 1] = max(made[i - 1], input_rows(params[i], made[i], upto[i])[1]) \
                if upto[i] > made[i] else made[i - 1]
        for i in range(n):
            y0, y1 = made[i], upto[i]
            if y1 <= y0:
                continue
            move, at = (0, 0), y0
            if i < n - 1:                   # keep the rows the next stage still reads, from its next call on
                keep = min(y0, input_rows(params[i + 1], made[i + 1], made[i + 1] + 1)[0])
                move = (keep - base[i], y0 - keep) if keep > base[i] and y0 > keep else (0, 0)
                base[i] = keep
                at = y0 - keep
                most[i] = max(most[i], y1 - keep)
            first, cut = band_params(params[i], y0, y1)
            need = kernel_scratch(replace(chain[i], params=cut))
            scratch = max(scratch, need)
            source = first if i == 0 else first - base[i - 1]
            calls.append(PatchCall(i, (y0, y1), source, at, move, cut, need))
            made[i] = y1
    assert made[-1] == out_h, "the last patch ends the chain's output"
    return Patches((first_step, first_step + n - 1), band_rows, tuple(calls), row_bytes,
                   tuple(most[:-1]) + (0,), scratch)


def worthwhile(patches: Patches) -> bool:
    """Whether each call but the last of each layer makes at least four groups of the DSP matrix kernel's
    columns (ops/scratch.py DSP_COLUMNS) of output positions: each call pays its kernel's setup, and a short
    one the slow single columns (the digits CNN's first three layers by patches of one 4-wide row: 1.2 times
    the instructions, to save 160 B)."""
    from ..ops.scratch import DSP_COLUMNS
    last = {c.stage: i for i, c in enumerate(patches.calls)}
    return all((c.rows[1] - c.rows[0]) * c.params["output"][2] >= 4 * DSP_COLUMNS
               for i, c in enumerate(patches.calls) if last[c.stage] != i)


def patch_sizes(out_h: int) -> list[int]:
    """The patch heights the planner tries: the last layer's output rows per patch, tallest first."""
    return sorted({b for b in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48) if b < out_h}, reverse=True)


def bind(patches: Patches, scratch_pointer: str) -> Patches:
    """Point each call's kernel at the chain's scratch (its start) where its rows take a path that uses it."""
    calls = (replace(c, params={**c.params, "scratch": scratch_pointer}) if c.scratch else c
             for c in patches.calls)
    return replace(patches, calls=tuple(calls))


@dataclass(frozen=True)
class PatchStep:
    """One call of a chain as model.c runs it: the move in its line buffer, then the kernel."""
    layer: int                  # the layer's execution step
    params_name: str            # its parameter struct (calls of a stage with equal parameters share one)
    input: int                  # arena offsets of its first input row and of its first output row
    output: int
    move: tuple[int, int, int]  # (to, from, bytes) before the call, bytes 0: none


def patch_steps(chain: list[KernelCall], patches: Patches, input_offset: int, output_offset: int,
                scratch_offset: int):
    """The structs ({name: (params_type, params)}) and the calls of a chain."""
    buffers = [scratch_offset + o for o in patches.buffer_offsets]
    n = len(chain)
    structs: dict[str, tuple[str, dict]] = {}
    steps = []
    for c in patches.calls:
        call = chain[c.stage]
        key = next((k for k, (t, v) in structs.items() if t == call.params_type and v == c.params), None)
        if key is None:
            key = f"{call.layer.name}_patch{len(structs)}_params"
            structs[key] = (call.params_type, c.params)
        ib = c.params["input"][2] * c.params["input"][3]
        ob = patches.row_bytes[c.stage]
        source = input_offset if c.stage == 0 else buffers[c.stage - 1]
        target = output_offset if c.stage == n - 1 else buffers[c.stage]
        frm, count = c.move
        move = (target, target + frm * ob, count * ob) if c.stage < n - 1 else (0, 0, 0)
        steps.append(PatchStep(patches.steps[0] + c.stage, key, source + c.input_row * ib,
                               target + c.output_row * ob, move))
    return structs, steps
