"""Stage 2, compress: low-rank factorization of a Keras model's Dense and Conv2D layers.

Any functional model: a chain (Sequential-like) is rebuilt layer by layer on a batch-1 input; a model with
branches, residual additions or keras.ops calls (a transformer) is cloned with the factorized layers called
in place of the originals. A Dense layer acts on the last axis, so one on a sequence [1, T, C] (attention
projections, feed-forward layers) is factorized like any other.

Dense (m x n) becomes Dense(r, no bias) then Dense(n), from a truncated SVD
whose singular values are split evenly (sqrt(S) into each factor) so both
factors have similar ranges and quantize equally well. Conv2D k x k becomes
either a k x k conv to r channels then a 1x1 conv (the SVD of the kernel
reshaped to (k*k*C_in) x C_out), or a Tucker-2 chain (1x1 reduce, k x k core,
1x1 expand): whichever reconstructs the kernel better for the same number of
parameters. A layer whose factorized form is not smaller stays as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np

from ..errors import TinyCompressError
from .plan import KERAS, Context, LayerStep, Method

FULL = "full"


@dataclass
class RankSpec:
    """What the user asked for: one rank for every layer, ranks by layer, or an energy fraction."""
    default: int | None = None                  # None: leave layers not in per_layer alone
    per_layer: dict[str, int] = field(default_factory=dict)   # layer name or fnmatch pattern (q*) -> rank
    energy: float | None = None                 # keep this fraction of the squared singular values

    @property
    def label(self) -> str:
        if self.energy is not None:
            return f"energy {self.energy:g}"
        if self.per_layer:
            pairs = ",".join(f"{k}={v}" for k, v in self.per_layer.items())
            return pairs if self.default is None else f"rank {self.default},{pairs}"
        return FULL if self.default is None else f"rank {self.default}"

    def rank_of(self, name: str) -> tuple[int | None, bool]:
        """(the rank asked for layer `name`, whether it was asked by name or pattern): its own name first,
        then the first pattern matching it, then the default."""
        if name in self.per_layer:
            return self.per_layer[name], True
        found = next((r for p, r in self.per_layer.items() if _pattern(p) and fnmatchcase(name, p)), None)
        return (found, True) if found is not None else (self.default, False)


def _pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def parse_rank(text: str | None, energy: float | None = None) -> RankSpec:
    """`16`, `full`, `dense_1=16,conv_2=8`, or a rank for every layer with some layers' own:
    `16,q*=8,k*=8` (a LAYER may be an fnmatch pattern: `*`, `?`, `[qkv]`)."""
    if energy is not None:
        if not 0 < energy <= 1:
            raise TinyCompressError(f"--energy {energy} must lie in (0, 1], e.g. 0.95")
        return RankSpec(energy=energy)
    if text is None or text == FULL:
        return RankSpec()
    if "=" not in text:
        return RankSpec(default=_positive_rank(text))
    per_layer, default = {}, None
    for item in text.split(","):
        name, equals, value = item.partition("=")
        if not equals and default is None and name.strip():
            default = _positive_rank(name.strip())
            continue
        if not name.strip() or not value:
            raise TinyCompressError(f"--rank {text}: write a rank, 'full', or layer=rank pairs like "
                                    "dense_1=16,conv_2=8 (after at most one rank for the other layers)")
        per_layer[name.strip()] = _positive_rank(value)
    return RankSpec(default=default, per_layer=per_layer)


def _positive_rank(text: str) -> int:
    try:
        rank = int(text)
    except ValueError:
        raise TinyCompressError(f"rank {text!r} is not a whole number (or 'full')") from None
    if rank < 1:
        raise TinyCompressError(f"rank {rank} must be at least 1")
    return rank


@dataclass
class Decision:
    """What happened to one layer, for the report."""
    layer: str
    kind: str                 # 'Dense' or 'Conv2D'
    shape: tuple[int, int]    # (m, n) of the matrix that was factorized
    rank: int | None          # None: kept as it is
    method: str               # 'svd', 'tucker2' or 'kept'
    params_before: int
    params_after: int
    energy_kept: float        # fraction of the squared singular values kept
    note: str = ""
    channels: int = 0         # output channels of the layers it becomes (each has requantization values)


# ---- the factorizations (pure numpy) --------------------------------------------------------------

def svd_factors(w: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W (m x n) ~ A (m x r) @ B (r x n), sqrt(S) in each; also the singular values."""
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    return (u[:, :rank] * root).astype(np.float32), (root[:, None] * vt[:rank]).astype(np.float32), s


def energy_rank(singular_values: np.ndarray, energy: float) -> int:
    """The smallest rank keeping `energy` of the squared singular values."""
    cumulative = np.cumsum(singular_values ** 2) / np.sum(singular_values ** 2)
    return int(np.searchsorted(cumulative, energy - 1e-12) + 1)


def tucker2(kernel: np.ndarray, rank_in: int, rank_out: int):
    """HOSVD of a (kh, kw, cin, cout) kernel: reduce (cin x r1), core (kh, kw, r1, r2), expand (r2 x cout)."""
    kh, kw, cin, cout = kernel.shape
    k = kernel.astype(np.float64)
    u_in = np.linalg.svd(k.transpose(2, 0, 1, 3).reshape(cin, -1), full_matrices=False)[0][:, :rank_in]
    u_out = np.linalg.svd(k.transpose(3, 0, 1, 2).reshape(cout, -1), full_matrices=False)[0][:, :rank_out]
    core = np.einsum("hwio,ir,os->hwrs", k, u_in, u_out)
    return u_in.astype(np.float32), core.astype(np.float32), u_out.T.astype(np.float32)


def _relative_error(kernel: np.ndarray, approx: np.ndarray) -> float:
    return float(np.linalg.norm(kernel - approx) / max(np.linalg.norm(kernel), 1e-30))


def conv_plan(kernel: np.ndarray, rank: int) -> tuple[str, tuple, float]:
    """Choose SVD or Tucker-2 for a conv kernel at the parameter count of an SVD of `rank`."""
    kh, kw, cin, cout = kernel.shape
    a, b, _ = svd_factors(kernel.reshape(kh * kw * cin, cout), rank)
    svd_error = _relative_error(kernel, (a @ b).reshape(kernel.shape))
    budget = rank * (kh * kw * cin + cout)
    if kh * kw == 1:
        return "svd", (a, b), svd_error
    # The largest square Tucker rank within the same parameter budget.
    t = 0
    while t + 1 <= min(cin, cout) and (cin + cout) * (t + 1) + kh * kw * (t + 1) ** 2 <= budget:
        t += 1
    if t == 0:
        return "svd", (a, b), svd_error
    reduce, core, expand = tucker2(kernel, t, t)
    approx = np.einsum("ir,hwrs,so->hwio", reduce, core, expand)
    tucker_error = _relative_error(kernel, approx)
    if tucker_error < svd_error:
        return "tucker2", (reduce, core, expand), tucker_error
    return "svd", (a, b), svd_error


# ---- rebuilding the Keras model -------------------------------------------------------------------

def _keras():
    from ..frontend.quantize import _tensorflow
    _tensorflow()
    import keras
    return keras


def _chain(model, keras) -> list:
    """The model's layers in order, checking each one feeds only the next (no branches)."""
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    previous = model.inputs[0]
    for layer in layers:
        try:
            single_input = layer.input is previous
        except (AttributeError, ValueError):
            single_input = False
        if not single_input:
            raise TinyCompressError(f"layer {layer.name} does not simply follow the layer before it; factorization "
                                    "supports chain models (Sequential-like), not branches or shared layers")
        previous = layer.output
    return layers


def _matrix_shape(layer, keras) -> tuple[int, int] | None:
    """(m, n) of the matrix a Dense or Conv2D layer multiplies by, None for other layers."""
    if isinstance(layer, keras.layers.Dense):
        return tuple(layer.kernel.shape)
    if type(layer) is keras.layers.Conv2D and layer.groups == 1:
        kh, kw, cin, cout = layer.kernel.shape
        return kh * kw * cin, cout
    return None


def _weight_layers(model, keras) -> tuple[list, bool]:
    """The model's layers in call order (no InputLayer), and whether they form a chain."""
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    try:
        _chain(model, keras)
        return layers, True
    except TinyCompressError:
        if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential):
            raise
        return layers, False


def factorizable_layers(model) -> dict[str, tuple[int, int]]:
    keras = _keras()
    return {l.name: s for l in _weight_layers(model, keras)[0] if (s := _matrix_shape(l, keras)) is not None}


def _clone(layer, x):
    new = type(layer).from_config(layer.get_config())
    y = new(x)
    new.set_weights(layer.get_weights())
    return y


def _choose_rank(spec: RankSpec, name: str, shape: tuple[int, int], singular_values: np.ndarray) -> int | None:
    if spec.energy is not None:
        return energy_rank(singular_values, spec.energy)
    rank, named = spec.rank_of(name)
    if named and rank > min(shape):
        raise TinyCompressError(f"rank {rank} for layer {name} is above min(m, n) = {min(shape)} "
                                f"of its {shape[0]}x{shape[1]} matrix")
    return rank


def _above_width(rank: int | None, shape: tuple[int, int]) -> str:
    """Why one rank for every layer leaves this one as it is, when it exceeds the layer's width."""
    if rank is None or rank <= min(shape):
        return ""
    return f"rank {rank} is above min(m, n) = {min(shape)} of its {shape[0]}x{shape[1]} matrix"


def factorize(model, spec: RankSpec):
    """A new batch-1 Keras model with the layers `spec` names factorized, and what was done to each."""
    keras = _keras()
    layers, chain = _weight_layers(model, keras)
    shapes = {l.name: s for l in layers if (s := _matrix_shape(l, keras)) is not None}
    unknown = [name for name in spec.per_layer if name not in shapes and
               not (_pattern(name) and any(fnmatchcase(s, name) for s in shapes))]
    if unknown:
        raise TinyCompressError(f"no Dense or Conv2D layer named {', '.join(unknown)}; "
                                f"factorizable layers: {', '.join(shapes) or 'none'}")
    if not shapes and (spec.default is not None or spec.energy is not None):
        raise TinyCompressError(f"{model.name} has no Dense or Conv2D layer to factorize")
    # One rank for every layer skips the layers narrower than it (with a note): a sweep of global ranks
    # goes on past the small layers; a rank named for a layer must fit it (_choose_rank).
    if not chain:
        return _factorize_graph(model, layers, shapes, spec, keras)
    inp = keras.Input(tuple(model.inputs[0].shape[1:]), batch_size=1, name=model.inputs[0].name.split(":")[0])
    x, decisions = inp, []
    for layer in layers:
        if layer.name not in shapes:
            x = _clone(layer, x)
            continue
        x, decision = _factorize_layer(layer, x, shapes[layer.name], spec, keras)
        decisions.append(decision)
    return keras.Model(inp, x, name=model.name), decisions


def _factorize_graph(model, layers, shapes, spec: RankSpec, keras):
    """A model with branches (residuals, attention): cloned, each factorizable layer's call replaced by its
    factorized layers on the same input, every other layer a copy with the same weights."""
    originals, decisions = {l.name: l for l in layers}, []

    def call(layer, *args, **kwargs):
        if layer.name not in shapes:
            return layer(*args, **kwargs)
        if kwargs or len(args) != 1:
            raise TinyCompressError(f"layer {layer.name} is called with more than its input; factorization "
                                    "needs Dense and Conv2D layers called on one tensor")
        y, decision = _factorize_layer(originals[layer.name], args[0], shapes[layer.name], spec, keras)
        decisions.append(decision)
        return y

    clone = keras.models.clone_model(model, clone_function=lambda l: type(l).from_config(l.get_config()),
                                     call_function=call)
    factorized = {d.layer for d in decisions}
    for layer in clone.layers:
        if layer.name in originals and layer.name not in factorized and originals[layer.name].weights:
            layer.set_weights(originals[layer.name].get_weights())
    return clone, decisions


def _factorize_layer(layer, x, shape, spec: RankSpec, keras):
    m, n = shape
    kernel = layer.get_weights()[0]
    matrix = kernel.reshape(m, n)
    singular_values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    rank = _choose_rank(spec, layer.name, shape, singular_values)
    kind = "Dense" if isinstance(layer, keras.layers.Dense) else "Conv2D"
    bias = layer.get_weights()[1:]  # [] or [bias]
    params = m * n + sum(b.size for b in bias)
    if rank is None or rank * (m + n) >= m * n:
        note = "" if rank is None else _above_width(rank, shape) or f"rank {rank} is not smaller than {m}x{n}"
        return _clone(layer, x), Decision(layer.name, kind, shape, None, "kept", params, params, 1.0, note)

    energy = float(np.sum(singular_values[:rank] ** 2) / np.sum(singular_values ** 2))
    config = layer.get_config()
    tail = {"activation": config["activation"], "use_bias": config["use_bias"]}
    if kind == "Dense":
        a, b, _ = svd_factors(matrix, rank)
        u = keras.layers.Dense(rank, use_bias=False, name=f"{layer.name}_u")
        v = keras.layers.Dense(n, name=f"{layer.name}_v", **tail)
        x = v(u(x))
        u.set_weights([a])
        v.set_weights([b, *bias])
        method, after = "svd", rank * (m + n)
    else:
        window = {k: config[k] for k in ("strides", "padding", "dilation_rate")}
        kh, kw, cin, cout = kernel.shape
        method, factors, _ = conv_plan(kernel, rank)
        if method == "svd":
            a, b = factors
            first = keras.layers.Conv2D(rank, (kh, kw), use_bias=False, name=f"{layer.name}_u", **window)
            second = keras.layers.Conv2D(cout, 1, name=f"{layer.name}_v", **tail)
            x = second(first(x))
            first.set_weights([a.reshape(kh, kw, cin, rank)])
            second.set_weights([b.reshape(1, 1, rank, cout), *bias])
            after = rank * (m + n)
        else:
            reduce, core, expand = factors
            t = core.shape[2]
            r = keras.layers.Conv2D(t, 1, use_bias=False, name=f"{layer.name}_reduce")
            c = keras.layers.Conv2D(t, (kh, kw), use_bias=False, name=f"{layer.name}_core", **window)
            e = keras.layers.Conv2D(cout, 1, name=f"{layer.name}_expand", **tail)
            x = e(c(r(x)))
            r.set_weights([reduce.reshape(1, 1, cin, t)])
            c.set_weights([core])
            e.set_weights([expand.reshape(1, 1, t, cout), *bias])
            after = (cin + cout) * t + kh * kw * t * t
    after += sum(b.size for b in bias)
    channels = n + (rank if method == "svd" else 2 * core.shape[2])
    return x, Decision(layer.name, kind, shape, rank, method, params, after, energy, channels=channels)


# ---- the plan's step: rank:R, rank:LAYER=R,..., energy:F ---------------------------------------------

class RankMethod(Method):
    """Low-rank factorization (SVD / Tucker-2) of the Keras model's Dense and Conv2D layers."""
    names = ("rank", "energy")
    stage = KERAS
    usage = "rank:R, rank:LAYER=R,... or energy:F"

    def __init__(self, name: str, arg: str | None):
        super().__init__(name, arg)
        self.spec()                 # a malformed value is refused when the plan is read

    def spec(self) -> RankSpec:
        if self.arg is None:
            raise self.bad("it needs a value")
        try:
            if self.name == "energy":
                try:
                    energy = float(self.arg)
                except ValueError:
                    raise TinyCompressError(f"{self.arg!r} is not a number") from None
                return parse_rank(None, energy)
            return parse_rank(self.arg)
        except TinyCompressError as exc:
            raise self.bad(str(exc).removeprefix(f"--rank {self.arg}: ")) from None

    @classmethod
    def candidates(cls, model) -> dict[str, list[str | None]]:
        """Per layer of the model, the ranks of its ladder (`rank_ladder`)."""
        return {name: [str(r) for r in rank_ladder(shape)]
                for name, shape in factorizable_layers(model).items()}

    def apply_keras(self, model, context: Context):
        student, decisions = factorize(model, self.spec())
        return student, [layer_step(d) for d in decisions]


def layer_step(d: Decision) -> LayerStep:
    """A factorization decision as the plan's record; bytes as int8 weights, int32 biases and two int32
    requantization values per output channel of each layer it becomes."""
    m, n = d.shape
    bias = d.params_before - m * n
    before = m * n + 4 * bias + 8 * n
    if d.rank is None:
        return LayerStep(d.layer, "rank", "kept", d.params_before, d.params_after, before, before, d.note)
    after = d.params_after - bias + 4 * bias + 8 * d.channels
    return LayerStep(d.layer, "rank", f"rank {d.rank} ({d.method})", d.params_before, d.params_after,
                     before, after, d.note)


# ---- fine-tuning ----------------------------------------------------------------------------------

FINE_TUNE_RATE, FINE_TUNE_BATCH = 1e-3, 32


def fine_tune(student, teacher, x: np.ndarray, y: np.ndarray | None, epochs: int, seed: int = 0):
    """Recover accuracy: labels when given (class ids or targets), else distill from the teacher. Adam at
    1e-3 decaying to 0 along a cosine over the run: the last steps settle instead of jittering at full rate
    (tinylm, int4, 5 epochs on its next bytes: held-out int8 perplexity 6.45, 6.68 at a constant 1e-3)."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    if y is None:
        loss, target = "mse", teacher.predict(x, batch_size=64, verbose=0)
    elif np.issubdtype(np.asarray(y).dtype, np.integer):
        ends_in_softmax = getattr(student.layers[-1], "activation", None) is keras.activations.softmax or \
            isinstance(student.layers[-1], keras.layers.Softmax)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax)
        target = y
    else:
        loss, target = "mse", y
    steps = epochs * -(-len(x) // FINE_TUNE_BATCH)
    schedule = keras.optimizers.schedules.CosineDecay(FINE_TUNE_RATE, steps, alpha=0.0)
    student.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    student.fit(x, target, epochs=epochs, batch_size=FINE_TUNE_BATCH, verbose=0)
    return student


# ---- the ranks auto may try ---------------------------------------------------------------------------

def rank_ladder(shape: tuple[int, int], steps: int = 6) -> list[int]:
    """Ranks worth trying on an m x n matrix, largest first: from the first that saves parameters, each
    about 0.7 of the one before, down to 1."""
    m, n = shape
    ranks, rank = [], (m * n - 1) // (m + n)
    while rank >= 1 and len(ranks) < steps:
        ranks.append(rank)
        rank = min(rank - 1, int(rank * 0.7))
    return ranks
