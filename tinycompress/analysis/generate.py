"""`tinycompress generate`: greedy autoregressive generation by the firmware itself, in the emulator.

The model must read a window of token ids, int32 (1, T), and give int8 logits at every position,
(1, T, V), or at the last one only, (1, V). The generation harness (templates/generate.c.j2) keeps the
window in the firmware: the prompt's tokens (the last T of them), then at each step one inference, the
argmax of the logits at the window's last position, appended to the window, the oldest token dropped
once the window is full. A (1, T, V) model reads the window from position 0, padded after it (its
logits at position i must not depend on later tokens: a causal model); a (1, V) model reads it
right-aligned, padded before it. The pad token is PAD.

Tokens are the prompt's UTF-8 bytes (a model of at most 256 tokens), or, with a vocabulary file (a JSON
list of token strings, id i is the i-th), the prompt cut greedily into the longest tokens that match.
With verification, TFLite Micro runs on the host on every step's window, and every step's logits must
equal the firmware's byte for byte.

With --cache, the model is a key/value-cached step model instead, one position per step (cached.py).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .report import Report, _kib, make_report
from ..errors import EXIT_MISMATCH, EXIT_USAGE, TinyCompressError
from ..escape import one_line
from ..ir import Graph

MAX_TOKENS = 10_000        # generated tokens of one run: at most
MAX_PROMPT = 10_000        # prompt tokens: at most (the firmware keeps the last T)
MAX_VOCAB_BYTES = 1 << 20  # a vocabulary file: at most
PAD = 0                    # the token of the window's empty places


@dataclass
class Signature:
    """What generation needs to know of a model: its window T, its vocabulary V, where its logits are."""
    context: int
    vocab: int
    last_only: bool          # (1, V) logits of the last position, instead of (1, T, V)

    def fields(self) -> dict:
        """The integers the generation harness is rendered with (codegen/emit.py)."""
        return dict(context=self.context, vocab=self.vocab, last_only=self.last_only, pad=PAD,
                    max_steps=MAX_TOKENS, max_prompt=MAX_PROMPT)


def check_signature(graph: Graph) -> Signature:
    """Refuse, in one line, a model generation cannot drive: anything but one int32 (1, T) window of token
    ids into an embedding table, and one int8 output of (1, T, V) or (1, V) logits."""
    from ..pipeline import token_range
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinyCompressError(f"generate needs a model with one input and one output; {graph.name} has "
                                f"{len(graph.inputs)} and {len(graph.outputs)}")
    inp, out = graph.input_tensor(), graph.output_tensor()
    shape_in, shape_out = list(inp.shape), list(out.shape)
    if inp.dtype != "int32" or len(shape_in) != 2 or shape_in[0] != 1 or shape_in[1] < 1:
        raise TinyCompressError(f"generate needs a window of token ids, int32 [1, T], as the model's input; "
                                f"{graph.name} takes {inp.dtype} {shape_in}")
    context = shape_in[1]
    if graph.float_io is not None and graph.float_io.output:
        raise TinyCompressError(f"{graph.name} gives float32 outputs; generate needs int8 logits: convert "
                                "the model with an int8 output")
    if out.dtype != "int8" or shape_out not in ([1, context, shape_out[-1]], [1, shape_out[-1]]) \
            or shape_out[-1] < 2:
        raise TinyCompressError(f"generate needs int8 logits [1, T, V] (every position) or [1, V] (the last) "
                                f"as the model's output, with T = {context}; {graph.name} gives {out.dtype} "
                                f"{shape_out}")
    vocab = shape_out[-1]
    rows = token_range(graph)
    if rows is None:
        raise TinyCompressError(f"{graph.name}'s int32 input does not index an embedding table; generate "
                                "needs token ids into one")
    if vocab > rows:
        raise TinyCompressError(f"{graph.name} gives logits for {vocab} tokens but its embedding table has "
                                f"{rows} rows: a generated token could not be fed back")
    return Signature(context, vocab, len(shape_out) == 2)


# ---- tokens -----------------------------------------------------------------------------------------

def read_vocabulary(path: Path) -> list[str]:
    """A vocabulary file: a JSON list of distinct, non-empty token strings; token id i is the i-th."""
    path = Path(path)
    if not path.is_file():
        raise TinyCompressError(f"vocabulary file {path} does not exist")
    if path.stat().st_size > MAX_VOCAB_BYTES:
        raise TinyCompressError(f"vocabulary file {path} is larger than {MAX_VOCAB_BYTES:,} bytes")
    try:
        tokens = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TinyCompressError(f"{path} is not a JSON list of token strings "
                                f"({one_line(str(exc))})") from None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise TinyCompressError(f"{path} is not a JSON list of token strings, e.g. [\"a\", \"b\", \"ab\"]")
    empty = [i for i, t in enumerate(tokens) if not t]
    if empty:
        raise TinyCompressError(f"{path}: token {empty[0]} is the empty string; every token needs a "
                                "character")
    seen: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t in seen:
            raise TinyCompressError(f"{path}: tokens {seen[t]} and {i} are both {quoted(t)}")
        seen[t] = i
    return tokens


class Vocabulary:
    """Bytes (tokens None: id i is byte i), or token strings."""

    def __init__(self, tokens: list[str] | None = None, source: str = ""):
        self.tokens, self.source = tokens, source
        self._ids = {t: i for i, t in enumerate(tokens)} if tokens is not None else {}
        self._longest = max(map(len, tokens)) if tokens else 1

    @property
    def size(self) -> int:
        return 256 if self.tokens is None else len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """The prompt's UTF-8 bytes, or its greedy longest-match tokens."""
        if self.tokens is None:
            return list(text.encode("utf-8", errors="surrogateescape"))
        ids, at = [], 0
        while at < len(text):
            for length in range(min(self._longest, len(text) - at), 0, -1):
                if (token := self._ids.get(text[at:at + length])) is not None:
                    ids.append(token)
                    at += length
                    break
            else:
                raise TinyCompressError(f"the prompt's character {quoted(text[at])} at offset {at} begins no "
                                        f"token of the vocabulary {self.source}")
        return ids

    def decode(self, ids) -> str:
        """The text of token ids: bytes as UTF-8 (a byte that is not stays a surrogate escape), or the
        tokens' strings."""
        if self.tokens is None:
            return bytes(int(i) for i in ids).decode("utf-8", errors="surrogateescape")
        return "".join(self.tokens[int(i)] for i in ids)

    def check(self, signature: Signature) -> None:
        """The vocabulary against the model's logits: a token for every id the firmware can choose."""
        if self.tokens is None and signature.vocab > 256:
            raise TinyCompressError(f"the model has {signature.vocab} tokens, more than the 256 bytes: give "
                                    "its vocabulary with --vocab FILE (a JSON list of token strings)")
        if self.tokens is not None and len(self.tokens) != signature.vocab:
            raise TinyCompressError(f"the vocabulary {self.source} has {len(self.tokens)} tokens but the "
                                    f"model's logits cover {signature.vocab}")

    def check_prompt(self, ids: list[int], signature: Signature) -> None:
        bad = next((k for k, i in enumerate(ids) if i >= signature.vocab), None)
        if bad is not None:
            raise TinyCompressError(f"the prompt's byte {ids[bad]:#04x} at offset {bad} is not a token of "
                                    f"the model, whose vocabulary has {signature.vocab}: give its vocabulary "
                                    "with --vocab FILE")


ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quoted(text: str) -> str:
    """Text in double quotes on one line: backslash escapes for quotes, backslashes and every character
    that is not printable, \\xNN for a byte that was not UTF-8 (a surrogate escape)."""
    out = []
    for c in text:
        code = ord(c)
        if c in ESCAPES:
            out.append(ESCAPES[c])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif c.isprintable():
            out.append(c)
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


# ---- the windows, as the firmware builds them ----------------------------------------------------------

def step_windows(prompt: list[int], tokens, signature: Signature) -> tuple[np.ndarray, np.ndarray]:
    """The model input of every step, (steps, T) int32, and the position of its logits, given the prompt
    and the tokens chosen before each step: what generate.c.j2 builds."""
    t = signature.context
    sequence, windows, positions = list(prompt), [], []
    for token in tokens:
        window = sequence[-t:]
        row = [PAD] * t
        if signature.last_only:
            row[t - len(window):] = window
        else:
            row[:len(window)] = window
        windows.append(row)
        positions.append(0 if signature.last_only else len(window) - 1)
        sequence.append(int(token))
    return np.array(windows, np.int32).reshape(len(windows), t), np.array(positions, np.int64)


def reference_logits(tflite: bytes, windows: np.ndarray, positions: np.ndarray,
                     signature: Signature) -> np.ndarray:
    """TFLite Micro's logits (steps, V) int8 at each window's position."""
    from ..frontend.reference import tflm_outputs
    feed = np.ascontiguousarray(windows, "<i4").view(np.int8).reshape(len(windows), -1)
    outputs = tflm_outputs(tflite, feed).reshape(len(windows), -1, signature.vocab)
    return outputs[np.arange(len(windows)), positions]


# ---- the command ------------------------------------------------------------------------------------------

@dataclass
class Generation:
    report: Report
    prompt: str
    prompt_tokens: list[int]
    tokens: list[int]
    text: str                      # the prompt and what followed it, decoded
    continuation: str              # what followed it
    context: int
    instructions: list[float] = field(default_factory=list)    # per step
    verification: dict | None = None
    cache: dict | None = None      # --cache: positions, prefill, copy instructions per step

    def to_json(self) -> str:
        document = asdict(self.report)
        document["generation"] = {
            "prompt": self.prompt, "prompt_tokens": self.prompt_tokens, "tokens": self.tokens,
            "text": self.text, "continuation": self.continuation, "context": self.context,
            "decoding": "greedy", "instructions_per_token": self.report.instructions,
            "instructions": self.instructions, "verification": self.verification, "cache": self.cache}
        return json.dumps(document, indent=2)


class GenerationMismatch(TinyCompressError):
    def __init__(self, generation: Generation, message: str):
        super().__init__(message, EXIT_MISMATCH)
        self.generation = generation


def check_request(prompt: str, tokens: int) -> None:
    if not 1 <= tokens <= MAX_TOKENS:
        raise TinyCompressError(f"--tokens {tokens}: generate between 1 and {MAX_TOKENS:,} tokens",
                                EXIT_USAGE)
    if not prompt:
        raise TinyCompressError("--prompt is empty: generation starts from at least one token", EXIT_USAGE)


def generate(model: Path, board, prompt: str, steps: int, vocabulary: Vocabulary, verify: bool = False,
             out: Path | None = None, calibration: Path | None = None, compression=None,
             cmsis_nn: Path | None = None, timeout: float | None = None, host: bool = False,
             cache: bool = False) -> Generation:
    """Build MODEL with the generation harness, generate `steps` tokens after `prompt` in the emulator and
    report; with verify, compare every step's logits with TFLite Micro's on the same window. With
    `cache`, MODEL is a key/value-cached step model (cached.py)."""
    if cache:
        return generate_cached(model, board, prompt, steps, vocabulary, verify, out, calibration,
                               compression, cmsis_nn, timeout, host)
    from ..pipeline import compile_graph, load_model, project_directory
    from ..target.build import build
    from ..target.elfsize import elf_sizes
    from ..target.emulate import run_generation
    check_request(prompt, steps)
    ids = vocabulary.encode(prompt)          # an unknown character: refused before anything is built
    if len(ids) > MAX_PROMPT:
        raise TinyCompressError(f"the prompt has {len(ids):,} tokens, more than {MAX_PROMPT:,}")
    graph = load_model(model, calibration, compression)
    signature = check_signature(graph)
    vocabulary.check(signature)
    vocabulary.check_prompt(ids, signature)
    with project_directory(out) as directory:
        project = compile_graph(graph, board, directory, Path(model).name, cmsis_nn=cmsis_nn,
                                generation=signature.fields())
        elf = build(project, target="firmware_generate.elf")
        executable = build(project, host=True, target="generate_host") if host else elf
        run, chosen = run_generation(executable, board, np.array(ids), steps, signature.vocab, host=host,
                                     timeout=timeout)
        report = make_report(project, elf_sizes(elf), None if host else run)
    text, continuation = vocabulary.decode(ids + chosen.tolist()), vocabulary.decode(chosen)
    instructions = [] if host else board.instructions(run.ticks[:, 0].astype(np.float64)).tolist()
    result = Generation(report, prompt, ids, chosen.tolist(), text, continuation, signature.context,
                        [round(float(i), 1) for i in instructions])
    if verify:
        result.verification = verify_steps(result, graph.source, run.outputs, signature)
    return result


def generate_cached(model: Path, board, prompt: str, steps: int, vocabulary: Vocabulary, verify: bool,
                    out: Path | None, calibration: Path | None, compression, cmsis_nn: Path | None,
                    timeout: float | None, host: bool) -> Generation:
    """generate --cache: the step model fed the prompt one position at a time, then its own argmax."""
    from .cached import check_cache_signature, check_length
    from ..pipeline import compile_graph, load_model, project_directory
    from ..target.build import build
    from ..target.elfsize import elf_sizes
    from ..target.emulate import run_generation
    check_request(prompt, steps)
    ids = vocabulary.encode(prompt)
    if Path(model).suffix != ".tflite":
        raise TinyCompressError(f"--cache needs the step model as an int8 .tflite (its caches need their "
                                f"own calibration); {Path(model).name} is not one", EXIT_USAGE)
    graph = load_model(model, calibration, compression)
    cached = check_cache_signature(graph)
    signature = Signature(cached.context, cached.vocab, True)
    vocabulary.check(signature)
    vocabulary.check_prompt(ids, signature)
    check_length(len(ids), steps, cached)
    runs = len(ids) + steps - 1
    with project_directory(out) as directory:
        project = compile_graph(graph, board, directory, Path(model).name, cmsis_nn=cmsis_nn,
                                generation=cached.fields(MAX_TOKENS))
        elf = build(project, target="firmware_generate.elf")
        executable = build(project, host=True, target="generate_host") if host else elf
        run, chosen = run_generation(executable, board, np.array(ids), steps, cached.vocab, host=host,
                                     timeout=timeout, runs=runs)
        report = make_report(project, elf_sizes(elf), None if host else run)
    text, continuation = vocabulary.decode(ids + chosen.tolist()), vocabulary.decode(chosen)
    instructions, copies = [], []
    if not host:
        instructions = board.instructions(run.ticks[:, 0].astype(np.float64)).tolist()
        copies = board.instructions(run.copy_ticks.astype(np.float64)).tolist()
    result = Generation(report, prompt, ids, chosen.tolist(), text, continuation, cached.context,
                        [round(float(i), 1) for i in instructions])
    result.cache = {"positions": runs, "prefill": len(ids) - 1, "caches": len(cached.caches),
                    "cache_bytes": len(cached.caches) * cached.heads * cached.context * cached.width,
                    "copy_instructions": [round(float(c), 1) for c in copies]}
    if verify:
        from .cached import reference_logits as cached_logits
        fed = ids + chosen.tolist()[:-1]
        expected = cached_logits(graph.source, fed, cached)
        result.verification = compare_logits(result, expected, run.outputs, len(ids) - 1,
                                             "the same token, position and caches")
    return result


def compare_logits(result: Generation, expected: np.ndarray, logits: np.ndarray, first: int,
                   inputs: str) -> dict:
    """Every step's logits against the reference's, and every token (from step `first` on) against the
    argmax of its logits; a GenerationMismatch naming the first step that differs."""
    same = (expected == logits).all(axis=1)
    argmax = logits[first:].argmax(axis=1)
    steps = len(logits)
    result.verification = {"steps": steps, "matching": int(same.sum()),
                           "tokens_matching": int((argmax == np.array(result.tokens)).sum())}
    if not same.all():
        k = int(np.argmax(~same))
        diff = int(np.abs(expected[k].astype(np.int64) - logits[k]).max())
        raise GenerationMismatch(result, f"step {k + 1} of {steps}: the firmware's logits differ from the "
                                         f"TFLite Micro interpreter's on {inputs} ({steps - int(same.sum())} "
                                         f"steps differ; largest difference {diff})")
    wrong = np.flatnonzero(argmax != np.array(result.tokens))
    if wrong.size:
        k = int(wrong[0])
        raise GenerationMismatch(result, f"step {first + k + 1} of {steps}: the firmware chose token "
                                         f"{result.tokens[k]} but its logits' argmax is {int(argmax[k])}")
    return result.verification


def verify_steps(result: Generation, tflite: bytes, logits: np.ndarray, signature: Signature) -> dict:
    """Every step's logits against TFLite Micro's on the window the firmware had, and every token against
    the argmax of its logits; a GenerationMismatch naming the first step that differs."""
    windows, positions = step_windows(result.prompt_tokens, result.tokens, signature)
    expected = reference_logits(tflite, windows, positions, signature)
    return compare_logits(result, expected, logits, 0, "the same window")


def format_generation(g: Generation) -> str:
    r = g.report
    shown = len(g.instructions)
    lines = [
        f"tinycompress generate: {r.model} on {r.board} ({r.core}), greedy, window {g.context}",
        f"  prompt               {quoted(g.prompt)} ({len(g.prompt_tokens)} tokens)",
        f"  generated            {quoted(g.continuation)} ({len(g.tokens)} tokens)",
        f"  text                 {quoted(g.text)}",
    ]
    if r.instructions is not None:
        lines.append(f"  instructions         {r.instructions:,.0f} per token (mean of {shown}; "
                     f"{min(g.instructions):,.0f} to {max(g.instructions):,.0f})")
    lines += [
        f"  flash (total)        {_kib(r.flash['total'])} = weights {_kib(r.flash['weights'])} "
        f"+ code {_kib(r.flash['code'])} + other {_kib(r.flash['other'])}",
        f"  ram (total)          {_kib(r.sram['total'])} = arena {_kib(r.sram['arena'])} "
        f"+ stack {_kib(r.sram['stack_reserved'])} reserved + other {_kib(r.sram['other'])}",
        f"  stack (peak)         {_kib(r.sram['stack_peak'])}",
    ]
    for e in (e for e in r.embeddings if e["method"] != "int8"):
        lines.append(f"  embedding            {e['layer']}: {e['method']}, {e['bytes']:,} B "
                     f"({e['compression']:g}x smaller than int8)")
    if g.cache is not None:
        c = g.cache
        copies = c["copy_instructions"]
        lines.insert(4, f"  cache                {c['caches']} caches, {c['cache_bytes']:,} B outside the "
                        f"arena; {c['positions']} positions fed ({c['prefill']} prompt tokens before "
                        "the last)")
        if copies:
            lines.insert(6, f"  copies               {np.mean(copies):,.0f} per token more (caches in, rows "
                            "out; not in the line above)")
    if g.verification is not None:
        v = g.verification
        same = "same token, position and caches" if g.cache is not None else "same window"
        lines.append(f"  verification         {v['matching']}/{v['steps']} steps' logits identical to the "
                     f"TFLite Micro interpreter's on the {same}")
    return "\n".join(lines)
