"""One handler per HugeCTR layer family; see ``base.LayerHandler``."""

from .base import LayerError, LayerHandler, Params, Registry, default_registry

__all__ = ["LayerError", "LayerHandler", "Params", "Registry", "default_registry"]
