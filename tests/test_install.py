"""tinycompress as a package: its dependency ranges, the exact versions CI installs, and a wheel installed
outside the checkout that compiles, builds and runs a model bit-exact with TFLite Micro."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import needs_emulator

ROOT = Path(__file__).resolve().parent.parent


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in project["dependencies"] + [r for group in extras.values() for r in group]]


def pins() -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    pinned = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.lower().replace("_", "-")] = version
    return pinned


def test_every_dependency_has_a_range_and_an_exact_pin_inside_it():
    pinned = pins()
    for req in requirements():
        name = req.name.lower().replace("_", "-")
        assert name in pinned, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (str(req), pinned[name])
        exact = [s for s in req.specifier if s.operator == "=="]
        assert not exact or name == "tflite-micro", f"{req}: a range, not one version (constraints.txt pins)"


def test_the_setup_installs_with_the_constraints():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "pip install -q -c constraints.txt -e '.[keras,dev,cluster]'" in setup


def test_install_hints_name_packages_not_a_checkout():
    from tinycompress.errors import pip_hint
    hint = pip_hint("tensorflow-cpu", "keras")
    assert hint.startswith("pip install 'tensorflow-cpu") and "'keras" in hint and "-e" not in hint


def test_a_missing_tensorflow_is_named_with_its_install_command(monkeypatch):
    from tinycompress.errors import EXIT_TOOL_MISSING, TinyCompressError
    from tinycompress.frontend import quantize
    monkeypatch.setitem(sys.modules, "tensorflow", None)     # import tensorflow raises ImportError
    with pytest.raises(TinyCompressError) as error:
        quantize._tensorflow()
    assert "install it with: pip install 'tensorflow-cpu" in str(error.value) and "-e" not in str(error.value)
    assert error.value.exit_code == EXIT_TOOL_MISSING


@needs_emulator
@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_runs_a_model(zoo, tmp_path):
    """The wheel carries the runtime, the templates and the boards: installed into a fresh environment
    (its dependencies those of this one, the checkout nowhere on its path), `tinycompress run --verify`
    works from another directory."""
    model, data = zoo("digits_cnn")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(python), "-c", purelib], capture_output=True, text=True,
                               check=True).stdout.strip())
    # this environment's packages by path alone: its .pth files (the checkout's editable finder) stay out
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", *map(str, wheels.glob("*.whl"))], check=True, capture_output=True,
                   timeout=300)
    where = subprocess.run([str(python), "-c", "import tinycompress; print(tinycompress.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert where.startswith(str(site)), where
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([str(env / "bin" / "tinycompress"), "run", str(model), "--board", "mps2-an386",
                             "--data", str(data), "--verify", "--json", "r.json", "-o", "project"],
                            capture_output=True, text=True, cwd=work, timeout=600)
    assert result.returncode == 0, result.stderr
    verification = json.loads((work / "r.json").read_text())["verification"]
    assert verification["matching"] == verification["inferences"] >= 100
    assert (work / "project" / "firmware" / "kernels" / "tc_conv2d_s8.c").exists()
