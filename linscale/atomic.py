"""One way to write a file so that nobody ever sees half of it: the results tables, run status,
checkpoints and task data all go through :func:`atomic_write`."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], mode: int | None = None) -> Path:
    """Fill a temporary file beside ``path`` with ``write(temporary_path)``, then rename it over ``path``.

    The rename is atomic on one file system, so a reader, a crash or a killed process finds either the
    old file or the new one; on any failure the temporary file is removed and the error re-raised.
    ``mode``: permissions for the new file (``mkstemp`` makes 0600; 0o644 for files shared like any other).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
