"""Write files atomically: into a temporary file beside the target, renamed at the end. On
any error (or Ctrl-C) the temporary file is removed and nothing is left at the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path in the target's directory; renamed to ``path`` on success."""
    path = Path(os.fspath(path))
    directory = check_target(path)
    try:
        tmp = temp_file(directory, path.name)
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror or e}", file=str(path)) from None
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        remove([tmp])
        raise OutputError(f"cannot write: {e.strerror or e}", file=str(path)) from None
    except BaseException:
        remove([tmp])
        raise


@contextlib.contextmanager
def staging_dir(directory, prefix: str):
    """A temporary folder in ``directory`` (created if missing) for outputs that are renamed
    out of it at the end; removed with whatever is left in it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    except OSError as e:
        raise OutputError(f"cannot create the output directory: {e.strerror or e}",
                          file=str(directory)) from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_target(path: Path) -> Path:
    """The directory ``path`` will be written in, once it is known to be writable."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError("output path is a directory", file=str(path))
    if not directory.is_dir():
        raise OutputError("output directory does not exist", file=str(directory))
    if not os.access(directory, os.W_OK):
        raise OutputError("output directory is not writable", file=str(directory))
    return directory


def temp_file(directory: Path, name: str) -> str:
    """An empty ``.{name}.*.tmp`` in ``directory`` with the mode a new file would get."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would otherwise survive the rename
    os.close(fd)
    return tmp


def remove(paths) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
