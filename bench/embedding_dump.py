"""Reading and converting an embedding_dump: DLRM-DCNv2 shaped, 26 static tables.

    python bench/embedding_dump.py [--rows 2000000] [--ev 16] [--shards 8] [--repeats 5]

Vocabularies are HugeCTR's samples/dlrm sizes scaled so that the tables hold --rows rows
in all (rows in the shard order of --shards GPUs, uint32 keys). Prints medians of:
  read:    load_model with the collection (meta_data, headers, key range checks, uint32
           keys widened to int64, rows memory-mapped) against the baseline of reading
           every key and weight file into memory with numpy.fromfile;
  convert: convert() of the whole model against the baseline of copying the dump's
           bytes (shutil.copyfile), the least any converter must write.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "models"))
from ebc_models import dlrm_dcnv2, write_model  # noqa: E402
import ebc_models  # noqa: E402

from hugectr2onnx import converter  # noqa: E402
from hugectr2onnx.loader import load_model  # noqa: E402

SAMPLE_VOCAB = [40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956,
                405282, 10, 2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152,
                12973, 108, 36]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows in all tables")
    ap.add_argument("--ev", type=int, default=16, help="embedding vector size")
    ap.add_argument("--shards", type=int, default=8, help="GPUs the rows are sharded over")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--external-data", choices=("auto", "always", "never"), default="auto",
                    help="convert()'s external_data (auto: inline below ~1.8 GB)")
    args = ap.parse_args(argv)
    scale = args.rows / sum(SAMPLE_VOCAB)
    ebc_models.DLRM_VOCAB[:] = [max(1, round(v * scale)) for v in SAMPLE_VOCAB]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        b, doc = dlrm_dcnv2(ev=args.ev)
        orig = ebc_models.random_dump_tables
        ebc_models.random_dump_tables = lambda d, rng: orig(d, rng, shards=args.shards)
        art, desc, tables = write_model(work / "m", b, doc)
        dump = Path(desc).parent / "dump" / "embedding_collection_0"
        files = sorted(p for p in dump.iterdir() if p.name != "meta_data")
        nbytes = sum(p.stat().st_size for p in files)
        rows = sum(k.size for k, _ in tables)

        def read_ours():
            g = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                           embedding_collection=desc)
            return [np.asarray(e.table.vectors[-1]) for e in g.embeddings]

        def read_baseline():
            return [np.fromfile(p, dtype=np.uint8) for p in files]

        count = iter(range(1 << 30))

        def convert():
            out = work / f"o{next(count)}" / "m.onnx"
            out.parent.mkdir()
            converter.convert(str(out), art.graph_config, art.dense_model,
                              ntp_file=art.ntp_file, embedding_collection=desc,
                              external_data=args.external_data)
            shutil.rmtree(out.parent)

        def copy_baseline():
            out = work / f"c{next(count)}"
            out.mkdir()
            for p in files:
                shutil.copyfile(p, out / p.name)
            shutil.rmtree(out)

        t_read, t_base = median_time(read_ours, args.repeats), median_time(read_baseline,
                                                                            args.repeats)
        t_conv, t_copy = median_time(convert, args.repeats), median_time(copy_baseline,
                                                                          args.repeats)
    print(f"dump: 26 tables, {rows} rows x {args.ev} floats, {nbytes / 2**20:.1f} MiB, "
          f"{args.shards} shards; external_data {args.external_data}; medians of "
          f"{args.repeats}")
    print(f"read     load_model {t_read * 1e3:8.1f} ms   numpy.fromfile {t_base * 1e3:8.1f} ms"
          f"   ratio {t_read / t_base:.2f}")
    print(f"convert  convert()  {t_conv * 1e3:8.1f} ms   copy bytes     {t_copy * 1e3:8.1f} ms"
          f"   ratio {t_conv / t_copy:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
