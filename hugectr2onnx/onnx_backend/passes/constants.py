"""Constant folding and simplification with onnxscript's optimizer (extra ``optimize``).

Chosen over onnxoptimizer and ONNX Runtime's offline basic level (docs/optimize.md): the
three remove the same nodes from the zoo models, but ORT's saved model imports eight
Microsoft/training opset domains (less portable), and onnxoptimizer is in maintenance mode.
The lookup tables are detached first, so they are neither copied nor folded.
"""

from __future__ import annotations

from ...errors import UsageError
from .model import PassModel, detached, reattach


def available() -> bool:
    try:
        import onnxscript.optimizer  # noqa: F401
    except ImportError:
        return False
    return True


def fold_constants(model: PassModel) -> int:
    if not available():
        raise UsageError("the fold-constants pass needs onnxscript: "
                         "pip install 'hugectr2onnx[optimize]'")
    import onnxscript.optimizer

    tables = model.table_names()
    proto = detached(model, tables)
    before = len(proto.graph.node)
    proto = onnxscript.optimizer.optimize(proto)
    model.result = reattach(proto, model, tables)
    return before - len(proto.graph.node)
