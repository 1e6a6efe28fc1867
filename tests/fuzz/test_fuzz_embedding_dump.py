"""Fuzzing the embedding_dump reader: mutated meta_data, key<j> and weight<j> files.

Every case must either load (and then the reference runs and, for every 8th, the conversion
passes onnx.checker) or raise one ConversionError naming a file, leaving no output behind.
HUGECTR2ONNX_FUZZ_EXAMPLES scales the case count (default 1000 -> 400 dump cases here).
"""

from __future__ import annotations

import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from hugectr2onnx import converter
from hugectr2onnx.errors import ConversionError
from hugectr2onnx.loader import load_model
from hugectr2onnx.reference import run_reference
from hugectr2onnx.verify import random_feeds

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from ebc_models import mixed_model, write_model  # noqa: E402

CASES = max(300, int(os.environ.get("HUGECTR2ONNX_FUZZ_EXAMPLES", "1000")) * 2 // 5)
SEED = int(os.environ.get("HUGECTR2ONNX_FUZZ_SEED", "0"))
TIME_LIMIT = 5.0  # seconds per case


def _mutations(rng, data: bytes, name: str) -> bytes:
    b = bytearray(data)
    kind = rng.integers(8)
    if kind == 0 and b:  # flip random bytes
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        b = b[:int(rng.integers(0, len(b) + 1))]
    elif kind == 2:  # append
        b += bytes(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8))
    elif kind == 3 and len(b) >= 8:  # a header int set to an interesting value
        limit = 20 if name == "meta_data" else 8
        at = 4 * int(rng.integers(0, max(1, min(limit, len(b)) // 4)))
        value = [-1, 0, 1, 2, 3, 7, 2**31 - 1, -2**31, 128, 1 << 20][int(rng.integers(10))]
        b[at:at + 4] = struct.pack("<i", value)
    elif kind == 4 and name == "meta_data" and len(b) >= 52:  # a key count (unaligned)
        at = 20 + 4 * 3 + 8 * int(rng.integers(3))
        b[at:at + 8] = struct.pack("<Q", [0, 1, 2**63, 2**64 - 1, 301, 49][int(rng.integers(6))])
    elif kind == 5 and name == "meta_data" and len(b) >= 52:  # an ev size or table id
        at = int(rng.choice([20, 24, 28, 56, 60, 64]))
        b[at:at + 4] = struct.pack("<i", int(rng.choice([0, -3, 1, 2, 5, 6, 1 << 17])))
    elif kind == 6 and name.startswith("key") and len(b) > 136:  # a key value
        at = 128 + 8 * int(rng.integers(0, (len(b) - 128) // 8))
        b[at:at + 8] = struct.pack("<q", [-1, 0, 50, 49, 2**62, -2**63][int(rng.integers(6))])
    else:  # the empty file
        b = bytearray()
    return bytes(b)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_ebc")
    b, doc = mixed_model(ev=3)
    art, desc, _ = write_model(d / "model", b, doc)
    return d, art, desc


def test_fuzz_embedding_dump(base):
    d, art, desc = base
    dump = Path(desc).parent / "dump" / "embedding_collection_0"
    files = sorted(p.name for p in dump.iterdir())
    pristine = {f: (dump / f).read_bytes() for f in files}
    rng = np.random.default_rng(SEED)
    outcomes = {"loaded": 0, "error": 0}
    out_dir = d / "out"
    out_dir.mkdir()
    slowest = 0.0
    for case in range(CASES):
        for f, data in pristine.items():
            (dump / f).write_bytes(data)
        for _ in range(int(rng.integers(1, 3))):
            name = files[int(rng.integers(len(files)))]
            (dump / name).write_bytes(_mutations(rng, (dump / name).read_bytes(), name))
        start = time.perf_counter()
        try:
            graph = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                               embedding_collection=desc, warn=lambda m: None)
            feeds = random_feeds(graph, 4, convert_embedding=True, seed=case)
            with np.errstate(all="ignore"):
                run_reference(graph, feeds)
            if outcomes["loaded"] % 8 == 0:
                out = out_dir / "m.onnx"
                converter.convert(str(out), art.graph_config, art.dense_model,
                                  ntp_file=art.ntp_file, embedding_collection=desc)
                onnx.checker.check_model(str(out))
                out.unlink()
            outcomes["loaded"] += 1
        except ConversionError as e:
            assert e.file, f"case {case}: error without a file: {e}"
            assert not list(out_dir.iterdir()), f"case {case}: output left behind"
            outcomes["error"] += 1
        slowest = max(slowest, time.perf_counter() - start)
        assert slowest < TIME_LIMIT, f"case {case} took {slowest:.1f} s"
    for f, data in pristine.items():
        (dump / f).write_bytes(data)
    assert sum(outcomes.values()) == CASES >= 300
    assert outcomes["error"] > CASES // 3 and outcomes["loaded"] > 10, outcomes
    print(f"embedding_dump fuzz: {CASES} cases, {outcomes}, slowest {slowest * 1e3:.0f} ms")


VALUES = [None, 0, 1, -1, 2, 3, 4, 6, 50, 10**20, -2, 1.5, "", "sum", "average", "concat",
          "mean", "hashed", "cats", "user", "int64", "uint32", "batch_major", "feature_major",
          [], {}, [1], {"a": 1}, True]


def test_fuzz_description(base):
    """Mutated description files: one field replaced, dropped or added per case."""
    d, art, desc = base
    import json
    pristine = json.loads(Path(desc).read_text())
    rng = np.random.default_rng(SEED + 1)
    outcomes = {"loaded": 0, "error": 0}
    cases = CASES // 2
    for case in range(cases):
        doc = json.loads(json.dumps(pristine))
        for _ in range(int(rng.integers(1, 3))):
            node, key = doc, None
            path = [k for k in ("tables", "lookups", "output") if rng.random() < 0.8][:1]
            if path:
                node = doc[path[0]]
                if isinstance(node, list) and node:
                    node = node[int(rng.integers(len(node)))]
            if not isinstance(node, dict) or not node:
                continue
            keys = sorted(node) + ["extra"]
            key = keys[int(rng.integers(len(keys)))]
            if rng.random() < 0.2:
                node.pop(key, None)
            else:
                node[key] = VALUES[int(rng.integers(len(VALUES)))]
        Path(desc).write_text(json.dumps(doc))
        try:
            graph = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                               embedding_collection=desc, warn=lambda m: None)
            run_reference(graph, random_feeds(graph, 4, convert_embedding=True, seed=case))
            outcomes["loaded"] += 1
        except ConversionError as e:
            assert e.file, f"case {case}: error without a file: {e}"
            outcomes["error"] += 1
    Path(desc).write_text(json.dumps(pristine))
    assert outcomes["error"] > cases // 2 and outcomes["loaded"] > 0, outcomes
    print(f"description fuzz: {cases} cases, {outcomes}")
