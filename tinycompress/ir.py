"""The small graph IR every stage works on: tensors, layers, and the graph that holds them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                                   # numpy name: 'int8', 'int32', 'float32', ...
    # float32, per tensor or per channel
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    zero_point: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    quantized_dimension: int = 0
    data: np.ndarray | None = None               # constant contents (weights, bias, shapes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0

    def nhwc(self) -> tuple[int, int, int, int]:
        """The shape as four NHWC dimensions, leading ones filled with 1."""
        shape = tuple(self.shape)
        if len(shape) > 4:
            raise ValueError(f"tensor {self.name} has rank {len(shape)}; at most 4 is supported")
        return (1,) * (4 - len(shape)) + shape


@dataclass
class Layer:
    name: str                   # C identifier, unique in the graph (from the Keras layer name where known)
    op: str                     # TFLite builtin operator name, e.g. 'FULLY_CONNECTED'
    inputs: list[int]           # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)  # builtin options, snake_case keys
    operator: int = -1          # its operator's index in the flatbuffer (layers folded at load leave gaps)


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    layers: list[Layer]
    inputs: list[int]
    outputs: list[int]
    source: bytes = b""         # the .tflite flatbuffer this graph was read from (int8 I/O: see floatio.py)
    float_io: object = None     # floatio.FloatIO when the file took or gave float32, folded off at load
    folded: list[str] = field(default_factory=list)   # layers computed at load, 'NAME (OP)' (fold.py)

    def tensor(self, index: int) -> Tensor | None:
        return self.tensors[index] if index >= 0 else None

    def input_tensor(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    def output_tensor(self) -> Tensor:
        return self.tensors[self.outputs[0]]
