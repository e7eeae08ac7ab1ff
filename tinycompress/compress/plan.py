"""One compression plan: per-layer steps written `STEP[+STEP...]`, each step one method behind one interface.

    prune:0.5            keep half the output channels of every Dense/Conv2D/DepthwiseConv2D, by L1 norm
    prune:conv=0.5:loss  ... of the layer conv, ranked by loss sensitivity on the calibration data (prune.py)
    rank:16, energy:0.9  low-rank factorization (SVD / Tucker-2)
    cp:8                 CP decomposition of k x k convolutions, or Tucker-2 where it reconstructs better
    int4, int4:dense_1   4-bit weights, packed two to a byte
    cluster:16           a 16-entry palette of int8 weights per layer
    embedding:pq:8       an embedding method on the int8 table (row-int8, lowrank:R, pq:M, hash:B, kronecker)

A method is a subclass of `Method` in a module of its own in this package; it is found by its `names`, so a
new method touches its own module, its kernel and its test. Methods run in two stages:
- KERAS methods change the float model before quantization (prune, rank, cp). Fine-tuning (`--train`)
  follows them, with the graph methods' `fine_tune_model` hooks in place (int4's fake-quant).
- GRAPH methods change the full-int8 graph after conversion (int4, cluster, embeddings). Each returns a graph
  whose `source` is the .tflite TFLite Micro verifies the firmware against.
Within a plan the KERAS steps run before the GRAPH steps; within a stage, in the order written.

`auto` (analysis/auto.py) searches per-layer steps of every method whose `candidates` hook offers some:
it measures each candidate's sensitivity (the metric on the evaluation set with that one layer changed)
and builds plans from the cheapest bytes first, written back as specs with `spec_for`.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from ..errors import TinyCompressError

KERAS, GRAPH = "keras", "graph"
FULL, AUTO = "full", "auto"


@dataclass
class LayerStep:
    """What one step did to one layer, for the report (`variants[].steps`)."""
    layer: str
    method: str                     # the method's name: 'prune', 'rank', 'cp', 'int4', 'cluster', 'embedding'
    detail: str                     # e.g. 'rank 16 (svd)', '32 of 64 channels kept (L1)', '4-bit per channel'
    params_before: int
    params_after: int
    bytes_before: int | None = None   # the layer's weight bytes in flash, where the method knows them
    bytes_after: int | None = None
    note: str = ""                    # e.g. why a layer was left as it was


@dataclass
class Context:
    """What a method may use besides the model: the calibration samples (float32 features or token ids),
    the training data when given, and the token strings for embedding methods."""
    calibration: np.ndarray | None = None
    train_x: np.ndarray | None = None
    train_y: np.ndarray | None = None
    vocab: list[str] | None = None
    extra: dict = field(default_factory=dict)    # what one step leaves for a later one (e.g. the fitted parts)


class Method:
    """One compression method. Subclasses set `names` (the spec words they answer to), `stage`, and
    implement `apply_keras` (KERAS) or `apply_graph` (GRAPH)."""
    names: ClassVar[tuple[str, ...]] = ()
    stage: ClassVar[str] = KERAS
    usage: ClassVar[str] = ""        # e.g. 'prune:F or prune:LAYER=F,...', for error messages and --help
    keeps_names: ClassVar[bool] = False   # a KERAS method keeping its layers' names (so auto may add GRAPH
                                          # steps on them: prune does, rank and cp make new layers)

    context: Context | None = None   # set by the pipeline before any hook runs (fine_tune_model may need it)

    def __init__(self, name: str, arg: str | None):
        self.name, self.arg = name, arg

    @property
    def label(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg}"

    def apply_keras(self, model, context: Context) -> tuple[object, list[LayerStep]]:
        raise NotImplementedError

    def apply_graph(self, graph, context: Context) -> tuple[object, list[LayerStep]]:
        raise NotImplementedError

    def fine_tune_model(self, model):
        """The model fine-tuning trains, for a GRAPH method that wants its arithmetic seen in training
        (int4: the weights fake-quantized to 4 bits); by default the model itself."""
        return model

    def fine_tuned(self, model):
        """The plain model back from the one `fine_tune_model` gave, once trained (int4: the kernels on the
        4-bit grid, the fake-quant taken off); by default the model itself."""
        return model

    @classmethod
    def candidates(cls, model) -> dict[str, list[str | None]]:
        """What `auto` may try, per layer: {layer: [value, ...]}, the mildest first, each value as written
        after `LAYER=` in the step's spec (`rank:dense_1=16`), or None for a method whose spec lists
        layers only (`int4:dense_1`). `model` is the Keras model for a KERAS method, the int8 Graph for a
        GRAPH method. By default nothing: the method takes no part in the search."""
        return {}

    @classmethod
    def spec_for(cls, settings: dict[str, str | None]) -> str:
        """The step's spec for per-layer settings chosen among `candidates`: `rank:a=8,b=4`, `int4:a,b`."""
        items = [layer if value is None else f"{layer}={value}" for layer, value in settings.items()]
        return f"{cls.names[0]}:{','.join(items)}"

    def bad(self, why: str) -> TinyCompressError:
        return TinyCompressError(f"--compress {self.label}: {why}" + (f"; write {self.usage}" if self.usage else ""))


@dataclass
class Plan:
    steps: list[Method]

    @property
    def label(self) -> str:
        return "+".join(s.label for s in self.steps) or FULL

    @property
    def keras_steps(self) -> list[Method]:
        return [s for s in self.steps if s.stage == KERAS]

    @property
    def graph_steps(self) -> list[Method]:
        return [s for s in self.steps if s.stage == GRAPH]

    @property
    def empty(self) -> bool:
        return not self.steps


def methods() -> dict[str, type[Method]]:
    """Every method in this package, by spec word."""
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if module.name != "plan":
            importlib.import_module(f"{package}.{module.name}")
    found: dict[str, type[Method]] = {}

    def walk(cls):
        for sub in cls.__subclasses__():
            for name in sub.names:
                found[name] = sub
            walk(sub)
    walk(Method)
    return found


def parse_plan(text: str) -> Plan:
    """`full`, or steps joined by '+': `prune:0.5+rank:16+int4`. ('auto' is the sweep's, not a plan.)"""
    text = text.strip()
    if text in ("", FULL):
        return Plan([])
    known = methods()
    steps = []
    for part in text.split("+"):
        name, colon, arg = part.strip().partition(":")
        if name not in known:
            raise TinyCompressError(f"--compress {text}: unknown step {name!r}; the steps are "
                                    f"{', '.join(sorted(known))} (joined with '+', e.g. prune:0.5+int4)")
        if colon and not arg:
            raise TinyCompressError(f"--compress {text}: {name}: needs a value after ':'")
        steps.append(known[name](name, arg if colon else None))
    for i, step in enumerate(steps):      # one step per method (rank and energy are one method)
        twin = next((s for s in steps[:i] if type(s) is type(step)), None)
        if twin is not None:
            what = f"{step.name} appears twice" if twin.name == step.name else \
                f"{twin.name} and {step.name} are the same method"
            raise TinyCompressError(f"--compress {text}: {what}; give each step once "
                                    "(per-layer values go in one step: rank:dense=8,conv=4)")
    return Plan(sorted(steps, key=lambda s: s.stage != KERAS))   # stable: written order within a stage


def per_layer(method: Method, convert: Callable[[str], object]) -> tuple[object | None, dict[str, object]]:
    """A step's argument as (one value for every layer, or None; {layer: value}): `V` or `LAYER=V,...`."""
    if method.arg is None:
        raise method.bad("it needs a value")
    if "=" not in method.arg:
        return convert(method.arg), {}
    values = {}
    for item in method.arg.split(","):
        layer, _, value = item.partition("=")
        if not layer.strip() or not value.strip():
            raise method.bad(f"{item!r} is not LAYER=VALUE")
        values[layer.strip()] = convert(value.strip())
    return None, values


def layer_names(method: Method) -> set[str] | None:
    """A step's argument as a set of layer names (`int4:dense_1,dense_2`), or None (every layer)."""
    if method.arg is None:
        return None
    names = {n.strip() for n in method.arg.split(",") if n.strip()}
    if not names:
        raise method.bad("name at least one layer")
    return names


def unknown_layers(method: Method, asked, present) -> None:
    """Refuse layer names in the step that the model does not have, listing the ones it has."""
    missing = sorted(set(asked) - set(present))
    if missing:
        raise method.bad(f"the model has no layer {', '.join(missing)} that it applies to (it has "
                         f"{', '.join(sorted(present)) or 'none'})")
