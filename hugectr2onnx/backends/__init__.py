"""Backend-neutral pieces shared by the trainable backends (PyTorch, TensorFlow).

``ops.Ops`` is the small namespace every handler's ``forward`` is written against; each
backend implements it once (``hugectr2onnx.torch.ops``). See docs/backends.md.
"""

from .ops import Ops

__all__ = ["Ops"]
