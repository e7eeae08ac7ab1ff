"""SOFTMAX's exp() table (ops/softmax.py exp_table) equals what the fixed-point formulas of TFLite Micro's
int8 softmax give, in C (tc_softmax_fixedpoint.h, checked bit-exact against the interpreter before the
kernel read a table), for every difference and many input scales and betas; the kernel reading it stays
bit-exact with TFLite Micro in test_firmware_vs_tflm.py (op_softmax, digits_mlp, kws_dscnn)."""
from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from conftest import TESTS

from tinycompress.ops.fixedpoint import softmax_scaling
from tinycompress.ops.softmax import exp_table
from tinycompress.resources import data_dir


@pytest.mark.skipif(not shutil.which("gcc"), reason="host gcc missing")
def test_exp_table_equals_the_fixed_point_formulas(tmp_path):
    exe = tmp_path / "softmax_exp_check"
    subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Werror", f"-I{data_dir('firmware') / 'include'}",
                    str(TESTS / "firmware" / "softmax_exp_check.c"), "-o", str(exe)], check=True)
    rng = random.Random(5)
    cases = [(1.0, 1 / 256), (1.0, 0.0625), (1.0, 0.5), (0.5, 0.1), (2.0, 0.03)]
    cases += [(rng.choice([0.25, 0.5, 1.0, 1.5, 3.0]), 2 ** rng.uniform(-9, 1)) for _ in range(40)]
    sizes = set()
    for beta, scale in cases:
        multiplier, shift, diff_min = softmax_scaling(beta, scale)
        table = exp_table(multiplier, shift, diff_min)
        sizes.add(table.size)
        out = subprocess.run([str(exe), str(multiplier), str(shift), str(table.size)], capture_output=True,
                             text=True, check=True).stdout.split()
        assert [int(v) for v in out] == table.tolist(), (beta, scale)
        assert table[0] == 2 ** 31 - 1 and (table[1:] <= table[:-1]).all()   # exp(0) = 1, then falling
    assert 256 in sizes and min(sizes) < 64      # both the whole int8 range and a short one (large scales)
