"""Checked opening of input files, so every failure names the path.

Only regular files are read: a FIFO or a device such as /dev/zero would hang or never end.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import InputFileError, UsageError

TEXT_LIMIT = 1 << 30  # a graph or ntp JSON beyond 1 GiB is not a HugeCTR file


def _stat(path, what: str) -> tuple[Path, os.stat_result]:
    try:
        p = Path(os.fspath(path))
        return p, os.stat(p)
    except TypeError:
        raise UsageError(f"{what}: expected a path, found {type(path).__name__} {path!r:.60}")
    except ValueError as e:  # embedded NUL byte
        raise InputFileError(f"{what}: invalid path ({e})", file=repr(path))
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputFileError(f"{what} does not exist", file=str(path))
        raise InputFileError(f"cannot access {what}: {e.strerror or e}", file=str(path))


def existing_file(path, what: str) -> Path:
    """A readable regular file (symbolic links followed)."""
    p, st = _stat(path, what)
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(f"{what} is a directory, expected a file", file=str(p))
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"{what} is not a regular file (a device, pipe or socket?)",
                             file=str(p))
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{what} is not readable (permission denied)", file=str(p))
    return p


def existing_path(path, what: str) -> Path:
    """A directory or a regular file."""
    p, st = _stat(path, what)
    if not stat.S_ISDIR(st.st_mode):
        return existing_file(p, what)
    if not os.access(p, os.R_OK | os.X_OK):
        raise InputFileError(f"{what} is a directory that cannot be read (permission denied)",
                             file=str(p))
    return p


def read_text(path, what: str, limit: int = TEXT_LIMIT) -> str:
    p = existing_file(path, what)
    size = p.stat().st_size
    if size > limit:
        raise InputFileError(f"{what} is {size} bytes, larger than the {limit}-byte limit",
                             file=str(p))
    try:
        with open(p, "rb") as f:
            raw = f.read(size + 1)  # bounded even if the file grows meanwhile
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} is not UTF-8 text (byte offset {e.start})", file=str(p))
    except OSError as e:
        raise InputFileError(f"cannot read {what}: {e.strerror or e}", file=str(p))


def map_array(path: Path, dtype, shape: tuple, what: str, offset: int = 0) -> np.ndarray:
    """A read-only memory map of a file (from ``offset``) whose size was checked against
    ``shape``."""
    if 0 in shape:  # mmap cannot map zero bytes
        return np.zeros(shape, dtype=dtype)
    try:
        return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset)
    except (OSError, ValueError) as e:  # e.g. the file shrank since it was measured
        raise InputFileError(f"cannot map {what}: {e}", file=str(path))
