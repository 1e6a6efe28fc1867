"""Samples for checks (verify, optimize): the first N of a HugeCTR dataset (the readers of
hugectr2onnx.data), or named arrays of an .npz file."""

from __future__ import annotations

import numpy as np

from .errors import InputFileError, UsageError

SAMPLE_FORMATS = ("norm", "raw", "rawasync", "parquet", "npz")


def read_samples(source, fmt: str, layout, count: int, *, float_label_dense: bool = False
                 ) -> tuple[dict, dict | None]:
    """(feeds, labels by label name or None) of the first ``count`` samples; ``layout`` is a
    data.DataLayout (npz files need none: arrays are named after the model's inputs and
    labels)."""
    if fmt == "npz":
        return npz_samples(source, count)
    from .data import open_dataset

    if fmt not in SAMPLE_FORMATS:
        raise UsageError(f"--format must be one of {list(SAMPLE_FORMATS)}, found {fmt!r}")
    batch = next(iter(open_dataset(source, fmt, layout, batch_size=count, num_samples=count,
                                   float_label_dense=float_label_dense)), None)
    if batch is None:
        raise InputFileError("the dataset has no samples", file=str(source))
    return batch.inputs, batch.labels


def npz_samples(path, count: int | None = None) -> tuple[dict, dict | None]:
    """Every array of the file (first ``count`` rows); the caller picks inputs and labels."""
    try:
        with np.load(path) as z:
            data = {k: z[k][:count] if count else z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputFileError(f"cannot read the data: {e}", file=str(path)) from None
    return data, None


def pick_inputs(data: dict, input_names, file: str) -> dict:
    missing = [n for n in input_names if n not in data]
    if missing:
        raise InputFileError(f"no array {missing[0]!r} for the model's input (arrays: "
                             f"{sorted(data)})", file=file)
    return {n: data[n] for n in input_names}
