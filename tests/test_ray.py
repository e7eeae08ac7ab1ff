"""`profile --executor ray` (tinycompress/analysis/executors.py): a local Ray head on 127.0.0.1, started
and stopped here, runs the same sweep as the local executor, with the same records and the same files; a
killed task is retried, a task killed twice fails its variant by name; without Ray, one line says how to
install it."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from conftest import needs_emulator
from test_cli import ROOT, tc

from tinycompress.errors import EXIT_ERROR, EXIT_TOOL_MISSING, TinyCompressError

try:
    import ray  # noqa: F401
    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray missing: pip install '.[cluster]'")
# What differs between two runs of one sweep: where each variant's files are.
PLACES = ("tflite", "project")


def test_without_ray_one_line_says_how_to_install_it(monkeypatch):
    from tinycompress.analysis.executors import make_executor
    monkeypatch.setitem(sys.modules, "ray", None)     # import ray raises ImportError
    with pytest.raises(TinyCompressError) as error:
        make_executor("ray", address="127.0.0.1:6379")
    assert "pip install 'ray" in str(error.value) and "tinycompress[cluster]" in str(error.value)
    assert "\n" not in str(error.value) and error.value.exit_code == EXIT_TOOL_MISSING


def test_ray_needs_the_cluster_address():
    from tinycompress.analysis.executors import make_executor
    with pytest.raises(TinyCompressError, match="--ray-address HOST:PORT or RAY_ADDRESS"):
        make_executor("ray", address=None)


def test_a_project_travels_whole_and_only_inside(tmp_path):
    from tinycompress.analysis.executors import pack, unpack
    from tinycompress.outputs import MANIFEST, claim, write_file
    worker = tmp_path / "worker"
    with claim(worker):
        write_file(worker / "model.c", "int x;\n")
        write_file(worker / "firmware" / "include" / "tc.h", "#pragma once\n")
    (worker / "firmware.elf").write_bytes(b"\x7fELF")      # make's product: not in the manifest
    (worker / "firmware.elf").chmod(0o755)
    driver = tmp_path / "driver"
    unpack(pack(worker), driver)
    assert (driver / "model.c").read_text() == "int x;\n"
    assert (driver / "firmware" / "include" / "tc.h").is_file()
    assert (driver / "firmware.elf").read_bytes() == b"\x7fELF"
    assert os.access(driver / "firmware.elf", os.X_OK)
    assert set(json.loads((driver / MANIFEST).read_text())["files"]) == {"model.c", "firmware/include/tc.h"}
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.c")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(TinyCompressError, match="not a file inside the project"):
        unpack(evil.getvalue(), tmp_path / "other")
    assert not (tmp_path / "escaped.c").exists()


def test_an_error_keeps_its_exit_code_across_processes():
    import pickle
    error = pickle.loads(pickle.dumps(TinyCompressError("qemu-system-arm is missing", EXIT_TOOL_MISSING)))
    assert type(error) is TinyCompressError and str(error) == "qemu-system-arm is missing"
    assert error.exit_code == EXIT_TOOL_MISSING


def test_a_sweep_reports_every_failed_variant_on_one_line():
    from concurrent.futures import Future

    from tinycompress.analysis.sweep import gather

    def ended(value=None, error=None):
        future = Future()
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
        return future
    assert gather([ended(1), ended(2)]) == [1, 2]
    alone = TinyCompressError("variant int4: its Ray task failed 2 times", EXIT_TOOL_MISSING)
    with pytest.raises(TinyCompressError) as error:
        gather([ended(1), ended(error=alone)])
    assert error.value is alone
    with pytest.raises(TinyCompressError) as error:
        gather([ended(error=alone), ended(2), ended(error=TinyCompressError("variant cp:4: no layer"))])
    assert str(error.value) == ("2 variants failed: variant int4: its Ray task failed 2 times; "
                                "variant cp:4: no layer") and error.value.exit_code == EXIT_TOOL_MISSING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_head(cpus: int = 2):
    """A Ray head on 127.0.0.1 with `cpus` worker CPUs, started with `ray start --head --block` in a
    process group of its own and stopped by signalling that group (never `ray stop`, which stops every Ray
    on the machine): its addresses, the GCS's (HOST:PORT) and Ray Client's (ray://HOST:PORT).
    benchmarks/ray_speedup.py uses it too."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    port, client = _free_port(), _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="tcray-", dir="/tmp")     # Ray's socket paths must stay short
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={port}", f"--ray-client-server-port={client}", f"--num-cpus={cpus}",
                             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([ray_cli, "status", f"--address={address}"], env=env,
                             capture_output=True).returncode != 0:
            if head.poll() is not None:
                raise RuntimeError("ray start --head exited")
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray head did not come up in 120 s")
            time.sleep(1)
        yield address, f"ray://127.0.0.1:{client}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=10)       # the GCS server may take half a minute more: nothing to keep
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head():
    if not HAVE_RAY:
        pytest.skip("ray missing: pip install '.[cluster]'")
    with local_head(2) as addresses:
        yield addresses


def _on_ray(address: str, *args, kill: str | None = None):
    env = dict(os.environ, RAY_ADDRESS=address)
    if kill:
        env["TINYCOMPRESS_TEST_KILL_WORKERS"] = kill
    return tc("profile", *args, "--executor", "ray", env=env)


@needs_emulator
@needs_ray
@pytest.mark.slow
def test_the_same_sweep_locally_and_on_ray_with_a_killed_task(zoo, ray_head, tmp_path):
    """The issue's sweep, ad.keras --ranks 8,32,full: the same records on Ray as locally (flash, SRAM,
    instructions, bit-exactness, the metric: every field but where the files are), the same files in each
    variant's directory and the same firmware, though one task's worker was killed and its task retried."""
    tflite, data = zoo("ad_autoencoder")
    model, train = tflite.with_suffix(".keras"), tflite.with_name("ad_autoencoder_train.npz")
    sweep = (model, "--ranks", "8,32,full", "--data", data, "--calibration", train)
    local = tc("profile", *sweep, "-o", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    marker = tmp_path / "killed"
    remote = _on_ray(ray_head[0], *sweep, "-o", tmp_path / "ray", kill=f"1:{marker}")
    assert remote.returncode == 0, remote.stderr
    assert Path(f"{marker}.0").exists()          # a worker died mid-sweep
    assert remote.stdout == local.stdout         # the table: Ray's report of the dead worker is on stderr
    assert "A worker died" in remote.stderr and "Traceback" not in remote.stderr
    records = [json.loads((tmp_path / run / "profile.json").read_text())["variants"]
               for run in ("local", "ray")]
    assert [v["variant"] for v in records[1]] == ["8", "32", "full"]
    for mine, theirs in zip(*records):
        assert {k: v for k, v in mine.items() if k not in PLACES} == \
            {k: v for k, v in theirs.items() if k not in PLACES}
        assert mine["bit_exact"] and theirs["bit_exact"]
        assert Path(theirs["project"]).parent == tmp_path / "ray" / f"rank-{theirs['variant']}"
        trees = [sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                 for root in (Path(mine["project"]), Path(theirs["project"]))]
        assert trees[0] == trees[1] and "build.log" in trees[1] and "firmware.elf" in trees[1]
        assert (Path(mine["project"]) / "firmware.elf").read_bytes() == \
            (Path(theirs["project"]) / "firmware.elf").read_bytes()


@needs_emulator
@needs_ray
@pytest.mark.slow     # the Ray head takes some 20 s to start and stop
def test_tasks_killed_twice_fail_their_variants_by_name(zoo, ray_head, tmp_path):
    """Four kills for two variants: each variant's task and its retry die; both variants are named."""
    tflite, data = zoo("ad_autoencoder")
    proc = _on_ray(ray_head[0], tflite, "--variants", "full,int4", "--data", data,
                   kill=f"4:{tmp_path / 'killed'}")
    assert proc.returncode == EXIT_ERROR and not proc.stdout and "Traceback" not in proc.stderr
    assert all(Path(f"{tmp_path / 'killed'}.{i}").exists() for i in range(4))
    # Ray's reports of the dead workers may come first, then the one line naming every failed variant
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2 variants failed: variant full: its Ray task failed 2 times")
    assert "; variant int4: its Ray task failed 2 times" in last


@needs_emulator
@needs_ray
@pytest.mark.slow     # the Ray head takes some 20 s to start and stop
def test_through_ray_client_the_same_records(zoo, ray_head, tmp_path):
    """A driver outside the cluster's network connects through Ray Client (ray://): the same records and
    files, here for a .tflite and the int8 graph's steps."""
    tflite, data = zoo("ad_autoencoder")
    sweep = (tflite, "--variants", "full,int4", "--data", data)
    local = tc("profile", *sweep, "-o", tmp_path / "local", "--json", "-")
    remote = _on_ray(ray_head[1], *sweep, "-o", tmp_path / "ray", "--json", "-")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    records = [json.loads(proc.stdout)["variants"] for proc in (local, remote)]
    assert [{k: v for k, v in r.items() if k not in PLACES} for r in records[0]] == \
        [{k: v for k, v in r.items() if k not in PLACES} for r in records[1]]
    assert all(r["bit_exact"] for r in records[1]) and [r["variant"] for r in records[1]] == ["full", "int4"]
    assert (tmp_path / "ray" / "plan-int4" / "project" / "firmware.elf").read_bytes() == \
        (tmp_path / "local" / "plan-int4" / "project" / "firmware.elf").read_bytes()


@needs_emulator
@needs_ray
@pytest.mark.slow     # auto converts a plan for every layer and rank: some 3 minutes a run
def test_auto_on_ray_finds_what_it_finds_locally(zoo, ray_head, tmp_path):
    """auto's search: the plans it measures are Ray tasks, one at a time on the 2 worker CPUs; locally,
    --jobs 3 starts the two plans the next round may take beside each (analysis/auto.py's lookahead). Both
    find the same plan, with the same record and search, and leave only the reached plans' directories."""
    tflite, data = zoo("digits_mlp")
    sweep = (tflite.with_suffix(".keras"), "--ranks", "auto", "--data", data, "--json", "-")
    local = tc("profile", *sweep, "-o", tmp_path / "local", "--jobs", "3")
    remote = _on_ray(ray_head[0], *sweep, "-o", tmp_path / "ray")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    (mine,), (theirs,) = (json.loads(proc.stdout)["variants"] for proc in (local, remote))
    assert {k: v for k, v in mine.items() if k not in PLACES} == \
        {k: v for k, v in theirs.items() if k not in PLACES}
    assert theirs["bit_exact"] and theirs["variant"] == "auto" and len(theirs["search"]) > 1
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == \
        sorted(p.name for p in (tmp_path / "ray").iterdir())
