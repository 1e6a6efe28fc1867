"""Conversion time and output size of NVIDIA's 12 converter test architectures.

    python bench/convert_models.py [--keys 20000] [--repeats 5] [--models wdl,dcn]

Each model (hugectr2onnx.zoo, at the training scripts' sizes) is written once with random
weights and --keys hashed 64-bit keys per embedding table, then converted --repeats times
through the drop-in API with its embeddings. Prints the median conversion time, the ONNX
output size, and its ratio to the bytes actually present in the input: keys (8 B each),
vectors (4 B per float) and the dense weight file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hugectr2onnx import converter, zoo


def input_bytes(art) -> int:
    total = Path(art.dense_model).stat().st_size
    for folder in art.sparse_models:
        total += sum(p.stat().st_size for p in Path(folder).iterdir() if p.name != "slot_id")
    return total


def bench_model(name: str, keys: int, repeats: int, work: Path) -> dict:
    art = zoo.save(zoo.MODELS[name](), work / name, prefix=name, num_keys=keys, hashed=True)
    times, report = [], None
    for i in range(repeats):
        out = work / name / f"out{i}" / f"{name}.onnx"
        out.parent.mkdir()
        start = time.perf_counter()
        report = converter.convert(str(out), art.graph_config, art.dense_model, True,
                                   art.sparse_models, art.ntp_file)
        times.append(time.perf_counter() - start)
    present = input_bytes(art)
    return dict(name=name, tables=len(art.sparse_models), layers=report.layers,
                seconds=statistics.median(times), out=report.output_bytes, present=present,
                strategies=sorted({t["strategy"] for t in report.tables}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=20000, help="keys per table (default 20000)")
    ap.add_argument("--repeats", type=int, default=5, help="conversions per model (default 5)")
    ap.add_argument("--models", default=",".join(zoo.MODELS), help="comma-separated names")
    args = ap.parse_args(argv)

    print(f"{'model':<16}{'tables':>7}{'layers':>7}{'median s':>10}{'output MB':>11}"
          f"{'input MB':>10}{'ratio':>7}  lookup")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            try:
                r = bench_model(name, args.keys, args.repeats, Path(tmp))
            except Exception as e:  # report every model, then fail at the end
                failed.append(name)
                print(f"{name:<16}FAILED: {type(e).__name__}: {e}")
                continue
            print(f"{r['name']:<16}{r['tables']:>7}{r['layers']:>7}{r['seconds']:>10.3f}"
                  f"{r['out'] / 2**20:>11.2f}{r['present'] / 2**20:>10.2f}"
                  f"{r['out'] / r['present']:>7.3f}  {','.join(r['strategies'])}")
    if failed:
        print(f"{len(failed)} model(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
