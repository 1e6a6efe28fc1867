"""PyTorch backend (extra ``[torch]``): HugeCTR models as trainable ``nn.Module``s, and the
way back to HugeCTR's files. See docs/torch.md."""

from .api import load_model, save_hugectr
from .checkpoint import load_checkpoint, save_checkpoint
from .embedding import HugeCTREmbedding
from .module import HugeCTRModule, describe

__all__ = ["load_model", "save_hugectr", "load_checkpoint", "save_checkpoint",
           "HugeCTRModule", "HugeCTREmbedding", "describe"]
