"""The generated C API: --name prefixes, several models in one project, --arena external, extern "C", and
the project's own make targets (make run, make host, make run-host on the input.bin compile writes). Every
output is compared with the TFLite Micro interpreter, byte for byte."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import HAVE_EMULATOR, needs_emulator

from tinycompress.errors import EXIT_USAGE
from tinycompress.frontend.reference import tflm_outputs
from tinycompress.pipeline import load_inputs, load_model
from tinycompress.target.boards import load_board
from tinycompress.target.emulate import run_firmware

ROOT = Path(__file__).resolve().parent.parent
COUNT = 6               # inputs per model
needs_gxx = pytest.mark.skipif(not shutil.which("g++") or not shutil.which("gcc"),
                               reason="gcc or g++ missing (scripts/setup.sh installs them)")


def tc(*args):
    return subprocess.run([sys.executable, "-m", "tinycompress", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


def one_line_error(proc, code: int, *fragments: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def model_and_inputs(zoo, name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    """The zoo model, COUNT of its inputs as the firmware reads them, and TFLite Micro's outputs on them."""
    tflite, data = zoo(name)
    inputs = load_inputs(data, load_model(tflite), COUNT)[0][:COUNT]
    return tflite, inputs, tflm_outputs(tflite.read_bytes(), inputs)


def make(project: Path, *args: str) -> None:
    proc = subprocess.run(["make", "-s", "-C", str(project), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def link_host_cpp(project: Path, main_cpp: str, work: Path) -> Path:
    """The project's model files and kernels compiled as C, linked with g++ into a C++ program that includes
    model.h: the extern "C" guards are what lets it find the models' symbols."""
    work.mkdir(exist_ok=True)
    fw = project / "firmware"
    includes = [f"-I{project}", f"-I{fw / 'include'}", f"-I{fw / 'runtime'}"]
    sources = [s for s in sorted(project.glob("*.c")) if s.name != "tc_harness_model.c"]
    objects = []
    for source in sources + sorted((fw / "kernels").glob("*.c")):
        obj = work / f"{source.parent.name}_{source.stem}.o"
        subprocess.run(["gcc", "-O2", "-std=c11", *includes, "-c", str(source), "-o", str(obj)], check=True)
        objects.append(str(obj))
    (work / "main.cpp").write_text(main_cpp)
    exe = work / "main"
    proc = subprocess.run(["g++", "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", *includes,
                           str(work / "main.cpp"), *objects, "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


CPP_READ = """
#include <cstdio>
#include <cstring>
#include <vector>

#include "model.h"

static std::vector<char> slurp(const char *path)
{
    std::vector<char> bytes;
    if (FILE *f = std::fopen(path, "rb")) {
        for (int c; (c = std::fgetc(f)) != EOF;) bytes.push_back(static_cast<char>(c));
        std::fclose(f);
    }
    return bytes;
}
"""

# Both models in one C++ program: both inputs are written before either runs (each has its own arena).
TWO_MODELS_CPP = CPP_READ + """
int main()
{
    const std::vector<char> kws = slurp("kws_in.bin"), digits = slurp("digits_in.bin");
    FILE *kws_out = std::fopen("kws_out.bin", "wb"), *digits_out = std::fopen("digits_out.bin", "wb");
    for (size_t i = 0; i < kws.size() / KWS_INPUT_BYTES; i++) {
        std::memcpy(kws_input, &kws[i * KWS_INPUT_BYTES], KWS_INPUT_BYTES);
        std::memcpy(digits_input, &digits[i * DIGITS_INPUT_BYTES], DIGITS_INPUT_BYTES);
        if (kws_invoke() != TC_OK || digits_invoke() != TC_OK) return 1;
        std::fwrite(kws_output, 1, KWS_OUTPUT_BYTES, kws_out);
        std::fwrite(digits_output, 1, DIGITS_OUTPUT_BYTES, digits_out);
    }
    std::fclose(kws_out);
    std::fclose(digits_out);
    return std::strcmp(kws_layer_names[0], digits_layer_names[0]) == 0 ? 2 : 0;
}
"""

# The caller's arenas: two of them, used in turn and filled with junk before every inference; a NULL or
# misaligned arena is refused.
EXTERNAL_CPP = CPP_READ + """
alignas(KWS_ARENA_ALIGN) static int8_t arenas[2][KWS_ARENA_SIZE + KWS_ARENA_ALIGN];

int main()
{
    if (kws_invoke(nullptr) != TC_ERROR_ARGUMENT || kws_invoke(arenas[0] + 4) != TC_ERROR_ARGUMENT) return 3;
    const std::vector<char> in = slurp("kws_in.bin");
    FILE *out = std::fopen("kws_out.bin", "wb");
    for (size_t i = 0; i < in.size() / KWS_INPUT_BYTES; i++) {
        int8_t *arena = arenas[i % 2];
        std::memset(arena, static_cast<int>(0x5a + i), sizeof arenas[0]);
        std::memcpy(kws_input(arena), &in[i * KWS_INPUT_BYTES], KWS_INPUT_BYTES);
        if (kws_invoke(arena) != TC_OK) return 1;
        std::fwrite(kws_output(arena), 1, KWS_OUTPUT_BYTES, out);
    }
    std::fclose(out);
    return 0;
}
"""


def run_host(exe: Path, work: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for name, x in inputs.items():
        (work / f"{name}_in.bin").write_bytes(np.ascontiguousarray(x, np.int8).tobytes())
    subprocess.run([str(exe)], cwd=work, check=True, timeout=120)
    return {name: np.frombuffer((work / f"{name}_out.bin").read_bytes(), np.int8).reshape(len(x), -1)
            for name, x in inputs.items()}


@needs_emulator
@needs_gxx
@pytest.mark.slow
def test_two_models_in_one_project(zoo, tmp_path):
    """kws and digits compiled into one project: make builds it for the M4, where the harness runs each
    (make HARNESS=NAME), and a C++ program on the host calls both; every output is TFLite Micro's."""
    kws, kws_x, kws_y = model_and_inputs(zoo, "kws_dscnn")
    digits, digits_x, digits_y = model_and_inputs(zoo, "digits_cnn")
    out = tmp_path / "both"
    proc = tc("compile", kws, digits, "--name", "kws,digits", "--board", "mps2-an386", "-o", out)
    assert proc.returncode == 0, proc.stderr
    kernels = sorted(p.name for p in (out / "firmware" / "kernels").glob("*.c"))
    assert len(kernels) == len(set(kernels)) and "tc_conv2d_s8.c" in kernels   # once, shared
    header = (out / "model.h").read_text()
    assert '#include "kws_model.h"' in header and '#include "digits_model.h"' in header
    assert 'extern "C"' in (out / "kws_model.h").read_text()

    board = load_board("mps2-an386")
    for harness, x, expected, nbytes in (("kws", kws_x, kws_y, kws_y.shape[1]),
                                         ("digits", digits_x, digits_y, digits_y.shape[1])):
        make(out, "-B", f"HARNESS={harness}", "DEFINES=", "firmware.elf")   # DEFINES as build.py gives it
        elf = out / "firmware.elf"
        symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
        assert f" {harness}_invoke" in symbols and f" {harness}_arena" in symbols
        result = run_firmware(elf, board, x, nbytes)
        np.testing.assert_array_equal(result.outputs, expected)

    got = run_host(link_host_cpp(out, TWO_MODELS_CPP, tmp_path / "host"), tmp_path / "host",
                   {"kws": kws_x, "digits": digits_x})
    np.testing.assert_array_equal(got["kws"], kws_y)
    np.testing.assert_array_equal(got["digits"], digits_y)


@needs_emulator
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TINYCOMPRESS_CMSIS_NN"),
                    reason="set TINYCOMPRESS_CMSIS_NN to a CMSIS-NN v7.0.0 checkout")
def test_two_models_with_cmsis_nn_share_one_scratch(zoo, tmp_path):
    """With --kernels cmsis-nn the first model defines CMSIS-NN's scratch buffer once, sized for every layer
    of both; each model, run by the harness in the M4 firmware that links both, gives TFLite Micro's
    outputs."""
    kws, kws_x, kws_y = model_and_inputs(zoo, "kws_dscnn")
    digits, digits_x, digits_y = model_and_inputs(zoo, "digits_cnn")
    out = tmp_path / "both"
    proc = tc("compile", kws, digits, "--name", "kws,digits", "--kernels", "cmsis-nn", "--cmsis-nn",
              os.environ["TINYCOMPRESS_CMSIS_NN"], "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "int8_t tc_cmsis_scratch[" in (out / "kws_model.c").read_text()
    assert "tc_cmsis_scratch[" not in (out / "digits_model.c").read_text()
    for harness, x, expected in (("kws", kws_x, kws_y), ("digits", digits_x, digits_y)):
        make(out, "-B", f"HARNESS={harness}", "DEFINES=", "firmware.elf")
        result = run_firmware(out / "firmware.elf", load_board("mps2-an386"), x, expected.shape[1])
        np.testing.assert_array_equal(result.outputs, expected)


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
@needs_emulator
@needs_gxx
def test_external_arena(zoo, tmp_path):
    """--arena external: kws_invoke(arena) runs in the caller's arena (the M4 harness's own, and on the host
    two arenas of junk used in turn), with kws's bands and DSP scratch pointed into it at each call."""
    kws, x, expected = model_and_inputs(zoo, "kws_dscnn")
    out = tmp_path / "ext"
    proc = tc("compile", kws, "--name", "kws", "--arena", "external", "--board", "mps2-an386", "-o", out)
    assert proc.returncode == 0, proc.stderr
    header = (out / "model.h").read_text()
    assert "tc_status kws_invoke(int8_t *arena);" in header
    assert "#define KWS_ARENA_SIZE" in header and "#define KWS_ARENA_ALIGN  16" in header
    source = (out / "model.c").read_text()
    assert "static int8_t kws_arena" not in source and "params.scratch = (int16_t *)(tc_arena + " in source

    make(out)
    symbols = subprocess.run(["arm-none-eabi-nm", str(out / "firmware.elf")], capture_output=True,
                             text=True).stdout
    assert " tc_harness_arena" in symbols and "kws_arena" not in symbols
    result = run_firmware(out / "firmware.elf", load_board("mps2-an386"), x, expected.shape[1])
    np.testing.assert_array_equal(result.outputs, expected)

    got = run_host(link_host_cpp(out, EXTERNAL_CPP, tmp_path / "host"), tmp_path / "host", {"kws": x})
    np.testing.assert_array_equal(got["kws"], expected)


@needs_gxx
def test_make_run_and_host_after_compile(zoo, tmp_path):
    """compile writes input.bin (one input of zeros, at the input's zero point), so `make run` and `make host
    run-host` work at once, and give TFLite Micro's output; the default API's model.h compiles as C++."""
    model, _ = zoo("digits_mlp")
    out = tmp_path / "p"
    assert tc("compile", model, "-o", out).returncode == 0
    graph = load_model(model)
    zero = np.frombuffer((out / "input.bin").read_bytes(), np.int8).reshape(1, -1)
    assert (zero == graph.input_tensor().zero_point[0]).all()
    expected = tflm_outputs(model.read_bytes(), zero)
    runs = [("host", "run-host")] + ([("run",)] if HAVE_EMULATOR else [])
    for targets in runs:
        (out / "output.bin").unlink(missing_ok=True)
        make(out, *targets)
        np.testing.assert_array_equal(np.frombuffer((out / "output.bin").read_bytes(), np.int8), expected[0])
    proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", f"-I{out}",
                           f"-I{out / 'firmware' / 'include'}", "-x", "c++", str(out / "model.h")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("names, fragment", [
    ("1st", "not a C identifier"),
    ("_x", "not a C identifier"),
    ("a-b", "not a C identifier"),
    ("a;rm -rf", "not a C identifier"),
    ("x" * 33, "at most 32"),
    ("tc_kernels", "tinycompress's kernels"),
    ("a,A", "share symbols"),
    ("a,a_b", "share symbols"),
    ("a", "1 name for 2 models"),
    (None, "name each with --name"),
])
def test_bad_names_are_refused(zoo, tmp_path, names, fragment):
    model, _ = zoo("digits_mlp")
    other = tmp_path / "other.tflite"
    other.write_bytes(model.read_bytes())
    count = 2 if names is None or "," in names or names == "a" else 1
    args = [model, other][:count] + (["--name", names] if names is not None else [])
    one_line_error(tc("compile", *args, "-o", tmp_path / "out"), EXIT_USAGE, fragment)
    assert not (tmp_path / "out").exists()
