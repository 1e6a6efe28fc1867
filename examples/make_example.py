"""Regenerate the example HugeCTR model in examples/model/ (run from anywhere).

A small Wide & Deep model (the architecture of NVIDIA's wdl.py test script, shrunk): 13
dense features, a deep embedding over 8 slots and a wide one over 2 slots, each table with
a few hundred hashed 64-bit keys; random weights. The files are exactly what a HugeCTR
snapshot plus ``graph_to_json`` leave on disk, written by our HugeCTR writer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hugectr2onnx import zoo

HERE = Path(__file__).resolve().parent
MODEL_DIR = HERE / "model"
PREFIX = "wdl"
BUILDER_ARGS = dict(deep_slots=8, wide_slots=2, dense_dim=13, vec=8, hidden=(64, 32))
KEYS_PER_TABLE = 300
SEED = 2024


def write(directory: Path):
    return zoo.save(zoo.wdl(**BUILDER_ARGS), directory, prefix=PREFIX, seed=SEED,
                    num_keys=KEYS_PER_TABLE, hashed=True)


def main() -> None:
    if MODEL_DIR.exists():
        shutil.rmtree(MODEL_DIR)
    art = write(MODEL_DIR)
    total = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file())
    print(f"wrote {MODEL_DIR} ({total / 1024:.1f} KB):")
    for p in [art.graph_config, art.dense_model, *art.sparse_models]:
        print(f"  {Path(p).relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
