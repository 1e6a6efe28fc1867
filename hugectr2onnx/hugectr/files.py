"""Checked opening of input files, so every failure names the path."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputFileError


def existing_file(path, what: str) -> Path:
    p = Path(os.fspath(path))
    if not p.exists():
        raise InputFileError(f"{what} does not exist", file=str(p))
    if p.is_dir():
        raise InputFileError(f"{what} is a directory, expected a file", file=str(p))
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{what} is not readable", file=str(p))
    return p


def existing_path(path, what: str) -> Path:
    p = Path(os.fspath(path))
    if not p.exists():
        raise InputFileError(f"{what} does not exist", file=str(p))
    return p


def read_text(path, what: str, limit: int = 1 << 30) -> str:
    p = existing_file(path, what)
    size = p.stat().st_size
    if size > limit:
        raise InputFileError(f"{what} is {size} bytes, larger than the {limit}-byte limit",
                             file=str(p))
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} is not UTF-8 text (byte offset {e.start})", file=str(p))
    except OSError as e:
        raise InputFileError(f"cannot read {what}: {e.strerror}", file=str(p))
