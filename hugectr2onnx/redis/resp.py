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
    parts = [b"$%d\r\n" % c.shape[1] for c in columns]
    width = sum(len(p) + c.shape[1] + 2 for p, c in zip(parts, columns))
    body = np.empty((n, width), dtype=np.uint8)
    at = 0
    for prefix, col in zip(parts, columns):
        body[:, at:at + len(prefix)] = np.frombuffer(prefix, np.uint8)
        at += len(prefix)
        body[:, at:at + col.shape[1]] = col
        at += col.shape[1]
        body[:, at:at + 2] = (13, 10)
        at += 2
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
