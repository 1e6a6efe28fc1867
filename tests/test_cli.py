import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from hugectr2onnx.cli import main
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model


def _model(tmp_path):
    b = (ModelBuilder().input(dense_dim=4, sparse=[dict(top="s", slot_num=3, nnz_per_slot=2,
                                                        is_fixed_length=False)])
         .embedding(bottom="s", top="e", vec_size=4, combiner="mean")
         .dense("Reshape", "e", "r", leading_dim=12)
         .dense("Concat", ["r", "dense"], "c")
         .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    return save_model(b, tmp_path / "m")


def test_convert_prints_summary_and_writes_model(tmp_path, capsys):
    art = _model(tmp_path)
    out = tmp_path / "out.onnx"
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "--convert-embedding", "-o", str(out), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "converted 4 layers" in text and "200 keys x 4" in text and "ok" in text
    sess = ort.InferenceSession(str(out))
    assert [i.name for i in sess.get_inputs()] == ["dense", "s"]
    assert [o.name for o in sess.get_outputs()] == ["label"]


def test_error_is_one_line_with_distinct_exit_code(tmp_path, capsys):
    art = _model(tmp_path)
    with open(art.dense_model, "ab") as f:
        f.write(b"\0" * 8)
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 3
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert art.dense_model in err and "8 extra bytes" in err
    assert not (tmp_path / "x.onnx").exists()


def test_all_unsupported_layers_listed_at_once(tmp_path, capsys):
    art = _model(tmp_path)
    doc = json.loads(open(art.graph_config).read())
    doc["layers"][2]["type"] = "Frobnicate"
    doc["layers"][3]["type"] = "Quux"
    open(art.graph_config, "w").write(json.dumps(doc))
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and "Frobnicate" in err and "Quux" in err and "2 unsupported" in err


def test_debug_shows_traceback(tmp_path, capsys):
    rc = main(["--debug", "convert", "--graph", str(tmp_path / "missing.json"), "--dense",
               str(tmp_path), "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" in err and "does not exist" in err


def test_debug_is_accepted_after_a_nested_command(tmp_path, capsys):
    rc = main(["hf", "run", str(tmp_path / "missing.onnx"), "--text", "a", "--debug"])
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" in err and "missing.onnx" in err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "hugectr2onnx", "convert", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--convert-embedding", "--opset", "--lookup", "--external-data", "--padding-key",
                 "--key-type", "--table-order"):
        assert flag in out


def test_closed_stdout_ends_quietly(tmp_path):
    """`hugectr2onnx inspect M.onnx --json | head -1`: the reader is gone before the
    output is written; the command stops with 141 (128 + SIGPIPE) and says nothing."""
    art = _model(tmp_path)
    out = tmp_path / "m.onnx"
    assert main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
                 "-o", str(out)]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "hugectr2onnx", "inspect", str(out),
                               "--json"], stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


@pytest.mark.parametrize("order", ["slot", "file"])
def test_table_order_option(tmp_path, capsys, order):
    import onnx

    art = _model(tmp_path)
    out = tmp_path / f"{order}.onnx"
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "--convert-embedding", "-o", str(out),
               "--lookup", "hash", "--table-order", order, "--verify"])
    assert rc == 0, capsys.readouterr()
    names = [t.name for t in onnx.load(str(out)).graph.initializer]
    assert any(n.endswith(".slot_rows") for n in names) == (order == "file")


def test_dense_only_inputs_are_embedding_outputs(tmp_path, capsys):
    art = _model(tmp_path)
    out = tmp_path / "d.onnx"
    assert main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
                 "-o", str(out)]) == 0
    sess = ort.InferenceSession(str(out))
    shapes = {i.name: i.shape for i in sess.get_inputs()}
    assert shapes == {"dense": ["batch", 4], "e": ["batch", 3, 4]}
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((2, 4)).astype(np.float32)
    e = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = sess.run(None, {"dense": dense, "e": e})[0]
    # the model by hand: sigmoid([e flattened, dense] . W + b), W and b at the front of the
    # dense file (the only trainable layer: 16 x 1, then 1)
    w = np.fromfile(art.dense_model, "<f4")
    assert w.size == 17
    want = 1 / (1 + np.exp(-(np.concatenate([e.reshape(2, 12), dense], 1) @ w[:16] + w[16])))
    np.testing.assert_allclose(y[:, 0], want, rtol=1e-5)


def test_output_may_not_overwrite_an_input(tmp_path, capsys):
    art = _model(tmp_path)
    before = open(art.dense_model, "rb").read()
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", art.dense_model])
    assert rc == 4 and "overwrite an input" in capsys.readouterr().err
    assert open(art.dense_model, "rb").read() == before


@pytest.mark.parametrize("gpus", ["0", "-3"])
def test_bad_num_gpus_is_a_usage_error(tmp_path, capsys, gpus):
    art = _model(tmp_path)
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "--convert-embedding", "--num-gpus", gpus,
               "-o", str(tmp_path / "x.onnx")])
    assert rc == 2 and "--num-gpus" in capsys.readouterr().err


def test_verify_rejects_a_corrupt_onnx_with_a_typed_error(tmp_path, capsys):
    art = _model(tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    rc = main(["verify", "--graph", art.graph_config, "--dense", art.dense_model,
               "--onnx", str(bad)])
    err = capsys.readouterr().err
    assert rc == 3 and str(bad) in err and "cannot load" in err


def test_verify_command_passes_on_a_converted_model(tmp_path, capsys):
    art = _model(tmp_path)
    out = tmp_path / "ok.onnx"
    assert main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
                 "--sparse", *art.sparse_models, "--convert-embedding", "-o", str(out)]) == 0
    rc = main(["verify", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "--onnx", str(out), "--batch", "8"])
    text = capsys.readouterr().out
    assert rc == 0 and "label [8, 1]" in text and "ok" in text
