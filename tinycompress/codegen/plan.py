"""Stage 4, plan: place every activation tensor in one static arena by lifetime.

The interface follows TFLite Micro's planners: add buffers as (size, first_use,
last_use), get offsets back. The greedy planner places the largest buffers
first, each at the lowest offset that overlaps no already-placed buffer whose
lifetime intersects its own; buffers that never live at the same time share
bytes. An in-place layer (RESHAPE) gives its output the input's buffer; an element-wise
layer (ADD) gives its output an input's buffer when that input is read for the last time. A kernel's
scratch memory (im2col) is one more buffer, alive only during its own layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALIGNMENT = 4  # word-aligned tensors let kernels load four int8 values at once


@dataclass
class Buffer:
    size: int
    first_use: int   # index of the first layer that writes or reads it
    last_use: int    # index of the last layer that reads it
    offset: int = -1

    def lives_with(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def greedy_plan(buffers: list[Buffer]) -> int:
    """Assign offsets in place; return the arena size."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first_use)):
        offset = 0
        for other in sorted((p for p in placed if p.lives_with(buf)), key=lambda p: p.offset):
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size))
        buf.offset = offset
        placed.append(buf)
    return max((_align(b.offset + b.size) for b in buffers), default=0)


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


def _overwrite_dead_inputs(calls, owner: dict[int, int], buffers: list[Buffer]) -> None:
    """Let an element-wise layer write into an input buffer that nothing reads afterwards."""
    for step, call in enumerate(calls):
        out = owner[call.outputs[0]] if call.outputs else None
        for position in call.overwrites:
            src = owner[call.inputs[position]]
            a, b = buffers[src], buffers[out]
            if src != out and a.last_use == step and b.first_use == step and a.size >= b.size:
                a.last_use = b.last_use
                for t, buf in owner.items():
                    if buf == out:
                        owner[t] = src
                break


def plan_arena(calls, tensors, graph_inputs: list[int], graph_outputs: list[int]) -> ArenaPlan:
    """Plan the activation tensors of a list of KernelCalls (in execution order)."""
    owner: dict[int, int] = {}          # tensor -> buffer id (in-place outputs share their input's)
    buffers: list[Buffer] = []

    def use(tensor: int, step: int) -> None:
        if tensor not in owner:
            owner[tensor] = len(buffers)
            buffers.append(Buffer(tensors[tensor].nbytes, step, step))
        buf = buffers[owner[tensor]]
        buf.size = max(buf.size, tensors[tensor].nbytes)
        buf.first_use, buf.last_use = min(buf.first_use, step), max(buf.last_use, step)

    last = len(calls)
    for t in graph_inputs:
        use(t, 0)
    for step, call in enumerate(calls):
        for t in call.inputs:
            use(t, step)
        for t in call.outputs:
            if call.in_place and call.inputs and t not in owner:
                owner[t] = owner[call.inputs[0]]
            use(t, step)
    for t in graph_outputs:
        use(t, last)
    _overwrite_dead_inputs(calls, owner, buffers)
    live = [buffers[b] for b in sorted(set(owner.values()))]
    scratch = {step: Buffer(call.scratch_bytes, step, step) for step, call in enumerate(calls)
               if call.scratch_bytes}

    unshared = linear_plan([Buffer(tensors[t].nbytes, 0, 0) for t in owner] +
                           [Buffer(buf.size, 0, 0) for buf in scratch.values()])
    size = greedy_plan(live + list(scratch.values()))
    return ArenaPlan(size=size, offsets={t: buffers[b].offset for t, b in owner.items()},
                     unshared_size=unshared, scratch={step: buf.offset for step, buf in scratch.items()})
