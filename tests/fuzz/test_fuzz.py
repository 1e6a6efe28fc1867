"""Fuzzing the readers with mutated copies of valid models (hypothesis, seeded).

Every case must end in one of two ways: a model that passes onnx.checker, or a
ConversionError naming a file. Anything else fails the test: another exception, a case
running past TIME_LIMIT seconds, or a file left in the output directory after an error.

CI runs FUZZ_EXAMPLES cases (default 1000) of small models, and a quarter as many of the
model zoo's architectures (every layer family). For a longer local run:
    HUGECTR2ONNX_FUZZ_EXAMPLES=20000 python3 -m pytest tests/fuzz -q
HUGECTR2ONNX_FUZZ_SEED picks another seed (default 0) to explore new cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from hugectr2onnx import converter, zoo
from hugectr2onnx.cli import main
from hugectr2onnx.errors import ConversionError
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model

FUZZ_EXAMPLES = int(os.environ.get("HUGECTR2ONNX_FUZZ_EXAMPLES", "1000"))
ZOO_EXAMPLES = max(1, FUZZ_EXAMPLES // 4)  # bigger graphs, so fewer cases
FUZZ_SEED = int(os.environ.get("HUGECTR2ONNX_FUZZ_SEED", "0"))
TIME_LIMIT = 20  # seconds per case; a tiny model converts in milliseconds

HOSTILE_VALUES = [None, [], {}, "abc", "", -5, -1, 0, 1, 2, 1.5, 1e300, -1e300, 2 ** 70,
                  -(2 ** 70), 10 ** 15, True, False, math.nan, math.inf, [1, 2], {"a": 1},
                  [[0, 1]], "Data", "InnerProduct"]
SCALES = [0, -1, 2, 3, 0.5, 1000, 1e15, 1e300]


# ------------------------------------------------------------------------------ fixtures
@dataclass
class Fixture:
    name: str
    graph: Path
    dense: Path
    ntp: Path | None
    sparse: list[Path]
    key_type: str = "I64"

    def files(self) -> list[Path]:
        """Every file that can be mutated (table folders are expanded)."""
        out = [self.graph, self.dense] + ([self.ntp] if self.ntp else [])
        for s in self.sparse:
            out += sorted(s.iterdir()) if s.is_dir() else [s]
        return out


def _builders() -> dict[str, tuple[ModelBuilder, dict]]:
    mlp = (ModelBuilder().input(dense_dim=6)
           .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 4})
           .dense("ReLU", "fc1", "relu1")
           .dense("Dropout", "relu1", "drop1", rate=0.5)
           .dense("InnerProduct", "drop1", "fc2", fc_param={"num_output": 3})
           .dense("ELU", "fc2", "elu2", elu_param={"alpha": 1.0})
           .dense("Cast", "elu2", "cast2")
           .dense("InnerProduct", "cast2", "fc3", fc_param={"num_output": 1})
           .dense("BinaryCrossEntropyLoss", ["fc3", "label"], "loss"))
    emb = (ModelBuilder().input(dense_dim=3, sparse=[dict(top="s", slot_num=3, nnz_per_slot=2)])
           .embedding(bottom="s", top="e", vec_size=4)
           .dense("Reshape", "e", "r", leading_dim=12)
           .dense("Concat", ["r", "dense"], "c")
           .dense("InnerProduct", "c", "fc1", fc_param={"num_output": 5})
           .dense("Sigmoid", "fc1", "sig1")
           .dense("InnerProduct", "sig1", "fc2", fc_param={"num_output": 1})
           .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    loc = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=4, nnz_per_slot=2,
                                                          is_fixed_length=False)])
           .embedding(bottom="s", top="e", vec_size=2, combiner="mean",
                      type="LocalizedSlotSparseEmbeddingHash", num_gpus=2)
           .dense("Reshape", "e", "r", leading_dim=8)
           .dense("InnerProduct", "r", "fc1", fc_param={"num_output": 1})
           .dense("BinaryCrossEntropyLoss", ["fc1", "label"], "loss"))
    multi = (ModelBuilder().input(label_dim=[1, 1], label_name=["b", "a"], dense_dim=2,
                                  sparse=[dict(top="s", slot_num=2)])
             .embedding(bottom="s", top="e", vec_size=3)
             .dense("Reshape", "e", "r", leading_dim=6)
             .dense("InnerProduct", "dense", "fa", fc_param={"num_output": 1})
             .dense("BinaryCrossEntropyLoss", ["fa", "a"], "loss_a")
             .dense("InnerProduct", "r", "fb", fc_param={"num_output": 1})
             .dense("BinaryCrossEntropyLoss", ["fb", "b"], "loss_b"))
    return {"mlp": (mlp, {}), "emb": (emb, {}), "localized": (loc, {}),
            "legacy": (emb, {"legacy_sparse": True, "key_type": "I32"}), "multi": (multi, {})}


def _localized_table(rng) -> dict:
    """Keys repeat across the two GPUs (slot parity), as a 2-GPU Localized run leaves them."""
    keys = np.concatenate([np.arange(10), np.arange(5)]).astype(np.int64)
    slots = np.concatenate([np.zeros(10), np.ones(5)]).astype(np.uint64)
    return {"keys": keys, "slot_ids": slots,
            "vectors": rng.uniform(-1, 1, (keys.size, 2)).astype(np.float32)}


def build_fixtures(root: Path) -> dict[str, Fixture]:
    fixtures = {}
    rng = np.random.default_rng(7)
    for name, (builder, kw) in _builders().items():
        tables = [_localized_table(rng)] if name == "localized" else None
        art = save_model(builder, root / name, seed=3, tables=tables, **kw)
        fixtures[name] = Fixture(name, Path(art.graph_config), Path(art.dense_model),
                                 Path(art.ntp_file) if art.ntp_file else None,
                                 [Path(p) for p in art.sparse_models], kw.get("key_type", "I64"))
    return fixtures


# NVIDIA's converter test architectures (hugectr2onnx.zoo), shrunk: every layer family.
ZOO_SMALL = {**zoo.SMALL, "dcn2": dict(slots=4, dense_dim=3, vec=4, hidden=(8,),
                                        cross_layers=1, projection_dim=2)}


def build_zoo_fixtures(root: Path) -> dict[str, Fixture]:
    fixtures = {}
    for name, kw in ZOO_SMALL.items():
        art = zoo.save(zoo.MODELS[name.rstrip("2")](**kw), root / name, seed=5, num_keys=12)
        fixtures[name] = Fixture(name, Path(art.graph_config), Path(art.dense_model),
                                 Path(art.ntp_file) if art.ntp_file else None,
                                 [Path(p) for p in art.sparse_models])
    return fixtures


# ------------------------------------------------------------------------------ mutations
def _json_paths(node, prefix=()):
    """Every (path) to a value inside a JSON document, the root excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from _json_paths(v, prefix + (k,))


def _strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _parent(doc, path):
    for k in path[:-1]:
        doc = doc[k]
    return doc


def mutate_json(doc, op: str, a: int, b: int):
    """One structural edit; ``a`` and ``b`` pick targets and values."""
    paths = list(_json_paths(doc))
    if not paths:
        return doc
    path = paths[a % len(paths)]
    parent, key = _parent(doc, path), path[-1]
    value = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "retype":
        parent[key] = HOSTILE_VALUES[b % len(HOSTILE_VALUES)]
    elif op == "scale":
        nums = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], (int, float))
                and not isinstance(_parent(doc, p)[p[-1]], bool)]
        if nums:
            p = nums[a % len(nums)]
            holder = _parent(doc, p)
            factor = SCALES[b % len(SCALES)]
            v = holder[p[-1]] * factor if b % 5 else holder[p[-1]] + (1 if b % 2 else -1)
            holder[p[-1]] = int(v) if isinstance(holder[p[-1]], int) and float(v).is_integer() \
                and abs(v) < 1e30 else v
    elif op == "rename":
        names = _strings(doc)
        strs = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], str)]
        if strs and names:
            p = strs[a % len(strs)]
            _parent(doc, p)[p[-1]] = names[b % len(names)]
    elif op == "layers":
        layers = doc.get("layers") if isinstance(doc, dict) else None
        if isinstance(layers, list) and layers:
            i, j = a % len(layers), b % len(layers)
            kind = (a + b) % 3
            if kind == 0:
                layers.insert(j, json.loads(json.dumps(layers[i])))
            elif kind == 1:
                del layers[i]
            else:
                layers[i], layers[j] = layers[j], layers[i]
    elif op == "wrap" and isinstance(value, (str, int, float)):
        parent[key] = [value] if b % 2 else {"v": value}
    return doc


SPECIAL_WORDS = [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\xff\xff\xff\xff",
                 b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x00" * 8, b"\x01\x00\x00\x00" * 2]


def mutate_bytes(data: bytes, op: str, a: int, b: int) -> bytes:
    n = len(data)
    if op == "truncate":
        return data[:a % (n + 1)]
    if op == "extend":
        return data + bytes((a >> (8 * (k % 4))) & 255 for k in range(1 + b % 64))
    if op == "flip" and n:
        buf = bytearray(data)
        for k in range(1 + b % 4):
            buf[(a + 7919 * k) % n] ^= 1 << ((b + k) % 8)
        return bytes(buf)
    if op == "cut" and n:
        start = a % n
        return data[:start] + data[start + 1 + b % 64:]
    if op == "word" and n >= 4:
        word = SPECIAL_WORDS[b % len(SPECIAL_WORDS)]
        start = (a % n) // 4 * 4
        return data[:start] + word + data[start + len(word):]
    if op == "empty":
        return b""
    return data


JSON_OPS = ("delete", "retype", "scale", "rename", "layers", "wrap")
BYTE_OPS = ("truncate", "extend", "flip", "cut", "word", "empty")
FILE_OPS = ("remove", "to_dir", "swap_fixture")
OPS = JSON_OPS * 3 + BYTE_OPS * 2 + FILE_OPS  # file-level damage is the least interesting


@st.composite
def cases(draw, names):
    name = draw(st.sampled_from(names))
    edits = draw(st.lists(st.tuples(st.integers(0, 63),  # which file
                                    st.sampled_from(OPS),
                                    st.integers(0, 2 ** 31), st.integers(0, 2 ** 31)),
                          min_size=1, max_size=3))
    embed = draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True
    return name, edits, embed


def apply_case(fixtures: dict[str, Fixture], name: str, edits, work: Path) -> Fixture:
    """Copy fixture ``name`` into ``work`` and apply ``edits`` to the copy."""
    src = fixtures[name]
    shutil.copytree(src.graph.parent, work, dirs_exist_ok=True)
    fx = Fixture(name, work / src.graph.name, work / src.dense.name,
                 work / src.ntp.name if src.ntp else None,
                 [work / s.name for s in src.sparse], src.key_type)
    others = [f for f in fixtures.values() if f.name != name]
    for which, op, a, b in edits:
        files = [f for f in fx.files() if f.exists()]
        if not files:
            break
        target = files[which % len(files)]
        if target.is_dir():
            continue
        if op in JSON_OPS:
            if target.suffix != ".json":
                op = BYTE_OPS[a % len(BYTE_OPS)]
            else:
                try:
                    doc = json.loads(target.read_text())
                except ValueError:
                    continue
                target.write_text(json.dumps(mutate_json(doc, op, a, b)))
                continue
        if op == "remove":
            target.unlink()
        elif op == "to_dir":
            target.unlink()
            target.mkdir()
        elif op == "swap_fixture":
            other = others[a % len(others)]
            same = [f for f in other.files() if f.name.split("_")[-1] == target.name.split("_")[-1]
                    or f.suffix == target.suffix == ".json"]
            if same:
                shutil.copyfile(same[b % len(same)], target)
        else:
            target.write_bytes(mutate_bytes(target.read_bytes(), op, a, b))
    return fx


# ------------------------------------------------------------------------------ the check
class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout(f"case ran longer than {TIME_LIMIT} s")


def run_case(fx: Fixture, out_dir: Path, convert_embedding: bool) -> str:
    """Convert; return 'ok' or the error class name. Raises AssertionError on a defect."""
    out_dir.mkdir()
    out = out_dir / "model.onnx"
    embed = convert_embedding and bool(fx.sparse)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        converter.convert(str(out), str(fx.graph), str(fx.dense), embed,
                          [str(s) for s in fx.sparse] if embed else None,
                          str(fx.ntp) if fx.ntp else None, key_type=fx.key_type)
    except ConversionError as e:
        left = sorted(p.name for p in out_dir.iterdir())
        assert not left, f"files left behind after {type(e).__name__}: {left}"
        assert e.file or type(e).__name__ == "UsageError", f"error names no file: {e}"
        return type(e).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    left = sorted(p.name for p in out_dir.iterdir())
    assert left in (["model.onnx"], ["model.onnx", "model.onnx.data"]), left
    onnx.checker.check_model(str(out), full_check=True)
    return "ok"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return build_fixtures(tmp_path_factory.mktemp("fuzz_fixtures"))


def test_fixtures_convert_unmutated(fixtures, tmp_path):
    """The fuzz starts from valid models: each converts cleanly as written."""
    for name, fx in fixtures.items():
        assert run_case(fx, tmp_path / name, True) == "ok", name


@seed(FUZZ_SEED)
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases(sorted(_builders())))
def test_mutated_models_convert_or_raise_typed_error(fixtures, case):
    name, edits, embed = case
    with tempfile.TemporaryDirectory(prefix="h2o_fuzz_") as tmp:
        fx = apply_case(fixtures, name, edits, Path(tmp) / "in")
        event(run_case(fx, Path(tmp) / "out", embed))


@pytest.fixture(scope="module")
def zoo_fixtures(tmp_path_factory):
    return build_zoo_fixtures(tmp_path_factory.mktemp("fuzz_zoo"))


def test_zoo_fixtures_convert_unmutated(zoo_fixtures, tmp_path):
    for name, fx in zoo_fixtures.items():
        assert run_case(fx, tmp_path / name, True) == "ok", name


@seed(FUZZ_SEED + 1)
@settings(max_examples=ZOO_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases(sorted(ZOO_SMALL)))
def test_mutated_zoo_models_convert_or_raise_typed_error(zoo_fixtures, case):
    name, edits, embed = case
    with tempfile.TemporaryDirectory(prefix="h2o_fuzz_") as tmp:
        fx = apply_case(zoo_fixtures, name, edits, Path(tmp) / "in")
        event(run_case(fx, Path(tmp) / "out", embed))


@pytest.mark.parametrize("name", ["fc1.W", "fc2.b", "const", "ints", "Relu:fc1.W", "gemm"])
def test_tensor_names_like_generated_names_stay_valid(tmp_path, name):
    """Generated initializer and node-output names never take a HugeCTR tensor's name."""
    b = (ModelBuilder().input(dense_dim=5)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 3})
         .dense("ReLU", "fc1", name)
         .dense("InnerProduct", name, "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    art = save_model(b, tmp_path / "in")
    fx = Fixture(name, Path(art.graph_config), Path(art.dense_model), None, [])
    assert run_case(fx, tmp_path / "out", False) == "ok"


@seed(FUZZ_SEED + 2)
@settings(max_examples=max(1, FUZZ_EXAMPLES // 10), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases(sorted(_builders())))
def test_cli_on_mutated_models_prints_one_line_and_typed_exit_code(fixtures, case):
    name, edits, embed = case
    with tempfile.TemporaryDirectory(prefix="h2o_fuzz_") as tmp:
        fx = apply_case(fixtures, name, edits, Path(tmp) / "in")
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        argv = ["convert", "--graph", str(fx.graph), "--dense", str(fx.dense),
                "-o", str(out_dir / "m.onnx"), "--key-type", fx.key_type]
        if fx.ntp:
            argv += ["--ntp", str(fx.ntp)]
        if embed and fx.sparse:
            argv += ["--convert-embedding", "--sparse", *map(str, fx.sparse)]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        lines = err.getvalue().strip().splitlines()
        if code == 0:
            assert (out_dir / "m.onnx").exists()
        else:
            assert code in (2, 3, 4), err.getvalue()
            assert len(lines) == 1 and lines[0].startswith("hugectr2onnx: error: "), lines
            assert list(out_dir.iterdir()) == []
        event(f"exit {code}")
