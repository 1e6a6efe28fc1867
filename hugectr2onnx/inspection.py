"""What a user needs to call a converted model, read from the .onnx file alone (no
external data is loaded): inputs and outputs with what to feed them, opsets, an op
histogram, initializer bytes by kind, external data files and our metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .onnx_backend.metadata import load_proto, read_metadata, value_infos

GATHERS = ("Gather", "GatherND")


def _nbytes(t) -> int:
    from onnx import helper

    n = int(np.prod(t.dims)) if len(t.dims) else 1
    return n * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize


def _external_location(t) -> str | None:
    if t.data_location != 1:  # TensorProto.EXTERNAL
        return None
    return next((e.value for e in t.external_data if e.key == "location"), None)


def _classify(model, meta: dict) -> dict[str, str]:
    """Initializer name -> "table" (embedding vectors), "index" (key lookup) or "dense"."""
    tables = {n.input[0] for n in model.graph.node if n.op_type in GATHERS and n.input}
    prefixes = tuple(f"{e['name']}{sep}" for e in meta.get("embeddings") or []
                     if isinstance(e, dict) and e.get("name") for sep in (".", "/"))
    kinds = {}
    for t in model.graph.initializer:
        floating = t.data_type in (1, 10, 11, 16)  # float, float16, double, bfloat16
        if t.name in tables and floating and len(t.dims) == 2:
            kinds[t.name] = "table"
        elif prefixes and t.name.startswith(prefixes):
            kinds[t.name] = "index"
        elif any(n.op_type == "GatherElements" and n.input[0] == t.name
                 for n in model.graph.node):
            kinds[t.name] = "index"
        else:
            kinds[t.name] = "dense"
    return kinds


def _feed_hint(value: dict, meta: dict) -> str:
    data = meta.get("data") or {}
    if value["name"] == (data.get("dense") or {}).get("name"):
        return (f"dense features, {value['shape'][-1]} float32 values per sample "
                "(int32 Raw/RawAsync values transformed to ln(x+1))")
    for s in data.get("sparse") or []:
        if s.get("name") == value["name"]:
            fixed = "fixed" if s.get("is_fixed_length") else "variable"
            pad = data.get("padding_key")
            hint = (f"keys of {s['slot_num']} slots, up to {max(s['nnz_per_slot'] or [1])} per "
                    f"slot ({fixed} length), as int64; ")
            hint += ("absent entries hold the padding key " + str(pad)) if pad is not None \
                else "no padding key: every entry is a key"
            if data.get("key_type") == "I32":
                hint += "; 32-bit keys zero-extended"
            if data.get("slot_size_array"):
                hint += "; Parquet keys plus the slot_size_array offsets"
            return hint
    if value["dtype"] == "int64":
        return "int64 keys [batch, slots, nnz]"
    return ""


def inspect_model(path) -> dict:
    """Everything ``hugectr2onnx inspect`` prints, as one JSON-ready dict."""
    model = load_proto(path)
    meta = read_metadata(model)
    inputs = value_infos(model.graph.input)
    for v in inputs:
        v["feed"] = _feed_hint(v, meta)
    outputs = value_infos(model.graph.output)
    kinds = _classify(model, meta)
    sizes = {"dense": 0, "table": 0, "index": 0}
    external: dict[str, int] = {}
    for t in model.graph.initializer:
        n = _nbytes(t)
        sizes[kinds[t.name]] += n
        loc = _external_location(t)
        if loc is not None:
            external[loc] = external.get(loc, 0) + n
    base = Path(path).parent
    files = [{"file": loc, "tensor_bytes": n,
              "exists": (base / loc).exists(),
              "file_bytes": (base / loc).stat().st_size if (base / loc).exists() else None}
             for loc, n in sorted(external.items())]
    ops = Counter(n.op_type for n in model.graph.node)
    return {
        "file": str(path),
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "inputs": inputs, "outputs": outputs,
        "nodes": len(model.graph.node), "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        "initializers": {"count": len(model.graph.initializer),
                         "bytes": sum(sizes.values()), "dense_bytes": sizes["dense"],
                         "table_bytes": sizes["table"], "index_bytes": sizes["index"]},
        "external_data": files,
        "metadata": meta,
    }


def _size(n) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_report(info: dict) -> str:
    lines = [f"{info['file']}: produced by {info['producer']['name'] or '?'} "
             f"{info['producer']['version']}, IR {info['ir_version']}, opsets "
             + ", ".join(f"{d} {v}" for d, v in info["opsets"].items())]
    lines.append("inputs:")
    for v in info["inputs"]:
        lines.append(f"  {v['name']}: {v['dtype']} [{', '.join(map(str, v['shape']))}]"
                     + (f"  - {v['feed']}" if v.get("feed") else ""))
    lines.append("outputs:")
    for v in info["outputs"]:
        lines.append(f"  {v['name']}: {v['dtype']} [{', '.join(map(str, v['shape']))}]")
    lines.append(f"nodes: {info['nodes']} ("
                 + ", ".join(f"{op} {n}" for op, n in info["ops"].items()) + ")")
    i = info["initializers"]
    lines.append(f"initializers: {i['count']}, {_size(i['bytes'])} (dense weights "
                 f"{_size(i['dense_bytes'])}, tables {_size(i['table_bytes'])}, lookup index "
                 f"{_size(i['index_bytes'])})")
    for f in info["external_data"]:
        state = "" if f["exists"] else " (missing)"
        lines.append(f"external data: {f['file']} ({_size(f['tensor_bytes'])} of tensors){state}")
    meta = info["metadata"]
    if not meta:
        lines.append("metadata: none (not converted by this version of hugectr2onnx)")
        return "\n".join(lines)
    data = meta.get("data") or {}
    lines.append(f"metadata (schema {meta.get('schema')}): hugectr2onnx {meta.get('version')}, "
                 f"graph sha256 {str(meta.get('graph_sha256'))[:16]}...")
    if data:
        labels = ", ".join(f"{l['name']} ({l['dim']})" for l in data.get("labels", []))
        lines.append(f"  labels: {labels}; dense: {data['dense']['name']} "
                     f"({data['dense']['dim']}); key type {data.get('key_type')}, padding key "
                     f"{data.get('padding_key')}")
        for s in data.get("sparse", []):
            lines.append(f"  key input {s['name']}: {s['slot_num']} slots, nnz_per_slot "
                         f"{s['nnz_per_slot']}, {'fixed' if s['is_fixed_length'] else 'variable'}"
                         " length")
        if data.get("slot_size_array"):
            lines.append(f"  Parquet slot_size_array: {data['slot_size_array']}")
    for e in meta.get("embeddings") or []:
        lines.append(f"  table {e['name']}: input {e['input']}, {e['combiner']}, vec "
                     f"{e['vec_size']}, {e['num_keys']} keys, lookup {e['lookup']}")
    return "\n".join(lines)
