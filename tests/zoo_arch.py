"""Real architectures as users bring them (issue 15): ResNet-8, MobileNetV2-0.35, a MobileNetV3-Small front,
a Conv1D keyword spotter, a U-Net, sigmoid and tanh/LeakyReLU classifiers and an unrolled GRU, each exported
the four ways a user's file comes: arch_<a>_int8 (full int8, the default export), arch_<a>_float (float32
input and output around the int8 model, the converter's default), arch_<a>_int8_dyn and arch_<a>_float_dyn
(the same converted on a `None` batch). Each architecture is a family of its own: its four files are built
together in one process, and a cache miss of one architecture does not rebuild the others (an edit to this
module changes the cache key of them all).

The convolutional networks with batch normalization are untrained, with random batch-norm statistics and
scales (per-channel scales and biases once the converter folds them into the convolutions); the others are
trained for a few epochs on synthetic data, so their activations look like a trained network's. Either
way the weights come from fixed seeds, and the four flavours of an architecture are the same weights: each
flavour's model is built afresh in a cleared Keras session (the same layer names) and given the weights
the first one computed, whatever was built before in the process.
"""
from __future__ import annotations

import numpy as np
import zooexport
from modelzoo import SEED, _keras

TASK = "op"
FLAVOURS = ("int8", "float", "int8_dyn", "float_dyn")


def _rng(salt: int = 0):
    return np.random.default_rng(SEED + salt)


def _randomize_batchnorm(model, rng) -> None:
    """Batch-norm statistics and scales as training leaves them, not the identity of a fresh layer."""
    import keras
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.25, c), rng.normal(0, 0.25, c),
                               rng.uniform(0.5, 2.0, c)])   # gamma, beta, moving mean, moving variance


def _fit(model, x, y, epochs: int, loss: str) -> None:
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)


def _classes(rng, shape, classes: int, n: int, noise: float):
    """Synthetic classes: a random pattern per class plus noise; (x float32, y int64)."""
    centers = rng.normal(0, 1, (classes,) + shape)
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.normal(0, noise, (n,) + shape)).astype(np.float32), y.astype(np.int64)


# ---- the architectures: each (network(keras) -> model, weights(model) -> None, data() -> (calib, test)) ----

def resnet8(keras):
    """MLPerf Tiny image classification ResNet-8 (CIFAR-10: 32x32x3, 10 classes, softmax head)."""
    L = keras.layers

    def conv(h, filters, kernel=3, strides=1):
        return L.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal")(h)

    inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Activation("relu")(L.BatchNormalization()(conv(inp, 16)))
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        y = L.Activation("relu")(L.BatchNormalization()(conv(x, filters, strides=strides)))
        y = L.BatchNormalization()(conv(y, filters))
        if strides > 1:
            x = conv(x, filters, kernel=1, strides=strides)
        x = L.Activation("relu")(L.Add()([x, y]))
    x = L.AveragePooling2D(pool_size=x.shape[1])(x)
    out = L.Dense(10, activation="softmax", kernel_initializer="he_normal")(L.Flatten()(x))
    return keras.Model(inp, out, name="resnet8")


def mobilenetv2(keras):
    """keras.applications' MobileNetV2, width 0.35 at 96x96x3, 2 classes (no download: weights=None), as a
    model of one input tensor (the application's takes a list of one, which clone_model then wants)."""
    inp = keras.Input((96, 96, 3), batch_size=1)
    base = keras.applications.MobileNetV2(input_tensor=inp, alpha=0.35, weights=None, classes=2)
    return keras.Model(inp, base.output, name=base.name)


def _hard_sigmoid(L, x):
    return L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)   # as keras.applications' MobileNetV3 writes it


def _mnv3_block(L, x, expansion, filters, kernel, strides, se, activation):
    """keras.applications' MobileNetV3 inverted residual block: expand, depthwise, squeeze-excite,
    project, and the residual add where the shapes allow."""
    def act(h):
        return L.ReLU()(h) if activation == "relu" else L.Activation("hard_swish")(h)

    shortcut, channels = x, x.shape[-1]
    if expansion != 1:
        x = act(L.BatchNormalization()(L.Conv2D(channels * expansion, 1, use_bias=False)(x)))
    x = act(L.BatchNormalization()(L.DepthwiseConv2D(kernel, strides=strides, padding="same",
                                                     use_bias=False)(x)))
    if se:
        width = x.shape[-1]
        s = L.GlobalAveragePooling2D(keepdims=True)(x)
        s = L.ReLU()(L.Conv2D(max(8, width // 4), 1)(s))
        x = L.Multiply()([x, _hard_sigmoid(L, L.Conv2D(width, 1)(s))])
    x = L.BatchNormalization()(L.Conv2D(filters, 1, use_bias=False)(x))
    return L.Add()([shortcut, x]) if strides == 1 and channels == filters else x


def mobilenetv3(keras):
    """MobileNetV3-Small's stem and first blocks on 32x32x3 (hard-swish, squeeze-excite with hard-sigmoid),
    its last-stage 1x1 convolution with hard-swish after the pooling, 10 classes."""
    L = keras.layers
    inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Activation("hard_swish")(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same",
                                                                   use_bias=False)(inp)))
    x = _mnv3_block(L, x, 1, 16, 3, 2, True, "relu")
    x = _mnv3_block(L, x, 4, 24, 3, 1, False, "relu")
    x = _mnv3_block(L, x, 4, 24, 5, 1, True, "hard_swish")
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Activation("hard_swish")(L.Conv2D(64, 1)(x))
    out = L.Activation("softmax")(L.Flatten()(L.Conv2D(10, 1)(x)))
    return keras.Model(inp, out, name="mobilenetv3_small_block")


def kws_conv1d(keras):
    """A Conv1D keyword spotter on 49 frames of 10 MFCCs, 12 classes: four Conv1D layers (the colliding
    conv1d_1/conv1d_1_2 C names of issue 15 item 4). No dilation: on a `None` batch the converter writes a
    dilated Conv1D as SPACE_TO_BATCH_ND, CONV_2D, BATCH_TO_SPACE_ND."""
    L = keras.layers
    inp = keras.Input((49, 10), batch_size=1)
    x = L.Conv1D(16, 3, padding="same", activation="relu")(inp)
    x = L.Conv1D(24, 3, strides=2, activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    out = L.Dense(12, activation="softmax")(L.GlobalAveragePooling1D()(x))
    return keras.Model(inp, out, name="kws_conv1d")


def unet(keras):
    """A small U-Net on 32x32x1: two levels down (max pooling), two up (Conv2DTranspose) with skip
    connections (Concatenate), a sigmoid mask out."""
    L = keras.layers

    def conv(h, filters):
        return L.Conv2D(filters, 3, padding="same", activation="relu")(h)

    inp = keras.Input((32, 32, 1), batch_size=1)
    e1 = conv(inp, 8)
    e2 = conv(L.MaxPooling2D(2)(e1), 16)
    b = conv(L.MaxPooling2D(2)(e2), 32)
    d2 = conv(L.Concatenate()([L.Conv2DTranspose(16, 2, strides=2)(b), e2]), 16)
    d1 = conv(L.Concatenate()([L.Conv2DTranspose(8, 3, strides=2, padding="same")(d2), e1]), 8)
    out = L.Conv2D(1, 1, activation="sigmoid")(d1)
    return keras.Model(inp, out, name="unet")


def sigmoid_head(keras):
    """A dense multi-label classifier: 4 independent sigmoid outputs."""
    L = keras.layers
    inp = keras.Input((20,), batch_size=1)
    x = L.Dense(32, activation="relu")(inp)
    x = L.Dense(16, activation="relu")(x)
    return keras.Model(inp, L.Dense(4, activation="sigmoid")(x), name="sigmoid_head")


def tanh_leaky(keras):
    """A dense classifier with tanh and LeakyReLU hidden layers and a softmax head."""
    L = keras.layers
    inp = keras.Input((24,), batch_size=1)
    x = L.Dense(32, activation="tanh")(inp)
    x = L.LeakyReLU(0.2)(L.Dense(24)(x))
    return keras.Model(inp, L.Dense(5, activation="softmax")(x), name="tanh_leaky")


def gru(keras):
    """An unrolled GRU over 8 steps of 6 features (Keras' default reset_after=True), 4 classes."""
    L = keras.layers
    inp = keras.Input((8, 6), batch_size=1)
    x = L.GRU(16, unroll=True)(inp)
    return keras.Model(inp, L.Dense(4, activation="softmax")(x), name="gru")


def _images(shape, calibration: int, test: int, salt: int):
    rng = _rng(salt)
    return (rng.uniform(0, 1, (calibration,) + shape).astype(np.float32),
            rng.uniform(0, 1, (test,) + shape).astype(np.float32))


def _untrained_cnn(shape, test: int, salt: int):
    """(weights, data): random batch-norm, calibrated on 64 random images, `test` more to run."""
    def weights(model):
        _randomize_batchnorm(model, _rng(salt))

    return weights, lambda: _images(shape, 64, test, salt + 1)


def _trained(shape, classes, n, noise, loss, epochs, test: int, salt: int, target=None):
    """(weights, data): trained `epochs` on n synthetic inputs (or on target(x) as the labels), calibrated on
    them, `test` more to run (a little past the training range, for saturation)."""
    def data():
        rng = _rng(salt)
        x, y = _classes(rng, shape, classes, n + test, noise)
        return x[:n], x[n:] * np.float32(1.2), y[:n]

    def weights(model):
        calibration, _, y = data()
        _fit(model, calibration, y if target is None else target(calibration), epochs, loss)

    return weights, lambda: data()[:2]


def _unet_target(x):
    """The mask: where the image is above its median."""
    return (x > np.median(x, axis=(1, 2, 3), keepdims=True)).astype(np.float32)


CCE = "sparse_categorical_crossentropy"
ARCHS = {
    "resnet8": (resnet8, *_untrained_cnn((32, 32, 3), 20, 1)),
    "mobilenetv2": (mobilenetv2, *_untrained_cnn((96, 96, 3), 20, 2)),
    "mobilenetv3": (mobilenetv3, *_untrained_cnn((32, 32, 3), 40, 3)),
    "kws_conv1d": (kws_conv1d, *_trained((49, 10), 12, 480, 0.8, CCE, 3, 50, 4)),
    "unet": (unet, *_trained((32, 32, 1), 4, 192, 0.5, "binary_crossentropy", 2, 20, 5, _unet_target)),
    "sigmoid_head": (sigmoid_head, *_trained((20,), 16, 480, 0.6, "binary_crossentropy", 10, 100, 6,
                                             lambda x: (x[:, :4] > 0).astype(np.float32))),
    "tanh_leaky": (tanh_leaky, *_trained((24,), 5, 480, 0.6, CCE, 10, 100, 7)),
    "gru": (gru, *_trained((8, 6), 4, 480, 0.8, CCE, 4, 50, 8)),
}
_WEIGHTS: dict[str, list] = {}


def _builder(arch: str):
    network, set_weights, data = ARCHS[arch]

    def build():
        if arch not in _WEIGHTS:   # the first flavour built in this process computes the weights
            model = network(_keras())
            set_weights(model)
            _WEIGHTS[arch] = model.get_weights()
        model = network(_keras())   # a cleared session: the same layer names for every flavour
        model.set_weights(_WEIGHTS[arch])
        calibration, test = data()
        return model, calibration, None, test, None
    return build


def _name(arch: str, flavour: str) -> str:
    return f"arch_{arch}_{flavour}"


CASES = {_name(arch, flavour): _builder(arch) for arch in ARCHS for flavour in FLAVOURS}
EXPORTS = {}
for _arch in ARCHS:
    EXPORTS[_name(_arch, "float")] = zooexport.float_io_tflite
    EXPORTS[_name(_arch, "int8_dyn")] = zooexport.dynamic_batch_tflite
    EXPORTS[_name(_arch, "float_dyn")] = lambda model, calibration: zooexport.dynamic_batch_tflite(
        model, calibration, float_io=True)
FAMILIES = [[_name(arch, flavour) for flavour in FLAVOURS] for arch in ARCHS]
