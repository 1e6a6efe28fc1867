"""A recorded model as graph JSON (as ``graph_to_json`` writes it, plus what it loses:
MultiCross ``projection_dim`` and the ``shape`` of v23.08+ Reshapes) and as an
embedding-collection description."""

from __future__ import annotations

from ..errors import ConversionError
from ..hugectr.sparse import OPTIMIZER_STATES
from .standin import Model, enum_name

# DenseLayer keywords that matter for training only
TRAINING_ONLY = {"compute_config", "weight_init_type", "bias_init_type", "use_regularizer",
                 "regularizer_type", "lambda", "lambda_", "use_mixed_precision",
                 "dense_layer_compute_config", "ranges_init"}


class RecordError(ConversionError):
    """The training script did something the recorder cannot turn into a graph."""


def _acts(kw):
    if kw.get("activations"):
        return {"activations": [_act(a) for a in kw["activations"]]}
    return {"activation": _act(kw.get("act_type"), "Relu")}


def _act(value, default="Relu"):
    name = enum_name(value, default)
    return "None" if name in ("Non", "None") else name


def _reshape(kw, where):
    if kw.get("selected") or kw.get("selected_slots"):
        return {"selected": list(kw.get("selected_slots") or kw.get("selected"))}
    if kw.get("leading_dim"):
        return {"leading_dim": int(kw["leading_dim"]), "time_step": int(kw.get("time_step", 0))}
    shape = [int(d) for d in kw.get("shape", [])]
    if len(shape) in (2, 3) and all(d > 0 for d in shape[1:]):
        return {"leading_dim": shape[-1], "time_step": shape[1] if len(shape) == 3 else 0}
    raise RecordError(f"Reshape shape {shape} has no [batch, d] or [batch, t, d] form",
                      where=where)


# layer type -> (keywords it reads, function building its JSON fields)
LAYERS = {
    "MLP": ({"num_outputs", "act_type", "activations", "use_bias", "biases", "num_output"},
            lambda kw, w: {"mlp_param": {"num_output": int(kw.get("num_output", 1)),
                                         "num_outputs": list(kw["num_outputs"]), **_acts(kw),
                                         **({"biases": list(kw["biases"])} if kw.get("biases")
                                            else {"use_bias": bool(kw.get("use_bias", True))})}}),
    "InnerProduct": ({"num_output"}, lambda kw, w: {"fc_param": {
        "num_output": int(kw.get("num_output", 1))}}),
    "FusedInnerProduct": ({"num_output", "pos_type", "act_type"},
                          lambda kw, w: {"fc_param": {"num_output": int(kw.get("num_output",
                                                                                1))},
                                         "position": enum_name(kw.get("pos_type"), "None"),
                                         "activation": _act(kw.get("act_type"))}),
    "MultiCross": ({"num_layers", "projection_dim"},
                   lambda kw, w: {"mc_param": {"num_layers": int(kw.get("num_layers", 0)),
                                               "projection_dim": int(kw.get("projection_dim",
                                                                            0))}}),
    "Reshape": ({"leading_dim", "time_step", "selected", "selected_slots", "shape"}, _reshape),
    "Concat": ({"axis"}, lambda kw, w: {"axis": int(kw.get("axis", 1))}),
    "Slice": ({"ranges"}, lambda kw, w: {"ranges": [list(r) for r in kw["ranges"]]}),
    "WeightMultiply": ({"weight_dims"}, lambda kw, w: {"weight_dims": list(kw["weight_dims"])}),
    "ReduceSum": ({"axis"}, lambda kw, w: {"axis": int(kw.get("axis", 1))}),
    "ReduceMean": ({"axis"}, lambda kw, w: {"axis": int(kw.get("axis", 1))}),
    "Dropout": ({"dropout_rate"}, lambda kw, w: {"rate": float(kw.get("dropout_rate", 0.5))}),
    "ELU": ({"elu_alpha"}, lambda kw, w: {"elu_param": {"alpha": float(kw.get("elu_alpha", 1))}}),
    "BatchNorm": ({"factor", "eps"}, lambda kw, w: {"bn_param": {
        "factor": float(kw.get("factor", 1.0)), "eps": float(kw.get("eps", 1e-5))}}),
    "LayerNorm": ({"eps"}, lambda kw, w: {"ln_param": {"eps": float(kw.get("eps", 1e-5))}}),
    "FmOrder2": ({"out_dim"}, lambda kw, w: {"out_dim": int(kw["out_dim"])}),
    "Softmax": ({"factor"}, lambda kw, w: {"factor": float(kw.get("factor", 1.0))}),
    "MultiCrossEntropyLoss": ({"target_weight_vec"}, lambda kw, w: (
        {"target_weight": list(kw["target_weight_vec"])} if kw.get("target_weight_vec") else {})),
    "SequenceMask": ({"max_sequence_len_from", "max_sequence_len_to"}, lambda kw, w: {
        "max_sequence_len_from": int(kw.get("max_sequence_len_from", 1)),
        "max_sequence_len_to": int(kw.get("max_sequence_len_to", 1))}),
    "MultiHeadAttention": ({"num_attention_heads", "transpose_b"}, lambda kw, w: {
        "num_attention_heads": int(kw.get("num_attention_heads", 1)),
        "transpose_b": bool(kw.get("transpose_b", False))}),
    "Gather": ({"indices"}, lambda kw, w: {"indices": list(kw["indices"])}),
    "GRU": ({"num_output", "batchsize", "SeqLength", "vector_size"}, lambda kw, w: {
        "gru_param": {"num_output": int(kw.get("num_output", 1)),
                      "batchsize": int(kw.get("batchsize", 1)),
                      "SeqLength": int(kw.get("SeqLength", 1)),
                      "vector_size": int(kw.get("vector_size", 1))}}),
    "PReLU_Dice": ({"elu_alpha", "eps"}, lambda kw, w: {"prelu_dice_param": {
        "alpha": float(kw.get("elu_alpha", 1.0)), "eps": float(kw.get("eps", 1e-5))}}),
    "Scale": ({"axis", "factor"}, lambda kw, w: {"scale_param": {
        "axis": int(kw.get("axis", 1)), "factor": float(kw.get("factor", 1.0))}}),
}
PLAIN = {"ReLU", "Sigmoid", "Interaction", "ElementwiseMultiply", "Add", "Sub",
         "BinaryCrossEntropyLoss", "CrossEntropyLoss", "MatrixMultiply", "Cast"}


def dense_block(layer, k: int) -> dict:
    kind = enum_name(layer.layer_type)
    where = f"DenseLayer #{k} ({kind}, top {layer.top_names[:1]})"
    used = {key for key, v in layer.kwargs.items()
            if key not in TRAINING_ONLY and v not in (None, [], ())}
    reads, build = LAYERS.get(kind, (set(), None))
    if build is None and kind not in PLAIN:
        raise RecordError(f"layer type {kind} is not supported by the recorder", where=where)
    extra = sorted(used - reads)
    if extra:
        raise RecordError(f"keyword(s) {extra} of {kind} are not understood by the recorder",
                          where=where)
    block = {"type": kind,
             "bottom": layer.bottom_names[0] if len(layer.bottom_names) == 1
             else layer.bottom_names,
             "top": layer.top_names[0] if len(layer.top_names) == 1 else layer.top_names}
    if build is not None:
        try:
            block.update(build(layer.kwargs, where))
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(f"cannot read {kind}'s parameters: {type(e).__name__}: {e}",
                              where=where)
    return block


def data_block(model: Model) -> dict:
    inp = model.input
    if inp is None:
        raise RecordError("the script added no hugectr.Input to the model", where="model.add")
    names = [inp.label_name] if isinstance(inp.label_name, str) else list(inp.label_name)
    dims = [inp.label_dim] if isinstance(inp.label_dim, int) else list(inp.label_dim)
    label = ({"top": names[0], "label_dim": dims[0]} if len(names) == 1
             else {"top": names, "label_dim": dims})
    sparse = []
    for sp in inp.data_reader_sparse_param_array:
        nnz = sp.nnz_per_slot
        nnz = [int(nnz)] * int(sp.slot_num) if isinstance(nnz, int) else [int(x) for x in nnz]
        sparse.append({"top": sp.top_name, "nnz_per_slot": nnz,
                       "is_fixed_length": bool(sp.is_fixed_length), "slot_num": int(sp.slot_num)})
    return {"type": "Data", "label": label,
            "dense": {"top": inp.dense_name, "dense_dim": int(inp.dense_dim)}, "sparse": sparse}


def _optimizer(opt) -> tuple[str, str]:
    """Type and update type of a CreateOptimizer result (HugeCTR's defaults: Adam, Global)."""
    kw = vars(opt) if opt is not None else {}
    return (enum_name(kw.get("optimizer_type"), "Adam"),
            enum_name(kw.get("update_type"), "Global"))


def _gpu_count(solver) -> int:
    vvgpu = getattr(solver, "vvgpu", None) or [[0]]
    return sum(len(node) for node in vvgpu)


def embedding_block(e, model: Model) -> dict:
    """As graph_to_json writes it; max_vocabulary_size_global as Model.add computes it:
    workspace / ((1 + optimizer states) x 4 x vec) per GPU, times the GPU count."""
    kw = vars(e)
    type_name = enum_name(kw.get("embedding_type"), "DistributedSlotSparseEmbeddingHash")
    own = kw.get("optimizer")  # HugeCTR falls back to the model's optimizer
    opt, update = _optimizer(own if own is not None else model.optimizer)
    states = OPTIMIZER_STATES.get(opt, 0) + (opt == "Adam" and update == "LazyGlobal")
    mb, vec = int(kw.get("workspace_size_per_gpu_in_mb", 0)), int(kw["embedding_vec_size"])
    per_gpu = mb * 2 ** 20 // ((1 + states) * 4 * vec)
    hparam = {"workspace_size_per_gpu_in_mb": mb,
              "max_vocabulary_size_global": per_gpu * _gpu_count(model.solver),
              "embedding_vec_size": int(kw["embedding_vec_size"]),
              "combiner": kw.get("combiner", "sum")}
    if kw.get("slot_size_array"):
        hparam["slot_size_array"] = list(kw["slot_size_array"])
    return {"type": type_name, "bottom": kw["bottom_name"], "top": kw["sparse_embedding_name"],
            "sparse_embedding_hparam": hparam,
            "optimizer": {"type": opt, "update_type": update}}


def graph_doc(model: Model) -> dict:
    blocks = [data_block(model)] + [embedding_block(e, model) for e in model.embeddings]
    blocks += [dense_block(layer, k) for k, layer in enumerate(model.dense_layers)]
    return {"layers": blocks}


def description_doc(model: Model, dump_dir: str) -> dict | None:
    if not model.collections:
        return None
    if len(model.collections) > 1:
        raise RecordError("the model adds more than one embedding collection; HugeCTR "
                          "dumps and describes one", where="model.add")
    c = model.collections[0]
    key_type = "int64" if getattr(model.solver, "i64_input_key", False) else "uint32"
    output = ({"layout": "batch_major", "top": c.batch_major_top} if c.batch_major_top
              else {"layout": "feature_major"})
    lookups = []
    for lk in c.lookups:
        entry = {"input": lk["input"], "table": lk["table"], "combiner": lk["combiner"]}
        if lk["top"] is not None:
            entry["top"] = lk["top"]
        lookups.append(entry)
    return {"dump_dir": dump_dir, "key_type": key_type, "output": output,
            "tables": [{"name": t.name, "vocab": t.max_vocabulary_size, "ev_size": t.ev_size}
                       for t in c.tables],
            "lookups": lookups}
