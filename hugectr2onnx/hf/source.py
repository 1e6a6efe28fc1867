"""Find a Hugging Face model offline and load it with its tokenizer.

A model is a local directory, or a name already in the local Hugging Face cache. Nothing is
ever downloaded: every load passes ``local_files_only=True`` (what ``HF_HUB_OFFLINE=1`` would
force), so a model that is not on this machine is one ModelNotFoundError, not a network retry.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError, UnsupportedModelError

TASKS = ("masked-lm", "feature-extraction", "sequence-classification", "splade")


@dataclass(frozen=True)
class Source:
    """Where a model was found: ``path`` to load from, ``name`` and ``revision`` to record."""

    path: Path
    name: str
    revision: str


def resolve(model: str | os.PathLike, revision: str | None = None) -> Source:
    """A local directory, or a cached snapshot of the repository ``model`` (never downloads)."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError("directory has no config.json: not a Hugging Face model",
                                     file=str(path))
        return Source(path.resolve(), str(path.resolve()), revision or "local")
    if path.exists() or str(model).startswith((".", "/")) or str(model).count("/") > 1:
        raise ModelNotFoundError("not a model directory", file=str(model))
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError as e:  # pragma: no cover - huggingface_hub comes with transformers
        raise UnsupportedModelError(f"{e}: install the 'hf' extra") from None
    try:
        snap = Path(snapshot_download(str(model), revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, OSError) as e:
        raise ModelNotFoundError(
            "neither a local directory nor in the local Hugging Face cache "
            f"({_cache_dir()}); nothing is downloaded: copy the model to a directory or fill "
            f"the cache on a connected machine ({type(e).__name__})", file=str(model)) from None
    return Source(snap, str(model), snap.name)


def _cache_dir() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
        return str(HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return "~/.cache/huggingface/hub"


def load_config(source: Source):
    from transformers import AutoConfig
    try:
        return AutoConfig.from_pretrained(source.path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise UnsupportedModelError(f"cannot read config.json: {_first_line(e)}",
                                    file=str(source.path / "config.json")) from None


def resolve_task(config, task: str) -> str:
    """``auto`` becomes the task of the checkpoint's head: masked-lm, sequence-classification or
    feature-extraction (a bare encoder)."""
    if task != "auto":
        if task not in TASKS:
            raise UnsupportedModelError(f"unknown task {task!r}; choose from auto, "
                                        + ", ".join(TASKS), where="task")
        return task
    archs = getattr(config, "architectures", None) or []
    for arch in archs:
        if arch.endswith("ForMaskedLM"):
            return "masked-lm"
        if arch.endswith("ForSequenceClassification"):
            return "sequence-classification"
    return "feature-extraction"


def load_model(source: Source, task: str, *, eager_attention: bool = True):
    """(model in eval mode, names of weights the checkpoint lacks) for ``task``. Eager
    attention gives the graph pattern that ONNX Runtime's transformer optimizer fuses into its
    Attention kernel (SDPA does not)."""
    import torch  # noqa: F401  (fail here, typed, if the hf extra is missing)
    from transformers import (AutoModel, AutoModelForMaskedLM,
                              AutoModelForSequenceClassification)
    cls = {"masked-lm": AutoModelForMaskedLM, "splade": AutoModelForMaskedLM,
           "sequence-classification": AutoModelForSequenceClassification,
           "feature-extraction": AutoModel}[task]
    quiet_libraries()
    kw = {"attn_implementation": "eager"} if eager_attention else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model, info = cls.from_pretrained(source.path, local_files_only=True,
                                              output_loading_info=True, **kw)
        except (ValueError, TypeError) as e:
            if kw and "attn" in str(e).lower():  # an architecture without eager attention
                return load_model(source, task, eager_attention=False)
            raise UnsupportedModelError(f"cannot load as {task}: {_first_line(e)}",
                                        file=str(source.path)) from None
        except OSError as e:
            raise ModelNotFoundError(f"cannot load the weights: {_first_line(e)}",
                                     file=str(source.path)) from None
    return model.eval(), list(info.get("missing_keys", []))


def quiet_libraries() -> None:
    """Loading bars and exporter chatter would bury our one-line summaries."""
    import logging

    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_tokenizer(source: Source):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(source.path, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ModelNotFoundError(f"cannot load the tokenizer: {_first_line(e)}",
                                 file=str(source.path)) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
