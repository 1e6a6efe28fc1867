"""Convert the shipped example HugeCTR model to ONNX and check it against the reference.

    python examples/demo.py [--batch 64] [--out DIR]

Converts examples/model/ through the drop-in API (``hugectr2onnx.converter.convert``, the
signature of NVIDIA's converter) with its embedding tables, runs a batch of inputs (keys
from the tables, unseen keys and padding) in ONNX Runtime and in the independent numpy
reference, prints the comparison and exits with status 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from hugectr2onnx import converter
from hugectr2onnx.reference import run_reference
from hugectr2onnx.verify import random_feeds

MODEL_DIR = Path(__file__).resolve().parent / "model"
PREFIX = "wdl"
ATOL = 1e-5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="samples to compare (default 64)")
    ap.add_argument("--out", help="folder for the .onnx file (default: a temporary one)")
    args = ap.parse_args(argv)

    graph_config = MODEL_DIR / f"{PREFIX}.json"
    if not graph_config.exists():
        print(f"{graph_config} is missing; run python examples/make_example.py", file=sys.stderr)
        return 2
    dense = MODEL_DIR / f"{PREFIX}_dense_0.model"
    sparse = sorted(str(p) for p in MODEL_DIR.glob(f"{PREFIX}[0-9]*_sparse_0.model"))
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        onnx_path = out_dir / f"{PREFIX}.onnx"

        print(f"1. converting {graph_config.relative_to(MODEL_DIR.parent.parent)} "
              f"with {len(sparse)} embedding tables")
        report = converter.convert(str(onnx_path), str(graph_config), str(dense),
                                   convert_embedding=True, sparse_models=sparse)
        print("   " + report.summary().replace("\n", "\n   "))

        graph = converter.load_model(str(graph_config), str(dense), sparse)
        feeds = random_feeds(graph, args.batch, convert_embedding=True, seed=7)
        print(f"\n2. a batch of {args.batch} samples: " + ", ".join(
            f"{name} {list(v.shape)} {v.dtype}" for name, v in feeds.items()))

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        got = dict(zip([o.name for o in sess.get_outputs()],
                       sess.run(None, {n: feeds[n] for n in names})))
        want = run_reference(graph, feeds)

    print(f"\n3. ONNX Runtime vs numpy reference (tolerance {ATOL:g}):")
    ok = True
    for name, ref in want.items():
        have = got.get(name)
        if have is None or have.shape != ref.shape:
            print(f"   {name}: ONNX output missing or shaped {None if have is None else have.shape}"
                  f", reference {ref.shape}  FAIL")
            ok = False
            continue
        diff = float(np.abs(have.astype(np.float64) - ref).max(initial=0))
        passed = diff <= ATOL
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        print(f"   {name} {list(ref.shape)}: max |diff| = {diff:.2e}  {verdict}")
        print("   first predictions   onnx      reference")
        for a, b in zip(have[:5, 0], ref[:5, 0]):
            print(f"                       {a:.6f}  {b:.6f}")
    print("\nresult: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
