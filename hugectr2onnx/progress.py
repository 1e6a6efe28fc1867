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


def on_terminal() -> bool:
    """Whether stderr is a terminal (where progress shows by default)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def bar_enabled(enabled: bool | None) -> bool:
    """``enabled``, or None for: if stderr is a terminal."""
    return on_terminal() if enabled is None else bool(enabled)


def progress_bar(total: int, desc: str, enabled: bool | None = None, unit: str = "B"):
    """A context manager with ``update(n)`` (bytes, or ``unit``s; ``total`` 0: unknown);
    ``enabled`` None means: if stderr is a tty."""
    if not bar_enabled(enabled):
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


STAGE_MIN_ITEMS = 1_000_000  # on a terminal, stages of smaller work pass silently


class Stages:
    """One line on stderr per stage of long in-memory work (key checks, index builds), with
    its time. ``enabled`` True: always (``--progress``); None: when stderr is a terminal and
    the stage handles at least STAGE_MIN_ITEMS items; False: never."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = enabled

    def _shown(self, items: int) -> bool:
        if self.enabled is None:
            return items >= STAGE_MIN_ITEMS and on_terminal()
        return bool(self.enabled)

    def stage(self, message: str, items: int = 0):
        return _Stage(message, self._shown(items))


class _Stage:
    def __init__(self, message: str, shown: bool):
        self.message, self.shown = message, shown

    def __enter__(self):
        if self.shown:
            import time

            self.start = time.perf_counter()
            print(f"hugectr2onnx: {self.message} ...", file=sys.stderr, flush=True)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.shown and exc_type is None:
            import time

            print(f"hugectr2onnx: {self.message}: done in "
                  f"{time.perf_counter() - self.start:.1f} s", file=sys.stderr, flush=True)
