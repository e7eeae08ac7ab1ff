"""Stage 7, run: execute the firmware in QEMU (or natively for the host build) on a batch of inputs.

The harness reads input.bin and writes output.bin and profile.txt through
semihosting in a scratch working directory; `-icount shift=6` makes every
instruction take 64 ns of virtual time, so SysTick ticks count instructions
exactly and repeatably.
"""
from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .boards import Board
from ..errors import TinyCompressError
from .toolchain import require

EXIT_FAULT = 3  # the runtime's fault handlers exit with this code


@dataclass
class RunResult:
    outputs: np.ndarray          # (N, output bytes) int8
    ticks: np.ndarray            # (N, 1 + layers): total, then per layer
    overhead: int                # ticks one empty measurement costs (already subtracted)
    stack_peak: int              # the whole run's peak stack, bytes (0: not measured)
    stack_size: int
    float_outputs: np.ndarray | None = None   # (N, output elements) float32: a float-output model's
                                              # tc_model_output_float, from output_float.bin
    copy_ticks: np.ndarray | None = None      # (N,): the cached generation harness's copies per step
    adapter: int | None = None                # the adapter the harness selected (-1: the base alone)
    adapter_refused: int = 0                  # the negated status of a refused adapter slot (harness.c)
    adapter_name: str | None = None           # the name in the selected slot's header
    stack_inference: int = 0                  # the deepest any inference went below the harness's stack
                                              # pointer, bytes (0: not measured)


def qemu_command(board: Board, elf: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [require("qemu-system-arm"), "-M", board.qemu_machine, "-nographic", "-monitor", "none",
            "-serial", "none", "-semihosting-config", "enable=on,target=native",
            "-icount", "shift=6,align=off,sleep=off", "-kernel", str(elf), *extra]


def default_timeout(inputs: int) -> float:
    """Seconds the emulator may run for `inputs` inferences unless --timeout says otherwise."""
    return 60 + 2.0 * inputs


def run_firmware(executable: Path, board: Board, inputs: np.ndarray, output_bytes: int,
                 host: bool = False, timeout: float | None = None, files: dict[str, bytes] | None = None,
                 qemu_args: tuple[str, ...] = ()) -> RunResult:
    """Run `inputs` (N, input bytes) through the firmware; return outputs and the profile. Without a
    timeout, default_timeout(). `files` are written beside input.bin (adapter.bin: the adapter to select);
    `qemu_args` go to QEMU after the firmware (a -device loader writing flash)."""
    inputs = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
    timeout = default_timeout(len(inputs)) if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="tinycompress-run-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(inputs.tobytes())
        for name, data in (files or {}).items():
            (work / name).write_bytes(data)
        execute(executable, board, work, host, timeout, "inputs", qemu_args)
        outputs = np.frombuffer((work / "output.bin").read_bytes(), np.int8)
        if outputs.size != len(inputs) * output_bytes:
            raise TinyCompressError(f"the firmware wrote {outputs.size} output bytes, expected "
                                    f"{len(inputs) * output_bytes}")
        profile = parse_profile((work / "profile.txt").read_text())
        floats = None
        if (work / "output_float.bin").is_file():
            floats = np.frombuffer((work / "output_float.bin").read_bytes(), "<f4")
            if floats.size != outputs.size:
                raise TinyCompressError(f"the firmware wrote {floats.size} float outputs, expected "
                                        f"{outputs.size}")
            floats = floats.reshape(len(inputs), output_bytes)
    return RunResult(outputs=outputs.reshape(len(inputs), output_bytes), float_outputs=floats, **profile)


def execute(executable: Path, board: Board, work: Path, host: bool, timeout: float, what: str,
            qemu_args: tuple[str, ...] = ()) -> None:
    """Run the firmware in QEMU (or natively) in the working directory `work`; one clear error when it
    times out (too slow for this many `what`), faults or fails."""
    command = [str(executable.resolve())] if host else qemu_command(board, executable.resolve(), qemu_args)
    where = "natively" if host else f"in QEMU ({board.qemu_machine})"
    try:
        proc = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinyCompressError(f"the firmware ran past its {timeout:g} s timeout {where}; it hangs or "
                                f"the model is too slow for this many {what}: raise the limit with "
                                "--timeout SECONDS") from None
    check_exit(proc.returncode, (proc.stdout + proc.stderr).strip(), where)


def check_exit(returncode: int, console: str, where: str) -> None:
    """One clear error for a firmware that faulted or failed; `console` is what it printed."""
    if returncode == EXIT_FAULT:
        fault = next((l for l in console.splitlines() if "fault" in l.lower()), console[-200:])
        raise TinyCompressError(f"the firmware faulted {where}: {fault.strip()}")
    if returncode != 0:
        raise TinyCompressError(f"the firmware exited with code {returncode} {where}: "
                                f"{console.splitlines()[-1] if console else 'no output'}")


PROFILE_FIELDS = ("inferences", "layers", "overhead", "stack_peak", "stack_size", "stack_inference",
                  "adapter", "adapter_refused")


def parse_profile(text: str) -> dict:
    """The harness's lines (firmware/runtime/tc_report.h); other lines, such as outputs, are skipped."""
    fields, runs, name = {}, [], None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "adapter_name":
            name = parts[1]
        elif len(parts) > 2 and parts[0] == "run":
            runs.append([int(v) for v in parts[2:]])
        elif len(parts) == 2 and parts[0] in PROFILE_FIELDS:
            fields[parts[0]] = int(parts[1])
    return dict(ticks=np.array(runs, np.int64), overhead=fields.get("overhead", 0),
                stack_peak=fields.get("stack_peak", 0), stack_size=fields.get("stack_size", 0),
                stack_inference=fields.get("stack_inference", 0),
                adapter=fields["adapter"] - 1 if "adapter" in fields else None,
                adapter_refused=fields.get("adapter_refused", 0), adapter_name=name)


def run_generation(executable: Path, board: Board, prompt: np.ndarray, steps: int, vocab: int,
                   host: bool = False, timeout: float | None = None,
                   runs: int | None = None) -> tuple[RunResult, np.ndarray]:
    """Run the generation harness (templates/generate.c.j2) on the prompt's token ids for `steps` steps:
    each step's logits (steps, vocab) int8 as RunResult.outputs with the per-step ticks, and the tokens
    it chose (steps,) int32. Without a timeout, default_timeout(steps). The cached harness
    (generate_cache.c.j2) runs `runs` inferences (one per position fed) for its `steps` tokens."""
    runs = steps if runs is None else runs
    prompt = np.asarray(prompt, np.int64)
    header = np.array([steps, len(prompt)], "<i4")
    timeout = default_timeout(runs) if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="tinycompress-generate-") as tmp:
        work = Path(tmp)
        (work / "prompt.bin").write_bytes(header.tobytes() + prompt.astype("<i4").tobytes())
        execute(executable, board, work, host, timeout, "tokens")
        logits = np.frombuffer((work / "output.bin").read_bytes(), np.int8)
        text = (work / "profile.txt").read_text()
    tokens = np.array([int(line.split()[1]) for line in text.splitlines()
                       if line.startswith("token ") and len(line.split()) == 2], np.int32)
    profile = parse_profile(text)
    if logits.size != runs * vocab or len(tokens) != steps or len(profile["ticks"]) != runs:
        raise TinyCompressError(f"the firmware reported {len(tokens)} tokens and {logits.size} logit bytes, "
                                f"expected {steps} and {runs * vocab}")
    copies = np.array([int(line.split()[1]) for line in text.splitlines()
                       if line.startswith("copy ") and len(line.split()) == 2], np.int64)
    return RunResult(outputs=logits.reshape(runs, vocab), copy_ticks=copies if copies.size else None,
                     **profile), tokens
