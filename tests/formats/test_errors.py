"""Corrupt, truncated and hostile inputs: each fails with one typed error that names the file
and the field, layer or byte offset, and leaves no output behind."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from hugectr2onnx import converter
from hugectr2onnx.cli import INTERNAL_ERROR, main
from hugectr2onnx.errors import (GraphProblemsError, ConversionError, DenseModelError, GraphConfigError,
                                 GraphStructureError, InputFileError, NonFiniteWeightError,
                                 NtpError, OutputError, SparseModelError, UnsupportedLayerError,
                                 UsageError)
from hugectr2onnx.hugectr.graph_json import parse_graph
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model
from hugectr2onnx.layers.base import LayerHandler, Registry, default_registry


def _mlp(dense_dim=5):
    return (ModelBuilder().input(dense_dim=dense_dim)
            .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 3})
            .dense("ReLU", "fc1", "relu1")
            .dense("InnerProduct", "relu1", "fc2", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))


def _emb(type="DistributedSlotSparseEmbeddingHash", vec=4, slots=3):
    return (ModelBuilder().input(dense_dim=2, sparse=[dict(top="s", slot_num=slots)])
            .embedding(bottom="s", top="e", vec_size=vec, type=type, num_gpus=2)
            .dense("Reshape", "e", "r", leading_dim=slots * vec)
            .dense("Concat", ["r", "dense"], "c")
            .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


def _bn():
    return (ModelBuilder().input(dense_dim=3)
            .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 2})
            .dense("BatchNorm", "fc1", "bn1", bn_param={"factor": 1.0, "eps": 1e-5})
            .dense("InnerProduct", "bn1", "fc2", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))


def convert(art, out: Path, embed=None, **kw):
    embed = bool(art.sparse_models) if embed is None else embed
    return converter.convert(str(out), art.graph_config, art.dense_model, embed,
                             art.sparse_models if embed else None, art.ntp_file, **kw)


def expect(exc_type, art, tmp_path, *fragments, where=None, **kw):
    """Convert, expect ``exc_type`` whose message holds every fragment; nothing written."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    with pytest.raises(exc_type) as info:
        convert(art, out_dir / "m.onnx", **kw)
    e = info.value
    text = str(e)
    for f in fragments:
        assert f in text, f"{f!r} not in {text!r}"
    if where is not None:
        assert e.where is not None and where in e.where, e.where
    assert list(out_dir.iterdir()) == []
    return e


def edit_graph(art, fn):
    doc = json.loads(Path(art.graph_config).read_text())
    fn(doc)
    Path(art.graph_config).write_text(json.dumps(doc))


# ------------------------------------------------------------------------------ dense file
def test_truncated_dense_file_names_the_weight_it_ends_in(tmp_path):
    art = save_model(_mlp(), tmp_path)
    data = Path(art.dense_model).read_bytes()  # fc1 W 5x3, b 3, fc2 W 3x1, b 1: 88 bytes
    Path(art.dense_model).write_bytes(data[:70])
    e = expect(DenseModelError, art, tmp_path, "file is 70 bytes but the graph needs 88",
               "(top fc1) weight b [1, 3], which spans bytes 60-72", "truncated",
               where="byte offset 70")
    assert e.file == art.dense_model


def test_over_long_dense_file_counts_the_extra_bytes(tmp_path):
    art = save_model(_mlp(), tmp_path)
    with open(art.dense_model, "ab") as f:
        f.write(b"\0" * 12)
    expect(DenseModelError, art, tmp_path, "12 extra bytes start at offset 88", art.dense_model,
           where="byte offset 88")


def test_dense_size_not_a_multiple_of_four(tmp_path):
    art = save_model(_mlp(), tmp_path)
    with open(art.dense_model, "ab") as f:
        f.write(b"\1")
    expect(DenseModelError, art, tmp_path, "file is 89 bytes", "1 extra bytes")


def test_dense_file_of_another_model(tmp_path):
    """InnerProduct input width 5 in the graph, 6 in the run that wrote the dense file."""
    art = save_model(_mlp(5), tmp_path / "a")
    other = save_model(_mlp(6), tmp_path / "b")
    os.replace(other.dense_model, art.dense_model)
    expect(DenseModelError, art, tmp_path, "graph needs 88", "another model")


def test_dense_file_missing_or_a_directory(tmp_path):
    art = save_model(_mlp(), tmp_path)
    os.unlink(art.dense_model)
    expect(InputFileError, art, tmp_path, "dense model does not exist", art.dense_model)
    os.mkdir(art.dense_model)
    expect(InputFileError, art, tmp_path, "is a directory, expected a file")


def test_fifo_is_refused_instead_of_hanging(tmp_path):
    art = save_model(_mlp(), tmp_path)
    os.unlink(art.graph_config)
    os.mkfifo(art.graph_config)
    expect(InputFileError, art, tmp_path, "not a regular file", art.graph_config)


# ------------------------------------------------------------------------------ graph JSON
def test_malformed_json_gives_line_and_byte_offset(tmp_path):
    art = save_model(_mlp(), tmp_path)
    text = Path(art.graph_config).read_text()
    Path(art.graph_config).write_text(text[:40])
    expect(GraphConfigError, art, tmp_path, "malformed JSON", art.graph_config,
           where="byte offset")


def test_non_utf8_json(tmp_path):
    art = save_model(_mlp(), tmp_path)
    Path(art.graph_config).write_bytes(b'{"layers": ["\xff"]}')
    expect(InputFileError, art, tmp_path, "not UTF-8 text (byte offset 13)")


@pytest.mark.parametrize("value, message", [
    ("abc", "must be an integer, found 'abc'"),
    (None, "must be an integer, found None"),
    ([], "must be an integer, found []"),
    ({}, "must be an integer, found {}"),
    (-5, "= -5 is outside"),
    (0, "= 0 is outside"),
    (1e300, "is outside"),
    (2 ** 70, f"= {2 ** 70} is outside"),
    (10 ** 15, "is outside"),
    (True, "must be an integer, found True"),
    (2.5, "must be an integer, found 2.5"),
])
def test_mistyped_or_absurd_field_names_layer_and_field(tmp_path, value, message):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][1]["fc_param"].update(num_output=value))
    expect(GraphConfigError, art, tmp_path, message, where="layers[1] (InnerProduct)"
           ".fc_param.num_output")


def test_integer_with_thousands_of_digits(tmp_path):
    art = save_model(_mlp(), tmp_path)
    text = Path(art.graph_config).read_text().replace('"num_output": 3', '"num_output": '
                                                        + "9" * 5000)
    Path(art.graph_config).write_text(text)
    expect(GraphConfigError, art, tmp_path, "malformed JSON", "digits")


def test_missing_field(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][0]["dense"].pop("dense_dim"))
    expect(GraphConfigError, art, tmp_path, "missing field 'dense.dense_dim'",
           where="layers[0] (Data).dense.dense_dim")


@pytest.mark.parametrize("field, value, message", [
    ("slot_num", 10 ** 15, "is outside"),
    ("slot_num", 0, "is outside"),
    ("nnz_per_slot", [1, 1], "nnz_per_slot has 2 entries, slot_num is 3"),
    ("nnz_per_slot", [1, -1, 1], "is outside"),
    ("nnz_per_slot", [1, 1, 10 ** 12], "is outside"),
    ("is_fixed_length", "yes", "must be true or false"),
    ("top", "", "non-empty tensor name"),
])
def test_data_block_sparse_fields(tmp_path, field, value, message):
    art = save_model(_emb(), tmp_path)
    edit_graph(art, lambda d: d["layers"][0]["sparse"][0].update({field: value}))
    expect(GraphConfigError, art, tmp_path, message, where=f"sparse[0].{field}")


@pytest.mark.parametrize("field, value, message", [
    ("embedding_vec_size", 10 ** 15, "is outside"),
    ("max_vocabulary_size_global", -1, "is outside"),
    ("combiner", 0.0, "combiner must be 'sum' or 'mean'"),
    ("combiner", True, "combiner must be 'sum' or 'mean'"),
    ("combiner", "max", "combiner must be 'sum' or 'mean'"),
])
def test_embedding_fields(tmp_path, field, value, message):
    art = save_model(_emb(), tmp_path)
    edit_graph(art, lambda d: d["layers"][1]["sparse_embedding_hparam"].update({field: value}))
    expect(GraphConfigError, art, tmp_path, message,
           where="layers[1] (DistributedSlotSparseEmbeddingHash)")


def peak_bytes(fn) -> int:
    """Peak Python-allocated bytes while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_vocabulary_capacity_is_not_allocated(tmp_path):
    """max_vocabulary_size_global is a capacity: 10^15 converts without allocating it."""
    art = save_model(_emb(), tmp_path)
    edit_graph(art, lambda d: d["layers"][1]["sparse_embedding_hparam"].update(
        max_vocabulary_size_global=10 ** 15))
    assert peak_bytes(lambda: convert(art, tmp_path / "m.onnx")) < 50 << 20


def test_huge_claimed_dimension_fails_before_allocating(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][0]["dense"].update(dense_dim=2 ** 31 - 1))
    assert peak_bytes(lambda: expect(DenseModelError, art, tmp_path, "graph needs")) < 50 << 20


def test_unknown_layer_types_listed_at_once(tmp_path):
    art = save_model(_mlp(), tmp_path)

    def rename(d):
        d["layers"][1]["type"] = "Frobnicate"
        d["layers"][2]["type"] = "Quux"
        d["layers"][3]["type"] = "Frobnicate"
    edit_graph(art, rename)
    e = expect(UnsupportedLayerError, art, tmp_path, "2 unsupported layer type(s)",
               "Frobnicate (layers 1, 3)", "Quux (layers 2)")
    assert e.types == ["Frobnicate", "Quux"]


def test_dangling_tensor(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][2].update(bottom="nowhere"))
    expect(GraphStructureError, art, tmp_path, "reads tensor 'nowhere', which nothing produces",
           where="layers[2].bottom")


def test_duplicated_tensor_name(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][2].update(top="fc1"))
    e = expect(GraphProblemsError, art, tmp_path, "2 problems",
               "tensor 'fc1' is produced more than once", "reads tensor 'relu1', which nothing")
    assert [type(p) for p in e.problems] == [GraphStructureError] * 2


def test_cycle(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][1].update(bottom="relu1"))
    expect(GraphStructureError, art, tmp_path, "cycle", "layer #1 InnerProduct",
           "layer #2 ReLU")


def test_layer_reading_a_label(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][2].update(bottom="label"))
    expect(GraphStructureError, art, tmp_path, "reads label tensor 'label'")


def test_loss_whose_label_is_no_label(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"][4].update(bottom=["fc2", "relu1"]))
    expect(GraphStructureError, art, tmp_path, "reads 'relu1' as its label")


def test_shape_inconsistent_layers(tmp_path):
    art = save_model(_emb(), tmp_path)
    edit_graph(art, lambda d: d["layers"][3].update(bottom=["e", "dense"]))  # 3-D with 2-D
    expect(GraphStructureError, art, tmp_path, "(inputs [B, 3, 4], [B, 2])",
           where="layers[3] (Concat)")


def test_embedding_block_among_dense_layers(tmp_path):
    art = save_model(_emb(), tmp_path)
    edit_graph(art, lambda d: d["layers"].append(d["layers"].pop(1)))
    expect(GraphStructureError, art, tmp_path, "after the dense layers",
           where="layers[5].type")


def test_unforeseen_handler_exception_becomes_typed_error():
    """A handler that trips over a hostile value (here a KeyError) names the layer."""
    class Fragile(LayerHandler):
        types = ("Fragile",)

        def parse(self, p, layer):
            return {"n": {}["missing"]}

    registry = Registry([Fragile(), default_registry().get("BinaryCrossEntropyLoss")])
    doc = {"layers": [{"type": "Data", "label": {"top": "label", "label_dim": 1},
                       "dense": {"top": "dense", "dense_dim": 1}, "sparse": []},
                      {"type": "Fragile", "bottom": "dense", "top": "x"}]}
    with pytest.raises(GraphConfigError) as info:
        parse_graph(doc, "g.json", registry)
    assert "KeyError" in str(info.value) and info.value.where == "layers[1] (Fragile)"


def test_deep_nesting(tmp_path):
    art = save_model(_mlp(), tmp_path)
    Path(art.graph_config).write_text("[" * 100000 + "]" * 100000)
    expect(GraphConfigError, art, tmp_path, "nested too deeply")


# ------------------------------------------------------------------------------ ntp file
def test_ntp_entry_count_and_values(tmp_path):
    art = save_model(_bn(), tmp_path)
    doc = json.loads(Path(art.ntp_file).read_text())
    Path(art.ntp_file).write_text(json.dumps({"layers": doc["layers"] * 2}))
    expect(NtpError, art, tmp_path, "2 entries, but the graph has 1", art.ntp_file)
    doc["layers"][0]["var"] = doc["layers"][0]["var"][:1]
    Path(art.ntp_file).write_text(json.dumps(doc))
    expect(NtpError, art, tmp_path, "'var' has 1 values", where="layers[0].var")
    doc["layers"][0]["var"] = ["x", 1]
    Path(art.ntp_file).write_text(json.dumps(doc))
    expect(NtpError, art, tmp_path, "must be a list of numbers")


def test_ntp_nan_and_huge_values_warn_or_fail_with_strict(tmp_path):
    art = save_model(_bn(), tmp_path)
    text = Path(art.ntp_file).read_text()
    doc = json.loads(text)
    n = len(doc["layers"][0]["mean"])
    mean = ", ".join(["NaN"] + ["1" + "0" * 400] * (n - 1))
    Path(art.ntp_file).write_text(text.replace(text[text.index('"mean": [') + 9:
                                                    text.index("]", text.index('"mean"'))],
                                               mean))
    report = convert(art, tmp_path / "m.onnx")
    assert any("mean has 2 NaN/Inf" in w for w in report.warnings), report.warnings
    expect(NonFiniteWeightError, art, tmp_path, "NaN/Inf", strict_finite=True)


def test_missing_ntp_for_batchnorm(tmp_path):
    art = save_model(_bn(), tmp_path)
    art.ntp_file = None
    expect(NtpError, art, tmp_path, "needs running statistics", art.graph_config,
           where="layers[2]")


# ------------------------------------------------------------------------------ sparse tables
def test_key_and_vector_lengths_disagree(tmp_path):
    art = save_model(_emb(), tmp_path)
    key = Path(art.sparse_models[0]) / "key"
    key.write_bytes(key.read_bytes()[:-8])
    expect(SparseModelError, art, tmp_path, "expected 199 keys x 4 floats",
           str(Path(art.sparse_models[0]) / "emb_vector"))


def test_key_file_not_whole_int64s(tmp_path):
    art = save_model(_emb(), tmp_path)
    key = Path(art.sparse_models[0]) / "key"
    key.write_bytes(key.read_bytes()[:-3])
    expect(SparseModelError, art, tmp_path, "not a whole number of int64 keys",
           where="byte offset 1592")


def test_wrong_vector_size(tmp_path):
    art = save_model(_emb(vec=4), tmp_path)
    other = save_model(_emb(vec=8), tmp_path / "other")
    os.replace(Path(other.sparse_models[0]) / "emb_vector",
               Path(art.sparse_models[0]) / "emb_vector")
    expect(SparseModelError, art, tmp_path, "holds 8 floats per key",
           "embedding_vec_size 4")


def test_fp16_vectors(tmp_path):
    art = save_model(_emb(vec=4), tmp_path)
    vec = Path(art.sparse_models[0]) / "emb_vector"
    vec.write_bytes(np.fromfile(vec, np.float32).astype(np.float16).tobytes())
    expect(SparseModelError, art, tmp_path, "fp16")


def test_empty_table(tmp_path):
    art = save_model(_emb(), tmp_path)
    for name in ("key", "emb_vector"):
        (Path(art.sparse_models[0]) / name).write_bytes(b"")
    expect(SparseModelError, art, tmp_path, "no keys")


@pytest.mark.parametrize("lookup", ["auto", "hash"])
def test_duplicate_keys_in_distributed_table(tmp_path, lookup):
    """With ``hash`` the separate key check is skipped; the index build finds the repeat and
    the converter falls back to the full check, which names both rows."""
    art = save_model(_emb(), tmp_path)
    key = Path(art.sparse_models[0]) / "key"
    keys = np.fromfile(key, np.int64)
    keys[7] = keys[3]
    keys.tofile(key)
    expect(SparseModelError, art, tmp_path, f"key {keys[3]} appears more than once",
           "rows 3 and 7", lookup=lookup)


def test_localized_slot_ids_length_and_range(tmp_path):
    art = save_model(_emb("LocalizedSlotSparseEmbeddingHash"), tmp_path)
    slot = Path(art.sparse_models[0]) / "slot_id"
    ids = np.fromfile(slot, np.uint64)
    ids[:-1].tofile(slot)
    expect(SparseModelError, art, tmp_path, "expected 200 uint64 slot ids", str(slot))
    ids[5] = 3  # the input has 3 slots: 0..2
    ids.tofile(slot)
    expect(SparseModelError, art, tmp_path, "slot id 3 at row 5", where="slot_id row 5")
    os.unlink(slot)
    expect(InputFileError, art, tmp_path, "embedding slot ids does not exist")


def test_legacy_file_not_whole_records(tmp_path):
    art = save_model(_emb(), tmp_path, legacy_sparse=True, key_type="I32")
    with open(art.sparse_models[0], "ab") as f:
        f.write(b"\0" * 5)
    expect(SparseModelError, art, tmp_path, "not a whole number of 20-byte records",
           "check key_type", key_type="I32")
    expect(SparseModelError, art, tmp_path, "24-byte records", key_type="I64")


def test_table_nan_warns_or_fails_with_strict(tmp_path):
    art = save_model(_emb(), tmp_path)
    vec = Path(art.sparse_models[0]) / "emb_vector"
    v = np.fromfile(vec, np.float32)
    v[[1, 9]] = [np.nan, np.inf]
    v.tofile(vec)
    report = convert(art, tmp_path / "m.onnx")
    assert any("2 NaN/Inf" in w for w in report.warnings), report.warnings
    expect(NonFiniteWeightError, art, tmp_path, "embedding #0", str(art.sparse_models[0]),
           strict_finite=True)


def test_sparse_path_missing(tmp_path):
    art = save_model(_emb(), tmp_path)
    art.sparse_models = [str(tmp_path / "nope")]
    expect(InputFileError, art, tmp_path, "sparse model of embedding #0 does not exist")


def test_dense_nan_warns_or_fails_with_strict(tmp_path):
    art = save_model(_mlp(), tmp_path)
    w = np.fromfile(art.dense_model, np.float32)
    w[0] = np.nan
    w.tofile(art.dense_model)
    report = convert(art, tmp_path / "m.onnx")
    assert any("weight W has 1 NaN/Inf" in x for x in report.warnings)
    expect(NonFiniteWeightError, art, tmp_path, "layer #1 InnerProduct", strict_finite=True)


# ------------------------------------------------------------------------------ output paths
def test_output_directory_missing_or_path_is_directory(tmp_path):
    art = save_model(_mlp(), tmp_path)
    with pytest.raises(OutputError, match="output directory does not exist"):
        convert(art, tmp_path / "no" / "m.onnx")
    with pytest.raises(OutputError, match="output path is a directory"):
        convert(art, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        convert(art, blocker / "m.onnx")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    art = save_model(_mlp(), tmp_path)
    out = tmp_path / "out"
    out.mkdir()

    def refuse(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match="No space left"):
        convert(art, out / "m.onnx")
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------------------ CLI
def _cli(art, out, *extra):
    return main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
                 "-o", str(out), *extra])


@pytest.mark.parametrize("breaks, code", [("dense", 3), ("output", 4), ("opset", 2)])
def test_cli_exit_codes_and_one_line(tmp_path, capsys, breaks, code):
    art = save_model(_mlp(), tmp_path)
    out = tmp_path / "m.onnx"
    extra = []
    if breaks == "dense":
        Path(art.dense_model).write_bytes(b"\0" * 4)
    elif breaks == "output":
        out = tmp_path / "missing" / "m.onnx"
    else:
        extra = ["--opset", "99"]
    assert _cli(art, out, *extra) == code
    err = capsys.readouterr().err
    assert err.startswith("hugectr2onnx: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_internal_error_is_distinct(tmp_path, capsys, monkeypatch):
    art = save_model(_mlp(), tmp_path)

    def broken(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(converter, "convert", broken)
    assert _cli(art, tmp_path / "m.onnx") == INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err
    assert _cli(art, tmp_path / "m.onnx", "--debug") == INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_every_error_class_is_a_conversion_error():
    for cls in (InputFileError, GraphConfigError, GraphStructureError, UnsupportedLayerError,
                DenseModelError, NtpError, SparseModelError, NonFiniteWeightError, OutputError,
                UsageError):
        assert issubclass(cls, ConversionError)


def test_unknown_types_reported_first_with_other_errors_and_listing_is_bounded(tmp_path):
    art = save_model(_mlp(), tmp_path)

    def damage(d):
        d["layers"][1]["fc_param"]["num_output"] = "abc"  # a GraphConfigError, reported too
        d["layers"] += [{"type": f"T{k}", "bottom": "x", "top": f"y{k}"} for k in range(30)]
        d["layers"] += [{"type": "T0", "bottom": "x", "top": f"z{k}"} for k in range(30)]
    edit_graph(art, damage)
    e = expect(GraphProblemsError, art, tmp_path, "(1) [layers] 30 unsupported layer type(s)",
               "and 10 more types", "and 11 more)", "(2) [layers[1] (InnerProduct)")
    assert len(e.types) == 30 and len(str(e)) < 2000
    assert isinstance(e.problems[0], UnsupportedLayerError) and len(e.problems) == 2


def test_layer_reading_a_loss_value(tmp_path):
    art = save_model(_mlp(), tmp_path)
    edit_graph(art, lambda d: d["layers"].append(
        {"type": "BinaryCrossEntropyLoss", "bottom": ["loss", "label"], "top": "loss2"}))
    expect(GraphStructureError, art, tmp_path, "reads 'loss', the value of a loss layer")


def test_every_graph_problem_is_reported_at_once(tmp_path):
    """As in NVIDIA's din_fp32_1gpu.json: two ReduceSum without 'axis', and (added here) a
    tensor produced twice, so the loss reads a name nothing produces, and a shape that does
    not fit; one error names all five."""
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("ReduceSum", "e", "sum1", axis=1)
         .dense("ReduceSum", "e", "sum2", axis=1)
         .dense("Concat", ["sum1", "sum2"], "c")
         .dense("Reshape", "c", "r", leading_dim=8)
         .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    art = save_model(b, tmp_path)

    def damage(d):
        by_top = {l.get("top") if isinstance(l.get("top"), str) else None: l for l in d["layers"]}
        del by_top["sum1"]["axis"], by_top["sum2"]["axis"]
        by_top["fc"]["top"] = "r"
        d["layers"].append({"type": "InnerProduct", "bottom": "e", "top": "x",
                            "fc_param": {"num_output": 1}})  # 3-D is fine; then:
        d["layers"].append({"type": "Add", "bottom": ["x", "dense"], "top": "y"})
    edit_graph(art, damage)
    e = expect(GraphProblemsError, art, tmp_path, "5 problems", "missing field 'axis'",
               "'r' is produced more than once", "reads tensor 'fc', which nothing produces",
               "inputs must have identical shapes")
    assert len(e.problems) == 5, [p.detail for p in e.problems]
    assert sum("axis" in p.detail for p in e.problems) == 2
    assert all(p.file == str(art.graph_config) for p in e.problems)


def test_unsupported_types_are_one_problem_among_the_others(tmp_path):
    art = save_model(_mlp(), tmp_path)

    def damage(d):
        d["layers"][2]["type"] = "Frobnicate"  # relu1's producer: fc2 still gets no complaint
        d["layers"][1]["fc_param"] = {"num_output": "three"}
    edit_graph(art, damage)
    e = expect(GraphProblemsError, art, tmp_path, "2 problems", "unsupported layer type(s): "
               "Frobnicate (layers 2)", "num_output' must be an integer")
    assert e.types == ["Frobnicate"] and isinstance(e.problems[0], UnsupportedLayerError)
    assert len(e.problems) == 2, [p.detail for p in e.problems]


def test_din_like_swapped_reshape_after_a_broken_layer(tmp_path):
    """NVIDIA's din_fp32_1gpu.json: ReduceSum and ReduceMean lack 'axis', and the Reshape after
    the ReduceMean has bottom and top swapped, so the ReduceMean's top is produced twice
    although that ReduceMean itself failed to parse."""
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("ReduceSum", "e", "sum1", axis=1)
         .dense("ReduceMean", "e", "mean1", axis=1)
         .dense("Reshape", "mean1", "mean_flat", leading_dim=4)
         .dense("Reshape", "sum1", "sum_flat", leading_dim=4)
         .dense("Concat", ["sum_flat", "mean_flat"], "c")
         .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    art = save_model(b, tmp_path)

    def damage(d):
        for layer in d["layers"]:
            if layer["type"] in ("ReduceSum", "ReduceMean"):
                del layer["axis"]
            if layer.get("top") == "mean_flat":
                layer["bottom"], layer["top"] = "mean_flat", "mean1"
    edit_graph(art, damage)
    e = expect(GraphProblemsError, art, tmp_path, "missing field 'axis'",
               "tensor 'mean1' is produced more than once (layer #4 ReduceMean (top mean1); "
               "layer #5 Reshape (top mean1))", "reads tensor 'mean_flat', which nothing")
    # (layer #2 is the fan-out Slice of 'e' that graph_to_json inserts)
    assert [p.where for p in e.problems][:3] == ["layers[3] (ReduceSum).axis",
                                                 "layers[4] (ReduceMean).axis", "top 'mean1'"]


def test_a_cycle_is_reported_with_other_problems_and_waiting_is_not_a_cycle(tmp_path):
    art = save_model(_mlp(), tmp_path)

    def damage(d):
        d["layers"][1]["bottom"] = "relu1"  # fc1 <-> relu1: a cycle
        d["layers"][3]["fc_param"] = {}  # fc2: missing num_output; the loss waits on it
    edit_graph(art, damage)
    e = expect(GraphProblemsError, art, tmp_path, "2 problems", "missing field",
               "cycle or wait on each other: layer #1 InnerProduct (top fc1), layer #2 ReLU")
    assert "BinaryCrossEntropyLoss" not in str(e)  # it only waits on the broken fc2
