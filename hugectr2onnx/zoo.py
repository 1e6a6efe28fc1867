"""The architectures of NVIDIA's converter test models, rebuilt with our HugeCTR writer.

One function per training script of HugeCTR's ``test/onnx_converter_test/train_scripts``:
the same layer types, tensor names, parameters, slot counts, vector sizes and labels.
Defaults are the scripts' sizes; arguments shrink them for tests. Each returns a
``ModelBuilder``, whose JSON is what ``graph_to_json`` writes (automatic fan-out Slices
included). ``random_model``/``save`` add random weights and tables.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .hugectr.writer import Artifacts, ModelBuilder, random_weights, save_model
from .ir import Graph

CRITEO_DENSE = 13
CRITEO_SLOTS = 26


@dataclass
class _Net:
    """Shorthands writing each layer's keys exactly as ``graph_to_json`` does."""

    b: ModelBuilder

    def fc(self, bottom, top, n):
        self.b.dense("InnerProduct", bottom, top, fc_param={"num_output": n})
        return top

    def act(self, kind, bottom, top):
        self.b.dense(kind, bottom, top)
        return top

    def dropout(self, bottom, top, rate=0.5):
        self.b.dense("Dropout", bottom, top, rate=rate)
        return top

    def reshape(self, bottom, top, leading_dim, time_step=0):
        self.b.dense("Reshape", bottom, top, leading_dim=leading_dim, time_step=time_step)
        return top

    def concat(self, bottoms, top, axis=1):
        self.b.dense("Concat", list(bottoms), top, axis=axis)
        return top

    def slice(self, bottom, tops, ranges):
        self.b.dense("Slice", bottom, tops[0] if len(tops) == 1 else list(tops),
                     ranges=[list(r) for r in ranges])
        return tops

    def copies(self, bottom, tops, width):
        """A user-written Slice duplicating a tensor (the scripts' explicit fan-out)."""
        return self.slice(bottom, tops, [(0, width)] * len(tops))

    def merge(self, kind, bottoms, top):
        self.b.dense(kind, list(bottoms), top)
        return top

    def reduce(self, kind, bottom, top, axis):
        self.b.dense(kind, bottom, top, axis=axis)
        return top

    def scale(self, bottom, top, axis, factor):
        self.b.dense("Scale", bottom, top, scale_param={"axis": axis, "factor": float(factor)})
        return top

    def dice(self, bottom, top, alpha=0.2, eps=1e-8):
        self.b.dense("PReLU_Dice", bottom, top, prelu_dice_param={"alpha": alpha, "eps": eps})
        return top

    def batchnorm(self, bottom, top):
        self.b.dense("BatchNorm", bottom, top,
                     bn_param={"factor": 1.0, "eps": 1e-5, "gamma_init": "XavierUniform",
                               "beta_init": "XavierUniform"})
        return top

    def layernorm(self, bottom, top):
        self.b.dense("LayerNorm", bottom, top, ln_param={"eps": 1e-5})
        return top

    def softmax(self, bottom, top):
        self.b.dense("Softmax", bottom, top, factor=1.0)
        return top

    def tower(self, bottom, widths, *, start=1, fc="fc{}", relu="relu{}", drop="dropout{}",
              last_drop=None):
        """FC -> ReLU -> Dropout per width, tensors numbered from ``start``."""
        x = bottom
        for i, n in enumerate(widths, start):
            x = self.fc(x, fc.format(i), n)
            x = self.act("ReLU", x, relu.format(i))
            name = last_drop if last_drop and i == start + len(widths) - 1 else drop.format(i)
            x = self.dropout(x, name)
        return x

    def bce(self, pred, label="label", top="loss"):
        self.b.dense("BinaryCrossEntropyLoss", [pred, label], top)


def _sparse(top, slots, nnz=1, fixed=True):
    return {"top": top, "slot_num": slots, "nnz_per_slot": nnz, "is_fixed_length": fixed}


# --------------------------------------------------------------------------- CTR models
def wdl(deep_slots=CRITEO_SLOTS, wide_slots=2, dense_dim=CRITEO_DENSE, vec=16,
        hidden=(1024, 1024), nnz=1, fixed=True, combiner="sum") -> ModelBuilder:
    """Wide & Deep (wdl.py): a 1-wide embedding summed onto a deep tower's logit."""
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=dense_dim,
                             dense_name="dense",
                             sparse=[_sparse("deep_data", deep_slots, nnz, fixed),
                                     _sparse("wide_data", wide_slots, nnz, fixed)])
    b.embedding(bottom="wide_data", top="sparse_embedding2", vec_size=1, combiner=combiner,
                workspace_size_per_gpu_in_mb=75)
    b.embedding(bottom="deep_data", top="sparse_embedding1", vec_size=vec, combiner=combiner,
                workspace_size_per_gpu_in_mb=1074)
    n = _Net(b)
    n.reshape("sparse_embedding1", "reshape1", deep_slots * vec)
    n.reshape("sparse_embedding2", "reshape_wide", wide_slots)
    n.reduce("ReduceSum", "reshape_wide", "reshape2", axis=1)
    x = n.tower(n.concat(["reshape1", "dense"], "concat1"), hidden)
    n.fc(x, f"fc{len(hidden) + 1}", 1)
    n.merge("Add", [f"fc{len(hidden) + 1}", "reshape2"], "add1")
    n.bce("add1")
    return b


def dcn(slots=CRITEO_SLOTS, dense_dim=CRITEO_DENSE, vec=16, hidden=(1024, 1024), cross_layers=6,
        projection_dim=0, nnz=1, fixed=True, combiner="sum") -> ModelBuilder:
    """Deep & Cross (dcn.py). ``projection_dim`` > 0 makes it DCN-v2; graph_to_json never
    writes it (``save``/``random_model`` drop it from the JSON)."""
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=dense_dim,
                             dense_name="dense", sparse=[_sparse("data1", slots, nnz, fixed)])
    b.embedding(bottom="data1", top="sparse_embedding1", vec_size=vec, combiner=combiner,
                workspace_size_per_gpu_in_mb=300)
    n = _Net(b)
    n.reshape("sparse_embedding1", "reshape1", slots * vec)
    width = slots * vec + dense_dim
    n.copies(n.concat(["reshape1", "dense"], "concat1"), ["slice11", "slice12"], width)
    mc = {"num_layers": cross_layers}
    if projection_dim:
        mc["projection_dim"] = projection_dim
    b.dense("MultiCross", "slice11", "multicross1", mc_param=mc)
    x = n.tower("slice12", hidden)
    n.concat([x, "multicross1"], "concat2")
    n.fc("concat2", f"fc{len(hidden) + 1}", 1)
    n.bce(f"fc{len(hidden) + 1}")
    return b


def deepfm(slots=CRITEO_SLOTS, dense_dim=CRITEO_DENSE, factors=10, hidden=(400, 400, 400),
           nnz=1, fixed=True, combiner="sum") -> ModelBuilder:
    """DeepFM (deepfm.py): each vector holds ``factors`` FM factors plus a 1st-order weight."""
    vec = factors + 1
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=dense_dim,
                             dense_name="dense", sparse=[_sparse("data1", slots, nnz, fixed)])
    b.embedding(bottom="data1", top="sparse_embedding1", vec_size=vec, combiner=combiner,
                workspace_size_per_gpu_in_mb=183)
    n = _Net(b)
    n.reshape("sparse_embedding1", "reshape1", vec)
    n.slice("reshape1", ["slice11", "slice12"], [(0, factors), (factors, vec)])
    n.reshape("slice11", "reshape2", slots * factors)
    n.reshape("slice12", "reshape3", slots)
    n.copies("dense", ["slice21", "slice22"], dense_dim)
    b.dense("WeightMultiply", "slice21", "weight_multiply1", weight_dims=[dense_dim, factors])
    b.dense("WeightMultiply", "slice22", "weight_multiply2", weight_dims=[dense_dim, 1])
    n.concat(["reshape2", "weight_multiply1"], "concat1")
    n.copies("concat1", ["slice31", "slice32"], (slots + dense_dim) * factors)
    x = n.tower("slice31", hidden)
    last = f"fc{len(hidden) + 1}"
    n.fc(x, last, 1)
    b.dense("FmOrder2", "slice32", "fmorder2", out_dim=factors)
    n.reduce("ReduceSum", "fmorder2", "reducesum1", axis=1)
    n.concat(["reshape3", "weight_multiply2"], "concat2")
    n.reduce("ReduceSum", "concat2", "reducesum2", axis=1)
    n.merge("Add", [last, "reducesum1", "reducesum2"], "add")
    n.bce("add")
    return b


def dlrm(slots=CRITEO_SLOTS, dense_dim=CRITEO_DENSE, bottom=(512, 256, 128),
         top=(1024, 1024, 512, 256), batchnorm=True) -> ModelBuilder:
    """DLRM (dlrm.py): bottom MLP, dot Interaction, top MLP with BatchNorm after every
    hidden FC but the first. The embedding width is ``bottom[-1]``."""
    vec = bottom[-1]
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=dense_dim,
                             dense_name="dense", sparse=[_sparse("data1", slots)])
    b.embedding(bottom="data1", top="sparse_embedding1", vec_size=vec, combiner="sum",
                workspace_size_per_gpu_in_mb=2400)
    n = _Net(b)
    x, i = "dense", 0
    for i, w in enumerate(bottom, 1):
        x = n.act("ReLU", n.fc(x, f"fc{i}", w), f"relu{i}")
    x = n.merge("Interaction", [x, "sparse_embedding1"], "interaction1")
    for k, w in enumerate(top):
        i += 1
        x = n.fc(x, f"fc{i}", w)
        if batchnorm and k > 0:
            x = n.batchnorm(x, f"bn{i}")
        x = n.act("ReLU", x, f"relu{i}")
    n.fc(x, f"fc{i + 1}", 1)
    n.bce(f"fc{i + 1}")
    return b


def dlrm_mlp(slots=CRITEO_SLOTS, dense_dim=CRITEO_DENSE, bottom=(512, 256, 128),
             top=(1024, 1024, 512, 256)) -> ModelBuilder:
    """DLRM with fused MLP layers (dlrm_mlp.py); the top MLP ends in a linear logit."""
    vec = bottom[-1]
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=dense_dim,
                             dense_name="dense", sparse=[_sparse("data1", slots)])
    b.embedding(bottom="data1", top="sparse_embedding1", vec_size=vec, combiner="sum",
                workspace_size_per_gpu_in_mb=2400)
    b.dense("MLP", "dense", "mlp1", mlp_param={"num_output": 1, "num_outputs": list(bottom),
                                               "use_bias": True, "activation": "Relu"})
    b.dense("Interaction", ["mlp1", "sparse_embedding1"], "interaction1")
    b.dense("MLP", "interaction1", "mlp2",
            mlp_param={"num_output": 1, "num_outputs": [*top, 1], "use_bias": True,
                       "activations": ["Relu"] * len(top) + ["None"]})
    _Net(b).bce("mlp2")
    return b


# --------------------------------------------------------------------------- sequence models
def _din_inputs(seq, vec, dense_dim=0):
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=dense_dim,
                             dense_name="dense",
                             sparse=[_sparse("UserID", 1), _sparse("GoodID", seq + 1),
                                     _sparse("CateID", seq + 1)])
    for name, bottom, ws in (("user", "UserID", 84), ("good", "GoodID", 72),
                             ("cate", "CateID", 30)):
        b.embedding(bottom=bottom, top=f"sparse_embedding_{name}", vec_size=vec,
                    combiner="sum", workspace_size_per_gpu_in_mb=ws)
    return b


def _din_attention_input(n, seq, width):
    """Shared head of both DIN graphs: the target item against each history item."""
    n.b.dense("FusedReshapeConcat", ["sparse_embedding_good", "sparse_embedding_cate"],
              ["FusedReshapeConcat_item_his_em", "FusedReshapeConcat_item"])
    n.copies("FusedReshapeConcat_item", ["item1", "item2"], width)
    n.copies("FusedReshapeConcat_item_his_em", [f"item_his{i}" for i in range(1, 6)], width)
    n.scale("item1", "Scale_item", axis=1, factor=seq)
    n.copies("Scale_item", ["Scale_item1", "Scale_item2", "Scale_item3"], width)
    n.merge("Sub", ["Scale_item1", "item_his1"], "sub_ih")
    n.merge("ElementwiseMultiply", ["Scale_item2", "item_his2"], "ElementwiseMul_i")
    n.concat(["Scale_item3", "item_his3", "sub_ih", "ElementwiseMul_i"], "concat_i_h")


def _din_tail(n, vec, width, seq, attended, hidden):
    n.reshape("item_his5", "reshape_his", width, time_step=seq)
    n.reduce("ReduceMean", "reshape_his", "reduce_item_his", axis=1)
    n.reshape("reduce_item_his", "reshape_reduce_item_his", width)
    n.reshape("sparse_embedding_user", "reshape_user", vec)
    x = n.concat(["reshape_user", "reshape_reduce_item_his", attended, "item2"], "concat_din_i")
    for i, w in enumerate(hidden, 1):
        x = n.dice(n.fc(x, f"fc_din_i{i}", w), f"dice_{i}")
    n.fc(x, "fc3", 1)
    n.bce("fc3")


def din_try(seq=10, vec=18, att_hidden=40, hidden=(200, 80)) -> ModelBuilder:
    """DIN (din_try.py): attention weights applied with a batched MatrixMultiply."""
    b = _din_inputs(seq, vec)
    n, width = _Net(b), 2 * vec
    _din_attention_input(n, seq, width)
    n.fc(n.fc("concat_i_h", "fc_att_i2", att_hidden), "fc_att_i3", 1)
    n.reshape("fc_att_i3", "reshape_score", seq, time_step=1)
    n.softmax("reshape_score", "softmax_att_i")
    n.reshape("item_his4", "reshape_item_his", width, time_step=seq)
    n.merge("MatrixMultiply", ["softmax_att_i", "reshape_item_his"], "MatrixMultiply_ih")
    n.reshape("MatrixMultiply_ih", "reshape_reduce_ih", width)
    _din_tail(n, vec, width, seq, "reshape_reduce_ih", hidden)
    return b


def din_parquet(seq=10, vec=18, att_hidden=40, hidden=(200, 80)) -> ModelBuilder:
    """DIN (din_parquet.py): attention weights repeated by Scale, multiplied, summed."""
    b = _din_inputs(seq, vec)
    n, width = _Net(b), 2 * vec
    _din_attention_input(n, seq, width)
    n.fc(n.fc("concat_i_h", "fc_att_i2", att_hidden), "fc_att_i3", 1)
    n.reshape("fc_att_i3", "reshape_score", seq)
    n.softmax("reshape_score", "softmax_att_i")
    n.scale("softmax_att_i", "Scale_i", axis=0, factor=width)
    n.reshape("item_his4", "reshape_item_his", seq * width)
    n.merge("ElementwiseMultiply", ["Scale_i", "reshape_item_his"], "ElementwiseMul_ih")
    n.reduce("ReduceSum", "ElementwiseMul_ih", "reduce_ih", axis=1)
    _din_tail(n, vec, width, seq, "reduce_ih", hidden)
    return b


def bst_avg_pooling(seq=10, user_vec=18, item_vec=16, d_model=32, heads=4, ffn=128,
                    hidden=(256, 128, 64)) -> ModelBuilder:
    """Behaviour Sequence Transformer (bst_avg_pooling.py): masked multi-head attention over
    the history, the sequence length read from the single dense feature."""
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=1, dense_name="dense",
                             sparse=[_sparse("UserID", 1), _sparse("GoodID", seq),
                                     _sparse("Target_Good", 1), _sparse("CateID", seq),
                                     _sparse("Target_Cate", 1)])
    for top, bottom, v, ws in (("user", "UserID", user_vec, 84), ("good", "GoodID", item_vec, 72),
                               ("item_good", "Target_Good", item_vec, 72),
                               ("cate", "CateID", item_vec, 30),
                               ("item_cate", "Target_Cate", item_vec, 30)):
        b.embedding(bottom=bottom, top=f"sparse_embedding_{top}", vec_size=v, combiner="sum",
                    workspace_size_per_gpu_in_mb=ws)
    n = _Net(b)
    b.dense("SequenceMask", ["dense", "dense"], "sequence_mask", max_sequence_len_from=seq,
            max_sequence_len_to=seq)
    n.concat(["sparse_embedding_cate", "sparse_embedding_good"], "hist_emb_list", axis=2)
    for t in ("query_emb", "key_emb", "value_emb"):
        n.fc("hist_emb_list", t, d_model)
    b.dense("MultiHeadAttention", ["query_emb", "key_emb", "value_emb", "sequence_mask"],
            "attention_out", num_attention_heads=heads, transpose_b=False)
    n.merge("Add", ["attention_out", "query_emb"], "attention_add_shortcut")
    n.layernorm("attention_add_shortcut", "attention_layer_norm")
    n.fc(n.fc("attention_layer_norm", "attention_ffn1", ffn), "attention_ffn2", d_model)
    n.merge("Add", ["attention_ffn2", "attention_layer_norm"], "attention_ffn_shortcut")
    n.layernorm("attention_ffn_shortcut", "attention_ffn_layer_norm")
    n.reduce("ReduceMean", "attention_ffn_layer_norm", "reduce_attention_ffn_layer_norm", axis=1)
    n.reshape("reduce_attention_ffn_layer_norm", "reshape_attention_out", d_model)
    n.reshape("sparse_embedding_user", "reshape_user", user_vec)
    n.reshape("sparse_embedding_item_good", "reshape_item_good", item_vec)
    n.reshape("sparse_embedding_item_cate", "reshape_item_cate", item_vec)
    x = n.concat(["reshape_attention_out", "reshape_user", "reshape_item_good",
                  "reshape_item_cate"], "dnn_input")
    for i, w in enumerate(hidden, 1):
        x = n.dice(n.fc(x, f"fc_bst_i{i}", w), f"dice_{i}")
    last = f"fc_bst_i{len(hidden) + 1}"
    n.fc(x, last, 1)
    n.bce(last)
    return b


# --------------------------------------------------------------------------- multi-task
def mmoe_parquet(slots=32, vec=16, experts=3, expert_hidden=(256, 128), tower=64,
                 num_gpus=1) -> ModelBuilder:
    """Multi-gate mixture of experts (mmoe_parquet.py): two labels, a Localized embedding
    trained with SGD, softmax gates scaling each expert's output."""
    b = ModelBuilder().input(label_dim=[1, 1], label_name=["50k_label", "married_label"],
                             dense_dim=0, dense_name="dense", sparse=[_sparse("data", slots)])
    b.embedding(bottom="data", top="embedding", vec_size=vec, combiner="sum",
                type="LocalizedSlotSparseEmbeddingHash", workspace_size_per_gpu_in_mb=1000,
                num_gpus=num_gpus, optimizer="SGD", update_type="Local")
    n, width, out = _Net(b), slots * vec, expert_hidden[-1]
    n.reshape("embedding", "reshape_embedding", width)
    n.copies("reshape_embedding", ["expert_emb", "gating_emb"], width)
    n.copies("expert_emb", [f"expert{k}_in" for k in range(experts)], width)
    for k in range(experts):
        x = n.tower(f"expert{k}_in", expert_hidden, fc=f"e{k}_fc{{}}", relu=f"e{k}_relu{{}}",
                    drop=f"e{k}_dropout{{}}")
        n.copies(x, [f"e{k}_out_A", f"e{k}_out_B"], out)
    n.copies("gating_emb", ["gateA_in", "gateB_in"], width)
    for t in "AB":
        n.softmax(n.fc(f"gate{t}_in", f"g{t}_dense", experts), f"g{t}_softmax")
        n.slice(f"g{t}_softmax", [f"g{t}_e{k}" for k in range(experts)],
                [(k, k + 1) for k in range(experts)])
        for k in range(experts):
            n.scale(f"g{t}_e{k}", f"g{t}_e{k}_scaled", axis=0, factor=out)
            n.merge("ElementwiseMultiply", [f"e{k}_out_{t}", f"g{t}_e{k}_scaled"],
                    f"e{k}_{t}_gated")
        n.merge("Add", [f"e{k}_{t}_gated" for k in range(experts)], f"tower_{t}_input")
    for t in "AB":
        x = n.tower(f"tower_{t}_input", [tower], fc=f"{t}_fc{{}}", relu=f"{t}_relu{{}}",
                    drop=f"{t}_dropout{{}}")
        n.fc(x, f"{t}_fc2", 1)
    n.bce("A_fc2", "50k_label", "lossA")
    n.bce("B_fc2", "married_label", "lossB")
    return b


# --------------------------------------------------------------------------- matrix factorization
def _cf_inputs(vec, top, ws):
    b = ModelBuilder().input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                             sparse=[_sparse("data", 2)])
    b.embedding(bottom="data", top=top, vec_size=vec, combiner="sum",
                workspace_size_per_gpu_in_mb=ws)
    return b


def ncf(vec=64, hidden=(256, 256, 128, 64)) -> ModelBuilder:
    """Neural collaborative filtering, MLP part (ncf.py): user and item vectors side by side."""
    b = _cf_inputs(vec, "mlp_embedding", 165)
    n = _Net(b)
    x = n.tower(n.reshape("mlp_embedding", "reshape_mlp", 2 * vec), hidden)
    n.fc(x, "mlp_out", 1)
    n.bce("mlp_out")
    return b


def gmf(vec=16) -> ModelBuilder:
    """Generalized matrix factorization (gmf.py). The script's ranges leave out the last
    element of each vector; kept as written."""
    b = _cf_inputs(vec, "gmf_embedding", 60)
    n = _Net(b)
    n.reshape("gmf_embedding", "reshape1", 2 * vec)
    n.slice("reshape1", ["user", "item"], [(0, vec - 1), (vec, 2 * vec - 1)])
    n.merge("ElementwiseMultiply", ["user", "item"], "multiply1")
    n.fc("multiply1", "gmf_out", 1)
    n.bce("gmf_out")
    return b


def neumf(vec=72, mlp_width=128, hidden=(256, 256, 128, 64)) -> ModelBuilder:
    """NeuMF (neumf.py): one embedding split into an MLP part and a GMF part, with the
    script's (off-by-one) Slice ranges kept as written."""
    b = _cf_inputs(vec, "mixed_embedding", 190)
    n = _Net(b)
    n.reshape("mixed_embedding", "reshape_embedding", 2 * vec)
    n.slice("reshape_embedding", ["mlp_embedding", "gmf_embedding"],
            [(0, mlp_width - 1), (mlp_width, 2 * vec - 1)])
    x = n.tower("mlp_embedding", hidden, last_drop="mlp_dropout4")
    g = 2 * vec - 1 - mlp_width  # width of gmf_embedding
    n.slice("gmf_embedding", ["user", "item"], [(0, g // 2), (g // 2 + 1, g)])
    n.merge("ElementwiseMultiply", ["user", "item"], "gmf_multiply")
    n.concat(["gmf_multiply", x], "concat")
    n.fc("concat", "neumf_out", 1)
    n.bce("neumf_out")
    return b


MODELS = {f.__name__: f for f in (wdl, dcn, deepfm, dlrm, dlrm_mlp, din_try, din_parquet,
                                  bst_avg_pooling, mmoe_parquet, ncf, gmf, neumf)}


# Every architecture shrunk to a few units per layer (tests and fuzzing): same layer types.
SMALL = {
    "wdl": dict(deep_slots=4, wide_slots=2, dense_dim=3, vec=4, hidden=(8, 8)),
    "dcn": dict(slots=4, dense_dim=3, vec=4, hidden=(8, 8), cross_layers=2),
    "deepfm": dict(slots=4, dense_dim=3, factors=3, hidden=(8, 8, 8)),
    "dlrm": dict(slots=4, dense_dim=3, bottom=(8, 4), top=(8, 8, 6)),
    "dlrm_mlp": dict(slots=4, dense_dim=3, bottom=(8, 4), top=(8, 8, 6)),
    "din_try": dict(seq=4, vec=3, att_hidden=5, hidden=(6, 4)),
    "din_parquet": dict(seq=4, vec=3, att_hidden=5, hidden=(6, 4)),
    "bst_avg_pooling": dict(seq=4, user_vec=3, item_vec=4, d_model=8, heads=2, ffn=8,
                            hidden=(8, 6, 4)),
    "mmoe_parquet": dict(slots=4, vec=3, experts=3, expert_hidden=(8, 6), tower=4),
    "ncf": dict(vec=4, hidden=(8, 8, 6, 4)),
    "gmf": dict(vec=5),
    "neumf": dict(vec=9, mlp_width=12, hidden=(8, 8, 6, 4)),
}


# --------------------------------------------------------------------------- weights and tables
def unsaved(builder: ModelBuilder) -> ModelBuilder:
    """The builder as graph_to_json writes it: MultiCross ``projection_dim`` dropped."""
    out = copy.deepcopy(builder)
    for block in out.dense_layers:
        if block["type"] == "MultiCross":
            block["mc_param"].pop("projection_dim", None)
    return out


def random_tables(graph: Graph, *, num_keys: int = 200, seed: int = 0, hashed: bool = False,
                  key_bits: int = 64) -> list[dict]:
    """Per embedding: distinct keys (small ints, or random ids of ``key_bits`` bits when
    ``hashed``), uniform vectors and, for Localized embeddings, random slot ids."""
    rng = np.random.default_rng(seed)
    tables = []
    for emb in graph.embeddings:
        if not hashed:
            keys = rng.permutation(2 * num_keys)[:num_keys].astype(np.int64)
        elif key_bits == 32:  # 0xFFFFFFFF is the hash table's empty marker
            keys = np.unique(rng.integers(0, 2 ** 32 - 1, num_keys, dtype=np.int64))
        else:
            keys = np.unique(rng.integers(-(2 ** 63), 2 ** 63 - 1, num_keys, dtype=np.int64))
        t = {"keys": rng.permutation(keys),
             "vectors": rng.uniform(-1, 1, (keys.size, emb.vec_size)).astype(np.float32)}
        if emb.localized:
            t["slot_ids"] = rng.integers(0, emb.slot_num, keys.size).astype(np.uint64)
        tables.append(t)
    return tables


def random_model(builder: ModelBuilder, *, seed: int = 0, **table_kw):
    """(builder to save, graph with random weights, tables) for ``writer.save_model``."""
    graph = builder.graph()
    random_weights(graph, np.random.default_rng(seed))
    return unsaved(builder), graph, random_tables(graph, seed=seed, **table_kw)


def save(builder: ModelBuilder, directory, *, prefix: str = "model", seed: int = 0,
         save_kw: dict | None = None, **table_kw) -> Artifacts:
    """Write the model's artifacts with random weights and tables."""
    saved, graph, tables = random_model(builder, seed=seed, **table_kw)
    return save_model(saved, directory, prefix=prefix, graph=graph, tables=tables,
                      **(save_kw or {}))
