"""Write a file atomically: into a temporary file beside it, renamed at the end. On any
error (or Ctrl-C) the temporary file is removed and nothing is left at the target."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import OutputError


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path in the target's directory; renamed to ``path`` on success."""
    path = Path(os.fspath(path))
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError("output path is a directory", file=str(path))
    if not directory.is_dir():
        raise OutputError("output directory does not exist", file=str(directory))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror or e}", file=str(path)) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise OutputError(f"cannot write: {e.strerror or e}", file=str(path)) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
