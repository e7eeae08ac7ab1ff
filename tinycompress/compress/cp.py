"""Stage 2, compress: CP decomposition of a Keras model's kh x kw convolutions (kh, kw > 1).

    cp:R            every such Conv2D, at CP rank R
    cp:LAYER=R,...  the named ones

The kernel K (kh, kw, Cin, Cout) becomes a sum of R rank-1 terms,
K[h,w,i,o] ~ sum_r A[h,r] B[w,r] C[i,r] D[o,r], fitted by alternating least squares (numpy, a seeded start
and a fixed stopping rule: deterministic), and the convolution becomes four layers:

    1x1 Conv2D Cin -> R (no bias)  ->  1 x kw DepthwiseConv2D (R, no bias, stride 1)
    ->  kh x 1 DepthwiseConv2D (R, no bias, the stride)  ->  1x1 Conv2D R -> Cout (the bias and activation)

TensorFlow's depthwise convolution takes equal strides only, so the stride s goes on the last spatial layer,
on both axes: its 1-wide window picks every s-th column of the row-filtered output, which is where the
original's windows start. VALID stays VALID; SAME at stride 1 stays SAME (each axis padded as the original
pads it); SAME with a stride becomes an explicit ZeroPadding2D (the original's padding, after the first 1x1)
and VALID windows. The output shape is the original's, and the layers before the last have no bias, so the
zeros of the padding stay zeros, as in the original. Parameters: R (Cin + kh + kw + Cout), each term's weight
spread evenly over its four factors. Unequal strides or a dilation leave Tucker-2 only (said in the note).

CP is used where it reconstructs the kernel better (relative Frobenius error) than Tucker-2
(compress/rank.tucker2) at the same parameter count; elsewhere Tucker-2 at that budget: 1x1 reduce to t,
kh x kw core t -> t, 1x1 expand, with the largest t that fits. The step's detail says which, with both
errors.
A layer whose CP form is not smaller than the kernel stays as it is.
"""
from __future__ import annotations

import numpy as np

from .keras_graph import keras, layer_graph, params, rebuild, weight_layer_bytes
from .plan import KERAS, Context, LayerStep, Method, per_layer, unknown_layers
from .rank import tucker2

ALS_SWEEPS = 200
ALS_SEED = 0
ALS_TOLERANCE = 1e-9     # stop once a sweep lowers the squared error by less than this share of |K|^2


def cp_als(kernel: np.ndarray, rank: int, sweeps: int = ALS_SWEEPS,
           seed: int = ALS_SEED) -> list[np.ndarray]:
    """Factors [A (kh x R), B (kw x R), C (Cin x R), D (Cout x R)] with K ~ einsum('hr,wr,ir,or->hwio'),
    each term's norm spread evenly over its four columns. Start: the leading singular vectors of each
    unfolding, seeded random columns past them; then least-squares updates of each factor in turn, for at
    most `sweeps` sweeps, until a sweep no longer lowers the error."""
    k = kernel.astype(np.float64)
    rng = np.random.default_rng(seed)
    factors = []
    for mode in range(4):
        unfolded = np.moveaxis(k, mode, 0).reshape(k.shape[mode], -1)
        u = np.linalg.svd(unfolded, full_matrices=False)[0][:, :rank]
        factors.append(np.hstack([u, rng.normal(size=(k.shape[mode], rank - u.shape[1]))]))
    unfoldings = [np.moveaxis(k, mode, 0).reshape(k.shape[mode], -1) for mode in range(4)]
    norm2, error = float(np.sum(k * k)), np.inf
    for _ in range(sweeps):
        for mode in range(4):
            others = [factors[m] for m in range(4) if m != mode]
            # the unfolding times the Khatri-Rao product of the other factors (in the unfolding's C order),
            # through the inverse of the normal equations' Gram matrix
            mttkrp = unfoldings[mode] @ np.einsum("ar,br,cr->abcr", *others).reshape(-1, rank)
            gram = np.prod([f.T @ f for f in others], axis=0)
            factors[mode] = mttkrp @ np.linalg.pinv(gram)
            if mode < 3:    # keep the scale in the last factor while sweeping: no factor drifts to 0 or inf
                norms = np.linalg.norm(factors[mode], axis=0)
                norms[norms == 0] = 1
                factors[mode] /= norms
        # |K - K~|^2 = |K|^2 - 2 <K, K~> + |K~|^2, from what the last update computed
        last = factors[3]
        previous, error = error, norm2 - 2 * np.sum(mttkrp * last) + np.sum(gram * (last.T @ last))
        if previous - error <= ALS_TOLERANCE * norm2:
            break
    weight = np.prod([np.linalg.norm(f, axis=0) for f in factors], axis=0)
    root = np.where(weight > 0, weight, 1) ** 0.25
    return [(f / np.where(np.linalg.norm(f, axis=0) > 0, np.linalg.norm(f, axis=0), 1) * root)
            .astype(np.float32) for f in factors]


def cp_kernel(factors: list[np.ndarray]) -> np.ndarray:
    return np.einsum("hr,wr,ir,or->hwio", *factors)


def relative_error(kernel: np.ndarray, approx: np.ndarray) -> float:
    return float(np.linalg.norm(kernel - approx) / max(np.linalg.norm(kernel), 1e-30))


def cp_params(shape: tuple[int, ...], rank: int) -> int:
    kh, kw, cin, cout = shape
    return rank * (cin + kh + kw + cout)


def tucker_rank(shape: tuple[int, ...], budget: int) -> int:
    """The largest square Tucker-2 rank t with (Cin + Cout) t + kh kw t^2 <= budget (0: none fits)."""
    kh, kw, cin, cout = shape
    t = 0
    while t < min(cin, cout) and (cin + cout) * (t + 1) + kh * kw * (t + 1) ** 2 <= budget:
        t += 1
    return t


def cp_plan(kernel: np.ndarray, rank: int, cp_possible: bool = True):
    """('cp' or 'tucker2', the factors, the chosen form's relative error, the other's or None (Tucker-2 does
    not fit the budget of CP rank `rank`, or CP is not possible)); None when neither is possible."""
    t = tucker_rank(kernel.shape, cp_params(kernel.shape, rank))
    tucker = list(tucker2(kernel, t, t)) if t else None
    tucker_error = relative_error(kernel, np.einsum("ir,hwrs,so->hwio", *tucker)) if t else None
    if not cp_possible:
        return None if tucker is None else ("tucker2", tucker, tucker_error, None)
    cp = cp_als(kernel, rank)
    cp_error = relative_error(kernel, cp_kernel(cp))
    if tucker is None or cp_error <= tucker_error:
        return "cp", cp, cp_error, tucker_error
    return "tucker2", tucker, tucker_error, cp_error


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one axis."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _eligible(layer, k) -> bool:
    if type(layer) is not k.layers.Conv2D or layer.groups != 1 or layer.data_format != "channels_last":
        return False
    kh, kw = layer.kernel_size
    return kh > 1 and kw > 1


class CPMethod(Method):
    names = ("cp",)
    stage = KERAS
    usage = "cp:R or cp:LAYER=R,... with a whole number R >= 1"

    def _rank(self, text: str) -> int:
        try:
            rank = int(text)
        except ValueError:
            raise self.bad(f"{text!r} is not a whole number") from None
        if rank < 1:
            raise self.bad(f"the rank {rank} must be at least 1")
        return rank

    def apply_keras(self, model, context: Context):
        default, ranks = per_layer(self, self._rank)
        k = keras()
        convs = {layer.name: layer for layer in layer_graph(model).layers if _eligible(layer, k)}
        unknown_layers(self, ranks, convs)
        replace, steps = {}, []
        for name, layer in convs.items():
            rank = ranks.get(name, default)
            if rank is not None:
                step, build = _decompose(layer, rank, k)
                steps.append(step)
                if build is not None:
                    replace[name] = build
        return rebuild(model, replace=replace), steps


def _decompose(layer, rank: int, k):
    """(the layer's LayerStep, a function building its replacement on an input tensor, or None: kept)."""
    weights = layer.get_weights()
    kernel, bias = weights[0], weights[1:]
    kh, kw, cin, cout = kernel.shape
    before, before_bytes = params(weights), weight_layer_bytes(layer, weights)
    budget = cp_params(kernel.shape, rank)
    if budget >= kernel.size:
        return LayerStep(layer.name, "cp", "kept", before, before, before_bytes, before_bytes,
                         f"CP rank {rank} ({budget} parameters) is not smaller than the "
                         f"{kh}x{kw}x{cin}x{cout} kernel"), None
    config = layer.get_config()
    (sh, sw), dilation, padding = config["strides"], tuple(config["dilation_rate"]), config["padding"]
    cp_possible = sh == sw and dilation == (1, 1)
    note = "" if cp_possible else "CP needs equal strides, no dilation (TensorFlow's depthwise convolution)"
    plan = cp_plan(kernel, rank, cp_possible)
    if plan is None:
        return LayerStep(layer.name, "cp", "kept", before, before, before_bytes, before_bytes,
                         f"{note}; Tucker-2 does not fit the parameters of CP rank {rank}"), None
    method, factors, error, other = plan
    tail = {"activation": config["activation"], "use_bias": config["use_bias"]}
    if method == "cp":
        # 1 x kw at stride 1, then kh x 1 at the stride of both axes (TensorFlow's depthwise strides are
        # equal): its 1-wide window picks the columns the original's windows start at. SAME with a stride
        # pads as the original would, explicitly, for the VALID windows after it.
        a, b, c, d = factors
        parts = [(k.layers.Conv2D(rank, 1, use_bias=False, name=f"{layer.name}_cp_in"), [c[None, None]])]
        if padding == "same" and sh > 1:
            _, height, width, _ = layer.input.shape
            pads = same_padding(height, kh, sh), same_padding(width, kw, sw)
            if any(sum(p) for p in pads):
                parts.append((k.layers.ZeroPadding2D(pads, name=f"{layer.name}_cp_pad"), []))
            padding = "valid"
        parts += [
            (k.layers.DepthwiseConv2D((1, kw), padding=padding, use_bias=False, name=f"{layer.name}_cp_w"),
             [b[None, :, :, None]]),
            (k.layers.DepthwiseConv2D((kh, 1), strides=sh, padding=padding, use_bias=False,
                                      name=f"{layer.name}_cp_h"), [a[:, None, :, None]]),
            (k.layers.Conv2D(cout, 1, name=f"{layer.name}_cp_out", **tail), [d.T[None, None], *bias])]
        tucker = "none fits" if other is None else f"{other:.3g}"
        detail = f"CP rank {rank}: error {error:.3g} (Tucker-2 at these parameters: {tucker})"
    else:
        reduce, core, expand = factors
        t = core.shape[2]
        parts = [
            (k.layers.Conv2D(t, 1, use_bias=False, name=f"{layer.name}_reduce"), [reduce[None, None]]),
            (k.layers.Conv2D(t, (kh, kw), strides=(sh, sw), dilation_rate=dilation, padding=padding,
                             use_bias=False, name=f"{layer.name}_core"), [core]),
            (k.layers.Conv2D(cout, 1, name=f"{layer.name}_expand", **tail), [expand[None, None], *bias])]
        cp_text = "not possible" if other is None else f"{other:.3g}"
        detail = f"Tucker-2 rank {t} at the parameters of CP rank {rank}: error {error:.3g} (CP: {cp_text})"

    def build(x):
        for part, values in parts:
            x = part(x)
            part.set_weights(values)
        return x
    after = sum(params(values) for _, values in parts)
    after_bytes = sum(weight_layer_bytes(part, values) for part, values in parts if values)
    return LayerStep(layer.name, "cp", detail, before, after, before_bytes, after_bytes, note), build
