"""The model's description, stored in the ONNX ``metadata_props`` as the seed scripts do
(``model_type``, ``num_heads``, ``hidden_size``) plus what optimize and run need later."""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, fields

import onnx

from ..errors import InputFileError, UsageError

# ONNX Runtime's transformer optimizer knows BERT-like encoders as "bert" (its fusions match
# the BERT, RoBERTa, DistilBERT, ELECTRA... graphs alike).
ORT_MODEL_TYPES = {"gpt2": "gpt2", "bart": "bart", "t5": "t5", "mt5": "t5", "vit": "vit",
                   "clip": "clip", "swin": "swin", "gpt_neox": "gpt_neox", "phi": "phi"}


@dataclass
class HfMetadata:
    model_type: str
    num_heads: int
    hidden_size: int
    task: str
    source_model: str
    source_revision: str
    exporter: str
    vocab_size: int
    type_vocab_size: int
    inputs: str  # comma-separated input names
    outputs: str
    id2label: str = ""  # JSON, sequence-classification only
    special_ids: str = ""  # comma-separated ids kept out of random validation batches
    max_sequence: int = 0  # longest sequence the position embeddings allow; 0: unknown

    def shapes(self, shapes):
        """Validation (batch, sequence) shapes, sequences capped at ``max_sequence``."""
        cap = self.max_sequence or None
        return [(b, min(s, cap) if cap else s) for b, s in shapes]

    @property
    def ort_model_type(self) -> str:
        return ORT_MODEL_TYPES.get(self.model_type, "bert")

    @property
    def input_names(self) -> list[str]:
        return self.inputs.split(",")

    @property
    def special_token_ids(self) -> tuple[int, ...]:
        return tuple(int(i) for i in self.special_ids.split(",") if i)

    def write(self, model: onnx.ModelProto) -> None:
        onnx.helper.set_model_props(model, {k: str(v) for k, v in asdict(self).items()})
        model.producer_name = "hugectr2onnx.hf"

    @classmethod
    def read(cls, model: onnx.ModelProto, path: str | os.PathLike = "") -> "HfMetadata":
        props = {p.key: p.value for p in model.metadata_props}
        missing = [f.name for f in fields(cls) if f.name not in props and f.default is MISSING]
        if missing:
            raise UsageError("not exported by 'hugectr2onnx hf export': metadata_props lack "
                             + ", ".join(missing), file=str(path), where="metadata_props")
        kw = {}
        for f in fields(cls):
            if f.name in props:
                kw[f.name] = int(props[f.name]) if f.type == "int" else props[f.name]
        return cls(**kw)


def read_metadata(path: str | os.PathLike) -> HfMetadata:
    """The metadata of an exported model, without loading its weights."""
    if not os.path.isfile(path):
        raise InputFileError("no such file", file=str(path))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
        raise InputFileError(f"not an ONNX model ({type(e).__name__})", file=str(path)) from None
    return HfMetadata.read(model, path)


def id2label(meta: HfMetadata) -> dict[int, str]:
    return {int(k): v for k, v in json.loads(meta.id2label).items()} if meta.id2label else {}
