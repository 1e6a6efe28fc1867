"""Fuzzing the dataset readers with mutated copies of valid datasets (hypothesis, seeded).

Every case must end in one of two ways: batches shaped as the layout says, or a
ConversionError naming a file. Anything else fails: another exception, a hang, or a batch
of the wrong shape or dtype. CI runs READER_EXAMPLES cases (default 600, small files, a few
ms each); HUGECTR2ONNX_FUZZ_EXAMPLES scales it up for a longer local run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from hugectr2onnx.data import DataLayout, SparseSlots, open_dataset
from hugectr2onnx.data.writers import write_norm, write_parquet, write_raw, write_rawasync
from hugectr2onnx.errors import ConversionError

READER_EXAMPLES = max(500, int(os.environ.get("HUGECTR2ONNX_FUZZ_EXAMPLES", "1000")) * 3 // 5)
FUZZ_SEED = int(os.environ.get("HUGECTR2ONNX_FUZZ_SEED", "0"))
TIME_LIMIT = 20
N = 40

LAYOUT = DataLayout(("b", "a"), (1, 1), "dense", 2,
                    (SparseSlots("one", 2, (1, 1)), SparseSlots("multi", 2, (3, 2), False)),
                    "I32", -1)
HOSTILE_INTS = [0, 1, -1, 2, 3, 7, 64, 65, 2 ** 31 - 1, -(2 ** 31), 1000, 10 ** 6]


def _samples():
    rng = np.random.default_rng(11)
    labels = (rng.random((N, 2)) < 0.5).astype(np.float32)
    dense = rng.integers(0, 9, (N, 2)).astype(np.float32)
    one = rng.integers(0, 100, (N, 2, 1))
    cnt = rng.integers(0, 4, (N, 2)).clip(max=[3, 2])
    multi = np.where(np.arange(3) < cnt[:, :, None], rng.integers(0, 100, (N, 2, 3)), -1)
    return labels, dense, [one, multi]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("readers")
    labels, dense, keys = _samples()
    fixed = [keys[0], np.where(np.arange(3) < [[3], [2]], keys[1], -1)]
    write_norm(root / "plain.bin", LAYOUT, labels, dense, keys)
    write_norm(root / "framed.bin", LAYOUT, labels, dense, keys, checksum=True)
    write_raw(root / "raw.bin", LAYOUT, labels, dense, [k[:, :, :1] for k in keys])
    lay64 = LAYOUT.with_options(key_type="I64")
    write_rawasync(root / "async.bin", lay64, labels, dense, fixed)
    pq_list = write_parquet(root / "pq", LAYOUT, labels, dense, keys, files=2)
    return {"norm:plain": (root / "plain.bin", "norm", LAYOUT),
            "norm:framed": (root / "framed.bin", "norm", LAYOUT),
            "raw": (root / "raw.bin", "raw", LAYOUT),
            "rawasync": (root / "async.bin", "rawasync", lay64),
            "parquet": (pq_list, "parquet", LAYOUT)}


def _mutate_bytes(data: bytes, op: str, a: int, b: int) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    i = a % len(buf)
    if op == "flip":
        buf[i] ^= 1 << (b % 8)
    elif op == "truncate":
        del buf[i:]
    elif op == "insert":
        buf[i:i] = bytes([b % 256]) * (1 + b % 5)
    elif op == "delete":
        del buf[i:i + 1 + b % 7]
    elif op == "int32":  # a hostile int32 at a 4-byte boundary (headers, nnz, lengths)
        j = (i // 4) * 4
        buf[j:j + 4] = struct.pack("<i", HOSTILE_INTS[b % len(HOSTILE_INTS)])
    elif op == "int64":
        j = (i // 8) * 8
        buf[j:j + 8] = struct.pack("<q", HOSTILE_INTS[b % len(HOSTILE_INTS)])[:len(buf) - j]
    return bytes(buf)


def _mutate_parquet(root: Path, op: str, a: int, b: int) -> None:
    meta_path = root / "_metadata.json"
    meta = json.loads(meta_path.read_text())
    groups = ["labels", "conts", "cats"]
    g = groups[a % 3]
    if op in ("flip", "insert", "delete"):  # column choices and row counts
        if meta[g]:
            meta[g][b % len(meta[g])]["index"] = HOSTILE_INTS[b % len(HOSTILE_INTS)] % 12
    elif op == "int32":
        meta["file_stats"][a % 2]["num_rows"] = HOSTILE_INTS[b % len(HOSTILE_INTS)]
    elif op == "int64":
        if meta[g]:
            del meta[g][b % len(meta[g])]
    else:  # truncate: cut a data file or the metadata
        target = root / ("part_0.parquet" if b % 2 else "_metadata.json")
        data = target.read_bytes()
        target.write_bytes(data[:a % max(1, len(data))])
        if target.name == "_metadata.json":
            return
    meta_path.write_text(json.dumps(meta))


def _check_batches(batches, layout: DataLayout) -> None:
    for bt in batches:
        n = len(bt)
        assert bt.inputs[layout.dense_name].shape == (n, layout.dense_dim)
        assert bt.inputs[layout.dense_name].dtype == np.float32
        for s in layout.sparse:
            assert bt.inputs[s.name].shape == (n, s.slot_num, s.max_nnz)
            assert bt.inputs[s.name].dtype == np.int64
        if bt.labels is not None:
            assert [v.shape for v in bt.labels.values()] == [(n, d) for d in layout.label_dims]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


@seed(FUZZ_SEED)
@settings(max_examples=READER_EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=list(HealthCheck))
@given(base=st.sampled_from(["norm:plain", "norm:framed", "raw", "rawasync", "parquet"]),
       op=st.sampled_from(["flip", "truncate", "insert", "delete", "int32", "int64"]),
       a=st.integers(0, 1 << 20), b=st.integers(0, 1 << 20),
       batch=st.sampled_from([1, 3, 16, 64]), key_type=st.sampled_from([None, None, "I64"]))
def test_readers_fail_typed_or_decode(bases, base, op, a, b, batch, key_type):
    src, fmt, layout = bases[base]
    if key_type:
        layout = layout.with_options(key_type=key_type)
    work = Path(tempfile.mkdtemp(prefix="fuzzdata"))
    try:
        if fmt == "parquet":
            shutil.copytree(src.parent, work / "pq")
            _mutate_parquet(work / "pq", op, a, b)
            target = work / "pq" / "_file_list.txt"
            (work / "pq" / "_file_list.txt").write_text(
                "2\n" + "".join(f"{work / 'pq' / f'part_{i}.parquet'}\n" for i in range(2)))
        else:
            target = work / src.name
            target.write_bytes(_mutate_bytes(src.read_bytes(), op, a, b))
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIME_LIMIT)
        try:
            batches = list(open_dataset(target, fmt, layout, batch))
            _check_batches(batches, layout)
            event(f"{base}: decoded")
        except ConversionError as e:
            assert e.file, f"error without a file: {e}"
            event(f"{base}: {type(e).__name__}")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    finally:
        shutil.rmtree(work, ignore_errors=True)
