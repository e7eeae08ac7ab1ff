"""Randomized shape sweeps in QEMU: each core's optimized kernels against the portable ones, int8 and int4
weights."""
from __future__ import annotations

import subprocess

import pytest
from conftest import TESTS, needs_emulator

from tinycompress.target.boards import load_board
from tinycompress.codegen.emit import TARGET_SOURCES, _environment
from tinycompress.target.emulate import qemu_command
from tinycompress.resources import data_dir

pytestmark = needs_emulator
KERNELS = ["tc_conv2d_s8", "tc_fully_connected_s8", "tc_depthwise_conv2d_s8", "tc_max_pool2d_s8", "tc_avg_pool2d_s8"]


@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"])
def test_dsp_kernels_equal_the_portable_ones(board_name, tmp_path):
    board = load_board(board_name)
    fw = data_dir("firmware")
    memory = _environment().get_template("memory.ld.j2")   # with the quoting filters
    (tmp_path / "memory.ld").write_text(memory.render(board=board, stack_size=board.stack_size, banner=""))
    flags = [*board.cflags, "-O2", "-std=c11", "-Wall", "-Werror", f"-I{fw / 'include'}", f"-I{fw / 'runtime'}"]
    objects = []
    for name in KERNELS:   # each kernel twice: as it builds for this core, and forced portable
        source = fw / "kernels" / f"{name}.c"
        # with the int4 and palette entry points the weighted kernels' files also hold (tc_int4.h, tc_palette.h)
        renames = [f"-D{n}={n}_portable" for n in (name, *(name.replace("_s8", s) for s in ("_s4", "_p4")))]
        for suffix, extra in (("", []), ("_portable", ["-DTC_PORTABLE", *renames])):
            obj = tmp_path / f"{name}{suffix}.o"
            subprocess.run(["arm-none-eabi-gcc", *flags, *extra, "-c", str(source), "-o", str(obj)], check=True)
            objects.append(str(obj))
    elf = tmp_path / "sweep.elf"
    runtime = [str(fw / "runtime" / n) for n in TARGET_SOURCES]
    subprocess.run(["arm-none-eabi-gcc", *flags, str(TESTS / "firmware" / "kernel_sweep.c"), *runtime, *objects,
                    "-nostartfiles", "-Wl,--gc-sections", f"-T{fw / 'linker' / 'cortex_m.ld'}", f"-L{tmp_path}",
                    f"-L{fw / 'linker'}", "--specs=nano.specs", "--specs=nosys.specs", "-o", str(elf)], check=True)
    proc = subprocess.run(qemu_command(board, elf), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agree" in proc.stdout + proc.stderr


def test_depthwise_planes_budget_is_the_kernels():
    """ops/scratch.py sizes the depthwise planes' bands by the same budget the kernels read from tc_kernels.h."""
    import re

    from tinycompress.ops.scratch import DSP_PLANES_MAX

    header = (data_dir("firmware") / "include" / "tc_kernels.h").read_text()
    assert int(re.search(r"#define TC_DW_PLANES_BYTES (\d+)", header).group(1)) == DSP_PLANES_MAX


def test_scratch_sizes():
    """What scratch.py gives the Helium and DSP kernels (kernel_sweep.c checks the kernels stay inside it)."""
    from types import SimpleNamespace

    from tinycompress.ops.scratch import assign_scratch

    def conv(filter_, stride=1, pad=0, in_w=5, out_w=5):
        return SimpleNamespace(function="tc_conv2d_s8", scratch_bytes=0,
                               params={"filter": filter_, "stride_h": stride, "stride_w": stride, "pad_top": pad,
                                       "pad_left": pad, "dilation_h": 1, "dilation_w": 1,
                                       "input": (1, 5, in_w, filter_[3]),
                                       "output": (1, 5, out_w, filter_[0])})

    calls = [conv((64, 10, 4, 1), stride=2, pad=4, out_w=3),     # im2col: folded bias + 12 columns of 40
             conv((64, 3, 3, 64)),                              # 4 columns of 576
             conv((16, 1, 1, 8)),                               # pointwise: the pixels are the columns
             conv((16, 1, 1, 8), stride=2, out_w=3),            # strided pointwise: the folded bias only
             SimpleNamespace(function="tc_fully_connected_s8", scratch_bytes=0,
                             params={"input_depth": 640, "output_depth": 128})]

    def depthwise(output, k=3, stride=1):
        return SimpleNamespace(function="tc_depthwise_conv2d_s8", scratch_bytes=0,
                               params={"filter": (1, k, k, output[3]), "output": output, "depth_multiplier": 1,
                                       "stride_h": stride, "stride_w": stride, "dilation_h": 1, "dilation_w": 1})

    calls += [depthwise((1, 25, 5, 64)),              # 4 planes of 7 lines x 30 (25 rounded up to 28, plus 2)
              depthwise((1, 6, 6, 128)),              # 4 planes of 8 x 10
              depthwise((1, 48, 48, 8)),              # bands of 8 lines: 10 plane lines x 50
              depthwise((1, 25, 5, 64), stride=2),    # bands of 3 lines along y: 7 x (2 x 28 + 2)
              depthwise((1, 3, 200, 8), stride=2)]    # not one line of 200 outputs fits: the per-position path
    planes = [4 * 7 * 30 * 2, 4 * 8 * 10 * 2, 4 * 10 * 50 * 2, 4 * 7 * 58 * 2, 0]   # the same on either core
    assign_scratch(calls, load_board("mps3-an547"))
    assert [c.scratch_bytes for c in calls] == [64 * 4 + 12 * 40, 64 * 4 + 4 * 576, 4, 16 * 4, 4, *planes]
    # six int16 columns (+ int8 staging) + 12 B per channel; pointwise from 8 channels, each channel's record
    # of bias, 8 int16 weights and requantization
    assign_scratch(calls, load_board("mps2-an386"))
    # one channel: the band path's columns and requantization of 64 rows of 40 (10x4: nothing padded, the
    # weights read as they are), 14 band rows of 10 int16
    band = 6 * 40 * 2 + 64 * 12 + 14 * 10 * 2
    assert [c.scratch_bytes for c in calls] == [band, 6 * 576 * 2 + 12 * 64,
                                                16 * (4 + 16 + 12), 16 * (4 + 16 + 12), 640 * 2, *planes]
