"""RESP encoding of commands whose arguments are fixed-width byte columns, built in numpy.

A bulk load or a lookup sends one HSET / HMGET with up to tens of thousands of fields; encoding
them arg by arg in Python would cost more than Redis spends executing them.
"""

from __future__ import annotations

import numpy as np


def encode_command(command: bytes, name: bytes, *columns: np.ndarray) -> bytes:
    """``COMMAND name row0col0 row0col1 ... row1col0 ...``: each column is a uint8 [n, width]
    array; row i contributes one argument per column, in column order."""
    n = columns[0].shape[0] if columns else 0
    body = _frames(None, n, columns)
    head = b"*%d\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (2 + n * len(columns), len(command), command,
                                                   len(name), name)
    return head + body.tobytes()


def pack(*args) -> bytes:
    """One command of a few ordinary arguments (str, bytes or int)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def frame_width(*widths: int) -> int:
    """Bytes per row of ``encode_grouped``'s frames for columns of these widths."""
    return sum(len(b"$%d\r\n" % w) + w + 2 for w in widths)


def encode_grouped(command: bytes, names: list[bytes], bounds: np.ndarray, order: np.ndarray,
                   *columns: np.ndarray, scratch: np.ndarray | None = None,
                   out: np.ndarray | None = None) -> list[tuple[bytes, tuple]]:
    """One ``COMMAND names[g] ...`` per group g of rows ``order[bounds[g]:bounds[g + 1]]``
    (groups left empty send nothing). The argument frames of all rows are laid out in one
    buffer in row order, then gathered into group order: two passes over the payload, into
    ``scratch`` and ``out`` (flat uint8 buffers reused across calls, so the pages are not
    faulted in again each time). Each command is (name, (head, memoryview of ``out``)), sent
    without joining: ``out`` must stay untouched until the replies are read."""
    n = columns[0].shape[0]
    body = _frames(scratch, n, columns)
    width = body.shape[1]
    grouped = _rows(out, n, width)
    np.take(body, order, axis=0, out=grouped, mode="clip")  # "clip": no buffered copy
    view = memoryview(grouped.reshape(-1))
    result = []
    for g, name in enumerate(names):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        if hi > lo:
            head = b"*%d\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                2 + (hi - lo) * len(columns), len(command), command, len(name), name)
            result.append((name, (head, view[lo * width:hi * width])))
    return result


def _frames(buffer: np.ndarray | None, n: int, columns) -> np.ndarray:
    """Row i holds the bulk-string frames ``$len\\r\\n<bytes>\\r\\n`` of every column's row i."""
    body = _rows(buffer, n, frame_width(*(c.shape[1] for c in columns)))
    at = 0
    for col in columns:
        prefix = b"$%d\r\n" % col.shape[1]
        body[:, at:at + len(prefix)] = np.frombuffer(prefix, np.uint8)
        at += len(prefix)
        body[:, at:at + col.shape[1]] = col
        at += col.shape[1]
        body[:, at:at + 2] = (13, 10)
        at += 2
    return body


def _rows(buffer: np.ndarray | None, n: int, width: int) -> np.ndarray:
    if buffer is None:
        return np.empty((n, width), dtype=np.uint8)
    return buffer[:n * width].reshape(n, width)


def buffers(payloads) -> list:
    """Flatten encoded commands (bytes, or tuples of buffers) for one sendall each."""
    out = []
    for p in payloads:
        if isinstance(p, tuple):
            out.extend(p)
        else:
            out.append(p)
    return out
