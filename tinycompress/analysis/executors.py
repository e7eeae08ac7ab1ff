"""Where a sweep's variants are built and emulated: the executors under the one sweep driver (sweep.py).

The driver applies each variant's plan itself (TensorFlow stays in one process, with the Keras model loaded
once) and hands the executor a `Job`: the compressed int8 graph, the board, the evaluation set and the
figures measured on the host. The executor builds the C project, links it, runs the evaluation set in QEMU
and compares with the TFLite Micro interpreter (sweep._measure), and returns a Future of the VariantResult.

- `local` (the default): a thread pool of --jobs threads on this machine; make and QEMU run as processes.
- `ray`: each variant a Ray task on a cluster (`--ray-address` or RAY_ADDRESS). The job travels through
  Ray's object store (the evaluation set once for the whole sweep); the worker builds in a temporary
  directory and sends back the result and its C project (sources, firmware.elf, build.log) as a tar
  archive, unpacked into the variant's directory under the driver's -o DIR, so the records and the files
  are the same as a local run's. A task whose worker dies is retried once (Ray's max_retries); a variant
  that still fails is reported by its name (sweep.gather reports every failed variant). The workers need
  tinycompress, the Arm toolchain and QEMU: docker/worker.Dockerfile.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tarfile
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from ..errors import EXIT_TOOL_MISSING, TinyCompressError, pip_hint
from ..outputs import LOCK, MANIFEST, claim, write_file

EXECUTORS = ("local", "ray")
RETRIES = 1   # a Ray task whose worker dies runs once more, then its variant is reported as failed
# Tests only, on the driver: N:PATH kills the worker of each of the first N Ray tasks to run (each claims
# one of PATH.0 ... PATH.N-1), as a preempted node would (tests/test_ray.py).
KILL = "TINYCOMPRESS_TEST_KILL_WORKERS"


@dataclass
class Job:
    """One variant to measure: everything sweep._measure takes."""
    variant: object             # sweep.Variant
    compressed: object          # pipeline.Compressed, its float model dropped
    board: object               # target.boards.Board
    directory: Path             # the variant's directory on the driver (model.tflite is already there)
    evaluation: object          # sweep.Evaluation
    host_float: float | None
    params: int


class LocalExecutor:
    """Variants built and emulated on this machine, `jobs` at once (its `width`, as a Ray cluster's is its
    CPUs)."""
    name = "local"

    def __init__(self, jobs: int = 2):
        self.jobs = self.width = jobs

    def __enter__(self) -> "LocalExecutor":
        self.pool = ThreadPoolExecutor(max_workers=self.jobs)
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True)

    def measure(self, job: Job) -> Future:
        from .sweep import _measure
        return self.pool.submit(_measure, job.variant, job.compressed, job.board, job.directory,
                                job.evaluation, job.host_float, job.params)


class RayExecutor:
    """Variants as Ray tasks on the cluster at `address` (HOST:PORT, ray://HOST:PORT or 'auto'). Plans of a
    Keras model travel whole: the worker applies them (TensorFlow), so the driver's work stays small."""
    name = "ray"
    prepares = True

    def __init__(self, address: str | None):
        if not address:
            raise TinyCompressError("--executor ray needs the cluster's address: --ray-address HOST:PORT "
                                    "or RAY_ADDRESS (ray start --head prints it)")
        self.address = address
        self.ray = _import_ray()

    def __enter__(self) -> "RayExecutor":
        import logging
        ray = self.ray
        # Ray's driver prints what the cluster reports (a worker died: its task is retried) on stdout, which
        # holds tables and JSON: those lines go to stderr, with the logs, while the sweep runs.
        self.stdout = contextlib.redirect_stdout(sys.stderr)
        self.stdout.__enter__()
        try:
            if self.address.startswith("ray://"):    # Ray Client, from outside the cluster's network
                ray.init(address=self.address, logging_level=logging.WARNING)
            else:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            self.stdout.__exit__(None, None, None)
            raise TinyCompressError(f"cannot reach the Ray cluster at {self.address}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        # variants the cluster runs at once: auto's search starts that many plans ahead (analysis/auto.py)
        self.width = max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(max_retries=RETRIES, retry_exceptions=False, num_cpus=1)
        self.task, self.whole_task = remote(_remote_measure), remote(_remote_prepare_measure)
        self.shared: dict[int, tuple] = {}     # id(value) -> (its ObjectRef, value): see _share
        self.collect = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tinycompress-ray")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.collect.shutdown(wait=True)
            self.ray.shutdown()
        finally:
            self.stdout.__exit__(None, None, None)

    def _share(self, value, make=lambda value: value):
        """An ObjectRef of make(value), put in the object store once per sweep."""
        key = id(value)
        if key not in self.shared:
            self.shared[key] = (self.ray.put(make(value)), value)   # value held: its id stays unique
        return self.shared[key][0]

    def measure(self, job: Job) -> Future:
        compressed = replace(job.compressed, model=None)     # the worker needs the graph and the steps
        ref = self.task.remote(job.variant, compressed, job.board, self._share(job.evaluation),
                               job.host_float, job.params, os.environ.get(KILL))
        return self.collect.submit(self._collect, ref, job)

    def prepare_and_measure(self, variant, sweep, directory: Path) -> Future:
        """A plan of the Keras model applied on the worker too (sweep.prepare): the model's file, the
        calibration and fine-tuning sets go to the object store once; model.tflite comes back."""
        ref = self.whole_task.remote(variant, self._share(sweep, Recipe.of), sweep.board,
                                     self._share(sweep.evaluation), os.environ.get(KILL))
        job = Job(variant, None, sweep.board, directory, sweep.evaluation, None, 0)
        return self.collect.submit(self._collect, ref, job)

    def _collect(self, ref, job: Job):
        from ray.exceptions import RayError, RayTaskError
        label = job.variant.label
        try:
            result, archive, *tflite = self.ray.get(ref)
        except RayTaskError as exc:     # the task raised: a build or run failure, as the local run has it
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TinyCompressError):
                raise cause from None
            raise TinyCompressError(f"variant {label}: {cause!r}" if cause else f"variant {label}: {exc}")
        except RayError as exc:         # the worker died twice, or the cluster went away
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TinyCompressError(f"variant {label}: its Ray task failed {RETRIES + 1} times: "
                                    f"{first}") from None
        if tflite:
            write_file(job.directory / "model.tflite", tflite[0])
        unpack(archive, job.directory / "project")
        return replace(result, tflite=str(job.directory / "model.tflite"),
                       project=str(job.directory / "project"))


def make_executor(name: str = "local", jobs: int = 2, address: str | None = None):
    if name == "local":
        return LocalExecutor(jobs)
    if name == "ray":
        return RayExecutor(address)
    raise TinyCompressError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise TinyCompressError("--executor ray needs Ray: " + pip_hint("ray") + " (or pip install "
                                "'tinycompress[cluster]')", EXIT_TOOL_MISSING) from None
    return ray


def _remote_measure(variant, compressed, board, evaluation, host_float, params, kill):
    """The Ray task: sweep._measure in a temporary directory, then (result, the project as a tar archive)."""
    if kill:
        _kill_worker(kill)
    with tempfile.TemporaryDirectory(prefix="tinycompress-ray-") as tmp:
        return _measure_packed(Path(tmp), variant, compressed, board, evaluation, host_float, params)


def _measure_packed(tmp: Path, variant, compressed, board, evaluation, host_float, params):
    from .sweep import _measure
    directory = tmp / variant.directory
    result = _measure(variant, compressed, board, directory, evaluation, host_float, params)
    return result, pack(directory / "project")


@dataclass
class Recipe:
    """What a worker needs to apply plans of the Keras model as the driver would (sweep.prepare)."""
    name: str
    suffix: str                 # .keras or .h5
    keras: bytes                # the model's file
    calibration: object         # np.ndarray or None
    train: tuple[str, bytes] | None    # the fine-tuning set's file name and bytes
    epochs: int
    vocab: list[str] | None

    @classmethod
    def of(cls, sweep) -> "Recipe":
        train = (sweep.train.name, sweep.train.read_bytes()) if sweep.train else None
        return cls(sweep.name, sweep.path.suffix, sweep.path.read_bytes(), sweep.calibration, train,
                   sweep.epochs, sweep.vocab)


_MODELS: dict[int, object] = {}     # a worker's Keras models, by hash of their file: loaded once


def _remote_prepare_measure(variant, recipe: Recipe, board, evaluation, kill):
    """The Ray task for a plan of the Keras model: sweep.prepare, then _remote_measure's work; the
    compressed .tflite comes back too."""
    from ..frontend.quantize import load_keras
    from .sweep import Sweep, prepare
    if kill:
        _kill_worker(kill)
    with tempfile.TemporaryDirectory(prefix="tinycompress-ray-") as tmp:
        key = hash(recipe.keras)
        if key not in _MODELS:
            path = Path(tmp) / f"{recipe.name}{recipe.suffix}"
            path.write_bytes(recipe.keras)
            _MODELS[key] = load_keras(path)
        train = None
        if recipe.train:
            train = Path(tmp) / "train" / recipe.train[0]
            train.parent.mkdir()
            train.write_bytes(recipe.train[1])
        sweep = Sweep(recipe.name, _MODELS[key], None, recipe.calibration, evaluation, board, Path(tmp), None,
                      train, recipe.epochs, recipe.vocab)
        compressed, host_float, params = prepare(sweep, variant)
        return *_measure_packed(Path(tmp), variant, compressed, board, evaluation, host_float, params), \
            compressed.graph.source


def _kill_worker(spec: str) -> None:
    """KILL's test hook: this worker process dies if it claims one of the N markers left."""
    count, _, path = spec.partition(":")
    for i in range(int(count)):
        try:
            os.close(os.open(f"{path}.{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        os._exit(1)     # no cleanup, no exception: Ray sees the worker die and retries the task


def pack(directory: Path) -> bytes:
    """`directory`'s files as a gzipped tar archive, paths relative to it: its manifest (which files
    tinycompress wrote, as against make's products) kept, its lock left out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != LOCK):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack(archive: bytes, directory: Path) -> None:
    """A `pack` archive's files into `directory` as the local build leaves them: the files the worker's
    manifest lists through the driver's own manifest, make's products beside them. A member that is not a
    regular file inside `directory` is refused."""
    with claim(directory), tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = {}
        for member in tar.getmembers():
            rel = PurePosixPath(member.name)
            if not member.isfile() or rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise TinyCompressError(f"a Ray worker sent back {member.name!r} for {directory}: "
                                        "not a file inside the project")
            members[rel.as_posix()] = member
        manifest = members.pop(MANIFEST, None)
        recorded = set(json.loads(tar.extractfile(manifest).read())["files"]) if manifest else set(members)
        for rel, member in members.items():
            data, path = tar.extractfile(member).read(), directory / rel
            if rel in recorded:
                write_file(path, data)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            path.chmod(member.mode & 0o777)
