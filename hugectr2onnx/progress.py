"""Progress bars for long reads and writes: tqdm when installed and stderr is a terminal.

Without tqdm (the optional ``progress`` extra), or when stderr is not a terminal, the bar
is a silent no-op.
"""

from __future__ import annotations

import sys


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool | None = None, unit: str = "B"):
    """A context manager with ``update(n)`` (bytes, or ``unit``s; ``total`` 0: unknown);
    ``enabled`` None means: if stderr is a tty."""
    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    if unit != "B":
        return tqdm(total=total or None, desc=desc, unit=f" {unit}", unit_scale=True,
                    leave=False, file=sys.stderr, dynamic_ncols=True)
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                leave=False, file=sys.stderr, dynamic_ncols=True)
