"""Low-rank adapters (LoRA) on a frozen Keras base: h = W0 x + B (A x) on chosen Dense and Conv2D layers.

Each adapted Dense layer `L` (kernel W0, m x n) becomes, under the same name, Dense(n) with W0 and the bias
but no activation, beside the branch `L_lora_a` (Dense(r), no bias: A) -> `L_lora_b` (Dense(n), no bias: B),
the two summed by `L_lora_add` (an Add, which TFLiteConverter fuses with the layer's activation). A Conv2D
k x k to n channels likewise: A is a k x k convolution to r channels (the layer's strides, padding and
dilation), B a 1x1 convolution to n. The base's
weights stay frozen; only A and B train. B starts at zero, so an untrained adapter is the base itself.
Every task's adapted model has the same layers and names, so their int8 graphs have the same structure
(codegen/adapters.py relies on it to share the base and swap the adapters' parameters).
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from .keras_graph import keras, layer_graph, rebuild

def dense_layers(model) -> list[str]:
    """The names of the model's Dense layers, in call order."""
    k = keras()
    return [layer.name for layer in layer_graph(model).layers if isinstance(layer, k.layers.Dense)]


def adaptable_layers(model) -> list[str]:
    """What `--layers` may name: the Dense layers and the plain Conv2D layers (one group), in call order."""
    k = keras()
    return [layer.name for layer in layer_graph(model).layers if isinstance(layer, k.layers.Dense) or
            (type(layer) is k.layers.Conv2D and layer.groups == 1)]


def choose_layers(model, names: list[str] | None) -> list[str]:
    """The layers to adapt: `names` (checked: Dense or Conv2D), or every Dense layer."""
    if names is None:
        present = dense_layers(model)
        if not present:
            raise TinyCompressError(f"{model.name} has no Dense layer to adapt; name Conv2D layers with "
                                    "--layers")
        return present
    present = adaptable_layers(model)
    unknown = [n for n in names if n not in present]
    if unknown:
        raise TinyCompressError(f"--layers: the model has no Dense or Conv2D layer {', '.join(unknown)} (it "
                                f"has {', '.join(present) or 'none'})")
    if len(set(names)) != len(names):
        raise TinyCompressError("--layers: a layer is named twice")
    return [n for n in present if n in names]


def check_rank(model, layers: list[str], rank: int) -> None:
    """A rank below each adapted layer's width (else the adapter is no smaller than a new layer)."""
    shapes = {layer.name: tuple(layer.kernel.shape) for layer in model.layers if layer.name in layers}
    for name in layers:
        m, n = int(np.prod(shapes[name][:-1])), shapes[name][-1]
        if not 1 <= rank < min(m, n):
            raise TinyCompressError(f"--rank {rank}: layer {name} is {m}x{n}; the rank must be at least 1 "
                                    f"and below {min(m, n)}")


def adapted_model(base, layers: list[str], rank: int, seed: int = 0):
    """The base with an adapter of `rank` on each of `layers`: base weights copied and frozen, A drawn
    from a seeded normal (He scale), B zero."""
    k = keras()
    rng = np.random.default_rng(seed)
    originals = {layer.name: layer for layer in base.layers}

    def adapt(name):
        layer = originals[name]
        config = layer.get_config()
        activation = config["activation"]

        def build(x):
            kernel, *bias = layer.get_weights()
            m, n = int(np.prod(kernel.shape[:-1])), kernel.shape[-1]
            if isinstance(layer, k.layers.Dense):
                core = k.layers.Dense(n, use_bias=bool(bias), name=name, trainable=False)
                a = k.layers.Dense(rank, use_bias=False, name=f"{name}_lora_a")
                b = k.layers.Dense(n, use_bias=False, name=f"{name}_lora_b")
            else:
                window = {key: config[key] for key in ("strides", "padding", "dilation_rate")}
                core = k.layers.Conv2D(n, kernel.shape[:2], use_bias=bool(bias), name=name, trainable=False,
                                       **window)
                a = k.layers.Conv2D(rank, kernel.shape[:2], use_bias=False, name=f"{name}_lora_a", **window)
                b = k.layers.Conv2D(n, 1, use_bias=False, name=f"{name}_lora_b")
            h = k.layers.Add(name=f"{name}_lora_add")([core(x), b(a(x))])
            core.set_weights([kernel, *bias])
            a_shape = kernel.shape[:-1] + (rank,)
            a.set_weights([(rng.standard_normal(a_shape) * np.sqrt(2.0 / m)).astype(np.float32)])
            b.set_weights([np.zeros(b.kernel.shape, np.float32)])
            if activation != "linear":
                h = k.layers.Activation(activation, name=f"{name}_lora_act")(h)
            return h
        return build

    model = rebuild(base, replace={name: adapt(name) for name in layers})
    for layer in model.layers:
        layer.trainable = layer.name.endswith(("_lora_a", "_lora_b"))
    return model


def train_adapter(model, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0,
                  learning_rate: float = 1e-2):
    """Train the adapter's A and B on class labels `y` (the base stays frozen)."""
    k = keras()
    k.utils.set_random_seed(seed)
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    softmax = isinstance(last, k.layers.Softmax) or activation is k.activations.softmax
    model.compile(optimizer=k.optimizers.Adam(learning_rate),
                  loss=k.losses.SparseCategoricalCrossentropy(from_logits=not softmax))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    return model


def float_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """The float model's accuracy on class labels `y`."""
    scores = model.predict(x, batch_size=128, verbose=0)
    return float((scores.reshape(len(x), -1).argmax(axis=1) == y).mean())
