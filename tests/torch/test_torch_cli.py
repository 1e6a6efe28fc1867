"""``to-torch`` / ``from-torch`` and checkpoints: HugeCTR files -> .pt -> HugeCTR files, with
the predictions kept; dense-only modules; typed errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hugectr2onnx.torch as ht  # noqa: E402
from hugectr2onnx import zoo  # noqa: E402
from hugectr2onnx.cli import main  # noqa: E402
from hugectr2onnx.errors import InputFileError  # noqa: E402
from hugectr2onnx.loader import load_model as load_ir  # noqa: E402
from hugectr2onnx.reference import run_reference  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402


def _predict(module, feeds):
    module.eval()
    with torch.no_grad():
        return {k: v.numpy() for k, v in module(**feeds).items()}


@pytest.mark.parametrize("name", ["dcn", "dlrm"])  # DCN-v2 projection_dim; BatchNorm ntp
def test_to_torch_then_from_torch_keeps_predictions(name, tmp_path, capsys):
    builder = getattr(zoo, name)(**zoo.SMALL[name])
    if name == "dcn":  # DCN-v2: projection_dim is not in the JSON, solved from the file size
        for block in builder.dense_layers:
            if block["type"] == "MultiCross":
                block["mc_param"]["projection_dim"] = 2
    art = zoo.save(builder, tmp_path / "in", hashed=True)
    pt = tmp_path / "m.pt"
    assert main(["to-torch", "--graph", art.graph_config, "--dense", art.dense_model,
                 "--sparse", *art.sparse_models, *(["--ntp", art.ntp_file] if art.ntp_file else []),
                 "-o", str(pt), "--max-new-keys", "50"]) == 0
    assert "capacity 250" in capsys.readouterr().out

    module = ht.load_checkpoint(pt)
    module.train()  # learn a few new keys before writing back
    graph = load_ir(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(graph, 16, convert_embedding=True, seed=5, unseen_fraction=0.2)
    module(**feeds)
    ht.save_checkpoint(module, pt)
    want = _predict(module, feeds)

    out = tmp_path / "out"
    assert main(["from-torch", str(pt), "-o", str(out), "--prefix", name, "--iteration", "9"]) == 0
    text = capsys.readouterr().out
    assert f"{name}_dense_9.model" in text and f"{name}0_sparse_9.model" in text
    assert "capacity 250" in text  # reserved rows are not stored, but their count is
    stored = torch.load(pt, weights_only=True)["state_dict"]
    assert stored["embeddings.sparse_embedding1.weight"].shape[0] == \
        int(module.embeddings["sparse_embedding1"].num_keys)
    names = {p.name for p in out.iterdir()}
    assert f"{name}.json" in names and not any(n.startswith(".") for n in names)
    ntp = out / f"{name}_dense_9.model.ntp.json"
    assert ntp.exists() == (art.ntp_file is not None)
    back = load_ir(out / f"{name}.json", out / f"{name}_dense_9.model",
                   [out / f"{name}0_sparse_9.model"], ntp if ntp.exists() else None)
    ref = run_reference(back, feeds)  # the written files, read by the independent reference
    for k, v in want.items():
        np.testing.assert_allclose(v, ref[k], rtol=0, atol=1e-5)


def test_dense_only_module_takes_embedding_vectors(tmp_path):
    art = zoo.save(zoo.wdl(**zoo.SMALL["wdl"]), tmp_path)
    module = ht.load_model(art.graph_config, art.dense_model, ntp_file=art.ntp_file)
    graph = load_ir(art.graph_config, art.dense_model, None, art.ntp_file)
    feeds = random_feeds(graph, 8, convert_embedding=False, seed=2)
    assert module.input_names == ["dense", "sparse_embedding2", "sparse_embedding1"]
    assert sorted(module.input_names) == sorted(feeds)
    got, want = _predict(module, feeds), run_reference(graph, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-5)
    assert not module.embeddings
    saved = ht.save_hugectr(module, tmp_path / "out")
    assert saved.sparse_models == [] and saved.ntp_file is None


def test_checkpoint_errors_are_typed_and_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputFileError, match="not a torch checkpoint"):
        ht.load_checkpoint(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(InputFileError, match="not a hugectr2onnx.torch checkpoint"):
        ht.load_checkpoint(tmp_path / "other.pt")
    assert main(["from-torch", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pt" in err and "no such file" in err


def test_save_hugectr_into_a_file_path_is_an_output_error(tmp_path):
    from hugectr2onnx.errors import OutputError

    art = zoo.save(zoo.gmf(**zoo.SMALL["gmf"]), tmp_path / "in")
    module = ht.load_model(art.graph_config, art.dense_model, art.sparse_models, max_new_keys=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        ht.save_hugectr(module, blocker)
    assert blocker.read_text() == "x"
