"""The module that gets exported: the model called with named inputs, its outputs flattened
into named tensors, and for ``splade`` SPLADE's pooling appended in the graph."""

from __future__ import annotations

import inspect

import torch

KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SPLADE_OUTPUT = "sparse_vector"


def input_names(model, tokenizer) -> list[str]:
    """The tokenizer's inputs that the model's forward accepts, in a fixed order; the mask is
    always an input (padding needs it, SPLADE pools with it)."""
    accepted = set(inspect.signature(model.forward).parameters)
    wanted = set(getattr(tokenizer, "model_input_names", KNOWN_INPUTS)) | {"input_ids",
                                                                           "attention_mask"}
    return [n for n in KNOWN_INPUTS if n in wanted and n in accepted]


def splade_pool(logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """SPLADE max pooling: max over tokens of log(1 + relu(logits)), padding tokens masked.
    The weights are >= 0, so multiplying by the mask is the same as masking with -inf."""
    weights = torch.log1p(torch.relu(logits)) * attention_mask.unsqueeze(-1).to(logits.dtype)
    return weights.amax(dim=1)


class ExportWrapper(torch.nn.Module):
    """forward(input_ids, attention_mask, token_type_ids=None) -> tuple of tensors."""

    def __init__(self, model, names: list[str], task: str, output_keys: list[str] | None = None):
        super().__init__()
        self.model = model
        self.names = list(names)
        self.task = task
        self.output_keys = output_keys  # fixed by probe() before export

    def forward(self, *inputs):
        kwargs = dict(zip(self.names, inputs))
        out = self.model(**kwargs, return_dict=True)
        if self.task == "splade":
            return (splade_pool(out["logits"], kwargs["attention_mask"]),)
        return tuple(out[k] for k in self.output_keys)

    def probe(self, inputs: tuple) -> list[str]:
        """Run once; name the outputs as the seed does: the output object's own keys
        (last_hidden_state, logits, pooler_output...), output_i for anything unnamed."""
        with torch.no_grad():
            out = self.model(**dict(zip(self.names, inputs)), return_dict=True)
        if self.task == "splade":
            if "logits" not in out:
                raise KeyError("logits")
            self.output_keys = ["logits"]
            return [SPLADE_OUTPUT]
        keys = [k for k, v in out.items() if isinstance(v, torch.Tensor)]
        self.output_keys = keys
        return [k if k.isidentifier() else f"output_{i}" for i, k in enumerate(keys)]
