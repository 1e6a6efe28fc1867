"""A recording stand-in of the ``hugectr`` Python module.

It accepts the calls of a training script (CreateSolver, DataReaderParams, Model, Input,
SparseEmbedding, EmbeddingTableConfig, EmbeddingCollectionConfig, DenseLayer, ...), keeps
what they say about the model, and stops the script at ``Model.compile()``. Enumerations
(``Layer_t.MLP``, ``Activation_t.Relu``, ...) are names; everything for training only is
accepted and ignored.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field


class StopRecording(BaseException):
    """Raised by Model.compile(): a BaseException, so that ``except Exception`` in the
    user's script does not swallow it."""

    def __init__(self, model: "Model"):
        self.model = model
        super().__init__("model.compile() reached")


class EnumValue:
    def __init__(self, enum: str, name: str):
        self.enum, self.name = enum, name

    def __repr__(self):
        return f"{self.enum}.{self.name}"

    def __eq__(self, other):
        return isinstance(other, EnumValue) and (self.enum, self.name) == (other.enum, other.name)

    def __hash__(self):
        return hash((self.enum, self.name))


class Enum:
    """``hugectr.Layer_t`` and friends: any member name is a value."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, member: str) -> EnumValue:
        if member.startswith("__"):
            raise AttributeError(member)
        return EnumValue(self._name, member)


def enum_name(value, default: str | None = None) -> str | None:
    if value is None:
        return default
    if isinstance(value, EnumValue):
        return value.name
    return str(value)


class Options(types.SimpleNamespace):
    """A parameter object (solver, reader, optimizer, ...): its keyword arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(**kwargs)
        self.args = args


def CreateSolver(*args, **kwargs) -> Options:
    return Options(*args, **kwargs)


CreateOptimizer = DataReaderParams = AsyncParam = HybridEmbeddingParam = Options
DenseLayerComputeConfig = OptParamsPy = CreateETC = Options


class TrainingCallback:
    """Base class of user callbacks (only subclassed while recording)."""

    def on_training_start(self, *a, **k): ...
    def on_training_end(self, *a, **k): ...
    def on_eval_start(self, *a, **k): ...
    def on_eval_end(self, *a, **k): return False
    def on_iter_start(self, *a, **k): ...
    def on_iter_end(self, *a, **k): return False


@dataclass
class DataReaderSparseParam:
    top_name: str
    nnz_per_slot: object = 1
    is_fixed_length: bool = True
    slot_num: int = 1


@dataclass
class Input:
    label_dim: object = 1
    label_name: object = "label"
    dense_dim: int = 0
    dense_name: str = "dense"
    data_reader_sparse_param_array: list = field(default_factory=list)


class SparseEmbedding(Options):
    """Positional arguments in the order of HugeCTR's binding."""

    ORDER = ("embedding_type", "workspace_size_per_gpu_in_mb", "embedding_vec_size",
             "combiner", "sparse_embedding_name", "bottom_name", "slot_size_array", "optimizer")

    def __init__(self, *args, **kwargs):
        super().__init__(**dict(zip(self.ORDER, args)), **kwargs)


class DenseLayer:
    def __init__(self, layer_type=None, bottom_names=None, top_names=None, **kwargs):
        self.layer_type = layer_type
        self.bottom_names = list(bottom_names or [])
        self.top_names = list(top_names or [])
        self.kwargs = kwargs


class EmbeddingTableConfig:
    def __init__(self, name, max_vocabulary_size, ev_size, opt_params_or_empty=None,
                 init_param_or_empty=None):
        self.name = str(name)
        self.max_vocabulary_size = int(max_vocabulary_size)
        self.ev_size = int(ev_size)


class EmbeddingCollectionConfig:
    """Mirrors HugeCTR's: the list form of embedding_lookup makes a batch-major output
    named ``top_name``; the single form adds feature-major lookups with their own tops."""

    def __init__(self, use_exclusive_keys=False, comm_strategy=None):
        self.lookups: list[dict] = []
        self.tables: list[EmbeddingTableConfig] = []
        self.batch_major_top: str | None = None
        self.shard_matrix = self.shard_strategy = None

    def embedding_lookup(self, table_config, bottom_name, top_name, combiner):
        if isinstance(table_config, (list, tuple)):
            if self.lookups:
                raise ValueError("the list form of embedding_lookup needs an empty collection "
                                 "(HugeCTR: 'empty lookup params required')")
            if not len(table_config) == len(bottom_name) == len(combiner):
                raise ValueError("embedding_lookup: table_config, bottom_name and combiner "
                                 "lists differ in length")
            self.batch_major_top = str(top_name)
            for t, b, c in zip(table_config, bottom_name, combiner):
                self._lookup(t, b, None, c)
        else:
            self._lookup(table_config, bottom_name, str(top_name), combiner)

    def _lookup(self, table, bottom, top, combiner):
        if combiner not in ("sum", "average", "concat"):
            raise ValueError(f"{combiner} is not supported.")
        self.lookups.append({"table": table.name, "input": str(bottom), "combiner": combiner,
                             "top": top})
        if all(t.name != table.name for t in self.tables):
            self.tables.append(table)

    def shard(self, shard_matrix=None, shard_strategy=None, compression_strategy=None):
        self.shard_matrix, self.shard_strategy = shard_matrix, shard_strategy


class Model:
    """Collects the model; compile() ends the recording."""

    def __init__(self, solver=None, reader_params=None, optimizer=None, *args, **kwargs):
        self.solver = solver or Options()
        self.reader_params = reader_params
        self.optimizer = optimizer
        self.input: Input | None = None
        self.embeddings: list[SparseEmbedding] = []
        self.collections: list[EmbeddingCollectionConfig] = []
        self.dense_layers: list[DenseLayer] = []
        RECORDED.append(self)

    def add(self, layer):
        if isinstance(layer, Input):
            self.input = layer
        elif isinstance(layer, SparseEmbedding):
            self.embeddings.append(layer)
        elif isinstance(layer, EmbeddingCollectionConfig):
            self.collections.append(layer)
        elif isinstance(layer, DenseLayer):
            self.dense_layers.append(layer)
        elif isinstance(layer, (list, tuple)):
            for item in layer:
                self.add(item)
        else:
            raise TypeError(f"model.add() got {type(layer).__name__}, which the recorder "
                            f"does not know")

    def compile(self, *args, **kwargs):
        raise StopRecording(self)

    def __getattr__(self, name):  # summary, fit, graph_to_json, ... before compile: no-ops
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: None


RECORDED: list[Model] = []

_ENUMS = ("Layer_t", "Activation_t", "Optimizer_t", "Update_t", "DataReaderType_t", "Check_t",
          "Embedding_t", "Initializer_t", "Regularizer_t", "AllReduceAlgo", "SourceType_t",
          "CommunicationStrategy", "CompressionStrategy", "FcPosition_t", "Alignment_t",
          "TrainPSType_t", "DataSourceType_t", "LrPolicy_t")


def make_module() -> types.ModuleType:
    """A fresh ``hugectr`` module of the stand-in's classes and enumerations."""
    m = types.ModuleType("hugectr")
    m.__dict__.update({k: v for k, v in globals().items()
                       if k[:1].isupper() and k not in ("RECORDED", "StopRecording", "Enum",
                                                        "EnumValue", "Options")})
    for name in _ENUMS:
        setattr(m, name, Enum(name))

    def __getattr__(name):  # anything else a script touches: an option object or enum
        if name.startswith("__"):
            raise AttributeError(name)
        return Enum(name) if name.endswith("_t") else Options
    m.__getattr__ = __getattr__
    m.__path__ = []
    return m
