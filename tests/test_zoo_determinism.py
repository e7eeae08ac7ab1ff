"""The model zoo is deterministic and its cache is keyed by what the models are made from."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import modelzoo
import pytest
from conftest import TESTS

# Cheap operator models (the residual ADD's numbers decide test_plan.py's overwrite), a refused float
# model, and one trained network with its .keras and training set.
REBUILT = ["op_add_residual", "op_conv_3x3_same", "op_fc_pairs", "float_mlp", "digits_mlp"]


@pytest.mark.slow
def test_a_fresh_rebuild_gives_the_cached_bytes(zoo, tmp_path):
    cached_dir = zoo(REBUILT[0])[0].parent
    for name in REBUILT:
        zoo(name)
    env = dict(os.environ, **modelzoo.DETERMINISTIC_ENV,
               PYTHONPATH=os.pathsep.join([str(modelzoo.ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, str(TESTS / "modelzoo.py"), "--out", str(tmp_path), *REBUILT], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    rebuilt = sorted(p.name for p in tmp_path.iterdir())
    # every file of the build: .tflite, .npz, .key and, for the network, .keras and _train.npz
    assert {f"digits_mlp{s}" for s in (".tflite", ".npz", ".key", ".keras", "_train.npz")} <= set(rebuilt)
    differ = [name for name in rebuilt if (tmp_path / name).read_bytes() != (cached_dir / name).read_bytes()]
    assert not differ, f"rebuilt in a fresh process, these files differ from the cached ones: {differ}"


def test_the_cache_is_keyed_by_sources_and_versions(zoo, tmp_path, monkeypatch):
    model, data = zoo("op_fc_relu")
    for path in (model, data, model.with_suffix(".key")):
        shutil.copy(path, tmp_path / path.name)
    assert modelzoo.cached("op_fc_relu", tmp_path) == tmp_path / model.name
    key = modelzoo.cache_key()
    # another version of a package that shapes the bytes: another key, and the cached model is stale
    version = modelzoo._version
    monkeypatch.setattr(modelzoo, "_version",
                        lambda package: version(package) + ("+1" * (package == "keras")))
    assert modelzoo.cache_key() != key
    assert modelzoo.cached("op_fc_relu", tmp_path) is None
    monkeypatch.undo()
    # an edit to a file the zoo builds with: the same
    edited = tmp_path / "quantize.py"
    edited.write_text(modelzoo.SOURCES[1].read_text() + "# edited\n")
    monkeypatch.setattr(modelzoo, "SOURCES", [*modelzoo.SOURCES[:1], edited, *modelzoo.SOURCES[2:]])
    assert modelzoo.cache_key() != key
    assert modelzoo.cached("op_fc_relu", tmp_path) is None
    monkeypatch.undo()
    (tmp_path / "op_fc_relu.key").write_text("0123456789abcdef\n")   # built by another generator
    assert modelzoo.cached("op_fc_relu", tmp_path) is None
    (tmp_path / "op_fc_relu.key").unlink()                            # built before the cache had keys
    assert modelzoo.cached("op_fc_relu", tmp_path) is None
