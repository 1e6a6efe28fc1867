"""The one error hierarchy: every failure caused by the input is a ConversionError."""

from __future__ import annotations


class ConversionError(Exception):
    """Bad input. ``file`` and ``where`` (field, layer or byte offset) locate it."""

    exit_code = 3

    def __init__(self, message: str, *, file: str | None = None, where: str | None = None):
        self.file = str(file) if file is not None else None
        self.where = where
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        loc = ""
        if self.file:
            loc = self.file
        if self.where:
            loc = f"{loc} [{self.where}]" if loc else f"[{self.where}]"
        return f"{loc}: {self.detail}" if loc else self.detail


class InputFileError(ConversionError):
    """A path that does not exist, is a directory, or cannot be read."""


class GraphConfigError(ConversionError):
    """The graph JSON is malformed, or a field is missing or mistyped."""


class GraphStructureError(GraphConfigError):
    """Dangling or duplicated tensor names, cycles, shape-inconsistent layers."""


class UnsupportedLayerError(GraphConfigError):
    """One or more layer types have no handler; ``types`` lists all of them."""

    def __init__(self, message: str, *, types: list[str], file: str | None = None):
        self.types = types
        super().__init__(message, file=file, where="layers")


class GraphProblemsError(GraphConfigError):
    """Several problems in one graph JSON; ``problems`` holds each as its own typed error."""

    def __init__(self, problems: list[ConversionError], *, file: str | None = None):
        self.problems = list(problems)
        # the unsupported layer types among the problems, as UnsupportedLayerError.types
        self.types = sorted({t for e in self.problems for t in getattr(e, "types", [])})
        listing = "; ".join(f"({k}) {_located(e)}" for k, e in enumerate(self.problems, 1))
        super().__init__(f"{len(self.problems)} problems: {listing}", file=file)


def _located(e: ConversionError) -> str:
    return f"[{e.where}] {e.detail}" if e.where else e.detail


class DenseModelError(ConversionError):
    """The dense weight file does not fit the graph."""


class NtpError(ConversionError):
    """The non-trainable-parameters JSON is malformed or does not fit the graph."""


class SparseModelError(ConversionError):
    """An embedding table (folder or legacy file) is malformed or inconsistent."""


class NonFiniteWeightError(ConversionError):
    """NaN or Inf in weights while ``strict_finite`` is set."""


class OutputError(ConversionError):
    """The output path cannot be written."""

    exit_code = 4


class UsageError(ConversionError):
    """Options that contradict each other or the model."""

    exit_code = 2


class DatasetError(ConversionError):
    """A dataset file (Norm, Raw, RawAsync, Parquet) is malformed or does not fit the model;
    ``where`` names the record, row, column or field."""


class CollectionError(ConversionError):
    """An embedding-collection description is malformed, or disagrees with the dump's
    meta_data or with the graph JSON (the message names both sources)."""


class ModelNotFoundError(InputFileError):
    """A Hugging Face model that is neither a local directory nor in the local cache."""


class UnsupportedModelError(ConversionError):
    """A Hugging Face model whose architecture or task cannot be exported."""


class AccuracyError(ConversionError):
    """An exported or optimized model differs from its reference beyond the tolerance."""


class ServiceError(ConversionError):
    """An external service (Redis) is down, refused the connection, timed out or answered
    with an error; ``file`` holds its address (password removed) and ``where`` the table."""

    exit_code = 5
