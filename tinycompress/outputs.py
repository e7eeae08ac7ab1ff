"""What tinycompress writes for the user: atomic files, and output directories it owns by a manifest.

A directory given with -o is ours only when it holds MANIFEST, the list of every file an earlier run
wrote there (relative path, size, SHA-256). A run may replace or remove exactly those files and the
BUILD_PRODUCTS that make and PlatformIO leave beside them; every other file is left alone. A non-empty
directory without a manifest is refused. A run holds LOCK (flock) inside the directory for as long as
it writes there; a second run on the same directory fails at once with a message naming it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from . import __version__
from .errors import EXIT_USAGE, TinyCompressError

MANIFEST = ".tinycompress-manifest.json"
LOCK = ".tinycompress-lock"
# What building a project adds beside its sources (make, the harness, PlatformIO): removed with the
# project.
BUILD_PRODUCTS = frozenset({"build.log", "firmware.elf", "firmware_serial.elf", "firmware.map",
                            "firmware_host", "output.bin", "profile.txt", "serial.log", "platformio.log",
                            ".pio", ".pio-core"})
OURS = frozenset({MANIFEST, LOCK})


def write_file(path: Path, data: bytes | str) -> None:
    """Write `path` atomically: a temporary file beside it, fsync, rename. Recorded in the manifest of
    the claimed output directory it lies in, if any."""
    path = Path(path)
    holder = _claim_holding(path)
    if holder is not None:
        holder.check_free(holder.relative(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TinyCompressError(f"cannot write {path}: {exc.strerror or exc}; choose another path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise TinyCompressError(f"cannot write {path}: {exc.strerror or exc}; choose another "
                                    "path") from None
        raise
    if holder is not None:
        holder.record(path)


def _digest(path: Path) -> dict:
    if path.is_symlink():
        return {"symlink": os.readlink(path)}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def _tree(root: Path) -> list[str]:
    """Every file and symlink under root, as relative POSIX paths (symlinks are not followed)."""
    found = []
    for base, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            found.append(Path(base, name).relative_to(root).as_posix())
    return sorted(found)


class Claim:
    """A locked output directory and the files this and earlier runs wrote there."""

    def __init__(self, directory: Path, files: dict[str, dict]):
        self.directory = directory
        self.files = files
        self._mutex = threading.Lock()

    def owned(self, rel: str) -> bool:
        return rel in self.files or PurePosixPath(rel).parts[0] in BUILD_PRODUCTS

    def relative(self, path: Path) -> str:
        return Path(path).absolute().relative_to(self.directory).as_posix()

    def record(self, path: Path) -> None:
        rel = self.relative(path)
        with self._mutex:
            self.files[rel] = _digest(self.directory / rel)
            self._save()

    def _save(self) -> None:
        text = json.dumps({"tool": f"tinycompress {__version__}", "files": self.files}, indent=1,
                          sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{MANIFEST}.", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / MANIFEST)

    def replace_with(self, staging: Path) -> None:
        """Move the project staged in `staging` (a sibling directory) in place of the files of the earlier
        project: the old ones go to a backup first and come back if anything fails."""
        new = _tree(staging)
        old = [name for name in sorted(BUILD_PRODUCTS) if os.path.lexists(self.directory / name)]
        old += [rel for rel in self.files if PurePosixPath(rel).parts[0] not in BUILD_PRODUCTS
                and os.path.lexists(self.directory / rel) and self._in_the_way(rel) is None]
        for rel in new:
            self.check_free(rel)
        backup = Path(tempfile.mkdtemp(prefix=f".{self.directory.name}-old-", dir=self.directory.parent))
        moved_old, moved_new, before = [], [], dict(self.files)
        try:
            with self._mutex:
                files = {rel: _digest(staging / rel) for rel in new}
                self.files = {**before, **files}     # a run killed mid-swap still leaves a directory of ours
                self._save()
                for rel in dict.fromkeys(old):
                    if os.path.lexists(self.directory / rel):
                        _move(self.directory / rel, backup / rel)
                        moved_old.append(rel)
                for rel in new:
                    _move(staging / rel, self.directory / rel)
                    moved_new.append(rel)
                self.files = files
                self._save()
        except BaseException:
            for rel in moved_new:
                _move(self.directory / rel, staging / rel)
            for rel in moved_old:
                _move(backup / rel, self.directory / rel)
            self.files = before
            self._save()
            raise
        finally:
            shutil.rmtree(backup, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
        _prune_empty_dirs(self.directory, [rel for rel in moved_old if rel not in new])

    def _in_the_way(self, rel: str) -> Path | None:
        """The first directory on the way to `rel` that is a symlink or a file: never written through."""
        parent = (self.directory / rel).parent
        while parent != self.directory:
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                return parent
            parent = parent.parent
        return None

    def check_free(self, rel: str) -> None:
        """Refuse to write over a user's file, or through a symlink or a file on the way."""
        target = self.directory / rel
        if (blocker := self._in_the_way(rel)) is not None:
            raise TinyCompressError(f"{blocker} is in the way of the project's {rel} (a symlink or a file); "
                                    "move it away or choose another -o")
        if os.path.lexists(target) and not self.owned(rel):
            raise TinyCompressError(f"{target} is not tinycompress's (not in {self.directory / MANIFEST}) "
                                    "and the project would overwrite it; move it away or choose another -o")


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _prune_empty_dirs(root: Path, removed: list[str]) -> None:
    """Remove the directories the removed files leave empty (never root itself)."""
    for rel in removed:
        parent = (root / rel).parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


_claims: dict[Path, list] = {}          # directory -> [Claim, depth]
_claims_mutex = threading.Lock()


def _claim_holding(path: Path) -> Claim | None:
    """The innermost claimed directory that holds `path`."""
    path = Path(path).absolute()
    with _claims_mutex:
        holders = [c for d, (c, _) in _claims.items() if d in path.parents]
    return max(holders, key=lambda c: len(c.directory.parts), default=None)


@contextmanager
def claim(directory: Path | None):
    """Lock `directory` (created if missing) as this run's output and yield its Claim. Refuses a non-empty
    directory without a manifest, and a directory another run holds. Re-entrant within a process.
    With None (no -o), yields None."""
    if directory is None:
        yield None
        return
    directory = Path(directory).absolute()
    with _claims_mutex:
        held = _claims.get(directory)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield held[0]
        finally:
            with _claims_mutex:
                held[1] -= 1
        return
    created = not directory.exists()
    if not created:
        _manifest_files(directory, locked=False)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / LOCK, "a")
    except OSError as exc:
        raise TinyCompressError(f"cannot use {directory} as the output directory: "
                                f"{exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TinyCompressError(f"another tinycompress run is writing {directory}; wait for it to finish "
                                    "or choose another -o") from None
        c = Claim(directory, _manifest_files(directory, locked=True))
        with _claims_mutex:
            _claims[directory] = [c, 1]
        try:
            yield c
        finally:
            with _claims_mutex:
                del _claims[directory]
            if created and not c.files and {p.name for p in directory.iterdir()} <= OURS:
                shutil.rmtree(directory, ignore_errors=True)   # nothing written: leave nothing behind
    finally:
        lock.close()


def _manifest_files(directory: Path, locked: bool) -> dict[str, dict]:
    """The files the manifest lists (read once locked); refuses what is not an output directory of ours."""
    if not directory.is_dir():
        raise TinyCompressError(f"output directory {directory} is not a directory; choose another -o")
    names = {p.name for p in directory.iterdir()}
    if MANIFEST not in names:
        if names - OURS and (locked or LOCK not in names):    # unlocked, a lock means a run may be writing
            raise TinyCompressError(f"output directory {directory} is not empty and is not a tinycompress "
                                    f"project (it has no {MANIFEST}); choose another -o or empty it")
        return {}
    if not locked:
        return {}
    try:
        files = json.loads((directory / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        files = None
    if not isinstance(files, dict) or not all(map(_relative_inside, files)):
        raise TinyCompressError(f"{directory / MANIFEST} is damaged; empty {directory} or choose another -o")
    return files


def _relative_inside(rel: str) -> bool:
    path = PurePosixPath(rel)
    return (bool(path.parts) and not path.is_absolute() and ".." not in path.parts
            and path.parts[0] not in OURS)


def check_paths(output: Path | None, reports: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Refuse an -o that is or holds an input file, and report files (--json, --junit) that are an input,
    each other, or lie inside -o."""
    def same(a: Path, b: Path) -> bool:
        try:
            return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
        except OSError:
            return False

    given = {flag: Path(p) for flag, p in inputs.items() if p is not None}
    files = {flag: Path(p) for flag, p in reports.items() if p is not None and str(p) != "-"}
    if output is not None:
        out = Path(output).resolve()
        for flag, path in given.items():
            if same(path, out) or out in path.resolve().parents:
                raise TinyCompressError(f"-o {output} holds the input {flag} {path}, which the output could "
                                        "overwrite; choose another -o", EXIT_USAGE)
        for flag, path in files.items():
            if same(path, out) or out in path.resolve().parents:
                raise TinyCompressError(f"{flag} {path} lies inside -o {output}, whose files tinycompress "
                                        "replaces; write it elsewhere", EXIT_USAGE)
    for flag, path in files.items():
        for other, input_path in given.items():
            if same(path, input_path):
                raise TinyCompressError(f"{flag} {path} is the input {other}; writing it would destroy the "
                                        "input: choose another path", EXIT_USAGE)
    if len(files) == 2 and same(*files.values()):
        raise TinyCompressError(f"{' and '.join(files)} name the same file {next(iter(files.values()))}; "
                                "give each its own", EXIT_USAGE)
