"""The cycle estimate (analysis/cycles.py): micro-benchmarks whose cycle counts the cores' Technical
Reference Manuals document, and the estimate `run --board REAL_BOARD` reports."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace

import pytest

from tinycompress.analysis.cycles import disassemble, estimate_cycles, sequence_cycles
from tinycompress.target.boards import load_board

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None,
                                reason="needs arm-none-eabi binutils")

M4, M3 = load_board("mps2-an386"), load_board("mps2-an385")
M0, M0PLUS = load_board("microbit"), load_board("pico")


def run_sequence(tmp_path, board, body: str, taken: dict[str, str] | None = None) -> int:
    """Assemble `body` for the board's core, execute it once straight through (a branch goes to its
    label), and return the model's cycles. `taken` names each branch's label: execution continues there."""
    cpu = board.core
    source = tmp_path / "bench.s"
    end = "" if "end:" in body else "\nend: nop"     # the run stops at `end` (the section is padded)
    source.write_text(".syntax unified\n.thumb\n.text\n.align 2\n" + body + end + "\n")
    obj = tmp_path / "bench.o"
    arch = ["-march=armv8.1-m.main+mve"] if cpu == "cortex-m55" else [f"-mcpu={cpu}"]
    subprocess.run(["arm-none-eabi-as", *arch, "-mthumb", str(source), "-o", str(obj)], check=True)
    code = disassemble(obj, board.core)
    symbols = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True).stdout
    labels = {p[2]: int(p[0], 16) for p in map(str.split, symbols.splitlines()) if len(p) == 3}
    pcs, pc, stop = [], min(code), labels["end"]
    while pc < stop and len(pcs) < 100:
        pcs.append(pc)
        label = (taken or {}).get(f"{pc:x}")
        pc = labels[label] if label else code[pc].end
    return sequence_cycles(code, pcs, board)


# Cortex-M4 TRM (Arm DDI 0439B) Table 3-1 and 3.3.2; Cortex-M3 TRM (Arm DDI 0337I) Table 3-1.
M4_CASES = [
    ("four independent LDRs pipeline: N+1",
     "ldr r0, [r4]\nldr r1, [r4, #4]\nldr r2, [r4, #8]\nldr r3, [r4, #12]", 5),
    ("an LDR whose address the previous LDR loads does not pipeline", "ldr r0, [r4]\nldr r1, [r0]", 4),
    ("LDR then STR pipeline", "ldr r0, [r4]\nstr r0, [r5]", 3),
    ("nothing pipelines after an STR with a register offset", "str r0, [r1, r2]\nldr r3, [r4]", 4),
    ("LDM of 4 registers: 1+N", "ldmia r4, {r0, r1, r2, r3}", 5),
    ("PUSH of 5 registers: 1+N", "push {r4, r5, r6, r7, lr}", 6),
    ("LDRD: 1+N", "ldrd r0, r1, [r4]", 3),
    ("MLA 1, SMLAD 1, SMLABB 1, UMULL 1, SMLAL 1 on the M4",
     "mla r0, r1, r2, r0\nsmlad r0, r1, r2, r0\nsmlabb r0, r1, r2, r0\n"
     "umull r0, r1, r2, r3\nsmlal r0, r1, r2, r3", 5),
    ("SDIV: 2 to 12, the model's upper bound", "sdiv r0, r1, r2", 12),
    ("data processing 1 each", "adds r0, r1, r2\nlsls r0, r0, #2\nsxtb r1, r1\nssat r2, #8, r2", 4),
]


@pytest.mark.parametrize("what,body,cycles", M4_CASES, ids=[c[0] for c in M4_CASES])
def test_m4_documented_counts(tmp_path, what, body, cycles):
    assert run_sequence(tmp_path, M4, body) == cycles


def test_m3_multiplies(tmp_path):
    """M3: MLA 2, UMULL 3-5 and SMLAL 4-7 by early termination (the model's upper bounds)."""
    assert run_sequence(tmp_path, M3, "mla r0, r1, r2, r0") == 2
    assert run_sequence(tmp_path, M3, "umull r0, r1, r2, r3") == 5
    assert run_sequence(tmp_path, M3, "smlal r0, r1, r2, r3") == 7


def test_m4_branches(tmp_path):
    """B taken 1+P (P=1: a direct branch to a 16-bit target), B<cond> not taken 1, BX 1+P (P=2)."""
    body = "b one\nnop\none: adds r0, #1\nbne two\ntwo: nop\nend:"
    assert run_sequence(tmp_path, M4, body, taken={"0": "one"}) == 2 + 1 + 1 + 1
    assert run_sequence(tmp_path, M4, "bx lr\nnop\nthere: nop\nend:", taken={"0": "there"}) == 3 + 1


def test_unaligned_32_bit_branch_target(tmp_path):
    """P grows by one when the target is a 32-bit instruction at a halfword (not word) address."""
    aligned = run_sequence(tmp_path, M4, "b one\nnop\none: add.w r0, r1, r2\nend:", taken={"0": "one"})
    unaligned = run_sequence(tmp_path, M4, "b one\nnop\nnop\none: add.w r0, r1, r2\nend:", taken={"0": "one"})
    assert (aligned, unaligned) == (3, 4)


def test_m33_as_m4_and_m55_beats(tmp_path):
    """The M33 takes the M4's table; on the M55 a Helium instruction is 2 cycles (dual-beat) and a vector
    load next to a vector MAC overlaps it by one cycle."""
    m33, m55 = load_board("mps2-an505"), load_board("mps3-an547")
    body = "ldr r0, [r4]\nldr r1, [r4, #4]\nsmlad r0, r1, r2, r0"
    assert run_sequence(tmp_path, m33, body) == run_sequence(tmp_path, M4, body) == 4
    assert run_sequence(tmp_path, m55, "vmla.s8 q0, q1, r0") == 2
    assert run_sequence(tmp_path, m55, "vldrb.s8 q1, [r0]\nvmla.s8 q0, q1, r1") == 3


def test_m0_and_m0plus(tmp_path):
    """Cortex-M0 TRM (Arm DDI 0432C) Table 3-1 and Cortex-M0+ TRM (Arm DDI 0484C): LDR 2, PUSH 1+N,
    B 3 (M0) / 2 (M0+), BL 4 / 3, MULS 32 (the micro:bit's small multiplier) / 1 (the RP2040's)."""
    for board, b, bl, muls in ((M0, 3, 4, 32), (M0PLUS, 2, 3, 1)):
        assert run_sequence(tmp_path, board, "ldr r0, [r1]\npush {r4, lr}") == 2 + 3
        assert run_sequence(tmp_path, board, "b one\nnop\none: nop\nend:", taken={"0": "one"}) == b + 1
        assert run_sequence(tmp_path, board, "bl one\nnop\none: nop\nend:", taken={"0": "one"}) == bl + 1
        assert run_sequence(tmp_path, board, "muls r0, r1, r0") == muls


def test_m7_dual_issue(tmp_path):
    """M7 (the model's rule): an independent ALU pair issues together, a dependent one does not."""
    m7 = load_board("mps2-an500")
    assert run_sequence(tmp_path, m7, "adds r0, r1, r2\nadds r3, r4, r5") == 1
    assert run_sequence(tmp_path, m7, "adds r0, r1, r2\nadds r3, r0, r5") == 2
    assert run_sequence(tmp_path, m7, "ldr r0, [r1]\nadds r3, r4, r5\nldr r2, [r1, #4]") == 2


def test_wait_states_without_cache(tmp_path):
    """Flash wait states add to every taken branch when no instruction cache hides them."""
    board = replace(M4, timing={"flash_wait_states": 5, "instruction_cache": False})
    body = "b one\nnop\none: nop\nend:"
    assert run_sequence(tmp_path, board, body, taken={"0": "one"}) == run_sequence(
        tmp_path, M4, body, taken={"0": "one"}) + 5


def test_run_real_board_reports_cycles(tmp_path):
    """`run --board nucleo-l4r5zi` runs on its stand-in and reports the estimate: per-layer cycles add up
    to the total but for tc_model_invoke()'s own entry and exit, latency_ms = cycles / clock, and the
    estimate is deterministic."""
    from click.testing import CliRunner
    from tinycompress.cli import cli
    from pathlib import Path
    model = Path(__file__).resolve().parents[1] / "examples" / "digits" / "digits_cnn.tflite"
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["run", str(model), "--board", "nucleo-l4r5zi", "--count", "1",
                                      "--json", str(out), "-o", str(tmp_path / "build")])
    assert result.exit_code == 0, result.output
    assert "cycles (estimate)" in result.output
    report = json.loads(out.read_text())
    cycles = report["cycles"]
    assert report["board"] == "nucleo-l4r5zi" and cycles["emulated_by"] == "mps2-an386"
    assert cycles["estimate"] is True and cycles["clock_hz"] == 120_000_000
    per_layer = [layer["cycles"] for layer in report["layers"]]
    assert per_layer == cycles["per_layer"] and all(c > 0 for c in per_layer)
    assert 0 <= cycles["total"] - sum(per_layer) < 0.01 * cycles["total"]
    assert report["latency_ms"] == pytest.approx(cycles["total"] / 120e6 * 1e3, abs=1e-6)
    assert cycles["per_layer_ms"] == pytest.approx([n / 120e6 * 1e3 for n in per_layer], abs=1e-6)
    # the per-layer instructions of the trace are the firmware's own (SysTick under -icount), to a tick
    for layer, n in zip(report["layers"], cycles["per_layer_instructions"]):
        assert abs(layer["instructions"] - n) <= 8
    # instructions alone are not the estimate: loads, MACs and branches cost more
    assert cycles["total"] > cycles["instructions"]
    elf = tmp_path / "build" / "firmware.elf"
    first, second = (estimate_cycles(elf, load_board("mps2-an386"), load_board("nucleo-l4r5zi"))
                     for _ in range(2))
    assert first == second                       # deterministic: the same stream, the same estimate


def test_run_cycles_on_an_emulated_helium_board(tmp_path):
    """`run --cycles` on an emulated board: the M55's stream, Helium instructions decoded and priced."""
    from click.testing import CliRunner
    from tinycompress.cli import cli
    from pathlib import Path
    model = Path(__file__).resolve().parents[1] / "examples" / "digits" / "digits_cnn.tflite"
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["run", str(model), "--board", "mps3-an547", "--cycles", "--count", "1",
                                      "--json", str(out), "-o", str(tmp_path / "build")])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    cycles = report["cycles"]
    assert report["board"] == cycles["emulated_by"] == "mps3-an547"
    assert 0 <= cycles["total"] - sum(cycles["per_layer"]) < 0.01 * cycles["total"]
    code = disassemble(tmp_path / "build" / "firmware.elf", "cortex-m55")
    kinds = {i.kind for i in code.values()}
    assert {"mve", "mve_mem", "loop_end"} <= kinds
