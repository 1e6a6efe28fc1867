"""The friction a new user hit (issue 15): each item re-tried through the CLI."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hugectr2onnx.cli import COMMANDS, _parser, main
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model

ROOT = Path(__file__).resolve().parents[1]


def _bn_model():
    return (ModelBuilder().input(dense_dim=4)
            .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 3})
            .dense("BatchNorm", "fc1", "bn1", bn_param={"factor": 1.0, "eps": 1e-5})
            .dense("InnerProduct", "bn1", "fc2", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))


def test_ntp_beside_the_dense_file_is_found(tmp_path, capsys):
    art = save_model(_bn_model(), tmp_path / "m")
    assert Path(art.ntp_file).name == Path(art.dense_model).name + ".ntp.json"
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "m.onnx"), "--verify"])
    assert rc == 0, capsys.readouterr()
    Path(art.ntp_file).unlink()
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "m2.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and "pass --ntp" in err and "ntp_file" not in err


def test_messages_use_flag_names(tmp_path, capsys):
    art = save_model(_bn_model(), tmp_path / "m")
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--convert-embedding", "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "--convert-embedding needs --sparse" in err
    assert "sparse_models" not in err and "convert_embedding" not in err


def test_padding_key_junk_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", "--graph", "g.json", "--dense", "d", "-o", str(tmp_path / "x.onnx"),
              "--padding-key", "junk"])
    assert e.value.code == 2
    assert "--padding-key" in capsys.readouterr().err


@pytest.mark.parametrize("typo,suggestion", [("InnerProdcut", "InnerProduct"),
                                             ("Relu", "ReLU"), ("concat", "Concat")])
def test_did_you_mean_layer_type(tmp_path, capsys, typo, suggestion):
    art = save_model(_bn_model(), tmp_path / "m")
    doc = json.loads(Path(art.graph_config).read_text())
    doc["layers"][1]["type"] = typo
    Path(art.graph_config).write_text(json.dumps(doc))
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and f"{typo} (layers 1) (did you mean '{suggestion}'?)" in err


def test_misspelt_parameter_key_is_named(tmp_path, capsys):
    art = save_model(_bn_model(), tmp_path / "m")
    doc = json.loads(Path(art.graph_config).read_text())
    fc = doc["layers"][1]["fc_param"]
    fc["num_ouput"] = fc.pop("num_output")
    Path(art.graph_config).write_text(json.dumps(doc))
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and "missing field 'fc_param.num_output'" in err
    assert "unknown key 'fc_param.num_ouput'" in err


def _options(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {o}", a) for o, a in _options(sub))
        elif action.option_strings:
            yield action.option_strings[-1], action


def test_every_option_has_help_text():
    parser = _parser()
    seen = [(name, a.help) for name, a in _options(parser)]
    assert len({n.split()[0] for n, _ in seen if " " in n}) == len(COMMANDS)
    missing = [name for name, h in seen if not h or h == argparse.SUPPRESS and "debug" not in name]
    assert not missing, missing


def test_package_metadata_is_clean(tmp_path):
    """SPDX license string, LICENSE, CHANGELOG, py.typed, URLs; setuptools does not warn."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0" and "LICENSE" in meta.get("license-files", ["LICENSE"])
    assert meta["urls"] and all(u.startswith("https://") for u in meta["urls"].values())
    for f in ("LICENSE", "CHANGELOG.md", "hugectr2onnx/py.typed"):
        assert (ROOT / f).is_file(), f
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:400]
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "Deprecat" not in text and "SetuptoolsWarning" not in text, text[-3000:]
    wheel = next(tmp_path.glob("*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "hugectr2onnx/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)


def test_stage_messages_with_progress_only(tmp_path, capsys):
    from hugectr2onnx import converter, zoo

    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), tmp_path / "dcn")
    converter.convert(str(tmp_path / "a.onnx"), art.graph_config, art.dense_model, True,
                      art.sparse_models, progress=True)
    err = capsys.readouterr().err
    assert "hugectr2onnx: checking keys and building lookups of 200 keys ..." in err
    assert "building lookups of 200 keys: done in" in err
    converter.convert(str(tmp_path / "b.onnx"), art.graph_config, art.dense_model, True,
                      art.sparse_models)  # stderr is not a terminal here: quiet
    assert capsys.readouterr().err == ""
    assert main(["optimize", str(tmp_path / "a.onnx"), "-o", str(tmp_path / "c.onnx"),
                 "--progress"]) == 0
    err = capsys.readouterr().err
    assert "hugectr2onnx: optimizing ..." in err and "checking against the original" in err


def test_examples_pycache_is_ignored():
    """make demo imports examples/ modules; their __pycache__ must not show in git status."""
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = "examples/__pycache__/demo.cpython-311.pyc"
    out = subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=ROOT)
    assert out.returncode == 0, "examples/__pycache__ is not ignored"
    kept = subprocess.run(["git", "check-ignore", "-q", "--no-index", "examples/demo.py"],
                          cwd=ROOT)
    assert kept.returncode == 1, "examples/demo.py must stay tracked"


def test_misspelt_optional_key_warns(tmp_path, capsys):
    """An optional key with a typo would silently fall back to its default."""
    art = save_model(_bn_model(), tmp_path / "m")
    doc = json.loads(Path(art.graph_config).read_text())
    bn = doc["layers"][2]["bn_param"]
    bn["esp"] = bn.pop("eps")
    Path(art.graph_config).write_text(json.dumps(doc))
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "x.onnx")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "[layers[2] (BatchNorm)]: unknown key 'bn_param.esp' ignored (did you mean " \
           "'bn_param.eps'?)" in out
    assert out.count("unknown key") == 1
