"""The shipped example model: the demo passes, and the files are what make_example writes."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_passes(capsys):
    assert _load("demo").main(["--batch", "32"]) == 0
    out = capsys.readouterr().out
    assert "result: PASS" in out and "max |diff|" in out


def test_shipped_files_match_the_generator(tmp_path):
    _load("make_example").write(tmp_path)
    shipped = sorted(p.relative_to(EXAMPLES / "model") for p in (EXAMPLES / "model").rglob("*")
                     if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert shipped == fresh
    for rel in shipped:
        assert filecmp.cmp(EXAMPLES / "model" / rel, tmp_path / rel, shallow=False), rel
    assert sum((EXAMPLES / "model" / rel).stat().st_size for rel in shipped) < 1 << 20
