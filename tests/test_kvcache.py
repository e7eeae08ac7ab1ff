"""`tinycompress generate --cache` (tinycompress/analysis/cached.py, templates/generate_cache.c.j2):
key/value-cached step models, the firmware against TFLite Micro and against a greedy loop on the host."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import needs_emulator
from test_cli import ROOT, assert_one_line_error, tc

from tinycompress.errors import EXIT_ERROR, EXIT_USAGE

TINYLM = ROOT / "examples" / "tinylm"


def in_fresh_python(code: str, *args) -> None:
    """Python `code` (sys.argv[1:] = args) in a process of its own: TensorFlow's threads can be set only
    before it starts, and another test in this worker may have started it (tests/modelzoo.py builds so)."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT / "tests", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def kv_step(tmp_path_factory):
    path = tmp_path_factory.mktemp("kvcache") / "kv_step.tflite"
    in_fresh_python("import sys\nfrom pathlib import Path\nimport zoo_kvcache\n"
                    "zoo_kvcache.convert(Path(sys.argv[1]))", path)
    return path


def host_greedy_cached(tflite: bytes, prompt: list[int], steps: int) -> tuple[list[int], np.ndarray]:
    """Greedy decoding with TFLite Micro on the host, the caches kept here: inputs and outputs found by
    their converter names, each new row converted to its cache input's scale (round half up)."""
    from tflite_micro.python.tflite_micro import runtime
    from tinycompress.frontend.load import read_tflite
    graph = read_tflite(tflite)
    names = [graph.tensors[i].name for i in graph.inputs]
    index = {n.removeprefix("serving_default_").removesuffix(":0"): i for i, n in enumerate(names)}
    keras_out = [int(graph.tensors[i].name.rsplit(":", 1)[1]) for i in graph.outputs]
    outputs = [keras_out.index(k) for k in range(len(keras_out))]      # logits, then rows
    caches = sorted(n for n in index if n.startswith("cache_"))
    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=8 << 20)

    def quant(details):
        q = details["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0])
    scale, zero = quant(interpreter.get_input_details(index["position"]))
    state = []
    for c in caches:
        details = interpreter.get_input_details(index[c])
        state.append(np.full(details["shape"], quant(details)[1], np.int8))
    fed, tokens, logits = list(prompt), [], []
    for p in range(len(prompt) + steps - 1):
        onehot = np.full((1, state[0].shape[2]), zero, np.int8)
        onehot[0, p] = np.clip(round(1 / scale) + zero, -128, 127)
        interpreter.set_input(np.array([[fed[p]]], np.int32), index["token"])
        interpreter.set_input(onehot, index["position"])
        for c, cache in zip(caches, state):
            interpreter.set_input(cache, index[c])
        interpreter.invoke()
        out = [np.asarray(interpreter.get_output(i)) for i in outputs]
        for c, cache, row in zip(caches, state, out[1:]):
            so, zo = quant(interpreter.get_output_details(outputs[1 + caches.index(c)]))
            sc, zc = quant(interpreter.get_input_details(index[c]))
            real = (row[0, :, 0, :].astype(np.float64) - zo) * so
            cache[0, :, p] = np.clip(np.floor(real / sc + 0.5) + zc, -128, 127)
        logits.append(out[0].reshape(-1))
        if p >= len(prompt) - 1:
            tokens.append(int(np.argmax(out[0])))
            fed.append(tokens[-1])
    return tokens, np.array(logits)


def generate(*args):
    return tc("generate", *args)


def test_the_step_signature_is_found_by_shapes_and_names(kv_step):
    from tinycompress.analysis.cached import check_cache_signature
    from tinycompress.pipeline import load_model
    graph = load_model(kv_step)
    s = check_cache_signature(graph)
    assert (s.context, s.vocab, s.heads, s.width) == (8, 16, 2, 4)
    names = [graph.tensors[graph.inputs[i]].name for i in s.caches]
    assert names == ["serving_default_cache_0_k:0", "serving_default_cache_1_v:0"]
    assert [graph.tensors[graph.outputs[i]].name.rsplit(":", 1)[1] for i in s.rows] == ["1", "2"]
    assert s.tables.shape == (2, 256) and s.hot != s.cold


@needs_emulator
def test_cached_generation_equals_tflite_micro_and_a_host_loop(kv_step, tmp_path):
    report = tmp_path / "g.json"
    proc = generate(kv_step, "--cache", "--board", "mps2-an386", "--prompt", "\x03\x07\x01", "--tokens", 6,
                    "--verify", "--json", report)
    assert proc.returncode == 0, proc.stderr
    g = json.loads(report.read_text())["generation"]
    assert g["verification"] == {"steps": 8, "matching": 8, "tokens_matching": 6}
    assert g["cache"]["positions"] == 8 and g["cache"]["prefill"] == 2
    expected, _ = host_greedy_cached(kv_step.read_bytes(), [3, 7, 1], 6)
    assert g["tokens"] == expected
    assert len(g["instructions"]) == 8 and len(g["cache"]["copy_instructions"]) == 8


@needs_emulator
def test_a_differing_cached_step_exits_4(kv_step, tmp_path):
    from tinycompress.analysis.cached import check_cache_signature, reference_logits
    from tinycompress.errors import EXIT_MISMATCH
    from tinycompress.analysis.generate import GenerationMismatch, Vocabulary, compare_logits, generate as run
    from tinycompress.pipeline import load_model
    from tinycompress.target.boards import load_board
    result = run(kv_step, load_board("mps2-an386"), "\x02", 5, Vocabulary(), cache=True)
    graph = load_model(kv_step)
    s = check_cache_signature(graph)
    expected = reference_logits(graph.source, [2] + result.tokens[:-1], s)
    changed = expected.copy()
    changed[3, 0] ^= 1
    with pytest.raises(GenerationMismatch, match=r"^step 4 of 5: the firmware's logits differ") as caught:
        compare_logits(result, changed, expected, 0, "the same token, position and caches")
    assert caught.value.exit_code == EXIT_MISMATCH


@pytest.mark.parametrize("args, code, fragment", [
    (["--prompt", "\x01\x02\x03", "--tokens", 7], EXIT_USAGE,
     "need 9 positions, more than the step model's 8"),
    (["--prompt", "\x11", "--tokens", 2], EXIT_ERROR, "is not a token of the model"),
])
def test_bad_cached_requests_are_one_line(kv_step, tmp_path, args, code, fragment):
    proc = generate(kv_step, "--cache", "--board", "mps2-an386", "-o", tmp_path / "p", *args)
    assert_one_line_error(proc, code, fragment)


def test_a_model_that_is_no_step_model_is_refused(zoo, tmp_path):
    tflite = zoo("gen_causal")[0]
    proc = generate(tflite, "--cache", "--board", "mps2-an386", "--prompt", "\x01", "--tokens", 2)
    assert_one_line_error(proc, EXIT_ERROR, "--cache needs a step model with one int32 [1, 1] token input")


def test_a_keras_step_model_is_refused(tmp_path):
    proc = generate(TINYLM / "tinylm.keras", "--cache", "--board", "mps2-an386", "--prompt", "a",
                    "--tokens", 2)
    assert_one_line_error(proc, EXIT_USAGE, "--cache needs the step model as an int8 .tflite")


# ---- examples/tinylm ---------------------------------------------------------------------------------------

# step.py's int8 step model from tinylm.keras, written to argv[2] (argv[1]: examples/tinylm)
STEP_CONVERSION = """
import importlib.util, sys
from pathlib import Path
import numpy as np
from modelzoo import _deterministic_tensorflow
_deterministic_tensorflow()
import keras
tinylm, out = Path(sys.argv[1]), Path(sys.argv[2])
spec = importlib.util.spec_from_file_location("tinylm_step", tinylm / "step.py")
step = importlib.util.module_from_spec(spec)
spec.loader.exec_module(step)
full = keras.saving.load_model(tinylm / "tinylm.keras", compile=False)
calibration = np.load(tinylm / "tinylm_calibration.npz")["x"].astype(np.int32)
out.write_bytes(step.convert_int8(keras, full, calibration))
"""


def _step_module():
    spec = importlib.util.spec_from_file_location("tinylm_step", TINYLM / "step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_emulator
@pytest.mark.slow
def test_tinylm_cached_generation_is_bit_exact(tmp_path):
    """tinylm's step model (step.py) in the firmware: every step's logits TFLite Micro's, and the tokens
    step.Int8Step's greedy loop's (the example's own replay of the caches)."""
    path = tmp_path / "tinylm_step.tflite"
    in_fresh_python(STEP_CONVERSION, TINYLM, path)
    s, tflite = _step_module(), path.read_bytes()
    report = tmp_path / "g.json"
    proc = generate(path, "--cache", "--board", "mps2-an386", "--prompt", "def ", "--tokens", 16,
                    "--verify", "--json", report)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(report.read_text())
    g = document["generation"]
    assert g["verification"]["matching"] == 19
    int8 = s.Int8Step(tflite)
    fed, tokens = list(b"def "), []
    for p in range(len(fed) + 15):
        logits = int8.step(fed[p], p)
        if p >= 3:
            tokens.append(int(np.argmax(logits)))
            fed.append(tokens[-1])
    assert g["tokens"] == tokens
    # at least 5x fewer instructions per token than the full window's, measured the same way
    window = tmp_path / "w.json"
    proc = generate(TINYLM / "tinylm.keras", "--calibration", TINYLM / "tinylm_calibration.npz",
                    "--board", "mps2-an386", "--prompt", "def ", "--tokens", 1, "--json", window)
    assert proc.returncode == 0, proc.stderr
    assert document["instructions"] * 5 < json.loads(window.read_text())["instructions"]
