"""Fine-tuning for embedding compression: train a method's float parts, and the rest of the network, in Keras.

The model's Embedding is swapped for a layer that rebuilds the table from the method's float parts at
every step (codes, the hash map and the byte features stay fixed), and the model trains on the given data
(labels, or distillation from the uncompressed model). What comes back is the model with the rebuilt table
in an ordinary Embedding, which TFLiteConverter quantizes, and the trained parts, which the embedding stage
quantizes at the int8 table's scale.
"""
from __future__ import annotations

import numpy as np

from .embeddings import FORMS, EmbeddingSpec, FloatParts, check
from ..errors import TinyCompressError


def tune_embedding(model, spec: EmbeddingSpec, vocab: list[str] | None, x: np.ndarray, y: np.ndarray | None,
                   epochs: int):
    """(float model with the rebuilt table, trained FloatParts)."""
    from .rank import fine_tune
    student, finish = lookup_student(model, spec, vocab)
    fine_tune(student, model, x, y, epochs)
    return finish(student)


def lookup_student(model, spec: EmbeddingSpec, vocab: list[str] | None):
    """(the model with its Embedding rebuilt from the method's float parts, for training;
    finish(trained student) -> (float model with the rebuilt table, trained FloatParts))."""
    from ..frontend.quantize import _tensorflow
    _tensorflow()
    import keras

    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if len(embeddings) != 1:
        raise TinyCompressError(f"fine-tuning --embedding {spec.label} needs a Keras model with one Embedding "
                                f"layer; {model.name} has {len(embeddings)}")
    original = embeddings[0]
    table = np.asarray(original.embeddings, np.float64)
    check(spec, *table.shape, vocab)
    form = FORMS[spec.method]
    start = form.float_parts(spec, table, vocab)
    fixed = {k: keras.ops.convert_to_tensor(v) for k, v in start.fixed.items()}

    class CompressedLookup(keras.layers.Layer):
        """Rows of the table the method's float parts make, rebuilt at each call so gradients reach them."""
        def build(self, _):
            self.parts = {}
            for key, value in start.trainable.items():
                self.parts[key] = self.add_weight(shape=value.shape, initializer="zeros", name=key)
                self.parts[key].assign(value.astype(np.float32))

        def call(self, ids):
            return keras.ops.take(form.float_table(keras.ops, self.parts, fixed), ids, axis=0)

    def clone(layer):
        if layer is original:
            return CompressedLookup(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    student = keras.models.clone_model(model, clone_function=clone)
    _copy_weights(model, student, skip=original.name)

    def finish(trained):
        lookup = trained.get_layer(original.name)
        parts = FloatParts({k: np.asarray(v, np.float64) for k, v in lookup.parts.items()}, start.fixed)
        tuned = keras.models.clone_model(model)
        _copy_weights(trained, tuned, skip=original.name)
        tuned.get_layer(original.name).embeddings.assign(
            np.asarray(form.float_table(np, parts.trainable, parts.fixed), np.float32))
        return tuned, parts
    return student, finish


def _copy_weights(source, target, skip: str) -> None:
    for layer in source.layers:
        if layer.name != skip and layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())
