"""Float-I/O exports and QUANTIZE/DEQUANTIZE inside int8 graphs (tinycompress/frontend/floatio.py, ops/quantize.py).

- op_floatio_*: small models exported as the converter's default, float32 in and out around full int8
  (QUANTIZE first, DEQUANTIZE last): an MLP, a CNN ending in SOFTMAX, a model with a 2-D output, and a
  RESHAPE alone (its float output is the dequantized QUANTIZE of its input: the quantization shows).
- op_requantize_*, op_dequantize_quantize: full-int8 models with a requantization inserted after their first
  layer, as converters insert one between branches of different scales: an int8 -> int8 QUANTIZE to a
  larger scale (zero point 127), to a smaller one (a multiplier above one, zero point -128), and a
  DEQUANTIZE -> float32 -> QUANTIZE pair. The flatbuffer is edited with the schema's object API.
"""
from __future__ import annotations

import copy

from modelzoo import _bias, _op_model


def _float_io(model, calibration):
    from zooexport import float_io_tflite
    return float_io_tflite(model, calibration)


def _requantized(pair: bool, ratio: float, zero_point: int):
    """Full int8, then the first layer's output requantized to `ratio` times its scale at `zero_point`:
    QUANTIZE int8 -> int8, or with `pair` DEQUANTIZE to float32 and QUANTIZE back."""
    def export(model, calibration):
        import flatbuffers
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        from tinycompress.frontend.quantize import keras_to_int8_tflite
        m = schema.ModelT.InitFromPackedBuf(bytearray(keras_to_int8_tflite(model, calibration)), 0)
        sub = m.subgraphs[0]
        first = sub.operators[0].outputs[0]

        def tensor(name: str, dtype: int, scale: float | None, zp: int = 0) -> int:
            t = copy.deepcopy(sub.tensors[first])
            t.name, t.type, t.buffer = name.encode(), dtype, 0
            t.quantization = None
            if scale is not None:
                t.quantization = schema.QuantizationParametersT()
                t.quantization.scale, t.quantization.zeroPoint = [scale], [zp]
            sub.tensors.append(t)
            return len(sub.tensors) - 1

        def opcode(code: int) -> int:
            for i, c in enumerate(m.operatorCodes):
                if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
                    return i
            c = schema.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, code, 2
            m.operatorCodes.append(c)
            return len(m.operatorCodes) - 1

        def op(code: int, src: int, dst: int):
            o = schema.OperatorT()
            o.opcodeIndex, o.inputs, o.outputs = opcode(code), [src], [dst]
            return o

        scale = float(sub.tensors[first].quantization.scale[0]) * ratio
        out = tensor("requantized", schema.TensorType.INT8, scale, zero_point)
        for later in sub.operators[1:]:
            later.inputs = [out if i == first else i for i in later.inputs]
        B = schema.BuiltinOperator
        if pair:
            f = tensor("dequantized", schema.TensorType.FLOAT32, None)
            inserted = [op(B.DEQUANTIZE, first, f), op(B.QUANTIZE, f, out)]
        else:
            inserted = [op(B.QUANTIZE, first, out)]
        sub.operators[1:1] = inserted
        builder = flatbuffers.Builder(1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
    return export


def _two_dense(L, x):
    return L.Dense(6, **_bias())(L.Dense(12, activation="relu", **_bias())(x))


CASES = {
    "op_floatio_mlp": _op_model((20,), lambda L, x: L.Dense(5, **_bias())(
        L.Dense(12, activation="relu", **_bias())(x)), "op_floatio_mlp"),
    "op_floatio_cnn_softmax": _op_model((8, 8, 2), lambda L, x: L.Softmax()(L.Dense(6, **_bias())(
        L.Flatten()(L.Conv2D(4, 3, activation="relu", **_bias())(x)))), "op_floatio_cnn_softmax"),
    "op_floatio_2d_output": _op_model((6, 5), lambda L, x: L.Dense(7, **_bias())(x), "op_floatio_2d_output"),
    "op_floatio_reshape": _op_model((48,), lambda L, x: L.Reshape((6, 8))(x), "op_floatio_reshape"),
    "op_requantize_down": _op_model((16,), _two_dense, "op_requantize_down"),
    "op_requantize_up": _op_model((16,), _two_dense, "op_requantize_up"),
    "op_dequantize_quantize": _op_model((16,), _two_dense, "op_dequantize_quantize"),
}
EXPORTS = {name: _float_io for name in CASES if name.startswith("op_floatio")}
EXPORTS.update({"op_requantize_down": _requantized(False, 3.1, 127),
                "op_requantize_up": _requantized(False, 0.37, -128),
                "op_dequantize_quantize": _requantized(True, 1.7, -5)})
