"""`tinycompress generate`: the firmware's own greedy loop equals a host-side greedy loop over the TFLite
Micro interpreter, token for token and logit for logit; bad models, prompts and vocabularies are one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import needs_emulator
from test_cli import ROOT, assert_one_line_error, tc

from tinycompress.errors import EXIT_ERROR, EXIT_USAGE, TinyCompressError
from tinycompress.analysis.generate import Signature, Vocabulary, quoted, step_windows

VOCAB16 = list("abcdefghijklmno") + [" "]      # tests/zoo_generate.py's 16 tokens
TINYLM = ROOT / "examples" / "tinylm"


@pytest.fixture
def vocab16(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(VOCAB16))
    return path


def host_greedy(tflite: bytes, prompt: list[int], steps: int, context: int, vocab: int,
                last_only: bool = False) -> tuple[list[int], np.ndarray]:
    """Greedy decoding with TFLite Micro on the host, one interpreter run per token: the tokens and the
    logits each step took its argmax of. The window holds the last `context` tokens, from position 0
    padded after with token 0 (last_only: right-aligned, padded before)."""
    from tinycompress.frontend.reference import tflm_outputs
    sequence, tokens, logits = list(prompt), [], []
    for _ in range(steps):
        window = sequence[-context:]
        row = [0] * (context - len(window)) + window if last_only else window + [0] * (context - len(window))
        out = tflm_outputs(tflite, np.array([row], "<i4").view(np.int8)).reshape(-1, vocab)
        step = out[0 if last_only else len(window) - 1]
        token = int(np.argmax(step))
        tokens.append(token)
        logits.append(step)
        sequence.append(token)
    return tokens, np.array(logits)


def generate(*args):
    return tc("generate", *args)


# ---- tokens and windows, on the host ----------------------------------------------------------------------

def test_a_vocabulary_cuts_the_longest_token_first():
    vocabulary = Vocabulary(["a", "b", "ab", "abc", " "], "v.json")
    assert vocabulary.encode("abcab a") == [3, 2, 4, 0]
    assert vocabulary.decode([3, 2, 4, 0]) == "abcab a"
    with pytest.raises(TinyCompressError, match=r"character \"z\" at offset 2 begins no token"):
        vocabulary.encode("abz")


def test_bytes_are_the_default_tokens_and_text_is_escaped():
    vocabulary = Vocabulary()
    assert vocabulary.encode("é\n") == [0xC3, 0xA9, 0x0A]
    text = vocabulary.decode([0x64, 0x0A, 0x22, 0x5C, 0xFF, 0x1B, 0x09])
    assert quoted(text) == '"d\\n\\"\\\\\\xff\\x1b\\t"'


def test_the_window_slides_once_full():
    windows, positions = step_windows([1, 2, 3], [4, 5], Signature(context=4, vocab=8, last_only=False))
    assert windows.tolist() == [[1, 2, 3, 0], [1, 2, 3, 4]] and positions.tolist() == [2, 3]
    windows, positions = step_windows([1, 2, 3, 4, 5], [6, 7], Signature(context=4, vocab=8, last_only=False))
    assert windows.tolist() == [[2, 3, 4, 5], [3, 4, 5, 6]] and positions.tolist() == [3, 3]
    windows, positions = step_windows([1, 2], [3, 4, 5], Signature(context=3, vocab=8, last_only=True))
    assert windows.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]] and positions.tolist() == [0, 0, 0]


# ---- in the emulator -----------------------------------------------------------------------------------

@needs_emulator
@pytest.mark.parametrize("name, prompt, steps", [
    ("gen_causal", "ab", 12),                   # 2 + 12 tokens: the window of 8 slides
    ("gen_causal", "abenijmfabenijmfab", 4),    # a prompt longer than the window: its last 8 tokens
    ("gen_last", "ben", 6),                     # logits of the last position only, right-aligned
])
def test_generation_equals_a_greedy_loop_over_tflite_micro(zoo, tmp_path, vocab16, name, prompt, steps):
    from tinycompress.frontend.load import read_tflite
    from tinycompress.target.boards import load_board
    tflite, _ = zoo(name)
    report = tmp_path / "generate.json"
    proc = generate(tflite, "--board", "mps2-an386", "--prompt", prompt, "--tokens", steps,
                    "--vocab", vocab16, "--verify", "--json", report)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(report.read_text())
    g = document["generation"]
    ids = [VOCAB16.index(c) for c in prompt]
    graph = read_tflite(tflite.read_bytes())
    expected, _ = host_greedy(graph.source, ids, steps, 8, 16, last_only=name == "gen_last")
    assert g["prompt_tokens"] == ids and g["tokens"] == expected
    assert g["text"] == prompt + "".join(VOCAB16[t] for t in expected)
    assert g["verification"] == {"steps": steps, "matching": steps, "tokens_matching": steps}
    assert len(g["instructions"]) == steps and min(g["instructions"]) > 0
    assert document["instructions"] == pytest.approx(np.mean(g["instructions"]), abs=0.1)
    assert document["flash"]["total"] > document["flash"]["weights"] > 0 and document["sram"]["total"] > 0
    assert load_board("mps2-an386").name == document["board"]
    text = "".join(VOCAB16[t] for t in expected)
    assert f'generated            "{text}" ({steps} tokens)' in proc.stdout
    assert f"verification         {steps}/{steps} steps' logits identical" in proc.stdout
    assert "instructions" in proc.stdout and "per token" in proc.stdout


@needs_emulator
def test_the_firmware_refuses_a_token_outside_the_vocabulary(zoo, tmp_path):
    """The harness checks prompt.bin itself: a token id past the logits never reaches the model."""
    from tinycompress.analysis.generate import check_signature
    from tinycompress.pipeline import compile_graph, load_model
    from tinycompress.target.boards import load_board
    from tinycompress.target.build import build
    from tinycompress.target.emulate import run_generation
    board = load_board("mps2-an386")
    graph = load_model(zoo("gen_causal")[0])
    signature = check_signature(graph)
    project = compile_graph(graph, board, tmp_path / "p", "gen_causal", generation=signature.fields())
    elf = build(project, target="firmware_generate.elf")
    run, tokens = run_generation(elf, board, np.array([1, 2]), 2, 16)
    assert len(tokens) == 2 and run.outputs.shape == (2, 16)
    for prompt in ([1, 16], [-1]):
        with pytest.raises(TinyCompressError, match="a prompt token is outside the vocabulary"):
            run_generation(elf, board, np.array(prompt), 2, 16)
    with pytest.raises(TinyCompressError, match="prompt.bin has a bad header"):
        run_generation(elf, board, np.array([1]), 10_001, 16)


# ---- refused, in one line, before anything is built ------------------------------------------------------

@pytest.mark.parametrize("name, fragments", [
    ("digits_mlp", ["int32 [1, T]", "takes int8 [1, 64]"]),
    ("gen_bad_output", ["int8 logits [1, T, V]", "gives int8 [1, 8, 4, 4]"]),
])
def test_a_model_that_is_no_language_model_is_refused(zoo, tmp_path, name, fragments):
    proc = generate(zoo(name)[0], "--prompt", "ab", "--tokens", 2, "-o", tmp_path / "p")
    assert_one_line_error(proc, EXIT_ERROR, "generate needs", *fragments)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("args, code, fragment", [
    (["--prompt", "ab", "--tokens", 0], EXIT_USAGE, "--tokens 0: generate between 1 and 10,000 tokens"),
    (["--prompt", "ab", "--tokens", 10_001], EXIT_USAGE, "--tokens 10001"),
    (["--prompt", "", "--tokens", 2], EXIT_USAGE, "--prompt is empty"),
    (["--prompt", "abz", "--tokens", 2, "--vocab", "VOCAB"], EXIT_ERROR, 'character "z" at offset 2'),
    (["--prompt", "ab", "--tokens", 2], EXIT_ERROR, "byte 0x61 at offset 0 is not a token of the model"),
])
def test_bad_requests_are_one_line(zoo, tmp_path, vocab16, args, code, fragment):
    args = [vocab16 if a == "VOCAB" else a for a in args]
    proc = generate(zoo("gen_causal")[0], *args, "-o", tmp_path / "p")
    assert_one_line_error(proc, code, fragment)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("content, fragment", [
    (json.dumps(VOCAB16[:15]), "has 15 tokens but the model's logits cover 16"),
    ("not json", "is not a JSON list of token strings"),
    (json.dumps({"a": 0}), "is not a JSON list of token strings"),
    (json.dumps(VOCAB16[:15] + [""]), "token 15 is the empty string"),
    (json.dumps(VOCAB16[:15] + ["a"]), 'tokens 0 and 15 are both "a"'),
])
def test_a_bad_vocabulary_is_one_line(zoo, tmp_path, content, fragment):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    proc = generate(zoo("gen_causal")[0], "--prompt", "ab", "--tokens", 2, "--vocab", path)
    assert_one_line_error(proc, EXIT_ERROR, fragment)


# ---- examples/tinylm -------------------------------------------------------------------------------------

@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("compress", [None, "rank:8"])
def test_tinylm_generates_bit_exact(tmp_path, compress):
    from tinycompress.cli import _compression
    from tinycompress.pipeline import load_model
    args = ["--compress", compress] if compress else []
    g = _tinylm_generation(tmp_path, *args)
    graph = load_model(TINYLM / "tinylm.keras", TINYLM / "tinylm_calibration.npz",
                       _compression(compress, None, None, None, 5))
    expected, _ = host_greedy(graph.source, list(b"def "), 16, 64, 256)
    assert g["tokens"] == expected
    assert g["continuation"] == bytes(expected).decode("utf-8", errors="surrogateescape")


@needs_emulator
@pytest.mark.slow
def test_tinylm_factorized_pq_and_fine_tuned_generates_text_bit_exact(tmp_path):
    """The issue's `--compress rank:8 --embedding pq:2`, fine-tuned on the training text's next bytes: every
    step bit-exact, and the text is text again (untuned, rank 8 repeats one byte: 'n..............')."""
    g = _tinylm_generation(tmp_path, "--compress", "rank:8", "--embedding", "pq:2", "--train",
                           TINYLM / "tinylm_train.npz", "--epochs", 2)
    text = bytes(g["tokens"])
    assert text.isascii() and all(32 <= b < 127 or b in b"\n\t" for b in text)
    assert len(set(text)) >= 6 and max(text.count(b) for b in set(text)) <= 8


def _tinylm_generation(tmp_path, *args) -> dict:
    report = tmp_path / "generate.json"
    proc = generate(TINYLM / "tinylm.keras", "--board", "mps2-an386", "--calibration",
                    TINYLM / "tinylm_calibration.npz", "--prompt", "def ", "--tokens", 16, "--verify",
                    "--json", report, *args)
    assert proc.returncode == 0, proc.stderr
    g = json.loads(report.read_text())["generation"]
    assert g["verification"]["matching"] == 16 and g["text"].startswith("def ")
    return g


def test_generate_has_help_with_an_example():
    proc = generate("--help")
    assert proc.returncode == 0 and "Example" in proc.stdout and "JSON list of token strings" in proc.stdout


@needs_emulator
def test_a_differing_step_is_named_with_exit_4(zoo, tmp_path):
    """The firmware's real logits pass; one changed logit at step 3, or a token that is not its step's
    argmax, fails verification naming that step (the CLI prints it as its one line, exit 4)."""
    from tinycompress.errors import EXIT_MISMATCH
    from tinycompress.analysis.generate import GenerationMismatch, check_signature, generate as run_generate
    from tinycompress.analysis.generate import verify_steps
    from tinycompress.pipeline import load_model
    from tinycompress.target.boards import load_board
    from tinycompress.target.emulate import run_generation
    tflite = zoo("gen_causal")[0]
    graph = load_model(tflite)
    signature = check_signature(graph)
    result = run_generate(tflite, load_board("mps2-an386"), "ab", 6, Vocabulary(VOCAB16), out=tmp_path / "p")
    run, tokens = run_generation(tmp_path / "p" / "firmware_generate.elf", load_board("mps2-an386"),
                                 np.array(result.prompt_tokens), 6, 16)
    assert tokens.tolist() == result.tokens
    assert verify_steps(result, graph.source, run.outputs, signature)["matching"] == 6
    logits = run.outputs.copy()
    logits[2, 5] ^= 1
    with pytest.raises(GenerationMismatch, match=r"^step 3 of 6: the firmware's logits differ") as caught:
        verify_steps(result, graph.source, logits, signature)
    assert caught.value.exit_code == EXIT_MISMATCH and result.verification["matching"] == 5
    result.tokens[5] = (result.tokens[5] + 1) % 16      # the last: no later window holds it
    with pytest.raises(GenerationMismatch, match=r"^step 6 of 6: the firmware chose token"):
        verify_steps(result, graph.source, run.outputs, signature)
