"""Hostile input reaches no generated file unescaped (issue 14, item 1): file names, model strings and
board files, each through the quoting of the language it lands in; --board takes catalog names only;
a user's board file is checked against the catalog's schema; error lines come out clean."""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import flatbuffers
import pytest
from conftest import needs_emulator

from tinycompress import escape
from tinycompress.target.boards import CONSOLE_KEYS, list_boards, load_board, load_board_file
from tinycompress.codegen.emit import CONSOLE_SOURCES
from tinycompress.errors import EXIT_ERROR, TinyCompressError
from tinycompress.resources import data_dir

ROOT = Path(__file__).resolve().parent.parent
# Every vector at once: newlines, make's $(shell), backquotes, a C comment terminator (no file name can
# hold a `/`, so names carry `*` alone), #, both quotes, a trigraph, a backslash, a leading -.
HOSTILE = "\n$(shell touch PWNED)\n`touch PWNED2` */ # \"q' ??= ${HOME} $$HOME; \\"
HOSTILE_FILE_NAME = "-x" + HOSTILE.replace("/", "") + " end"
needs_host_gcc = pytest.mark.skipif(not shutil.which("gcc") or not shutil.which("make"),
                                    reason="gcc or make missing")


def tc(*args, cwd):
    """The CLI, with arguments as bytes when they must be (non-UTF-8 file names)."""
    args = [a if isinstance(a, bytes) else str(a) for a in args]
    return subprocess.run([sys.executable, "-m", "tinycompress", *args], capture_output=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def one_error_line(proc, code: int = EXIT_ERROR) -> str:
    """The single clean `error:` line a refusal prints."""
    stderr = proc.stderr.decode("utf-8")       # valid UTF-8, or this raises
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert all(c == "\t" or ord(c) >= 32 and not 0x7f <= ord(c) <= 0x9f for c in lines[0]), repr(lines[0])
    return lines[0]


def assert_nothing_injected(directory: Path) -> None:
    """No injected line in any generated text file, and no command of it ran."""
    assert not list(directory.rglob("PWNED*")) and not list(directory.parent.rglob("PWNED*"))
    for path in directory.rglob("*"):
        data = path.read_bytes() if path.is_file() and path.stat().st_size < 10**6 else b"\0"
        if b"\0" not in data:                     # text files: every one generated
            for line in data.decode(errors="replace").splitlines():
                assert not line.lstrip().startswith(("$(shell", "`touch", "$$HOME")), (path, line)
                assert "\x1b" not in line, path


# ---- the quoting functions, each checked by the language that reads it back ----

VALUES = [HOSTILE, "plain", "tab\there", "-leading dash", "ünïcödé", "a$b#c%d", "*/ /* ??/ \\", "'\"'"]


@needs_host_gcc
def test_c_string_and_comment_read_back_exactly_in_c(tmp_path):
    source = ['#include <stdio.h>', 'int main(void) {']
    for i, value in enumerate(VALUES):
        source.append(f"    /* {escape.c_comment(value)} */")
        source.append(f"    fputs({escape.c_string(value)}, stdout); putchar(0);")
    source.append("    return 0;\n}\n")
    (tmp_path / "t.c").write_text("\n".join(source))
    subprocess.run(["gcc", "-std=c11", "-trigraphs", "-Wall", "-Werror", "-o", tmp_path / "t",
                    tmp_path / "t.c"], check=True)
    out = subprocess.run([tmp_path / "t"], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [v.encode() for v in VALUES]


@needs_host_gcc
def test_make_arg_reaches_the_shell_as_one_unchanged_word(tmp_path):
    words = [v.replace("\n", " ") for v in VALUES if "\t" not in v]
    lines = [f"V{i} = {escape.make_arg(w)}   # a comment" for i, w in enumerate(words)]
    recipe = "".join(f"\tprintf '%s\\0' $(V{i})\n" for i in range(len(words)))
    (tmp_path / "Makefile").write_text("\n".join(lines) + "\n\nall:\n" + recipe)
    out = subprocess.run(["make", "-s", "-C", tmp_path], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [w.encode() for w in words]
    assert not list(tmp_path.glob("PWNED*"))


def test_make_and_ini_refuse_what_they_cannot_carry():
    for refuse in (lambda: escape.make_arg("a\nb"), lambda: escape.make_path("/a b/c"),
                   lambda: escape.make_path("$(shell x)"), lambda: escape.ini_value("a ; b"),
                   lambda: escape.ini_value("${sysenv.HOME}"), lambda: escape.ini_value("a\nb = c"),
                   lambda: escape.c_identifier("a*/b"), lambda: escape.c_identifier("1abc")):
        with pytest.raises(TinyCompressError):
            refuse()
    assert escape.make_path("/opt/CMSIS-NN_v7.0.0") == "/opt/CMSIS-NN_v7.0.0"


def test_toml_json_and_ini_values_read_back_exactly():
    for value in VALUES:
        assert tomllib.loads(f"k = {escape.toml_string(value)}\n")["k"] == value
        assert json.loads(escape.json_string(value)) == value
    # as PlatformIO reads
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    parser.read_string(f"[s]\nk = {escape.ini_value('-mcpu=cortex-m4 symlink://platformio/platform')}\n")
    assert parser["s"]["k"] == "-mcpu=cortex-m4 symlink://platformio/platform"


def test_safe_text_is_one_inert_line():
    text = escape.safe_text(HOSTILE + "\x1b[31m\udcff")
    assert "\n" not in text and "*/" not in text and "/*" not in text and "??" not in text \
        and "\\" not in text
    assert all(" " <= c <= "~" for c in text) and "$(shell touch PWNED)" in text   # recognizable, inert


# ---- a hostile model file name ----

@needs_emulator
def test_a_hostile_model_file_name_builds_and_injects_nothing(zoo, tmp_path):
    model, data = zoo("op_fc_relu")
    hostile = tmp_path / (HOSTILE_FILE_NAME + ".tflite")
    shutil.copy(model, hostile)
    shutil.copy(data, tmp_path / (HOSTILE_FILE_NAME + ".npz"))
    proc = tc("run", "--host", "--count", 3, "-o", tmp_path / "proj", "--", hostile, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_nothing_injected(tmp_path / "proj")
    subprocess.run(["make", "-s", "-C", tmp_path / "proj", "firmware_host", "firmware.elf"], check=True,
                   capture_output=True)
    assert_nothing_injected(tmp_path / "proj")
    # the PlatformIO project too (linked with the Debian toolchain, not uploaded), its data file hostile as
    # well
    proc = tc("flash", "--board", "nucleo-l4r5zi", "--no-upload", "--count", 2, "--data",
              tmp_path / (HOSTILE_FILE_NAME + ".npz"), "-o", tmp_path / "pio", "--", hostile, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_nothing_injected(tmp_path / "pio")
    assert "$(shell touch PWNED)" in (tmp_path / "pio" / "test_inputs.c").read_text()   # named, inert


# ---- hostile strings inside the model ----

def _rewrite(model: Path, out: Path, change) -> Path:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    m = schema.ModelT.InitFromPackedBuf(bytearray(model.read_bytes()), 0)
    change(m)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), b"TFL3")
    out.write_bytes(bytes(builder.Output()))
    return out


@needs_emulator
def test_hostile_tensor_names_build_and_match_tflite_micro(zoo, tmp_path):
    model, data = zoo("op_fc_relu")

    def rename(m):
        for i, t in enumerate(m.subgraphs[0].tensors):
            t.name = f"model/{HOSTILE}{i}/layer \"*/\n#define x".encode() + b"\xff"
    hostile = _rewrite(model, tmp_path / "names.tflite", rename)
    proc = tc("run", hostile, "--host", "--verify", "--data", data, "-o", tmp_path / "proj", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_nothing_injected(tmp_path / "proj")
    model_c = (tmp_path / "proj" / "model.c").read_text()
    assert "#define x" not in model_c and "tc_model_layer_names" in model_c


def test_a_hostile_custom_operator_is_refused_in_one_clean_line(zoo, tmp_path):
    model, _ = zoo("op_fc_relu")

    def custom(m):
        code = m.operatorCodes[0]
        code.builtinCode = code.deprecatedBuiltinCode = 32    # CUSTOM
        code.customCode = b"EVIL\n\x1b[31m$(shell touch PWNED)*/\xff"
    hostile = _rewrite(model, tmp_path / "custom.tflite", custom)
    line = one_error_line(tc("compile", hostile, "-o", tmp_path / "out", cwd=tmp_path))
    assert "EVIL" in line and "\x1b" not in line
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("PWNED*"))


# ---- boards ----

def test_every_catalog_board_passes_the_schema():
    assert set(CONSOLE_KEYS) == set(CONSOLE_SOURCES)     # the schema's drivers are the ones emit builds
    names = sorted(p.stem for p in data_dir("boards").glob("*.toml"))
    assert sorted(b.name for b in list_boards()) == names
    for name in names:
        assert load_board_file(data_dir("boards") / f"{name}.toml") == load_board(name)


EVIL_TOML = data_dir("boards").joinpath("mps2-an386.toml").read_text().replace(
    'cflags = [', 'cflags = ["-DX=1 $(shell touch PWNED)", ')


@pytest.mark.parametrize("form", ["relative", "absolute", "file", "unknown"])
def test_board_takes_catalog_names_only(form, zoo, tmp_path):
    """Each form once reached tmp/evil.toml (boards/ + NAME + .toml) and pasted its cflags into the
    Makefile."""
    model, _ = zoo("op_fc_relu")
    (tmp_path / "evil.toml").write_text(EVIL_TOML)
    relative = os.path.relpath(tmp_path / "evil", data_dir("boards"))
    name = {"relative": relative, "absolute": str(tmp_path / "evil"), "file": str(tmp_path / "evil.toml"),
            "unknown": "nope"}[form]
    line = one_error_line(tc("compile", model, "--board", name, "-o", tmp_path / "out", cwd=tmp_path))
    assert f"unknown board {name}" in line and "mps2-an386" in line and "pico" in line
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("PWNED*"))


def _board_file(tmp_path: Path, old: str, new: str, base: str = "mps2-an386") -> Path:
    text = data_dir("boards").joinpath(f"{base}.toml").read_text()
    assert old in text
    path = tmp_path / "mine.toml"
    path.write_text(text.replace(old, new, 1))
    return path


CFLAGS = 'cflags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]'
BAD_BOARD_FILES = [   # (old, new, what the error names)
    *((CFLAGS, f'cflags = ["-mcpu=cortex-m4", "{flag}"]', "cflags") for flag in (
        "-fplugin=/tmp/x.so", "-specs=/tmp/evil.specs", "-o", "-Wl,-T,/tmp/x.ld", "-mthumb -fplugin=x.so",
        "-DX=$(shell touch PWNED)", "-DX=`touch PWNED`", "-DX='1'", "-mcpu=cortex-a53", "-mfpu=neon",
        "-DX=1\\n", "-mfloat-abi=hardest", "-include/etc/passwd", "@/tmp/args")),
    (CFLAGS, 'cflags = "-mthumb"', "cflags"),
    ('name = "mps2-an386"', 'name = "../../evil"', "name"),
    ('name = "mps2-an386"', 'name = "Evil Board"', "name"),
    ('description = "', 'description = "two\\nlines ', "description"),
    ('qemu_machine = "mps2-an386"', 'qemu_machine = "virt -device evil"', "qemu_machine"),
    ('core = "cortex-m4"', 'core = "cortex-a53"', "core"),
    ("stack_size = 8192", "stack_size = -8", "stack_size"),
    ("stack_size = 8192", 'stack_size = "8192"', "stack_size"),
    ("clock_hz = 25000000", "clock_hz = 0", "clock_hz"),
    ("size = 0x400000", "size = 0x200000000", "flash.size"),
    ("emulated = true", "emulated = true\nsurprise = 1", "surprise"),
    ("qemu_machine = \"mps2-an386\"\n", "", "qemu_machine"),
]


@pytest.mark.parametrize("old,new,key", BAD_BOARD_FILES)
def test_a_bad_board_file_is_refused_naming_the_key(old, new, key, zoo, tmp_path):
    model, _ = zoo("op_fc_relu")
    path = _board_file(tmp_path, old, new)
    line = one_error_line(tc("compile", model, "--board-file", path, "-o", tmp_path / "out", cwd=tmp_path))
    assert f"board file {path}: {key}" in line
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("PWNED*"))


REAL_CONSOLE_FILES = [
    ('driver = "uart-stm32"', 'driver = "uart-evil"', "console.driver"),
    ('upload_protocol = "stlink"', 'upload_protocol = "stlink ; evil"', "platformio.upload_protocol"),
    ('platform = "ststm32"', 'platform = "${sysenv.HOME}"', "platformio.platform"),
    ('tx_pin = 7', 'tx_pin = "7u; evil()"', "console.tx_pin"),
    ('"RCC_AHB2ENR: GPIOG"', '"*/ evil(); /*\\n"', "console.enable"),
    ('emulated_by = "mps2-an386"', 'emulated_by = "nucleo-f746zg"', "emulated_by"),
]


@pytest.mark.parametrize("old,new,key", REAL_CONSOLE_FILES)
def test_a_bad_real_board_file_is_refused_naming_the_key(old, new, key, tmp_path):
    path = _board_file(tmp_path, old, new, base="nucleo-l4r5zi")
    with pytest.raises(TinyCompressError, match=re.escape(f"board file {path}: {key}")):
        load_board_file(path)


def test_board_and_board_file_together_is_a_usage_error(zoo, tmp_path):
    model, _ = zoo("op_fc_relu")
    proc = tc("compile", model, "--board", "pico", "--board-file", data_dir("boards") / "pico.toml",
              "-o", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2 and b"not both" in proc.stderr


@pytest.mark.parametrize("command", ["compile", "run", "profile", "profile-functions", "flash"])
def test_every_command_with_board_has_board_file(command):
    proc = tc(command, "--help", cwd=ROOT)
    assert proc.returncode == 0 and b"--board-file" in proc.stdout


@needs_emulator
@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_a_good_board_file_is_accepted_and_used(zoo, tmp_path):
    model, data = zoo("op_fc_relu")
    path = _board_file(tmp_path, 'name = "mps2-an386"', 'name = "my-board"')
    text = path.read_text().replace(CFLAGS, CFLAGS.replace('["', '["-DMY_BOARD=1", "'))
    text = text.replace('description = "',
                        'description = "*/ evil(); /* ; # ${HOME} \\" ?? $(shell touch PWNED) ', 1)
    path.write_text(text)
    proc = tc("run", model, "--board-file", path, "--data", data, "--verify", "--json", tmp_path / "r.json",
              "-o", tmp_path / "proj", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads((tmp_path / "r.json").read_text())["board"] == "my-board"
    makefile = (tmp_path / "proj" / "Makefile").read_text()
    assert "BOARD_FLAGS = -DMY_BOARD=1 -mcpu=cortex-m4" in makefile
    assert_nothing_injected(tmp_path / "proj")
    # and through PlatformIO: its board manifest, platformio.ini and the emulated upload, offline
    proc = tc("flash", model, "--board-file", path, "--data", data, "--count", 3, "-o", tmp_path / "pio",
              cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "3 of 3 outputs match" in (tmp_path / "pio" / "platformio.log").read_text()
    assert json.loads((tmp_path / "pio" / "platformio" / "boards" / "my-board.json").read_text())["name"] == \
        load_board_file(path).description
    assert_nothing_injected(tmp_path / "pio")


# ---- error lines ----

def test_error_lines_are_clean_of_escapes_and_bad_bytes(tmp_path):
    name = b"bad\x1b[31m\x1b]0;title\x07\xff\xfe\nsecond line\r\x08.tflite"
    path = os.fsencode(tmp_path) + b"/" + name
    with open(path, "wb") as f:
        f.write(b"this is not a model at all")
    line = one_error_line(tc("compile", path, "-o", tmp_path / "out", cwd=tmp_path))
    assert "bad" in line and "second line" in line and "\ufffd" in line
    line = one_error_line(tc("compile", path + b".missing", "-o", tmp_path / "out", cwd=tmp_path))
    assert "does not exist" in line
    usage = tc("compile", path, "--kernels", b"\x1b[31mevil\nline\xff", "-o", tmp_path / "out", cwd=tmp_path)
    stderr = usage.stderr.decode("utf-8")     # click's usage errors too
    assert usage.returncode == 2 and "\x1b" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "not one of" in errors[0] and not any(c in stderr for c in "\x1b\udcff")


def test_one_line_strips_ansi_controls_and_bad_bytes():
    assert escape.one_line("a\x1b[1;31mred\x1b[0m\nb\r\n\tc\udcff\x07\tz") == "ared b c\ufffd? z"
    assert escape.one_line("\x1b]0;title\x07x\ud800\x9b") == "x??"


@pytest.mark.parametrize("content,fragment", [
    (None, "cannot read board file"), (b"name = \n", "cannot read board file"),
    (b"\xff\xfe\0\0", "cannot read"),
    (b"# padding\n" * 8000, "larger than"), (b"emulated = true\nflash = 5\n", "must be given"),
    (b"emulated = []\n", "emulated must be true or false"),
])
def test_an_unreadable_board_file_is_one_line(content, fragment, tmp_path):
    path = tmp_path / "mine.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TinyCompressError, match=fragment):
        load_board_file(path)


@pytest.mark.parametrize("old,new,key", [
    ('driver = "uart-stm32"', 'driver = ["uart-stm32"]', "console.driver"),
    ('emulated_by = "mps2-an386"', 'emulated_by = ["mps2-an386"]', "emulated_by"),
    ('[flash]\norigin = 0x08000000\nsize = 0x200000', 'flash = 5\n#', "flash must be a table"),
])
def test_wrongly_typed_board_values_are_refused_naming_the_key(old, new, key, tmp_path):
    path = _board_file(tmp_path, old, new, base="nucleo-l4r5zi")
    with pytest.raises(TinyCompressError, match=re.escape(f"board file {path}: {key}")):
        load_board_file(path)


@pytest.mark.parametrize("directory",
                         ["cmsis $(shell touch PWNED)", "cmsis\n$(shell touch PWNED)", "cmsis#`x`"])
def test_a_cmsis_nn_checkout_the_makefile_cannot_carry_is_refused(directory, zoo, tmp_path):
    model, _ = zoo("op_fc_relu")
    # a fake checkout: compile only looks for this
    for name in (directory, "CMSIS-NN_v7"):
        (tmp_path / name / "Include").mkdir(parents=True)
        (tmp_path / name / "Include" / "arm_nnfunctions.h").write_text("")
    line = one_error_line(tc("compile", model, "--kernels", "cmsis-nn", "--cmsis-nn", tmp_path / directory,
                             "-o", tmp_path / "out", cwd=tmp_path))
    assert "the CMSIS-NN checkout" in line and "symlink" in line and not (tmp_path / "out").exists()
    proc = tc("compile", model, "--kernels", "cmsis-nn", "--cmsis-nn", tmp_path / "CMSIS-NN_v7", "-o",
              tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"CMSIS_NN    ?= {tmp_path / 'CMSIS-NN_v7'}\n" in (tmp_path / "out" / "Makefile").read_text()
