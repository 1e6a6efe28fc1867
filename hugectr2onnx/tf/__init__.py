"""TensorFlow backend (extra ``[tf]``): HugeCTR models as trainable Keras models and
SavedModels serving raw keys (docs/tensorflow.md)."""

from .api import export_saved_model, load_model, save_hugectr, verify_saved_model
from .model import HugeCTRLoss, HugeCTRModel

__all__ = ["load_model", "export_saved_model", "save_hugectr", "HugeCTRModel", "HugeCTRLoss",
           "verify_saved_model"]
