"""Stage 2, compress: structured pruning of a Keras model's Dense, Conv2D and DepthwiseConv2D layers.

    prune:F              keep the fraction F (in (0, 1]) of the output channels (units) of every layer
                         that can be pruned
    prune:LAYER=F,...    of the named Dense / Conv2D layers only
    prune:F:loss         rank the channels by loss sensitivity instead of L1 norm (also
                         prune:LAYER=F,...:loss; prune:F:l1 is the default spelled out)

Importance: a layer keeps its most important channels, in their original order (ties: the first).
- `l1`: the L1 norm of the channel's kernel weights (a Dense kernel's column, a Conv2D's kh x kw x Cin
  filter; the bias does not count).
- `loss`: how much the loss grows when that one channel is removed, measured by removing it (zeroing its
  consumers' inputs, which is exactly what removing it does) over the first 128 samples: the cross-entropy
  (integer labels) or squared error (float targets) on the training data when labels are given (--train),
  else the mean squared change of the model's outputs against the unpruned model's on the calibration
  samples. One forward pass per channel: slower than l1, for small models.

A layer of n channels keeps max(1, round(F x n)) of them (halves rounded up): at least one.

A channel goes all the way to the next layers that mix channels (Dense, Conv2D): their matching inputs go
too, so the network stays dense and smaller. Pruning follows channels through per-channel layers:
BatchNormalization, activations (not softmax), pooling and global pooling, Dropout, ZeroPadding, Cropping,
UpSampling, a Reshape that keeps the last (channel) axis, and Flatten (the next Dense loses the rows
p*C + c of each position p, NHWC). A DepthwiseConv2D on pruned channels loses the same channels (with depth
multiplier m, its outputs c*m .. c*m+m-1) and passes the pruning on. A layer is kept whole, with the reason
in its step's note, when its outputs reach the model's output (its shape would change), a merge (Add,
Concatenate, Multiply: a residual's other branch would need the same channels), or a layer pruning cannot
follow.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .keras_graph import keras, layer_graph, params, rebuild, weight_layer_bytes
from .plan import KERAS, Context, LayerStep, Method, per_layer, unknown_layers

MEASURES = {"l1": "L1 norm", "loss": "loss sensitivity"}
SENSITIVITY_SAMPLES = 128
MIXING_ACTIVATIONS = ("softmax", "log_softmax")
# Layers that act on each channel alone (at inference): the kept channels pass through unchanged.
PER_CHANNEL = ("ReLU", "LeakyReLU", "ELU", "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
               "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
               "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
               "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
               "GlobalMaxPooling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
               "UpSampling1D", "UpSampling2D")


def kept_count(fraction: float, channels: int) -> int:
    """max(1, round(F x n)), halves rounded up."""
    return max(1, int(np.floor(fraction * channels + 0.5)))


@dataclass
class Reach:
    """Where some of a layer's output channels go: the indices each layer on the way keeps along its input's
    last axis, the layers that mix channels (whose inputs shrink, and where the path stops), and the
    per-channel layers between."""
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    sinks: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)


def _mixes(layer, k) -> bool:
    """A Dense or plain Conv2D (NHWC): a layer whose output channels can be pruned, where a pruning stops."""
    kind = type(layer)
    return kind is k.layers.Dense or (kind is k.layers.Conv2D and layer.groups == 1
                                      and layer.data_format == "channels_last")


def _activation(layer) -> str:
    activation = layer.get_config().get("activation")
    return activation if isinstance(activation, str) else ""


def _through(layer, keep: np.ndarray, size: int, k) -> tuple[np.ndarray, int] | str:
    """(kept indices, length) along a per-channel layer's output's last axis from its input's; or why not."""
    config, name = layer.get_config(), f"{layer.name} ({type(layer).__name__})"
    if config.get("data_format", "channels_last") != "channels_last":
        return f"its channels reach {name}, which is channels_first"
    if _activation(layer) in MIXING_ACTIVATIONS:
        return f"its channels reach {name}, whose {_activation(layer)} mixes them"
    if isinstance(layer, k.layers.DepthwiseConv2D):
        m = config["depth_multiplier"]
        return (keep[:, None] * m + np.arange(m)).ravel(), size * m
    if isinstance(layer, k.layers.BatchNormalization):
        rank = len(layer.input.shape)
        axes = config["axis"] if isinstance(config["axis"], (list, tuple)) else [config["axis"]]
        if [a % rank for a in axes] != [rank - 1]:
            return f"its channels reach {name}, which normalizes over axis {config['axis']}, not channels"
        return keep, size
    if isinstance(layer, k.layers.Flatten):
        shape = layer.input.shape
        positions = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        return (np.arange(positions)[:, None] * size + keep).ravel(), positions * size
    if isinstance(layer, k.layers.Reshape):
        if tuple(config["target_shape"])[-1:] != (size,):
            return f"its channels reach {name}, which does not keep the channel axis last"
        return keep, size
    if type(layer).__name__ in PER_CHANNEL:
        return keep, size
    return f"pruning cannot follow its channels through {name}"


def follow(graph, source, keep: np.ndarray, size: int) -> Reach | str:
    """Where removing all but `keep` of `source`'s `size` output channels reaches; or why it cannot."""
    k = keras()
    reach, todo = Reach(), [(source, keep, size)]
    while todo:
        layer, keep, size = todo.pop(0)
        if layer is source and layer.name in graph.outputs:
            return "its outputs reach the model's output"
        for consumer in graph.consumers[layer.name]:
            if len(graph.producers[consumer.name]) > 1:
                return f"its outputs reach the merge {consumer.name} ({type(consumer).__name__})"
            reach.inputs[consumer.name] = keep
            if _mixes(consumer, k):
                reach.sinks.append(consumer.name)
                continue
            if consumer.name in graph.outputs:
                return f"its outputs reach the model's output through {consumer.name}"
            passed = _through(consumer, keep, size, k)
            if isinstance(passed, str):
                return passed
            reach.passes.append(consumer.name)
            todo.append((consumer, *passed))
    return reach


class PruneMethod(Method):
    names = ("prune",)
    stage = KERAS
    keeps_names = True
    usage = "prune:F or prune:LAYER=F,... with F in (0, 1], and :loss after it to rank by loss sensitivity"

    def options(self) -> tuple[float | None, dict[str, float], str]:
        """(one fraction for every layer or None, {layer: fraction}, measure)."""
        text = self.arg or ""
        head, colon, tail = text.rpartition(":")
        measure = "l1"
        if colon:
            if tail not in MEASURES:
                raise self.bad(f"unknown importance measure {tail!r} (the measures: {', '.join(MEASURES)})")
            text, measure = head, tail
        default, fractions = per_layer(type(self)(self.name, text or None), self._fraction)
        return default, fractions, measure

    def _fraction(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise self.bad(f"{text!r} is not a fraction") from None
        if not 0 < value <= 1:
            raise self.bad(f"the fraction {text} must lie in (0, 1] (the share of the channels kept)")
        return value

    @classmethod
    def candidates(cls, model) -> dict[str, list[str | None]]:
        """For auto: three quarters, half and a quarter of the channels of each Dense and Conv2D layer."""
        k = keras()
        return {layer.name: ["0.75", "0.5", "0.25"] for layer in layer_graph(model).layers
                if _mixes(layer, k)}

    def apply_keras(self, model, context: Context):
        default, fractions, measure = self.options()
        pruned, steps, _ = prune_model(model, default, fractions, measure, context, self)
        return pruned, steps


def prune_model(model, default: float | None, fractions: dict[str, float], measure: str, context: Context,
                method: Method):
    """(the pruned model, a LayerStep per weight layer asked for or changed, {layer: kept channels})."""
    k = keras()
    graph = layer_graph(model)
    sources = {layer.name: layer for layer in graph.layers if _mixes(layer, k)}
    depthwise = [layer.name for layer in graph.layers if isinstance(layer, k.layers.DepthwiseConv2D)]
    named_depthwise = sorted(set(fractions) & set(depthwise))
    if named_depthwise:
        raise method.bad(f"{', '.join(named_depthwise)}: a DepthwiseConv2D keeps the channels of its input; "
                         "prune the Dense or Conv2D layer before it")
    unknown_layers(method, fractions, sources)
    asked = {name: f for name in sources if (f := fractions.get(name, default)) is not None}
    reaches, why = {}, {}
    for name, layer in sources.items():
        n = layer.get_weights()[0].shape[-1]
        found = follow(graph, layer, np.arange(n), n)
        if _activation(layer) in MIXING_ACTIVATIONS:
            found = f"its {_activation(layer)} mixes its channels"
        (why if isinstance(found, str) else reaches)[name] = found
    prunable = [name for name in asked if name in reaches]
    scores, how = importance(model, graph, prunable, sources, measure, context, method)

    kept, inputs, origin = {}, {}, {}
    for name in prunable:
        n = sources[name].get_weights()[0].shape[-1]
        order = np.argsort(-scores[name], kind="stable")
        kept[name] = np.sort(order[:kept_count(asked[name], n)])
        if len(kept[name]) < n:
            reach = follow(graph, sources[name], kept[name], n)
            inputs.update(reach.inputs)
            origin.update({other: name for other in reach.inputs})

    configs, weights, steps = {}, {}, []
    for layer in graph.layers:
        config, old = layer.get_config(), layer.get_weights()
        new = _pruned_weights(layer, old, config, kept.get(layer.name), inputs.get(layer.name), k)
        if new is not old:
            configs[layer.name], weights[layer.name] = config, new
        step = _step(layer, old, new, kept, inputs, origin, asked, why, how, default, k)
        if step is not None:
            steps.append(step)
    return rebuild(model, configs, weights), steps, kept


def _pruned_weights(layer, w: list, config: dict, out: np.ndarray | None, inp: np.ndarray | None, k) -> list:
    """The layer's weights with only the `out` output channels and `inp` input channels (None: all), its
    config updated in place; `w` itself when nothing changes."""
    if out is not None and len(out) == w[0].shape[-1]:
        out = None
    if out is None and inp is None:
        return w
    w = list(w)
    if _mixes(layer, k):     # kernel (..., Cin, Cout), bias (Cout,)
        if inp is not None:
            w[0] = np.take(w[0], inp, axis=-2)
        if out is not None:
            w = [np.take(w[0], out, axis=-1), *(b[out] for b in w[1:])]
            config["units" if "units" in config else "filters"] = len(out)
    elif isinstance(layer, k.layers.DepthwiseConv2D):   # kernel (kh, kw, C, m), bias (C*m,)
        m = w[0].shape[3]
        w = [w[0][:, :, inp], *(b.reshape(-1, m)[inp].ravel() for b in w[1:])]
    elif isinstance(layer, k.layers.Reshape):
        config["target_shape"] = (*tuple(config["target_shape"])[:-1], len(inp))
    else:                    # per-channel weights: BatchNormalization's gamma, beta, mean, variance
        w = [v[inp] for v in w]
    return w


def _step(layer, old, new, kept, inputs, origin, asked, why, how, default, k) -> LayerStep | None:
    """The report line of a weight layer the step was asked to prune or changed; None for other layers."""
    depthwise = isinstance(layer, k.layers.DepthwiseConv2D)
    if not (_mixes(layer, k) or depthwise):
        return None
    name = layer.name
    if name not in asked and new is old and not (depthwise and default is not None):
        return None
    unit = "units" if isinstance(layer, k.layers.Dense) else "channels"
    n = old[0].shape[-1] if not depthwise else old[0].shape[2] * old[0].shape[3]
    note = why.get(name, "")
    if name in kept:
        detail = f"{len(kept[name])} of {n} {unit} kept ({how})"
    elif depthwise and name in inputs:
        detail = f"{len(inputs[name]) * old[0].shape[3]} of {n} channels kept (those {origin[name]} keeps)"
    else:
        detail = f"all {n} {unit} kept"
        if depthwise and not note:
            note = "a DepthwiseConv2D keeps the channels of its input, and those are not pruned"
    if _mixes(layer, k) and name in inputs:
        detail += f"; {len(inputs[name])} of {old[0].shape[-2]} inputs (those {origin[name]} keeps)"
    return LayerStep(name, "prune", detail, params(old), params(new), weight_layer_bytes(layer, old),
                     weight_layer_bytes(layer, new), note)


# ---- importance -----------------------------------------------------------------------------------

def importance(model, graph, names: list[str], sources: dict, measure: str, context: Context,
               method: Method):
    """({layer: a score per output channel, higher is more important}, the measure as the report says it)."""
    if measure == "l1":
        return {name: _l1(sources[name].get_weights()[0]) for name in names}, MEASURES["l1"]
    x, score, what = _loss_data(model, context, method)
    probe = rebuild(model, {}, {})      # a copy whose weights are zeroed and restored channel by channel
    base = score(_run(probe, x))
    scores = {}
    for name in names:
        n = sources[name].get_weights()[0].shape[-1]
        grown = np.zeros(n)
        for c in range(n):
            reach = follow(graph, sources[name], np.array([c]), n)
            saved = {sink: probe.get_layer(sink).get_weights() for sink in reach.sinks}
            for sink, w in saved.items():
                kernel = w[0].copy()
                kernel[..., reach.inputs[sink], :] = 0
                probe.get_layer(sink).set_weights([kernel, *w[1:]])
            grown[c] = score(_run(probe, x)) - base
            for sink, w in saved.items():
                probe.get_layer(sink).set_weights(w)
        scores[name] = grown
    return scores, f"{MEASURES['loss']}: {what} on {len(x)} samples"


def _l1(kernel: np.ndarray) -> np.ndarray:
    return np.abs(kernel.astype(np.float64)).reshape(-1, kernel.shape[-1]).sum(axis=0)


def _run(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False), dtype=np.float64)


def _loss_data(model, context: Context, method: Method):
    """(samples, their loss as a function of the model's outputs, what that loss is)."""
    n = SENSITIVITY_SAMPLES
    if context.train_x is not None and context.train_y is not None:
        x, y = np.asarray(context.train_x[:n]), np.asarray(context.train_y[:n])
        if np.issubdtype(y.dtype, np.integer):
            last = model.layers[-1]
            probabilities = _activation(last) == "softmax" or type(last).__name__ == "Softmax"

            def cross_entropy(out):
                if probabilities:
                    logp = np.log(np.clip(out, 1e-12, 1))
                else:
                    shifted = out - out.max(axis=1, keepdims=True)
                    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                return float(-np.mean(logp[np.arange(len(y)), y.reshape(-1)]))
            return x, cross_entropy, "cross-entropy"
        return x, lambda out: float(np.mean((out - y.reshape(out.shape)) ** 2)), "squared error"
    x = context.calibration if context.calibration is not None else context.train_x
    if x is None:
        raise method.bad("the loss measure needs samples: calibration data or --train data")
    x = np.asarray(x[:n])
    reference = _run(model, x)
    return x, lambda out: float(np.mean((out - reference) ** 2)), "output change"
