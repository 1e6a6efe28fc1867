"""Training-time behaviour against hand-computed values: BatchNorm batch statistics and
running averages with HugeCTR's factor, Dropout, Dice, and HugeCTR's three losses."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hugectr2onnx.torch as ht  # noqa: E402
from hugectr2onnx.errors import UsageError  # noqa: E402
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model  # noqa: E402
from hugectr2onnx.ir import B  # noqa: E402
from hugectr2onnx.torch.ops import OPS  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "layers"))
from layer_harness import make_layer  # noqa: E402


def test_batchnorm_training_uses_batch_statistics_and_factor():
    h, layer = make_layer("BatchNorm", {"bn_param": {"factor": 0.25, "eps": 1e-3}}, [(B, 2)])
    x = np.array([[1, 10], [3, 10], [8, 13]], np.float64)
    p = {"gamma": torch.tensor([2.0, 1.0], dtype=torch.float64),
         "beta": torch.tensor([0.5, 0.0], dtype=torch.float64),
         "mean": torch.tensor([1.0, 1.0], dtype=torch.float64),
         "var": torch.tensor([1.0, 4.0], dtype=torch.float64)}
    y = h.forward(layer, OPS, [torch.tensor(x)], p, training=True)[0].numpy()
    # batch mean [4, 11]; biased var [26/3, 2]; unbiased [13, 3]
    want = np.array([[2, 1], [2, 1], [2, 1]]) * (x - [4, 11]) / np.sqrt(
        np.array([26 / 3, 2]) + 1e-3) + [0.5, 0]
    np.testing.assert_allclose(y, want, rtol=1e-12)
    np.testing.assert_allclose(p["mean"].numpy(), [0.75 * 1 + 0.25 * 4, 0.75 * 1 + 0.25 * 11])
    np.testing.assert_allclose(p["var"].numpy(), [0.75 * 1 + 0.25 * 13, 0.75 * 4 + 0.25 * 3])
    assert not p["mean"].requires_grad


def test_dropout_drops_at_its_rate_and_scales_in_training_only():
    h, layer = make_layer("Dropout", {"rate": 0.3}, [(B, 1000)])
    x = torch.ones(100, 1000)
    torch.manual_seed(0)
    y = h.forward(layer, OPS, [x], {}, training=True)[0]
    dropped = float((y == 0).float().mean())
    assert abs(dropped - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0].numpy(), 1 / 0.7, rtol=1e-6)
    assert torch.equal(h.forward(layer, OPS, [x], {}, training=False)[0], x)


def test_dice_uses_batch_statistics_in_training_and_inference():
    h, layer = make_layer("PReLU_Dice", {"prelu_dice_param": {"alpha": 0.2, "eps": 0.0}},
                          [(B, 1)])
    x = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    # mean 0, var 1: p = sigmoid(x) -> y = x * (0.2 + 0.8 * sigmoid(x))
    want = x.numpy() * (0.2 + 0.8 / (1 + np.exp(-x.numpy())))
    for training in (True, False):
        got = h.forward(layer, OPS, [x], {}, training=training)[0].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _loss(layer_type, block, logits, label):
    h, layer = make_layer(layer_type, block, [(B, len(logits[0])), (B, len(label[0]))])
    return h.loss(layer, OPS, torch.tensor(logits, dtype=torch.float64),
                  torch.tensor(label, dtype=torch.float64)).item()


def test_binary_cross_entropy_is_hugectrs_two_branch_mean():
    got = _loss("BinaryCrossEntropyLoss", {}, [[0.0], [2.0], [-3.0], [50.0]],
                [[1.0], [0.0], [1.0], [1.0]])
    want = (math.log(2) + 2 + math.log1p(math.exp(-2)) + 3 + math.log1p(math.exp(-3))
            + math.log1p(math.exp(-50))) / 4
    assert got == pytest.approx(want, rel=1e-12)


def test_cross_entropy_reads_one_class_id_per_sample():
    got = _loss("CrossEntropyLoss", {}, [[0.0, math.log(3)], [0.0, math.log(3)]], [[1.0], [0.0]])
    assert got == pytest.approx((-math.log(0.75) - math.log(0.25)) / 2, rel=1e-12)


def test_multi_cross_entropy_weights_targets_and_ignores_negative_labels():
    # sum of weighted BCEs over kept entries, divided by all B*L = 4 entries
    got = _loss("MultiCrossEntropyLoss", {"target_weight": [2.0, 5.0]},
                [[0.0, 1.0], [0.0, 3.0]], [[1.0, -1.0], [0.0, -1.0]])
    assert got == pytest.approx((2 * math.log(2) + 2 * math.log(2)) / 4, rel=1e-12)


def _two_task_model(tmp_path):
    b = (ModelBuilder().input(label_dim=[1, 1], label_name=["a_label", "b_label"], dense_dim=3)
         .dense("InnerProduct", "dense", "fc_a", fc_param={"num_output": 1})
         .dense("InnerProduct", "dense", "fc_b", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc_a", "a_label"], "loss_a")
         .dense("BinaryCrossEntropyLoss", ["fc_b", "b_label"], "loss_b"))
    art = save_model(b, tmp_path)
    return ht.load_model(art.graph_config, art.dense_model)


def test_multi_task_loss_is_the_weighted_sum_of_each_label_loss(tmp_path):
    m = _two_task_model(tmp_path).eval()
    x = {"dense": torch.randn(5, 3)}
    labels = {"a_label": torch.ones(5, 1), "b_label": torch.zeros(5, 1)}
    parts = m.losses(x, labels)
    assert sorted(parts) == ["a_label", "b_label"]
    pred = m(**x)
    want_a = -torch.log(pred["a_label"]).mean()
    want_b = -torch.log(1 - pred["b_label"]).mean()
    torch.testing.assert_close(parts["a_label"], want_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.loss(x, labels, weights={"b_label": 3.0}),
                               want_a + 3 * want_b, rtol=1e-5, atol=1e-6)


def test_missing_inputs_and_labels_are_usage_errors(tmp_path):
    m = _two_task_model(tmp_path)
    with pytest.raises(UsageError, match="missing input 'dense'"):
        m(wrong=torch.zeros(1, 3))
    with pytest.raises(UsageError, match="pass a dict by label name"):
        m.loss({"dense": torch.zeros(2, 3)}, torch.zeros(2, 1))
    with pytest.raises(UsageError, match=r"missing label\(s\) \['b_label'\]"):
        m.loss({"dense": torch.zeros(2, 3)}, {"a_label": torch.zeros(2, 1)})
    with pytest.raises(UsageError, match="unknown outputs"):
        m.loss({"dense": torch.zeros(2, 3)}, {"a_label": torch.zeros(2, 1),
                                              "b_label": torch.zeros(2, 1)}, weights={"c": 1})


def test_parameters_are_named_after_layers_and_specs_in_hugectr_layout(tmp_path):
    m = _two_task_model(tmp_path)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {"layers.fc_a.W": (3, 1), "layers.fc_a.b": (1, 1),
                      "layers.fc_b.W": (3, 1), "layers.fc_b.b": (1, 1)}


@pytest.mark.parametrize("layer_type, block", [
    ("BatchNorm", {"bn_param": {"factor": 0.5, "eps": 1e-5}}),
    ("PReLU_Dice", {"prelu_dice_param": {"alpha": 0.2, "eps": 1e-8}}),
    ("Dropout", {"rate": 0.0}),
])
def test_training_mode_gradients_match_finite_differences(layer_type, block):
    h, layer = make_layer(layer_type, block, [(B, 3)])
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    params = {"gamma": torch.rand(3, dtype=torch.float64, requires_grad=True),
              "beta": torch.rand(3, dtype=torch.float64, requires_grad=True),
              "mean": torch.zeros(3, dtype=torch.float64),
              "var": torch.ones(3, dtype=torch.float64)} if layer_type == "BatchNorm" else {}
    trainable = [k for k, v in params.items() if v.requires_grad]

    def fn(x, *ws):
        return h.forward(layer, OPS, [x], dict(params, **dict(zip(trainable, ws))),
                         training=True)[0]

    assert torch.autograd.gradcheck(fn, (x, *[params[k] for k in trainable]), eps=1e-6,
                                    atol=1e-5)


@pytest.mark.parametrize("kind", ["L1", "L2"])
def test_regularizer_adds_hugectrs_rterm_over_every_dense_tensor(kind, tmp_path):
    b = (ModelBuilder().input(label_dim=1, label_name="label", dense_dim=3)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 4})
         .dense("InnerProduct", "fc1", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss", regularizer=kind,
                **{"lambda": 0.3}))
    art = save_model(b, tmp_path)
    m = ht.load_model(art.graph_config, art.dense_model).eval()
    x, y = {"dense": torch.randn(6, 3)}, torch.ones(6, 1)
    plain = -torch.log(m(**x)["label"]).mean()
    w = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    assert w.numel() == 3 * 4 + 4 + 4 + 1
    term = 0.3 / 12 * (w ** 2).sum() if kind == "L2" else 0.3 / 6 * w.abs().sum()
    torch.testing.assert_close(m.loss(x, y), plain + term, rtol=1e-5, atol=1e-6)
