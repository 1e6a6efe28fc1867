"""Keyword options of ``convert()`` as one dataclass, shared by the API, the CLI and backends."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ConvertOptions:
    """``opset`` (13-21); ``key_type`` of legacy single-file tables ("I64"/"I32");
    ``padding_key`` marking absent entries of multi-hot slots (None: none); ``lookup``
    strategy; ``external_data`` ("auto"/"always"/"never") and ``external_threshold`` (bytes
    above which "auto" writes external data); ``projection_dims`` of DCN-v2 MultiCross
    layers; ``num_gpus`` of Localized training runs; ``strict_finite`` (fail on NaN/Inf);
    ``progress`` (bars on stderr; None: when it is a terminal); ``table_order`` of hashed
    tables ("slot": in the index's slot order, one random read less per lookup; "file":
    streamed as stored; "auto": slot order up to 4 GiB or a quarter of the RAM);
    ``embedding_collection``: the description file of an embedding collection
    (docs/embedding_collection.md), whose tables are then always converted;
    ``slot_size_array``: the Parquet reader's per-column vocabulary sizes of the training
    run, recorded in the model's metadata so that ``predict`` adds the same key offsets."""

    opset: int = DEFAULT_OPSET
    key_type: str = "I64"
    padding_key: int | None = -1
    lookup: str = "auto"
    external_data: str = "auto"
    external_threshold: int | None = None
    projection_dims: object = None
    num_gpus: int | None = None
    strict_finite: bool = False
    progress: bool | None = None
    table_order: str = "auto"
    embedding_collection: str | None = None
    slot_size_array: tuple | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_kwargs(cls, options: "ConvertOptions | None" = None, **kwargs) -> "ConvertOptions":
        """``options`` updated with keyword options; an unknown keyword is a TypeError, as
        for any Python function."""
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise TypeError(f"unexpected keyword option(s): {', '.join(unknown)}")
        return replace(options or cls(), **kwargs)
