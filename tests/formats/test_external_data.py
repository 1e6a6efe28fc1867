"""External data: one aligned .onnx.data file, streamed tables, atomic output."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hugectr2onnx import converter
from hugectr2onnx.loader import load_model
from hugectr2onnx.errors import OutputError, SparseModelError, UsageError
from hugectr2onnx.hugectr.sparse import check_keys
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model
from hugectr2onnx.ir import EmbeddingTable
from hugectr2onnx.onnx_backend import export, external
from hugectr2onnx.onnx_backend.external import DataFile, ZeroRowTable, file_region
from hugectr2onnx.progress import progress_bar
from hugectr2onnx.verify import compare, random_feeds

VEC = 64
KEYS = 200_000  # a 51 MB table: big enough for chunked copies, fast enough for the suite


def _builder(vec=VEC, slots=3, nnz=2):
    return (ModelBuilder().input(dense_dim=4, sparse=[dict(top="s", slot_num=slots,
                                                           nnz_per_slot=nnz)])
            .embedding(bottom="s", top="e", vec_size=vec)
            .dense("Reshape", "e", "r", leading_dim=slots * vec)
            .dense("Concat", ["r", "dense"], "c")
            .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


@pytest.fixture(scope="module")
def big_artifacts(tmp_path_factory):
    rng = np.random.default_rng(7)
    keys = rng.permutation(3 * KEYS)[:KEYS].astype(np.int64)
    vectors = rng.standard_normal((KEYS, VEC), dtype=np.float32)
    d = tmp_path_factory.mktemp("big")
    return save_model(_builder(), d / "in", tables=[{"keys": keys, "vectors": vectors}])


def _external_entries(path):
    m = onnx.load(str(path), load_external_data=False)
    out = {}
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            out[t.name] = {e.key: e.value for e in t.external_data}
    return out


def _convert(art, out, **kw):
    return converter.convert(str(out), art.graph_config, art.dense_model, True,
                             art.sparse_models, art.ntp_file, **kw)


def test_low_threshold_streams_table_to_aligned_data_file(big_artifacts, tmp_path):
    out = tmp_path / "model.onnx"
    report = _convert(big_artifacts, out, external_threshold=1 << 20)
    data = tmp_path / "model.onnx.data"
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "model.onnx.data"]  # no temp files
    assert report.files == [str(data), str(out)]
    assert out.stat().st_size < 100_000  # the table is not inline
    entries = _external_entries(out)
    assert entries, "nothing went to the data file"
    for e in entries.values():
        assert e["location"] == "model.onnx.data"
        offset, length = int(e["offset"]), int(e["length"])
        assert offset % 4096 == 0
        assert length < (1 << 20) or offset % 65536 == 0
        assert offset + length <= data.stat().st_size
    table = next(e for n, e in entries.items() if n.endswith(".table"))
    rows = np.fromfile(data, dtype="<f4", count=(KEYS + 1) * VEC,
                       offset=int(table["offset"])).reshape(KEYS + 1, VEC)
    src = np.fromfile(os.path.join(big_artifacts.sparse_models[0], "emb_vector"), dtype="<f4")
    np.testing.assert_array_equal(rows[0], 0)
    np.testing.assert_array_equal(rows[1:], src.reshape(KEYS, VEC))

    onnx.checker.check_model(str(out), full_check=True)
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    graph = load_model(big_artifacts.graph_config, big_artifacts.dense_model,
                       big_artifacts.sparse_models, big_artifacts.ntp_file)
    feeds = random_feeds(graph, 32, convert_embedding=True, seed=3)
    result = compare(graph, out, feeds)
    assert result.ok, result.summary()


def test_auto_stays_inline_below_threshold(big_artifacts, tmp_path):
    out = tmp_path / "model.onnx"
    _convert(big_artifacts, out)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
    assert not _external_entries(out)


def test_always_on_small_model_roundtrips(roundtrip):
    _, _, out, _ = roundtrip(_builder(vec=8), convert_embedding=True, external_data="always")
    assert (out.parent / "model.onnx.data").is_file()
    assert _external_entries(out)


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_copy_paths_write_same_bytes(tmp_path, kernel_copy):
    src = tmp_path / "emb_vector"
    vectors = np.arange(3 * 5000 * 4, dtype="<f4").reshape(-1, 4)
    vectors.tofile(src)
    mm = np.memmap(src, dtype="<f4", mode="r", shape=vectors.shape)[5000:]  # a view, offset 80000
    assert file_region(mm) == (str(src), 80000, mm.nbytes)
    with open(tmp_path / "out", "w+b", buffering=0) as f:
        out = DataFile(f.fileno(), "out", kernel_copy=kernel_copy)
        out.write_bytes(b"x")
        proto = out.add("t", ZeroRowTable(mm))
        out.finish()
    entry = {e.key: int(e.value) for e in proto.external_data if e.key != "location"}
    assert entry == {"offset": 4096, "length": (10000 + 1) * 16}
    got = np.fromfile(tmp_path / "out", dtype="<f4", offset=4096).reshape(-1, 4)
    np.testing.assert_array_equal(got[0], [0, 0, 0, 0])
    np.testing.assert_array_equal(got[1:], vectors[5000:])


def test_strided_memmap_is_copied_in_chunks(tmp_path, monkeypatch):
    # legacy single-file tables are record views: no file region, chunked copies instead
    monkeypatch.setattr(external, "CHUNK", 4096)
    rec = np.zeros(3000, dtype=[("key", "<i8"), ("vec", "<f4", (8,))])
    rec["vec"] = np.arange(3000 * 8).reshape(3000, 8)
    rec.tofile(tmp_path / "legacy")
    vec = np.memmap(tmp_path / "legacy", dtype=rec.dtype, mode="r")["vec"]
    assert file_region(vec) is None
    with open(tmp_path / "out", "w+b", buffering=0) as f:
        DataFile(f.fileno(), "out").add("t", ZeroRowTable(vec))
    got = np.fromfile(tmp_path / "out", dtype="<f4").reshape(-1, 8)
    np.testing.assert_array_equal(got, np.vstack([np.zeros((1, 8)), rec["vec"]]))


def test_zero_row_table_as_array():
    t = ZeroRowTable(np.array([[1, 2], [3, 4]], np.float32))
    assert t.shape == (3, 2) and t.nbytes == 24
    np.testing.assert_array_equal(np.asarray(t), [[0, 0], [1, 2], [3, 4]])


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_interrupted_write_leaves_nothing_and_keeps_old_model(big_artifacts, tmp_path,
                                                              monkeypatch, error):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"old model")
    calls = []

    def failing_write(self, data):
        calls.append(len(memoryview(data)))
        if len(calls) == 3:
            raise error
        original(self, data)

    original = DataFile.write_bytes
    monkeypatch.setattr(DataFile, "write_bytes", failing_write)
    monkeypatch.setattr(DataFile, "_kernel_copy", lambda self, *a: 0)  # go through writes
    expected = KeyboardInterrupt if error is KeyboardInterrupt else OutputError
    with pytest.raises(expected):
        _convert(big_artifacts, out, external_data="always")
    assert len(calls) == 3
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
    assert out.read_bytes() == b"old model"


def test_never_refuses_a_model_over_the_protobuf_limit(big_artifacts, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "PROTOBUF_LIMIT", 1 << 20)
    with pytest.raises(UsageError, match="2 GiB"):
        _convert(big_artifacts, tmp_path / "model.onnx", external_data="never")
    assert os.listdir(tmp_path) == []


def test_unknown_mode_is_a_usage_error(big_artifacts, tmp_path):
    with pytest.raises(UsageError, match="external_data"):
        _convert(big_artifacts, tmp_path / "model.onnx", external_data="sometimes")


def test_progress_bar_silent_without_terminal(capsys):
    with progress_bar(100, "x") as bar:  # pytest's stderr is not a terminal
        bar.update(50)
    assert capsys.readouterr().err == ""
    tqdm = pytest.importorskip("tqdm")
    with progress_bar(100, "writing", enabled=True) as bar:
        assert isinstance(bar, tqdm.tqdm)
        bar.update(100)
    assert "writing" in capsys.readouterr().err


def test_check_keys_names_duplicate_rows():
    class Emb:
        localized = False

    table = EmbeddingTable(keys=np.array([5, 9, 7, 9], np.int64), vectors=np.zeros((4, 2)),
                           source="t")
    with pytest.raises(SparseModelError, match=r"key 9 .*rows 1 and 3"):
        check_keys(table, Emb(), None)
    table.keys = np.array([5, 9, 7], np.int64)
    assert check_keys(table, Emb(), None) == 1


def _rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_scanning_and_streaming_a_table_keep_rss_flat(tmp_path, kernel_copy):
    from hugectr2onnx.hugectr.sparse import count_nonfinite

    rows = (96 << 20) // 256
    np.full((rows, 64), 0.5, dtype="<f4").tofile(tmp_path / "emb_vector")
    vec = np.memmap(tmp_path / "emb_vector", dtype="<f4", mode="r", shape=(rows, 64))
    before = _rss_mb()
    assert count_nonfinite(vec) == 0
    with open(tmp_path / "out", "w+b", buffering=0) as f:
        DataFile(f.fileno(), "out", kernel_copy=kernel_copy).add("t", ZeroRowTable(vec))
        DataFile(f.fileno(), "out").add("t", ZeroRowTable(vec[:, :32]))  # strided: chunked
    assert _rss_mb() - before < 48  # a 96 MB table; the copy buffer is 16 MB


@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError])
def test_failure_while_tables_are_staged_leaves_nothing(big_artifacts, tmp_path, monkeypatch,
                                                        error):
    """The table copy runs on a thread from the start; a failure in the main thread's index
    build stops it and removes its temporary file."""
    out = tmp_path / "model.onnx"
    out.write_bytes(b"old model")
    seen = []

    def failing_build(*a, **kw):
        seen.extend(p.name for p in tmp_path.iterdir())  # the staged temp file exists now
        raise error

    monkeypatch.setattr(converter, "build_model", failing_build)
    with pytest.raises(error):
        _convert(big_artifacts, out, external_data="always")
    assert any(n.startswith(".model.onnx.data.") for n in seen), seen
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
    assert out.read_bytes() == b"old model"


def test_staged_and_unstaged_tables_give_the_same_model(big_artifacts, tmp_path, monkeypatch):
    """Staging puts the tables first in the data file; the tensors are the same."""
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    _convert(big_artifacts, a, external_data="always")
    monkeypatch.setattr(converter, "_stage_tables", lambda *args: None)
    _convert(big_artifacts, b, external_data="always")
    assert _external_entries(a)["e.table"]["offset"] == "0"
    assert _external_entries(b)["e.table"]["offset"] != "0"
    ma, mb = onnx.load(str(a)), onnx.load(str(b))
    ta = {t.name: onnx.numpy_helper.to_array(t) for t in ma.graph.initializer}
    tb = {t.name: onnx.numpy_helper.to_array(t) for t in mb.graph.initializer}
    assert ta.keys() == tb.keys()
    for name in ta:
        np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)
    assert ma.graph.node == mb.graph.node


def test_cancelled_copy_raises_after_the_current_chunk(tmp_path):
    import threading
    cancel = threading.Event()
    with open(tmp_path / "out", "w+b", buffering=0) as f:
        out = DataFile(f.fileno(), "out", cancel=cancel)
        out.add("a", np.ones(10, np.float32))  # not cancelled: written
        cancel.set()
        with pytest.raises(external.Cancelled):
            out.add("b", np.ones(10, np.float32))


# ------------------------------------------------------------------ replacing a pair atomically
def _small_pair(tmp_path, seed):
    art = save_model(_builder(vec=8), tmp_path / f"in{seed}", seed=seed)
    return art


def _predict(out, art, seed=5):
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(graph, 8, convert_embedding=True, seed=seed)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return sess.run(["label"], {k: feeds[k] for k in ("dense", "s")})[0], graph, feeds


def test_replacing_a_pair_never_overwrites_the_old_data(tmp_path):
    """Each new pair gets a data file the old .onnx does not use; the old one goes after."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "model.onnx"
    names = []
    for seed in (1, 2, 3):
        art = _small_pair(tmp_path, seed)
        _convert(art, out, external_data="always")
        files = sorted(os.listdir(out_dir))
        assert len(files) == 2 and files[0] == "model.onnx", files
        locations = {e["location"] for e in _external_entries(out).values()}
        assert locations == {files[1]}
        names.append(files[1])
        _, graph, feeds = _predict(out, art)
        result = compare(graph, out, feeds)
        assert result.ok, result.summary()
    # the plain name while it is free, a random one while the old pair holds it
    assert names[0] == names[2] == "model.onnx.data" and names[1] != names[0]
    assert names[1].startswith("model.onnx.") and names[1].endswith(".data")


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_between_data_and_onnx_rename_keeps_the_old_pair(tmp_path, monkeypatch, failure):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "model.onnx"
    old = _small_pair(tmp_path, 1)
    _convert(old, out, external_data="always")
    before = {n: (out_dir / n).read_bytes() for n in os.listdir(out_dir)}
    want, _, _ = _predict(out, old)

    real_replace = os.replace
    renamed = []

    def replace(src, dst):
        if str(dst) == str(out):  # the .onnx: fail after the new data file is in place
            assert renamed, "the data file is renamed first"
            raise failure
        renamed.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(export.os, "replace", replace)
    new = _small_pair(tmp_path, 2)
    with pytest.raises(OutputError if isinstance(failure, OSError) else KeyboardInterrupt):
        _convert(new, out, external_data="always")
    monkeypatch.undo()
    assert {n: (out_dir / n).read_bytes() for n in os.listdir(out_dir)} == before
    got, _, _ = _predict(out, old)
    np.testing.assert_array_equal(got, want)  # the old pair still loads and predicts the same


def test_an_inline_model_replacing_an_external_pair_removes_its_data(tmp_path):
    out = tmp_path / "model.onnx"
    _convert(_small_pair(tmp_path / "a", 1), out, external_data="always")
    assert (tmp_path / "model.onnx.data").exists()
    _convert(_small_pair(tmp_path / "b", 2), out, external_data="never")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["model.onnx"]
