"""Convert models trained with NVIDIA HugeCTR to ONNX (drop-in for NVIDIA's hugectr2onnx)."""

from . import converter
from .converter import convert
from .loader import load_model
from .options import ConvertOptions
from .errors import ConversionError

__version__ = "0.1.0"
__all__ = ["converter", "convert", "load_model", "ConvertOptions", "ConversionError", "__version__"]
