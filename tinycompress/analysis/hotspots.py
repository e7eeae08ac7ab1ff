"""The hottest functions of a run: instructions per function over one inference, in QEMU.

This QEMU (7.2, Debian) has no TCG plugin API, so the profile comes from QEMU's own log. The
firmware runs one inference in one-instruction translation blocks (`-singlestep`;
`-accel tcg,one-insn-per-tb=on` from QEMU 8.1) with `-d exec,nochain`, so QEMU logs one
`Trace` line, with the guest PC, per executed instruction. The log streams through a pipe and is
counted as it arrives, never stored. Two kinds of line take an instruction back, because what
was logged did not execute:

- `Stopped execution of TB chain before ...`: the -icount budget ran out before the block
  started (QEMU then runs its timers and starts the block again);
- `cpu_io_recompile: rewound execution of TB to PC`: the instruction reads or writes a device
  register (SysTick), which -icount only allows at the end of a block, so QEMU abandons it and
  runs it again alone.

With one instruction per block nothing is ever cut short part-way, whatever the core, and no
disassembly is needed (the capstone in Debian's QEMU cannot decode Armv8.1-M loop and Helium
instructions, so counting instructions from `-d in_asm` would be wrong on the M55).

PCs map to functions through the ELF's symbol table (Thumb bit cleared; a static function whose
name occurs twice is qualified with its source file). The profile covers the call of
`tc_model_invoke()`, interrupts taken during it included, and is checked against the firmware's
own count from the same run (SysTick ticks under -icount). That count leaves out the
instructions the per-layer timing hooks spend between their two timer reads and subtracts a
timer-overhead estimate, so it is smaller by a few dozen instructions; `timer_instructions`
applies the harness's arithmetic (firmware/runtime/tc_report.c) to the positions of the timer
reads in this trace, and equals the firmware's figure up to SysTick rounding (within a tick per
timer subtraction; under 1.2 instructions on every emulated board).
"""
from __future__ import annotations

import bisect
import json
import os
import re
import subprocess
import tempfile
import textwrap
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..target.boards import Board
from ..target.emulate import check_exit, parse_profile, qemu_command
from ..errors import TinyCompressError

ENTRY = "tc_model_invoke"        # one inference: this call
CALLER = "tc_measure_invoke"     # the harness function that calls it and reads the timer around it
TIMER = "tc_timer_ticks"         # reads SysTick
PROFILE_VERSION = 1


@dataclass
class FunctionCount:
    name: str                    # qualified with its file when two static functions share a name
    address: int
    size: int
    file: str                    # the source file of a static function; "" for a global one
    instructions: int
    share: float                 # of the inference's instructions; the shares add up to 1


@dataclass
class FunctionProfile:
    elf: str
    board: str
    instructions: int            # in the call of tc_model_invoke(), interrupts taken during it included
    firmware_instructions: float # the firmware's own count for the same inference (SysTick ticks)
    timer_instructions: int | None   # the harness's arithmetic applied to this trace's timer reads
    untimed_instructions: int | None # in the call, between the two timer reads of each per-layer hook
    timed_around: int | None     # timed outside the call (in tc_measure_invoke) beyond the overhead estimate
    run_instructions: int        # the whole run: startup, file I/O, the inference, the report
    instructions_per_tick: float # of SysTick: the firmware's resolution
    functions: list[FunctionCount] = field(default_factory=list)

    @property
    def discrepancy(self) -> float:
        """This profile's total minus the firmware's count."""
        return self.instructions - self.firmware_instructions

    def to_json(self, model: str = "") -> str:
        document = {"version": PROFILE_VERSION, "tool": f"tinycompress {__version__}", "model": model,
                    **asdict(self), "discrepancy": round(self.discrepancy, 3)}
        return json.dumps(document, indent=2)


def hot_functions(elf: Path, board: Board, model_input: np.ndarray | bytes | None = None,
                  top: int | None = None) -> list[tuple[str, int, float]]:
    """(name, instructions, share) of the functions one inference executes, the hottest first.

    `model_input` is one model input (int8); without it, zeros of the size model.h beside the ELF gives.
    `share` is the fraction of the inference's instructions (they add up to 1 over all functions).
    """
    profile = profile_functions(elf, board, model_input)
    return [(f.name, f.instructions, f.share) for f in profile.functions[:top]]


def profile_functions(elf: Path, board: Board, model_input: np.ndarray | bytes | None = None,
                      timeout: float = 600.0) -> FunctionProfile:
    """Run one inference of a tinycompress firmware in QEMU with instruction logging; see the module doc."""
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise TinyCompressError(f"firmware {elf} does not exist")
    symbols = Symbols(elf)
    for name in (ENTRY, CALLER, TIMER):
        if name not in symbols.by_name:
            raise TinyCompressError(f"{elf.name} has no function {name}: profiling functions needs firmware "
                                    "built by tinycompress with its measurement harness")
    data = _one_input(elf, model_input)
    with tempfile.TemporaryDirectory(prefix="tinycompress-functions-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(data)
        trace = _run_logged(elf, board, work, symbols, timeout)
        ticks = parse_profile((work / "profile.txt").read_text()).get("ticks") \
            if (work / "profile.txt").is_file() else None
    if ticks is None or len(ticks) != 1:
        raise TinyCompressError(f"the firmware reported {0 if ticks is None else len(ticks)} inferences in QEMU "
                                f"({board.qemu_machine}), not one: give exactly one model input")
    functions = symbols.attribute(trace.counts, trace.instructions)
    timed, untimed = trace.timer_arithmetic()
    return FunctionProfile(elf=str(elf), board=board.name, instructions=trace.instructions,
                           firmware_instructions=round(float(board.instructions(float(ticks[0][0]))), 3),
                           timer_instructions=timed, untimed_instructions=untimed,
                           timed_around=None if timed is None else timed - (trace.instructions - untimed),
                           run_instructions=trace.executed, instructions_per_tick=float(board.instructions(1.0)),
                           functions=functions)


def _one_input(elf: Path, model_input) -> bytes:
    """One input's bytes, checked against (or, when none is given, sized by) model.h beside the ELF."""
    header = elf.parent / "model.h"
    match = re.search(r"#define\s+TC_MODEL_INPUT_BYTES\s+(\d+)", header.read_text()) if header.is_file() else None
    size = int(match.group(1)) if match else None
    if model_input is None:
        if size is None:
            raise TinyCompressError(f"give one model input: there is no model.h beside {elf} to size it from")
        return bytes(size)
    if isinstance(model_input, (bytes, bytearray)):
        data = bytes(model_input)
    else:
        data = np.ascontiguousarray(model_input, dtype=np.int8).reshape(-1).tobytes()
    if not data or (size is not None and len(data) != size):
        raise TinyCompressError(f"one model input is {size} bytes (model.h), not {len(data)}: "
                                "the function profile covers exactly one inference")
    return data


# ---- symbols -------------------------------------------------------------------------------------

class Symbols:
    """The ELF's functions, sorted by address, for PC lookups."""

    def __init__(self, elf: Path):
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        found = []   # (address, size, name, file, local)
        try:
            with open(elf, "rb") as f:
                symtab = ELFFile(f).get_section_by_name(".symtab")
                if symtab is None:
                    raise TinyCompressError(f"{elf.name} has no symbol table (stripped?): cannot name functions")
                current_file = ""
                for sym in symtab.iter_symbols():
                    kind, bind = sym["st_info"]["type"], sym["st_info"]["bind"]
                    if kind == "STT_FILE":
                        current_file = sym.name
                    elif kind == "STT_FUNC" and sym["st_size"] > 0:
                        local = bind == "STB_LOCAL"
                        found.append((sym["st_value"] & ~1, sym["st_size"], sym.name,
                                      current_file if local else "", local))
        except (ELFError, OSError) as exc:
            raise TinyCompressError(f"cannot read {elf.name} as an ELF: {exc}") from None
        found.sort()
        names = [s[2] for s in found]
        self.functions = [(a, size, f"{name} ({file})" if local and names.count(name) > 1 and file else name, file)
                          for a, size, name, file, local in found]
        self.starts = [f[0] for f in self.functions]
        self.by_name = {}
        for address, size, name, file, _ in found:
            self.by_name.setdefault(name, (address, size))

    def pcs(self, name: str) -> set[str]:
        """Every halfword address of a function, written as QEMU's log writes PCs."""
        address, size = self.by_name[name]
        return {f"{a:08x}" for a in range(address, address + size, 2)}

    def entry(self, name: str) -> str:
        return f"{self.by_name[name][0]:08x}"

    def lookup(self, pc: int) -> int | None:
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and pc < self.starts[i] + self.functions[i][1]:
            return i
        return None

    def attribute(self, counts: dict[str, int], total: int) -> list[FunctionCount]:
        per_function: dict[int | None, int] = {}
        unknown: dict[int, int] = {}
        for pc_text, n in counts.items():
            pc = int(pc_text, 16)
            i = self.lookup(pc)
            per_function[i] = per_function.get(i, 0) + n
            if i is None:
                unknown[pc] = n
        rows = []
        for i, n in per_function.items():
            if n == 0:
                continue
            if i is None:
                rows.append(FunctionCount(f"(no symbol: {len(unknown)} PCs from 0x{min(unknown):x})",
                                          min(unknown), 0, "", n, 0.0))
            else:
                address, size, name, file = self.functions[i]
                rows.append(FunctionCount(name, address, size, file, n, 0.0))
        for r in rows:
            r.share = r.instructions / total if total else 0.0
        return sorted(rows, key=lambda r: (-r.instructions, r.address))


# ---- the logged run ------------------------------------------------------------------------------

@dataclass
class Trace:
    counts: dict[str, int]       # executions per PC (QEMU's hex spelling) inside the call
    start: int                   # instructions executed before the call ...
    end: int | None              # ... and before the first instruction after it returned
    executed: int                # in the whole run
    reads: list[int]             # after how many instructions each tc_timer_ticks() call last read SysTick

    @property
    def instructions(self) -> int:
        return self.end - self.start

    def timer_arithmetic(self) -> tuple[int | None, int | None]:
        """What tc_measure_invoke() computes, in instructions, from where the timer reads fell.

        tc_measure_init() reads twice (the overhead of a read pair); tc_measure_invoke() reads
        before and after the call and subtracts the overhead and, per layer, the span between the
        two reads of tc_profile_layer() (after tc_profile_begin()'s one read). None when the reads
        do not follow that pattern (another harness).
        """
        before = [r for r in self.reads if r <= self.start]
        inside = [r for r in self.reads if self.start < r < self.end]
        after = [r for r in self.reads if r >= self.end]
        if len(before) < 3 or not after or len(inside) % 2 != 1:
            return None, None
        overhead = before[1] - before[0]
        untimed = sum(inside[k + 1] - inside[k] for k in range(1, len(inside), 2))
        return after[0] - before[-1] - overhead - untimed, untimed


def _singlestep_flags(qemu: str) -> list[str]:
    """One instruction per translation block: -singlestep until QEMU 8.1 renamed it."""
    try:
        version = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    match = re.search(r"version (\d+)\.(\d+)", version)
    if match and (int(match.group(1)), int(match.group(2))) >= (8, 1):
        return ["-accel", "tcg,one-insn-per-tb=on"]
    return ["-singlestep"]


def _run_logged(elf: Path, board: Board, work: Path, symbols: Symbols, timeout: float, parse=None):
    """The logged run, its log read by `parse(log, symbols)` (default: _parse, a Trace)."""
    command = qemu_command(board, elf)
    where = f"in QEMU ({board.qemu_machine})"
    read_end, write_end = os.pipe()
    command += _singlestep_flags(command[0]) + ["-d", "exec,nochain", "-D", f"/dev/fd/{write_end}"]
    console = work / "console.txt"
    with open(console, "w") as out:
        try:
            proc = subprocess.Popen(command, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, pass_fds=(write_end,))
        except OSError as exc:
            os.close(read_end)
            raise TinyCompressError(f"cannot start {command[0]}: {exc}") from None
        finally:
            os.close(write_end)
        timed_out = threading.Event()

        def expire():
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            with open(read_end, "r", encoding="latin-1", buffering=1 << 20) as log:
                trace = (parse or _parse)(log, symbols)
            proc.wait()
        except (TinyCompressError, IndexError, ValueError):
            if not timed_out.is_set():   # else the log was cut off mid-line: report the timeout
                raise
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if timed_out.is_set():
        raise TinyCompressError(f"the logged run passed its {timeout:g} s timeout {where}; the firmware hangs "
                                "or the model is too large to trace (raise the limit with --timeout SECONDS)")
    check_exit(proc.returncode, console.read_text(errors="replace").strip(), where)
    if parse is not None:
        return trace
    if trace is None:
        raise TinyCompressError(f"{ENTRY}() never ran {where}: the firmware has no inference to profile")
    if trace.end is None:
        raise TinyCompressError(f"{ENTRY}() did not return to {CALLER}() before the firmware stopped {where}")
    return trace


def _parse(log, symbols: Symbols) -> Trace | None:
    """Count one instruction per Trace line, per PC, inside the first call of tc_model_invoke()."""
    entry, timer = symbols.entry(ENTRY), symbols.entry(TIMER)
    caller, timer_pcs = symbols.pcs(CALLER), symbols.pcs(TIMER)
    counts: dict[str, int] = {}
    executed = 0                 # instructions executed so far
    start = end = None
    inside = False
    last, last_inside, last_read = None, False, None
    io_pc = None                 # an abandoned device access, run again alone next
    calls, reads = 0, {}         # tc_timer_ticks() calls; the position of each one's last SysTick read
    for line in log:
        if line[0] == "T":                                   # Trace 0: 0x7f.. [cs_base/PC/flags/cflags] sym
            pc = line.split("/", 2)[1]
            last_read = None
            if inside:
                if pc in caller:
                    inside, end = False, executed
                else:
                    counts[pc] = counts.get(pc, 0) + 1
            elif pc == entry and start is None:
                inside, start = True, executed
                counts[pc] = counts.get(pc, 0) + 1
            executed += 1
            if pc == timer:
                calls += 1
            if io_pc is not None:
                if pc == io_pc and pc in timer_pcs:
                    reads[calls], last_read = executed, calls
                io_pc = None
            last, last_inside = pc, inside
        elif line.startswith("Stopped execution"):           # the last block never started
            _take_back(line.rsplit("[", 1)[1].split("]", 1)[0], last, line)
            executed -= 1
            if last_inside:
                counts[last] -= 1
            if last_read is not None:                        # that was a timer read: it comes again
                del reads[last_read]
                io_pc, last_read = last, None
        elif line.startswith("cpu_io_recompile"):            # the last block stopped at its device access
            pc = line.split()[-1]
            _take_back(pc, last, line)
            executed -= 1
            if last_inside:
                counts[last] -= 1
            io_pc = pc
    if start is None:
        return None
    return Trace({pc: n for pc, n in counts.items() if n}, start, end, executed, sorted(reads.values()))


def _take_back(pc: str, last: str | None, line: str) -> None:
    if last is None or int(pc, 16) != int(last, 16):
        raise TinyCompressError(f"cannot follow QEMU's log: {line.strip()!r} does not follow an instruction "
                                f"at that address (one instruction per block expected)")


# ---- the table -----------------------------------------------------------------------------------

def format_table(profile: FunctionProfile, model: str, top: int | None = 20) -> str:
    shown = profile.functions if top is None else profile.functions[:top]
    rest = profile.functions[len(shown):]
    rows = [("function", "instructions", "% of run")]
    rows += [(f.name, f"{f.instructions:,}", f"{100 * f.share:.2f}") for f in shown]
    if rest:
        rows.append((f"({len(rest)} more functions)", f"{sum(f.instructions for f in rest):,}",
                     f"{100 * sum(f.share for f in rest):.2f}"))
    rows.append(("total", f"{profile.instructions:,}", "100.00"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"tinycompress profile-functions: {model} on {profile.board}, one inference "
             f"(the call of {ENTRY}()): {profile.instructions:,} instructions", ""]
    for k, row in enumerate(rows):
        if k == len(rows) - 1 or k == 1:
            lines.append("  " + "  ".join("-" * w for w in widths))
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    p = profile
    text = (f"The firmware's own count of this inference (SysTick under -icount) is {p.firmware_instructions:,.1f}, "
            f"{abs(p.discrepancy):,.1f} {'fewer' if p.discrepancy >= 0 else 'more'}.")
    if p.timer_instructions is not None:
        text += (f" It leaves out the {p.untimed_instructions:,} instructions its per-layer timing hooks spend "
                 f"between their two timer reads, and counts {p.timed_around:,} of {CALLER}() around the call "
                 f"that its timer-overhead estimate does not cancel: {p.instructions:,} - {p.untimed_instructions:,} "
                 f"{'+' if p.timed_around >= 0 else '-'} {abs(p.timed_around):,} = {p.timer_instructions:,} "
                 f"from this trace ({p.firmware_instructions - p.timer_instructions:+.2f}: SysTick rounding, "
                 f"{p.instructions_per_tick:.3g} instructions a tick).")
    else:
        text += " Its timer reads do not follow the tinycompress harness, so the difference is not broken down."
    lines += [""] + textwrap.wrap(text, 100, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)
