"""tinycompress adapt: one frozen base, switchable low-rank adapters, adapter-only updates in QEMU.

The base is the zoo's digits MLP; the two tasks are its training set's labels and the labels shifted by 3
mod 10, each trained on the first half of that set and measured on the second half.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_emulator

from tinycompress.errors import EXIT_ERROR

ROOT = Path(__file__).resolve().parent.parent
TASKS = {"digits": 0, "shifted": 3}


def tc(*args):
    return subprocess.run([sys.executable, "-m", "tinycompress", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == EXIT_ERROR, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def task_data(zoo, tmp_path_factory):
    """The tasks' training and held-out halves, and the calibration set, as .npz files."""
    model, _ = zoo("digits_mlp")
    train = np.load(Path(model).with_name("digits_mlp_train.npz"))
    x, y = train["x"], train["y"]
    half = len(x) // 2
    directory = tmp_path_factory.mktemp("adapter-data")
    files = {"keras": Path(model).with_suffix(".keras"), "calibration": directory / "calibration.npz"}
    np.savez(files["calibration"], x=x)
    for name, shift in TASKS.items():
        labels = (y + shift) % 10
        files[name] = directory / f"{name}.npz"
        files[f"{name}_eval"] = directory / f"{name}_eval.npz"
        np.savez(files[name], x=x[:half], y=labels[:half])
        np.savez(files[f"{name}_eval"], x=x[half:], y=labels[half:])
    return files


@pytest.fixture(scope="module")
def adapted(task_data, tmp_path_factory):
    """`tinycompress adapt` on the digits MLP, rank 4 on its last Dense layer: (directory, report)."""
    out = tmp_path_factory.mktemp("adapt") / "project"
    args = ["adapt", task_data["keras"], "--rank", 4, "--layers", "dense_2", "--calibration",
            task_data["calibration"], "--board", "mps2-an386", "--epochs", 30, "-o", out]
    for name in TASKS:
        args += ["--task", f"{name}={task_data[name]}", "--eval", f"{name}={task_data[name + '_eval']}"]
    proc = tc(*args)
    assert proc.returncode == 0, proc.stderr
    assert "shifted" in proc.stdout and "bit-exact" in proc.stdout
    return out, json.loads((out / "adapters.json").read_text())


def _eval_inputs(task_data, name, graph):
    from tinycompress.pipeline import load_inputs
    return load_inputs(task_data[f"{name}_eval"], graph, 0)


@pytest.mark.slow
@needs_emulator
def test_each_adapter_learns_its_task_bit_exact_and_small(adapted):
    out, report = adapted
    base_weights = report["base"]["flash"]["weights"]
    assert report["base"]["bit_exact"] is True
    assert [a["name"] for a in report["adapters"]] == list(TASKS)
    for adapter in report["adapters"]:
        assert adapter["bit_exact"] is True
        assert adapter["firmware"] >= 0.80, adapter
        assert adapter["host_float"] >= 0.80, adapter
        assert adapter["rank"] == 4 and adapter["instructions"] > 0
        assert 4 * adapter["flash"]["weights"] <= base_weights, (adapter, base_weights)
        assert adapter["flash"]["weights"] == len((out / adapter["image"]).read_bytes())
    # the base alone knows only the digits: the shifted labels are what the second adapter adds
    assert report["base"]["firmware"]["digits"] >= 0.80 and report["base"]["firmware"]["shifted"] < 0.5
    header = (out / "model.h").read_text()
    assert "tc_model_select_adapter(int index)" in header and "TC_MODEL_ADAPTER_COUNT     2" in header


def _slot_table(out: Path, report: dict, slots: list[bytes]) -> bytes:
    size = report["slots"]["slot_bytes"]
    return b"".join(image.ljust(size, b"\0") for image in slots)


@pytest.mark.slow
@needs_emulator
def test_slot_update_and_corrupted_slot_in_qemu(adapted, task_data, tmp_path):
    """Task B's image written over slot A with QEMU's loader device makes slot A give B's outputs; a
    corrupted image is refused with the CRC status and the base runs alone."""
    from tinycompress.adapt import run_adapter, without_slots
    from tinycompress.codegen.adapters import read_header
    from tinycompress.frontend.load import read_tflite_file
    from tinycompress.frontend.reference import tflm_outputs
    from tinycompress.target.boards import load_board

    out, report = adapted
    board = load_board("mps2-an386")
    image_path = tmp_path / "shifted.bin"
    proc = tc("adapter-image", out, "shifted", "-o", image_path)
    assert proc.returncode == 0, proc.stderr
    shifted_image = image_path.read_bytes()
    assert shifted_image == (out / "shifted.bin").read_bytes()
    assert read_header(shifted_image)["name"] == "shifted" and read_header(shifted_image)["magic"] == b"TCAD"

    graph = read_tflite_file(out / "base.tflite")
    x, _ = _eval_inputs(task_data, "shifted", graph)
    x = x[:60]
    nbytes = graph.output_tensor().nbytes
    address, images = report["slots"]["address"], [(out / f"{n}.bin").read_bytes() for n in TASKS]
    table_bytes = report["slots"]["slot_bytes"] * len(TASKS)
    bare = without_slots(out / "firmware.elf", tmp_path / "bare.elf", address, table_bytes)

    def run_with(table: bytes, index: int, expect_refusal: bool = False):
        (tmp_path / "table.bin").write_bytes(table)
        loader = ("-device", f"loader,file={tmp_path / 'table.bin'},addr={address:#x}")
        return run_adapter(bare, board, x, nbytes, index, qemu_args=loader, expect_refusal=expect_refusal)

    expected = {name: tflm_outputs((out / f"{name}.tflite").read_bytes(), x) for name in TASKS}
    base_expected = tflm_outputs(graph.source, x)
    assert not np.array_equal(expected["digits"], expected["shifted"])
    # the table as built: each slot gives its own task
    original = run_with(_slot_table(out, report, images), 0)
    assert original.adapter == 0 and np.array_equal(original.outputs, expected["digits"])
    # shifted's image written into the digits slot: slot 0 now gives shifted's outputs, bit for bit
    updated = run_with(_slot_table(out, report, [shifted_image, images[1]]), 0)
    assert updated.adapter == 0 and updated.adapter_refused == 0 and updated.adapter_name == "shifted"
    assert original.adapter_name == "digits"
    assert np.array_equal(updated.outputs, expected["shifted"])
    # one payload byte flipped: refused by its CRC-32 (TC_ERROR_ADAPTER_CRC), the base runs alone
    corrupted = bytearray(shifted_image)
    corrupted[len(corrupted) - 5] ^= 0x40
    refused = run_with(_slot_table(out, report, [bytes(corrupted), images[1]]), 0, expect_refusal=True)
    assert refused.adapter == -1 and refused.adapter_refused == 4
    assert np.array_equal(refused.outputs, base_expected)
    # a header of another format version: refused before the CRC (TC_ERROR_ADAPTER_HEADER)
    other = bytearray(shifted_image)
    other[4] += 1
    refused = run_with(_slot_table(out, report, [images[0], bytes(other)]), 1, expect_refusal=True)
    assert refused.adapter == -1 and refused.adapter_refused == 3
    assert np.array_equal(refused.outputs, base_expected)


@pytest.mark.slow
def test_slot_images_carry_their_header_and_crc(adapted):
    import zlib

    from tinycompress.codegen.adapters import read_header
    out, report = adapted
    for adapter in report["adapters"]:
        image = (out / adapter["image"]).read_bytes()
        header = read_header(image)
        size = header["header_bytes"]
        assert header["magic"] == b"TCAD" and header["version"] == report["slots"]["format_version"] == 1
        assert header["layout"] == report["slots"]["layout_crc"] and header["name"] == adapter["name"]
        assert (header["rank"], header["layers"]) == (4, 1) and size == report["slots"]["header_bytes"]
        assert header["payload_bytes"] == report["slots"]["payload_bytes"] == len(image) - size
        assert int.from_bytes(image[size - 4:size], "little") == zlib.crc32(image[:size - 4] + image[size:])


@pytest.mark.slow
def test_adapter_image_refuses_unknown_names_and_foreign_graphs(adapted, tmp_path):
    import shutil
    out, _ = adapted
    assert_one_line_error(tc("adapter-image", out, "nope", "-o", tmp_path / "x.bin"), "no adapter 'nope'")
    assert_one_line_error(tc("adapter-image", tmp_path, "digits", "-o", tmp_path / "x.bin"), "adapters.json")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("adapters.json", "base.tflite"):
        shutil.copy(out / name, copy / name)
    shutil.copy(out / "base.tflite", copy / "digits.tflite")     # a graph without the adapter
    assert_one_line_error(tc("adapter-image", copy, "digits", "-o", tmp_path / "x.bin"), "no adapter layer")
    assert not (tmp_path / "x.bin").exists()


@pytest.mark.parametrize("command", ["adapt", "adapter-image"])
def test_adapter_commands_have_help_with_an_example(command):
    proc = tc(command, "--help")
    assert proc.returncode == 0 and "Example" in proc.stdout


def test_adapt_refuses_bad_names_before_loading_the_model(task_data, tmp_path):
    keras, cal = task_data["keras"], task_data["calibration"]
    common = ["--calibration", cal, "--board", "mps2-an386", "-o", tmp_path / "out"]
    assert_one_line_error(tc("adapt", keras, "--task", f"bad name!={task_data['digits']}", "--rank", 4,
                             *common), "task name")
    assert_one_line_error(tc("adapt", keras, "--task", f"a={task_data['digits']}", "--eval",
                             f"b={task_data['digits']}", "--rank", 2, *common), "--eval b")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_adapt_refuses_unknown_layers_and_ranks_too_high(task_data, tmp_path):
    keras, cal = task_data["keras"], task_data["calibration"]
    common = ["--calibration", cal, "--board", "mps2-an386", "-o", tmp_path / "out"]
    assert_one_line_error(tc("adapt", keras, "--task", f"a={task_data['digits']}", "--rank", 4,
                             "--layers", "nope", *common), "no Dense or Conv2D layer nope")
    assert_one_line_error(tc("adapt", keras, "--task", f"a={task_data['digits']}", "--rank", 10,
                             "--layers", "dense_2", *common), "--rank 10")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@needs_emulator
def test_flash_puts_the_base_and_its_adapters_on_a_board(adapted, zoo, tmp_path):
    from tinycompress.adapt import symbol_address
    out, report = adapted
    pio = tmp_path / "pio"
    proc = tc("flash", out / "base.tflite", "--adapters", out, "--board", "mps2-an386", "--count", 8,
              "-o", pio, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verification"] == {"inferences": 8, "matching": 8}
    assert "TC_MODEL_ADAPTER_COUNT     2" in (pio / "model.h").read_text()
    # the same slots as adapt's firmware, byte for byte, in the PlatformIO build
    elf = pio / ".pio" / "build" / "mps2-an386" / "firmware.elf"
    from elftools.elf.elffile import ELFFile
    with open(elf, "rb") as f:
        section = ELFFile(f).get_section_by_name(".tc_adapters")
        data = section.data()
    assert symbol_address(elf, "tc_adapter_slots") == section["sh_addr"]
    assert data == _slot_table(out, report, [(out / f"{n}.bin").read_bytes() for n in TASKS])
    # the same firmware with the test inputs run on the `shifted` adapter, checked against shifted.tflite
    proc = tc("flash", out / "base.tflite", "--adapters", out, "--adapter", "shifted", "--board",
              "mps2-an386", "--count", 8, "-o", tmp_path / "pio-shifted", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verification"] == {"inferences": 8, "matching": 8}
    log = (tmp_path / "pio-shifted" / "serial.log").read_text().splitlines()
    assert "adapter 2" in log and "adapter_refused 0" in log
    # another model is not the adapters' base
    other, _ = zoo("digits_cnn")
    assert_one_line_error(tc("flash", other, "--adapters", out, "--board", "mps2-an386", "--no-upload",
                             "-o", tmp_path / "other"), "base.tflite")


@pytest.mark.slow
@needs_emulator
def test_conv2d_adapters_are_bit_exact(zoo, tmp_path):
    """Adapters on a 3x3 and a 1x1 Conv2D of the digits CNN (a k x k convolution to r channels, then a 1x1
    one): every layer after them, depthwise convolution and poolings included, takes its parameters from the
    slot, and the firmware still equals TFLite Micro on each task's .tflite."""
    model, _ = zoo("digits_cnn")
    train = np.load(Path(model).with_name("digits_cnn_train.npz"))
    x, y = train["x"][:400], train["y"][:400]
    files = []
    for name, shift in TASKS.items():
        files.append(tmp_path / f"{name}.npz")
        np.savez(files[-1], x=x, y=(y + shift) % 10)
    np.savez(tmp_path / "calibration.npz", x=x)
    out = tmp_path / "project"
    proc = tc("adapt", Path(model).with_suffix(".keras"), "--task", f"digits={files[0]}", "--task",
              f"shifted={files[1]}", "--rank", 2, "--layers", "conv1,pointwise", "--epochs", 2,
              "--calibration", tmp_path / "calibration.npz", "--board", "mps2-an386", "-o", out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "adapters.json").read_text())
    assert report["layers"] == ["conv1", "pointwise"] and report["base"]["bit_exact"] is True
    assert [a["bit_exact"] for a in report["adapters"]] == [True, True]
    assert [a["inferences"] for a in report["adapters"]] == [100, 100]
    assert [s[1] for s in report["slots"]["layout"]["shapes"]] == [2, 2]
