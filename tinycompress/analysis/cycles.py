"""A cycle estimate from the emulator: a per-core timing model applied to the executed instruction stream.

The stream is the one `profile-functions` logs (analysis/hotspots.py: QEMU `-d exec,nochain` with one
instruction per translation block, counted as it streams, never stored), here counted per *transition*:
how often instruction b followed instruction a, in which layer. The ELF's disassembly
(arm-none-eabi-objdump) names each instruction. The transitions give what the timing tables need and the
per-PC counts do not: whether a branch was taken (b is not the next address after a) and whether a load
or store follows another one (they pipeline on the M3/M4/M33). On the M7 the stream also carries whether
an instruction issued together with the one before it (decided as it streams).

Per layer: the generated tc_model_invoke() calls tc_profile_layer(i) after layer i (templates/model.c.j2),
so an instruction belongs to layer i when it executes after the i-th return from that hook and before the
next call: exact, whatever the kernels call. The hooks themselves (tc_profile_begin, tc_profile_layer and
what they call) are left out, as the firmware's own per-layer instruction counts leave them out; the
entry and exit of tc_model_invoke() outside every layer are counted in the total only.

The timing tables (cycles at zero wait states, P the pipeline refill after a taken branch):

- Cortex-M0, TRM r0p0 (Arm DDI 0432C) Table 3-1: data processing 1, LDR/STR 2, LDM/STM/PUSH/POP 1+N,
  POP with PC 4+N, B and taken B<cond> 3 (1 not taken), BL 4, BX/BLX 3, MOV/ADD to PC 3, MULS 1 or 32
  (the implementation's multiplier: the board file's timing.multiply_cycles), DMB/DSB/ISB 4.
- Cortex-M0+, TRM r0p1 (Arm DDI 0484C) Table 3-1 (its instruction summary): as the M0 with the
  two-stage pipeline's shorter refill: B and taken B<cond> 2, BL 3, BX/BLX 2, MOV/ADD to PC 2,
  POP with PC 3+N, DMB/DSB/ISB 3.
- Cortex-M3, TRM r2p1 (Arm DDI 0337I) Table 3-1 and 3.3.2 "Load/store timings"; Cortex-M4, TRM r0p1
  (Arm DDI 0439B) Table 3-1 and 3.3.2: data processing 1; MOV/ADD/LDR/POP to PC 1+P (plus the load);
  LDR/STR (and LDRB/H, LDRSB/H, VLDR/VSTR) 2, but "neighboring load and store single instructions can
  pipeline their address and data phases", so a single load/store right after another takes 1 (a run of
  N takes N+1) unless its address register is the one the previous load wrote or the previous one is a
  store with a register offset (after which "other instructions cannot be pipelined"); LDRD/STRD 1+N (N=2);
  LDM/STM/PUSH/POP/VLDM/VSTM/VPUSH/VPOP 1+N; B/BL/BX/BLX and taken B<cond>/CBZ/CBNZ 1+P, not taken 1;
  TBB/TBH 2+P; MUL/MLA/MLS 1 (M4), MUL 1 and MLA/MLS 2 (M3); UMULL/SMULL/UMLAL/SMLAL 1 (M4), 3-5 and
  4-7 by early termination (M3: the model takes the upper bound 5 and 7); the DSP multiplies (SMLAD,
  SMLABB, SMULBB, SMMLA, ...) 1; SDIV/UDIV 2-12 "depending on the size of the operands": the operands
  are not in the trace, so the model takes the upper bound 12; VMLA/VMLS/VFMA.F32 3, VDIV/VSQRT 14, other
  FPU 1. P ranges "from 1 to 3 depending on the alignment and width of the target instruction, and
  whether the processor manages to speculate the address early": the model takes P = 1 for a direct
  branch (its target computed in decode), +1 for a register-indirect one (BX, BLX Rm, POP/LDR/MOV to PC:
  not speculated), +1 when the target is a 32-bit instruction that is not word-aligned (two fetches).
- Cortex-M33, TRM r0p4 (Arm 100230): no instruction timing table; the model takes the M4's (same
  Armv7E-M/Armv8-M Mainline three-stage pipeline with the single-cycle DSP multiplier).
- Cortex-M55, TRM r1p0 (Arm 101051) and its Software Optimization Guide: scalar as the M33; a Helium
  (MVE) instruction is 2 cycles (dual-beat: 4 beats of 32 bits, 2 per cycle), and a vector load/store
  next to a vector data-processing instruction overlaps it by one beat pair (the pair takes 3);
  LE/LETP back to the loop start costs 1 (the loop is cached by the low-overhead-branch extension: no
  refill), DLS/WLS 1. Simplified: no beat-level register hazards, no VMLAV accumulator stalls.
- Cortex-M7, TRM r1p2 (Arm DDI 0489F) 1.2: "six-stage superscalar pipeline ... dual-issue of certain
  instruction pairs" and a branch predictor. The TRM gives no per-instruction table, so the model is
  coarser: every instruction 1 issue slot, loads from TCM/cache 1, LDM/STM 1+ceil(N/2) (64-bit
  interface); two consecutive instructions issue together when the second does not read what the first
  writes, they are not both loads/stores, not both multiplies, and neither is a branch, LDM/STM, divide,
  FPU or system instruction (an instruction already paired does not pair again); taken branches 1 when
  direct (predicted), +2 when register-indirect; SDIV/UDIV 12.

Memory (the board file's [timing]): zero wait states unless the board has flash wait states and no
instruction cache/ART, in which case every taken branch adds the wait states (the prefetch buffer hides
sequential fetches). Data reads are assumed to hit SRAM or the flash accelerator's data cache: weights read
from flash past the cache are the largest known source of error (see benchmarks/README.md).

Simplifications common to all cores: an instruction an IT block skips costs 1, as if executed; no
interrupts, no bus contention, no write-buffer stalls, no load-use interlocks beyond the one above.
"""
from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import TinyCompressError
from ..target.boards import MVE_CORES, Board
from ..target.toolchain import require
from .hotspots import CALLER, ENTRY, Symbols, _one_input, _run_logged, _take_back

BEGIN, LAYER = "tc_profile_begin", "tc_profile_layer"
CONDITIONS = {"eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le"}
REGISTER_ALIASES = {"sb": "r9", "sl": "r10", "fp": "r11", "ip": "r12", "r13": "sp", "r14": "lr", "r15": "pc"}
REGISTER = re.compile(r"\b(r1[0-5]|r[0-9]|sb|sl|fp|ip|sp|lr|pc)\b")


# ---- the disassembly -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    address: int
    size: int                    # bytes: 2 or 4
    mnemonic: str                # objdump's, without .w/.n
    operands: str
    kind: str                    # see classify()
    registers: int = 0           # N: registers moved by LDM/STM/PUSH/POP/VLDM/...
    writes: frozenset = frozenset()
    reads: frozenset = frozenset()
    base: str = ""               # a load/store's address register

    @property
    def end(self) -> int:
        return self.address + self.size


def _registers(text: str) -> list[str]:
    return [REGISTER_ALIASES.get(r, r) for r in REGISTER.findall(text)]


def _list_size(operands: str) -> int:
    """Registers in a {...} list, ranges (d8-d15) counted out; a D register counts 2 words."""
    inside = operands[operands.find("{") + 1:operands.find("}")]
    n = 0
    for item in (s.strip() for s in inside.split(",") if s.strip()):
        first, _, last = item.partition("-")
        width = 2 if first.startswith("d") else 1
        count = int(last[1:]) - int(first[1:]) + 1 if last else 1
        n += width * count
    return n


def _base_mnemonic(mnemonic: str) -> str:
    m = mnemonic.split(".")[0]
    return m


def classify(mnemonic: str, operands: str) -> tuple[str, int]:
    """(kind, N) of one instruction. Kinds: alu, load, store, load2, ldm, stm, branch, cbz, call, indirect,
    table, pop_pc, load_pc, to_pc, mul, mla, mull, mlal, dsp, div, fmac, fdiv, fpu, mve, mve_mem, loop_end,
    loop_start, barrier."""
    m = _base_mnemonic(mnemonic)
    regs = _registers(operands.split(";")[0])
    dest_pc = bool(regs) and regs[0] == "pc"
    if m in ("le", "letp"):
        return "loop_end", 0
    if m in ("dls", "dlstp", "wls", "wlstp"):
        return "loop_start", 0
    if m == "b" or (m[:1] == "b" and m[1:] in CONDITIONS):
        return "branch", 0
    if m in ("cbz", "cbnz"):
        return "cbz", 0
    if m == "bl":
        return "call", 0
    if m in ("bx", "blx"):
        return "indirect", 0
    if m in ("tbb", "tbh"):
        return "table", 0
    if m in ("dmb", "dsb", "isb"):
        return "barrier", 0
    if m.startswith("v") and "q" in re.findall(r"\b([qsd])\d+\b", operands):
        return ("mve_mem" if m.startswith(("vldr", "vstr", "vld2", "vld4", "vst2", "vst4")) else "mve"), 0
    if m in ("pop", "ldm", "ldmia", "ldmfd", "ldmdb", "ldmea"):
        n = _list_size(operands)
        return ("pop_pc" if "pc" in _registers(operands[operands.find("{"):]) else "ldm"), n
    if m in ("push", "stm", "stmia", "stmea", "stmdb", "stmfd"):
        return "stm", _list_size(operands)
    if m in ("vpush", "vpop", "vldmia", "vldmdb", "vstmia", "vstmdb", "vldm", "vstm"):
        return ("ldm" if m in ("vpop", "vldmia", "vldmdb", "vldm") else "stm"), _list_size(operands)
    if m in ("ldrd", "ldrexd"):
        return "load2", 2
    if m == "strd":
        return "store2", 2
    if m.startswith("ldr") or m == "vldr":
        return ("load_pc" if dest_pc else "load"), 0
    if m.startswith("str") or m == "vstr":
        return "store", 0
    if m in ("mul", "muls"):
        return "mul", 0
    if m in ("mla", "mls"):
        return "mla", 0
    if m in ("umull", "smull"):
        return "mull", 0
    if m in ("umlal", "smlal", "umaal"):
        return "mlal", 0
    if m in ("sdiv", "udiv"):
        return "div", 0
    if re.fullmatch(r"sm(la|ul|ls|us|ml|mu)[a-z]*|smmls[a-z]*|smlal[a-z]+", m):
        return "dsp", 0
    if m in ("vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"):
        return "fmac", 0
    if m in ("vdiv", "vsqrt"):
        return "fdiv", 0
    if m.startswith("v"):
        return "fpu", 0
    if dest_pc and m in ("mov", "add"):
        return "to_pc", 0
    return "alu", 0


def disassemble(elf: Path, core: str = "") -> dict[int, Instruction]:
    """Every instruction of the ELF's code, by address (arm-none-eabi-objdump -d). For a Helium core the
    architecture is named: objdump decodes MVE (and the loop instructions) only in an object whose
    attributes allow MVE, and code built without them (startup, libraries) would read as coprocessor
    instructions."""
    objdump = require("arm-none-eabi-objdump")
    machine = ["-m", "armv8.1-m.main"] if core in MVE_CORES else []
    try:
        text = subprocess.run([objdump, "-d", *machine, str(elf)], capture_output=True, text=True, check=True,
                              timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TinyCompressError(f"cannot disassemble {elf.name}: {exc}") from None
    line = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{4} ?){1,2})\s*\t(\S+)\s*([^<;]*)")
    found = {}
    for raw in text.splitlines():
        match = line.match(raw)
        if not match:
            continue
        address, words, mnemonic, operands = match.groups()
        if mnemonic.startswith("."):          # .word, .short: a literal pool
            continue
        size = 2 * len(words.split())
        mnemonic = re.sub(r"\.[wn]$", "", mnemonic)
        kind, n = classify(mnemonic, operands)
        regs = _registers(operands)
        writes, reads, base = _effects(mnemonic, operands, kind, regs)
        found[int(address, 16)] = Instruction(int(address, 16), size, mnemonic, operands.strip(), kind, n,
                                              writes, reads, base)
    if not found:
        raise TinyCompressError(f"{elf.name}: objdump found no instructions")
    return found


def _effects(mnemonic: str, operands: str, kind: str, regs: list[str]):
    """(registers written, registers read, address register) as far as the timing model needs them."""
    if kind in ("store", "store2", "stm", "branch", "cbz", "barrier", "table", "mve", "mve_mem", "fpu",
                "fmac", "fdiv"):
        writes = set()
    elif kind in ("mull", "mlal", "load2"):
        writes = set(regs[:2])
    elif kind in ("ldm", "pop_pc"):
        writes = set(_registers(operands[operands.find("{"):]))
    elif mnemonic.startswith(("cmp", "cmn", "tst", "teq")):
        writes = set()
    else:
        writes = set(regs[:1])
    bracket = operands.find("[")
    base = _registers(operands[bracket:])[0] if bracket >= 0 and _registers(operands[bracket:]) else ""
    reads = set(regs) - writes if kind not in ("store", "store2", "stm") else set(regs)
    if kind in ("mla", "mlal", "dsp"):
        reads = set(regs[1:]) | (set(regs[:2]) if kind == "mlal" else set())
    if "!" in operands or "]," in operands.replace(" ", ""):
        writes.add(base)                        # writeback
    return frozenset(writes), frozenset(reads), base


# ---- the timing model ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """One core's table (see the module doc) and the board's memory."""
    core: str
    multiply_cycles: int = 1         # M0/M0+ MULS: 1 or 32 by the implementation
    wait_states: int = 0             # flash wait states at the board's clock ...
    instruction_cache: bool = False  # ... hidden by an instruction cache / ART

    @property
    def family(self) -> str:
        return {"cortex-m0": "m0", "cortex-m1": "m0", "cortex-m0plus": "m0+", "cortex-m23": "m0+",
                "cortex-m3": "m3", "cortex-m7": "m7", "cortex-m55": "m55", "cortex-m85": "m55"}.get(self.core, "m4")

    def fetch_penalty(self) -> int:
        return 0 if self.instruction_cache else self.wait_states


def timing_for(board: Board) -> Timing:
    """The board's timing; a bare board's flash wait states are those its start-up sets (target/clocks.py
    derives them from its [clock] table), others' from [timing]."""
    from ..target.clocks import clock_plan
    t, plan = board.timing, clock_plan(board)
    wait_states = plan.wait_states if plan is not None else t.get("flash_wait_states", 0)
    return Timing(board.core, t.get("multiply_cycles", 1), wait_states, t.get("instruction_cache", False))


V6M = {  # (M0, M0+): the refill-dependent rows of the two Table 3-1s
    "branch": (3, 2), "call": (4, 3), "indirect": (3, 2), "to_pc": (3, 2), "pop_pc": (4, 3), "barrier": (4, 3)}


def instruction_cycles(t: Timing, a: Instruction | None, b: Instruction, taken: bool, paired: bool) -> int:
    """Cycles of instruction b, which followed a (None: unknown), `taken` when b was a branch that was
    taken, `paired` when b dual-issued with a (M7)."""
    fam, k = t.family, b.kind
    refill = t.fetch_penalty() if taken else 0
    if fam in ("m0", "m0+"):
        i = fam == "m0+"
        if k in ("branch", "cbz"):
            return (V6M["branch"][i] if taken else 1) + refill
        if k in ("call", "indirect", "to_pc", "barrier"):
            return V6M[k][i] + refill
        if k == "pop_pc":
            return V6M[k][i] + b.registers + refill
        if k in ("ldm", "stm"):
            return 1 + b.registers
        if k in ("load", "store", "load_pc"):
            return 2
        if k == "mul":
            return t.multiply_cycles
        return 1
    if fam == "m7":
        return _m7_cycles(b, taken, paired) + refill
    if k == "mve" or k == "mve_mem":
        overlap = a is not None and {a.kind, k} == {"mve", "mve_mem"}
        return 1 if overlap else 2
    if k == "loop_end":
        return 1
    p = _refill(b) if taken else 0
    if k in ("branch", "cbz", "call", "indirect", "to_pc"):
        return 1 + p + refill
    if k == "table":
        return 2 + p + refill
    if k == "pop_pc":
        return 1 + b.registers + p + refill
    if k == "load_pc":
        return 2 + p + refill
    if k in ("load", "store"):
        pipelined = a is not None and a.kind in ("load", "store") and not (
            a.kind == "load" and b.base in a.writes or a.kind == "store" and _register_offset(a))
        return 1 if pipelined else 2
    if k in ("load2", "store2", "ldm", "stm"):
        return 1 + max(b.registers, 1)
    if k == "mla":
        return 2 if fam == "m3" else 1
    if k == "mull":
        return 5 if fam == "m3" else 1
    if k == "mlal":
        return 7 if fam == "m3" else 1
    if k == "div":
        return 12
    if k == "fmac":
        return 3
    if k == "fdiv":
        return 14
    return 1


def _register_offset(i: Instruction) -> bool:
    """A [Rn, Rm] address: after such a store nothing pipelines (M3/M4 TRM 3.3.2)."""
    inside = i.operands[i.operands.find("[") + 1:i.operands.find("]")]
    return len(_registers(inside)) > 1


def _refill(b: Instruction) -> int:
    """P of the M3/M4 tables for b's taken branch: see the module doc. b's target is not known here, so
    the target's alignment enters through target_refill() on the next instruction."""
    return 1 + (b.kind in ("indirect", "to_pc", "pop_pc", "load_pc"))


BRANCHES = {"branch", "cbz", "call", "indirect", "to_pc", "pop_pc", "load_pc", "table"}


def target_refill(t: Timing, target: Instruction) -> int:
    """The extra fetch of a 32-bit branch target that is not word-aligned (M3/M4/M33/M55 only)."""
    return int(t.family in ("m3", "m4", "m55") and target.size == 4 and target.address % 4 == 2)


def _m7_cycles(b: Instruction, taken: bool, paired: bool) -> int:
    k = b.kind
    if paired:
        return 0
    if k in ("ldm", "stm", "pop_pc", "load2", "store2"):
        base = 1 + math.ceil(max(b.registers, 1) / 2)
        return base + (2 if k == "pop_pc" else 0)
    if k == "div":
        return 12
    if k == "fdiv":
        return 14
    if taken:
        return 1 + (2 if k in ("indirect", "to_pc", "load_pc", "table") else 0)
    return 1


M7_SOLO = {"ldm", "stm", "pop_pc", "load2", "store2", "div", "fdiv", "fmac", "fpu", "barrier", "table",
           "branch", "cbz", "call", "indirect", "to_pc", "load_pc", "mve", "mve_mem", "loop_end", "loop_start"}
MEMORY = {"load", "store"}
MULTIPLY = {"mul", "mla", "mull", "mlal", "dsp"}


def m7_pairable(a: Instruction, b: Instruction) -> bool:
    """Whether b can issue in the same cycle as a on the M7 (the model's rule: see the module doc)."""
    if a.kind in M7_SOLO or (b.kind in M7_SOLO and b.kind not in ("branch", "cbz")):
        return False
    if a.kind in MEMORY and b.kind in MEMORY or a.kind in MULTIPLY and b.kind in MULTIPLY:
        return False
    return not (a.writes & (b.reads | {b.base}))


# ---- the logged run, counted by transition ---------------------------------------------------------

@dataclass
class CycleEstimate:
    core: str
    board: str
    clock_hz: int
    cycles: int                      # the call of tc_model_invoke(), the timing hooks left out
    instructions: int                # the same instructions
    layers: list[int] = field(default_factory=list)        # cycles per layer (the firmware's layer order)
    layer_instructions: list[int] = field(default_factory=list)
    hooks_instructions: int = 0      # in the per-layer timing hooks (left out)
    wait_states: int = 0
    instruction_cache: bool = False

    @property
    def latency_ms(self) -> float:
        return self.cycles * 1e3 / self.clock_hz

    def to_dict(self) -> dict:
        return {"estimate": True, "total": self.cycles, "per_layer": self.layers, "core": self.core,
                "clock_hz": self.clock_hz, "instructions": self.instructions,
                "flash_wait_states": self.wait_states, "instruction_cache": self.instruction_cache,
                "model": "per-core TRM timing tables applied to QEMU's executed stream "
                         "(tinycompress/analysis/cycles.py)"}


class _Stream:
    """Counts (layer, previous PC, PC, paired) while QEMU's log streams; see the module doc."""

    def __init__(self, symbols: Symbols, code: dict[int, Instruction], timing: Timing):
        self.symbols, self.code, self.m7 = symbols, code, timing.family == "m7"
        self.pair_memo: dict[tuple[str, str], bool] = {}

    def pairable(self, a: str, b: str) -> bool:
        key = (a, b)
        if key not in self.pair_memo:
            ia, ib = self.code.get(int(a, 16)), self.code.get(int(b, 16))
            self.pair_memo[key] = bool(ia and ib and ia.end == ib.address and m7_pairable(ia, ib))
        return self.pair_memo[key]

    def parse(self, log, symbols: Symbols):
        entry = symbols.entry(ENTRY)
        caller = symbols.pcs(CALLER)
        invoke = symbols.pcs(ENTRY)
        hooks = {symbols.entry(BEGIN): False, symbols.entry(LAYER): True}
        counts: dict[tuple, int] = {}
        hook_count = 0
        inside = done = False
        layer, in_hook, counts_layer = 0, False, False
        prev, paired = None, False
        undo = None                                  # the state before the last instruction, its key
        for line in log:
            if line[0] == "T":
                if done:
                    continue
                pc = line.split("/", 2)[1]
                if not inside:
                    if pc != entry:
                        continue
                    inside = True
                state = (layer, in_hook, counts_layer, prev, paired, hook_count)
                if pc in caller:
                    inside, done = False, True
                    continue
                key = None
                if pc in hooks and not in_hook:
                    in_hook, counts_layer = True, hooks[pc]
                if in_hook and pc in invoke:
                    in_hook = False
                    layer += counts_layer
                if in_hook:
                    hook_count += 1
                    prev, paired = None, False
                else:
                    pair = self.m7 and prev is not None and not paired and self.pairable(prev, pc)
                    key = (layer, prev, pc, pair)
                    counts[key] = counts.get(key, 0) + 1
                    prev, paired = pc, pair
                undo = (state, key, pc)
            elif line.startswith(("Stopped execution", "cpu_io_recompile")) and inside and undo is not None:
                state, key, pc = undo
                where = line.rsplit("[", 1)[1].split("]", 1)[0] if line[0] == "S" else line.split()[-1]
                _take_back(where, pc, line)
                layer, in_hook, counts_layer, prev, paired, hook_count = state
                if key is not None:
                    counts[key] -= 1
                undo = None
        return counts, hook_count, done


def estimate_cycles(elf: Path, board: Board, timing_board: Board | None = None, model_input=None,
                    timeout: float = 900.0) -> CycleEstimate:
    """Run one inference of a tinycompress firmware on the emulated `board` with instruction logging and
    apply the timing model of `timing_board` (the real board it stands in for; `board` itself when None)."""
    import tempfile
    target = timing_board or board
    elf = Path(elf).resolve()
    symbols = Symbols(elf)
    for name in (ENTRY, CALLER, BEGIN, LAYER):
        if name not in symbols.by_name:
            raise TinyCompressError(f"{elf.name} has no function {name}: the cycle estimate needs firmware "
                                    "built by tinycompress with its per-layer measurement harness")
    code = disassemble(elf, target.core)
    timing = timing_for(target)
    stream = _Stream(symbols, code, timing)
    with tempfile.TemporaryDirectory(prefix="tinycompress-cycles-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(_one_input(elf, model_input))
        counts, hooks, done = _run_logged(elf, board, work, symbols, timeout, parse=stream.parse)
    if not done:
        raise TinyCompressError(f"{ENTRY}() did not return in QEMU ({board.qemu_machine})")
    return _price(counts, hooks, code, timing, target)


def sequence_cycles(code: dict[int, Instruction], pcs: list[int], board: Board) -> int:
    """Cycles of one executed sequence of addresses (micro-benchmarks: tests/test_cycles.py)."""
    timing = timing_for(board)
    counts: dict[tuple, int] = {}
    prev, paired = None, False
    for pc in pcs:
        text = f"{pc:08x}"
        ia, ib = (code.get(int(prev, 16)) if prev else None), code[pc]
        pair = timing.family == "m7" and ia is not None and not paired and ia.end == ib.address \
            and m7_pairable(ia, ib)
        counts[(0, prev, text, pair)] = counts.get((0, prev, text, pair), 0) + 1
        prev, paired = text, pair
    counts[(1, None, f"{pcs[-1]:08x}", False)] = 0
    return _price(counts, 0, code, timing, board).cycles


def _price(counts: dict, hooks: int, code: dict[int, Instruction], timing: Timing, board: Board):
    decode = lru_cache(maxsize=None)(lambda pc: code.get(int(pc, 16)) if pc is not None else None)
    layer_count = 1 + max((k[0] for k in counts), default=0)
    cycles = [0] * layer_count
    instructions = [0] * layer_count
    for (layer, a_pc, b_pc, paired), n in counts.items():
        a, b = decode(a_pc), decode(b_pc)
        if b is None:
            raise TinyCompressError(f"executed PC 0x{b_pc} is not an instruction of the ELF's disassembly")
        cost = 0
        if a is not None:
            if a.end != b.address and a.kind in BRANCHES:   # a was taken: its cost lands here, with b
                cost += instruction_cycles(timing, None, a, True, False) - instruction_cycles(
                    timing, None, a, False, False) + target_refill(timing, b)
        cost += instruction_cycles(timing, a, b, False, paired)
        cycles[layer] += cost * n
        instructions[layer] += n
    # layer_count - 1 is after the last hook: tc_model_invoke()'s return, outside every layer
    return CycleEstimate(timing.core, board.name, board.clock_hz, sum(cycles), sum(instructions),
                         cycles[:-1], instructions[:-1], hooks, timing.wait_states, timing.instruction_cache)


# ---- into the run report ---------------------------------------------------------------------------

def stand_in(board: Board, host: bool = False) -> Board:
    """The emulated board a real board runs on (`emulated_by`: the same core); an emulated board itself."""
    if board.emulated or host:
        return board
    from ..target.boards import load_board
    if not board.emulated_by:
        raise TinyCompressError(f"{board.name} is a real board with no emulated stand-in (emulated_by) to run "
                                "on: use `tinycompress flash` to build and upload for it")
    return load_board(board.emulated_by)


def add_estimate(report, elf: Path, emulated: Board, board: Board, model_input) -> CycleEstimate:
    """Estimate one inference (`model_input`) of `elf` on `emulated` at `board`'s timing and clock and add
    it to the run report: cycles (total, per layer), latency_ms, and each layer's cycles where the
    report gives its instructions (a patched chain's: its first layer's)."""
    estimate = estimate_cycles(elf, emulated, board, model_input)
    if len(estimate.layers) != len(report.layers):
        raise TinyCompressError(f"the cycle estimate found {len(estimate.layers)} layers, the report "
                                f"{len(report.layers)}")
    report.cycles = {**estimate.to_dict(), "board": board.name, "emulated_by": emulated.name,
                     "per_layer_instructions": estimate.layer_instructions,
                     "per_layer_ms": [round(n * 1e3 / board.clock_hz, 6) for n in estimate.layers]}
    report.latency_ms = round(estimate.latency_ms, 6)
    for layer, n in zip(report.layers, estimate.layers):
        layer.cycles = n if layer.instructions is not None else None
    report.board = board.name
    return estimate
