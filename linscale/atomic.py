"""One way to write a file so that nobody ever sees half of it: the results tables, run status,
checkpoints and task data all go through :func:`atomic_write` (JSON through :func:`write_json`)."""
from __future__ import annotations

import filecmp
import functools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], mode: int | None = None) -> Path:
    """Fill a temporary file beside ``path`` with ``write(temporary_path)``, then rename it over ``path``.

    The rename is atomic on one file system, so a reader, a crash or a killed process finds either the
    old file or the new one; on any failure the temporary file is removed and the error re-raised.
    ``mode``: permissions for the new file; by default those ``open`` would give it (0666 less the umask),
    not ``mkstemp``'s 0600, which left a sweep's results tables unreadable to the rest of a group.
    """
    _write(Path(path), write, mode, keep_same=False)
    return Path(path)


def atomic_update(path: str | os.PathLike, write: Callable[[str], object], mode: int | None = None) -> bool:
    """:func:`atomic_write`, except that when the new bytes equal the file's, the file (and its time
    stamp) is left as it was, so that what is up to date by its files (a chapter of the book) stays so
    when a stage is re-run. Returns whether the file was written."""
    return _write(Path(path), write, mode, keep_same=True)


def write_json(path: str | os.PathLike, value, *, indent: int = 1, sort_keys: bool = False, default=str,
               mode: int | None = None, keep_same: bool = False) -> Path:
    """``value`` as JSON text with a final newline, written by :func:`atomic_write` (by
    :func:`atomic_update` with ``keep_same``). ``default`` turns what JSON cannot hold into something it
    can (by default its text: paths, dates)."""
    text = json.dumps(value, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    _write(Path(path), lambda tmp: Path(tmp).write_text(text), mode, keep_same=keep_same)
    return Path(path)


# How the temporaries of atomic writes are named: "." + the target's name + "." + mkstemp's (or mkdtemp's)
# eight random characters (_write here; linscale.models.checkpoint.save_checkpoint for export folders)
TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}")


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove what atomic writes left in ``folder`` (not below it) when their process was killed outright
    (SIGKILL, a node lost; any other end removes its own): a half-written resume checkpoint can be as large
    as the checkpoint. Only for a caller that keeps every other writer out of the folder (a run's lock),
    since another process's temporaries are in use. Returns what was removed."""
    removed = []
    for entry in sorted(Path(folder).glob(".*")):
        if TEMPORARY_NAME.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _write(path: Path, write: Callable[[str], object], mode: int | None, keep_same: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, default_file_mode() if mode is None else mode)
        write(tmp)
        if keep_same and path.is_file() and filecmp.cmp(tmp, path, shallow=False):
            Path(tmp).unlink()
            return False
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@functools.cache
def default_file_mode() -> int:
    """0666 less this process's umask: what ``open(path, "w")`` gives a new file. The umask is read from
    /proc (Linux), else set and restored at once (the only portable way to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def cannot_write_in(folder: str | os.PathLike) -> str | None:
    """Why nothing can be written in the existing ``folder`` (the system's reason), or None where it can:
    a probe created and removed at once, since permission bits do not tell (root, read-only mounts). The
    reason names the probe, since the system's own words can mislead (/proc answers "No such file or
    directory")."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".linscale-write-test-", dir=folder))
    except OSError as err:
        return f"creating a file there fails: {err.strerror or err}"
    return None
