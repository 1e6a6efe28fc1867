"""Every zoo architecture with hashed 64-bit keys as a Keras model: predictions equal the
ONNX model's, ``fit`` with HugeCTR's loss lowers it, the SavedModel predicts the same in a
fresh process that cannot import this package, and ``save_hugectr`` -> ``convert()``
reproduces the trained model. One model per architecture is built once and shared."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime as ort
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from hugectr2onnx import converter, zoo  # noqa: E402
from hugectr2onnx.tf import export_saved_model, load_model, save_hugectr  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

BATCH = 32
STEPS = 8


def feeds_for(graph, seed=0):
    feeds = random_feeds(graph, BATCH, convert_embedding=True, seed=seed)
    masks = [l for l in graph.layers if l.type == "SequenceMask"]
    if masks:  # BST's dense feature holds sequence lengths
        longest = masks[0].params.get("max_sequence_len_to", 1)
        rng = np.random.default_rng(seed + 1)
        feeds[graph.data.dense_name] = rng.uniform(0, longest + 1, (BATCH, 1)).astype(np.float32)
    return feeds


def onnx_predictions(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})))


def numpy_outputs(model, feeds):
    return {k: v.numpy() for k, v in model(feeds, training=False).items()}


class Zoo:
    """Per architecture, built on first use: artifacts, ONNX, Keras model, feeds, labels;
    ``trained`` fits the model once and remembers the losses."""

    def __init__(self, root):
        self.root, self.cases = root, {}

    def __call__(self, name):
        if name not in self.cases:
            d = self.root / name
            art = zoo.save(zoo.MODELS[name](**zoo.SMALL[name]), d, seed=11, hashed=True,
                           num_keys=100)
            converter.convert(str(d / "model.onnx"), art.graph_config, art.dense_model, True,
                              art.sparse_models, art.ntp_file)
            model = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
            feeds = feeds_for(model.graph)
            rng = np.random.default_rng(5)
            labels = {o.name: rng.integers(0, 2, (BATCH, int(o.shape[1]))).astype(np.float32)
                      for o in model.graph.outputs}
            self.cases[name] = dict(dir=d, art=art, model=model, feeds=feeds, labels=labels,
                                    onnx=onnx_predictions(d / "model.onnx", feeds))
        return self.cases[name]

    def trained(self, name):
        case = self(name)
        if "losses" not in case:
            model, feeds, labels = case["model"], case["feeds"], case["labels"]
            keras.utils.set_random_seed(0)
            model.compile(keras.optimizers.Adam(0.01))
            before = float(model.hugectr_loss(feeds, labels, training=False))
            model.fit(feeds, labels, batch_size=BATCH, epochs=STEPS, verbose=0)
            after = float(model.hugectr_loss(feeds, labels, training=False))
            case["losses"] = (before, after)
            case["predictions"] = numpy_outputs(model, feeds)
        return case


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return Zoo(tmp_path_factory.mktemp("tf_zoo"))


NAMES = list(zoo.MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_predictions_equal_onnx(models, name):
    case = models(name)
    got = numpy_outputs(case["model"], case["feeds"])
    assert sorted(got) == sorted(case["onnx"]) == sorted(case["model"].graph.data.label_names)
    for label, want in case["onnx"].items():
        assert got[label].shape == want.shape
        np.testing.assert_allclose(got[label], want, rtol=0, atol=1e-5, err_msg=label)


@pytest.mark.parametrize("name", NAMES)
def test_fit_with_hugectr_loss_lowers_it(models, name):
    case = models.trained(name)
    before, after = case["losses"]
    assert after < before, (before, after)


@pytest.mark.parametrize("name", ["mmoe_parquet", "dlrm"])
def test_compiled_loss_is_hugectr_loss_of_the_logits(models, name):
    """compile() without a loss uses HugeCTR's, computed from the logits (not from the
    clipped probabilities): evaluate() equals the loss taken on the logits directly."""
    case = models.trained(name)
    model, feeds, labels = case["model"], case["feeds"], case["labels"]
    got = model.evaluate(feeds, labels, batch_size=BATCH, verbose=0, return_dict=True)
    exact = float(model.hugectr_loss(feeds, labels, training=False))
    np.testing.assert_allclose(got["loss"], exact, rtol=1e-5)


@pytest.fixture(scope="module")
def fresh_process_predictions(models, tmp_path_factory):
    """Every trained model exported, then served by one fresh interpreter in which
    importing hugectr2onnx or keras fails: tf.saved_model.load alone."""
    root = tmp_path_factory.mktemp("saved_models")
    for name in NAMES:
        case = models.trained(name)
        export_saved_model(case["model"], root / name)
        np.savez(root / f"{name}.feeds.npz", **case["feeds"])
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["hugectr2onnx"] = None  # neither this package nor Keras is needed
        sys.modules["keras"] = None
        import numpy as np, tensorflow as tf
        root, out = {str(root)!r}, {{}}
        for name in {NAMES!r}:
            serve = tf.saved_model.load(f"{{root}}/{{name}}").signatures["serving_default"]
            feeds = dict(np.load(f"{{root}}/{{name}}.feeds.npz"))
            outputs = serve(**{{k: tf.constant(v) for k, v in feeds.items()}})
            np.savez(f"{{root}}/{{name}}.served.npz", **{{k: v.numpy() for k, v in outputs.items()}})
            out[name] = sorted(serve.structured_input_signature[1])
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    signatures = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (signatures[name], dict(np.load(root / f"{name}.served.npz"))) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_serves_in_a_fresh_process(models, fresh_process_predictions, name):
    case = models.trained(name)
    inputs, served = fresh_process_predictions[name]
    assert inputs == sorted(case["model"].input_specs()) == sorted(
        i.name for i in ort.InferenceSession(str(case["dir"] / "model.onnx")).get_inputs())
    assert sorted(served) == sorted(case["predictions"])
    for label, want in case["predictions"].items():
        np.testing.assert_allclose(served[label], want, rtol=0, atol=1e-6, err_msg=label)


@pytest.mark.parametrize("name", NAMES)
def test_save_hugectr_then_convert_equals_trained_model(models, name):
    case = models.trained(name)
    model = case["model"]
    files = save_hugectr(model, case["dir"] / "back", prefix="trained", iteration=8)
    assert files.dense_model.endswith("trained_dense_8.model")
    out = case["dir"] / "back.onnx"
    converter.convert(str(out), files.graph_config, files.dense_model, True, files.sparse_models,
                      files.ntp_file)
    want = numpy_outputs(model, case["feeds"])
    got = onnx_predictions(out, case["feeds"])
    moved = any(np.abs(want[k] - case["onnx"][k]).max() > 1e-3 for k in want)
    assert moved, "training did not change the predictions"
    for label in want:
        np.testing.assert_allclose(got[label], want[label], rtol=0, atol=1e-5, err_msg=label)
