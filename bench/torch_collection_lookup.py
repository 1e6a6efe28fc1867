"""PyTorch lookups of an embedding collection: DLRM-DCNv2 shaped (26 static tables of the
sample's multi-hot sizes, 214 keys a sample), batch 4096, 2 threads.

    python bench/torch_collection_lookup.py [--batch 4096] [--rounds 12]

A static table's keys are its row indices, so the key -> row map is a direct array; the
baseline is the same module with the binary search (``torch.searchsorted``) that other
tables use. Rounds alternate A B / B A; prints the medians, their ratio and the per-round
ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "models"))
from ebc_models import dlrm_dcnv2, write_model  # noqa: E402

import hugectr2onnx.torch as ht  # noqa: E402
from hugectr2onnx.loader import load_model as load_ir  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(2)
    d = Path(tempfile.mkdtemp())
    art, desc, _ = write_model(d, *dlrm_dcnv2(ev=16, projection_dim=64))
    graph = load_ir(art.graph_config, art.dense_model, None, None, embedding_collection=desc)
    feeds = {k: torch.as_tensor(v) for k, v in
             random_feeds(graph, args.batch, convert_embedding=True, seed=1).items()}
    module = ht.load_model(art.graph_config, art.dense_model, None, None,
                           embedding_collection=desc).eval()
    tables = [module.embeddings[k] for k in module.embedding_keys]
    direct = [[index.direct for index in t._groups()] for t in tables]
    want = None

    def lookup(on: bool) -> float:
        nonlocal want
        for t, arrays in zip(tables, direct):
            for index, a in zip(t._groups(), arrays):
                index.direct = a if on else None
        start = time.perf_counter()
        with torch.no_grad():
            out = [t(feeds[e.bottom], e.combiner) for e, t in zip(graph.embeddings, tables)]
        ms = (time.perf_counter() - start) * 1e3
        want = want if want is not None else out
        assert all(torch.equal(a, b) for a, b in zip(out, want))  # both give the same rows
        return ms

    times = {True: [], False: []}
    for r in range(args.rounds):
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            times[on].append(lookup(on))
    a, s = statistics.median(times[True]), statistics.median(times[False])
    keys = sum(feeds[e.bottom].numel() for e in graph.embeddings)
    print(f"{len(tables)} lookups, {keys:,} keys a batch: direct array {a:.1f} ms, binary "
          f"search {s:.1f} ms, ratio {s / a:.2f}x; per-round "
          f"{[round(y / x, 2) for x, y in zip(times[True], times[False])]}")


if __name__ == "__main__":
    main()
