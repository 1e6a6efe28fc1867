import numpy as np
import pytest

from hugectr2onnx import converter
from hugectr2onnx.errors import DenseModelError
from hugectr2onnx.hugectr.writer import ModelBuilder, random_weights, save_model
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.multi_cross import MultiCross


def _ref(weights, x, num_layers, p=0):
    layer = Layer(0, "MultiCross", ["x"], ["y"], {"num_layers": num_layers, "projection_dim": p})
    layer.weights = {k: np.array(v, np.float32) for k, v in weights.items()}
    return MultiCross().reference(layer, [np.array(x, np.float32)])[0]


def test_v1_reference_matches_hand_computation():
    # s = [1,2]·[1,1] = 3; x1 = x0*3 + x0 + b = [3,6] + [1,2] + [0.5,0] = [4.5, 8]
    y = _ref({"w0": [[1, 1]], "b0": [[0.5, 0]]}, [[1, 2]], 1)
    np.testing.assert_allclose(y, [[4.5, 8]])


def test_v1_scales_x0_not_x_l():
    # x1 = [1,2]*3 + [1,2] = [4,8]; s1 = 12; x2 = [1,2]*12 + [4,8] = [16,32]
    y = _ref({"w0": [[1, 1]], "b0": [[0, 0]], "w1": [[1, 1]], "b1": [[0, 0]]}, [[1, 2]], 2)
    np.testing.assert_allclose(y, [[16, 32]])


def test_v2_reference_matches_hand_computation():
    # x·U = 1; ·V = [2,1]; +b = [2,2]; x0 ⊙ that = [2,4]; + x = [3,6]
    y = _ref({"U0": [[1], [0]], "V0": [[2, 1]], "b0": [[0, 1]]}, [[1, 2]], 1, p=1)
    np.testing.assert_allclose(y, [[3, 6]])


def _model(num_layers=2, projection_dim=None, d=6):
    mc = {"num_layers": num_layers}
    if projection_dim is not None:
        mc["projection_dim"] = projection_dim
    return (ModelBuilder().input(dense_dim=d)
            .dense("MultiCross", "dense", "mc", mc_param=mc)
            .dense("InnerProduct", "mc", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


def _v2_weights(p, seed=0, **kw):
    graph = _model(projection_dim=p, **kw).graph()
    random_weights(graph, np.random.default_rng(seed))
    return graph


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_v1_roundtrip(roundtrip, opset):
    _, graph, _, _ = roundtrip(_model(), opset=opset)
    assert graph.layers[0].params["projection_dim"] == 0


def test_v2_projection_dim_recovered_from_file_size(roundtrip):
    _, graph, _, _ = roundtrip(_model(), save_kw={"graph": _v2_weights(3)})
    layer = graph.layers[0]
    assert layer.params["projection_dim"] == 3
    assert layer.weights["U1"].shape == (6, 3) and layer.weights["V1"].shape == (3, 6)


def test_v2_explicit_projection_dim_in_json(roundtrip):
    _, graph, _, _ = roundtrip(_model(projection_dim=2))
    assert graph.layers[0].params["projection_dim"] == 2


def test_v2_projection_dims_option(roundtrip):
    _, graph, _, _ = roundtrip(_model(), save_kw={"graph": _v2_weights(4)}, projection_dims=[4],
                               load_kw={"projection_dims": 4})
    assert graph.layers[0].params["projection_dim"] == 4


def test_wrong_projection_dims_option_is_a_size_error(tmp_path):
    art = save_model(_model(), tmp_path, graph=_v2_weights(4))
    with pytest.raises(DenseModelError):
        converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model,
                          projection_dims=2)


def test_file_fitting_neither_v1_nor_v2_is_an_error(tmp_path):
    art = save_model(_model(), tmp_path)
    with open(art.dense_model, "ab") as f:
        f.write(np.zeros(5, "<f4").tobytes())  # 5 extra floats: not a whole layout
    with pytest.raises(DenseModelError, match="neither DCN-v1"):
        converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model)


def test_two_unresolved_layers_are_ambiguous(tmp_path):
    b = (ModelBuilder().input(dense_dim=4)
         .dense("MultiCross", "dense", "mc1", mc_param={"num_layers": 1})
         .dense("MultiCross", "mc1", "mc2", mc_param={"num_layers": 1})
         .dense("InnerProduct", "mc2", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    art = save_model(b, tmp_path)
    with pytest.raises(DenseModelError, match="projection_dims"):
        converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model)
