"""GRU: HugeCTR's single-layer, unidirectional cuDNN GRU (docs/layers.md, section GRU).

The input buffer ``[N·T, E]`` is read time-major as ``[T, N, E]`` and the output buffer
``[N·T, H]`` receives all hidden states time-major; initial state zero, ``hx`` unused.
Weight space (cuDNN CUDNN_RNN_SINGLE_INP_BIAS packing, float32, no padding):
``W_r, W_z, W_n`` ``[H, E]`` each, ``R_r, R_z, R_n`` ``[H, H]`` each, ``b_r, b_z, b_n`` ``[H]``.
"""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerHandler, require
from .functions import sigmoid

CUDNN_GATES = ("r", "z", "n")  # cuDNN linLayerID order; ONNX wants z, r, h
TO_ONNX_ORDER = [1, 0, 2]


def weight_space_size(hidden: int, inputs: int) -> int:
    """Floats of cuDNN's weight space: 3 input and 3 recurrent matrices, 3 input biases."""
    return 3 * hidden * inputs + 3 * hidden * hidden + 3 * hidden


def unpack(blob: np.ndarray, hidden: int, inputs: int):
    """(W [3, H, E], R [3, H, H], b [3, H]) in cuDNN gate order r, z, n."""
    blob = np.asarray(blob, dtype=np.float32).reshape(-1)
    nw, nr = 3 * hidden * inputs, 3 * hidden * hidden
    return (blob[:nw].reshape(3, hidden, inputs), blob[nw:nw + nr].reshape(3, hidden, hidden),
            blob[nw + nr:].reshape(3, hidden))


class GRU(LayerHandler):
    types = ("GRU",)

    def parse(self, p, layer):
        return {"hidden": p.int("gru_param.num_output", lo=1),
                "batchsize": p.int("gru_param.batchsize", lo=1),
                "steps": p.int("gru_param.SeqLength", lo=1),
                "inputs": p.int("gru_param.vector_size", lo=1)}

    def infer(self, layer):
        x, prm = layer.in_shapes[0], layer.params
        require(len(x) == 2 and int(x[1]) == prm["inputs"],
                f"input must be 2-D [batchsize*SeqLength, vector_size={prm['inputs']}] (cuDNN "
                f"reads it as [SeqLength, batchsize, vector_size]), found {fmt_shape(x)}")
        if isinstance(x[0], int):
            require(x[0] == prm["batchsize"] * prm["steps"],
                    f"input has {x[0]} rows, batchsize*SeqLength is "
                    f"{prm['batchsize'] * prm['steps']}")
        return [(x[0], prm["hidden"])]

    def weight_specs(self, layer):
        prm = layer.params
        return [WeightSpec("weight_space", (1, weight_space_size(prm["hidden"], prm["inputs"]))),
                WeightSpec("hx", (1, prm["batchsize"] * prm["hidden"]))]

    def reference(self, layer, xs):
        prm = layer.params
        h_size, steps = prm["hidden"], prm["steps"]
        w, r, b = (a.astype(np.float64) for a in
                   unpack(layer.weights["weight_space"], h_size, prm["inputs"]))
        x = xs[0].astype(np.float64).reshape(steps, -1, prm["inputs"])  # time-major
        h = np.zeros((x.shape[1], h_size))
        states = []
        for t in range(steps):  # the recurrence is sequential in time
            gate_r = sigmoid(x[t] @ w[0].T + h @ r[0].T + b[0])
            gate_z = sigmoid(x[t] @ w[1].T + h @ r[1].T + b[1])
            cand = np.tanh(x[t] @ w[2].T + b[2] + gate_r * (h @ r[2].T))
            h = (1 - gate_z) * cand + gate_z * h
            states.append(h)
        return [np.stack(states).reshape(-1, h_size).astype(np.float32)]

    def to_onnx(self, layer, g):
        prm = layer.params
        h_size, e_size, out = prm["hidden"], prm["inputs"], layer.tops[0]
        w, r, b = unpack(layer.weights["weight_space"], h_size, e_size)
        order = TO_ONNX_ORDER
        bias = np.concatenate([b[order].reshape(-1), np.zeros(3 * h_size, np.float32)])
        x = g.reshape(layer.bottoms[0], [prm["steps"], -1, e_size])
        y = g.node("GRU", [x, g.weight(layer, "W", w[order].reshape(1, 3 * h_size, e_size)),
                           g.weight(layer, "R", r[order].reshape(1, 3 * h_size, h_size)),
                           g.weight(layer, "B", bias.reshape(1, 6 * h_size))],
                   hint=f"{out}/states", hidden_size=h_size, linear_before_reset=1)
        g.reshape(y, [-1, h_size], out=out)  # [T, 1, N, H] -> time-major rows


HANDLERS = [GRU()]
