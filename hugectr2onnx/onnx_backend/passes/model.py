"""The model a pass rewrites: an ExportResult's graph (nodes, inputs, outputs) and its
tensors by name (numpy arrays, or LazyTensors streamed from HugeCTR files, never copied).

Library passes (onnxscript, float16, quantization) need a ModelProto: ``detached`` gives one
whose lookup tables are graph inputs instead of initializers, so they are neither copied nor
touched, and ``reattach`` puts them back.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..export import ExportResult

GATHERS = ("Gather", "GatherND", "GatherElements")


class PassModel:
    def __init__(self, result: ExportResult):
        self.result = result

    @property
    def graph(self):
        return self.result.skeleton.graph

    @property
    def nodes(self):
        return self.graph.node

    @property
    def tensors(self) -> dict:
        return self.result.tensors

    def producers(self) -> dict:
        return {o: n for n in self.nodes for o in n.output}

    def uses(self) -> Counter:
        used = Counter(i for n in self.nodes for i in n.input)
        used.update(o.name for o in self.graph.output)
        return used

    def consumers(self, name: str) -> list:
        return [n for n in self.nodes if name in n.input]

    def fresh(self, hint: str) -> str:
        taken = set(self.tensors) | {o for n in self.nodes for o in n.output} | \
            {i.name for i in self.graph.input}
        name, k = hint, 1
        while name in taken:
            name, k = f"{hint}_{k}", k + 1
        return name

    def add_tensor(self, hint: str, array) -> str:
        name = self.fresh(hint)
        self.tensors[name] = array
        return name

    def keep_nodes(self, indices) -> None:
        """Keep the nodes at ``indices`` (positions, not ids: protobuf wrappers come and go)."""
        remove_nodes(self.nodes, set(range(len(self.nodes))) - set(indices))

    def drop_unused_tensors(self) -> int:
        used = self.uses()
        dead = [n for n in self.tensors if used[n] == 0]
        for n in dead:
            del self.tensors[n]
        return len(dead)

    def table_names(self) -> list[str]:
        """Initializers read by a gather as its data (embedding tables, lookup indices)."""
        return list(dict.fromkeys(n.input[0] for n in self.nodes
                                  if n.op_type in GATHERS and n.input[0] in self.tensors))


def remove_nodes(nodes, indices) -> None:
    """Delete in place, last first (no element is copied or detached while in use)."""
    for k in sorted(indices, reverse=True):
        del nodes[k]


def dtype_of(t) -> np.dtype:
    return np.dtype(t.dtype)


def detached(model: PassModel, names) -> onnx.ModelProto:
    """A ModelProto of the model with the tensors ``names`` as graph inputs (not copied)."""
    names = [n for n in names if n in model.tensors]
    proto = onnx.ModelProto()
    proto.CopyFrom(model.result.skeleton)
    proto.graph.initializer.extend(numpy_helper.from_array(np.asarray(t), n)
                                   for n, t in model.tensors.items() if n not in names)
    for n in names:
        t = model.tensors[n]
        elem = helper.np_dtype_to_tensor_dtype(dtype_of(t))
        proto.graph.input.append(helper.make_tensor_value_info(n, elem, list(t.shape)))
    return proto


def reattach(proto: onnx.ModelProto, model: PassModel, names, replaced: dict | None = None
             ) -> ExportResult:
    """The pass's result with the detached tensors (or their ``replaced`` forms) put back."""
    names = [n for n in names if n in model.tensors]
    tensors = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for n in names:
        tensors[n] = (replaced or {}).get(n, model.tensors[n])
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(proto)
    del skeleton.graph.initializer[:]
    topo_sort(skeleton.graph)
    keep = [i for i in skeleton.graph.input if i.name not in set(names)]
    del skeleton.graph.input[:]
    skeleton.graph.input.extend(keep)
    return ExportResult(skeleton, tensors, model.result.embeddings)


def value_type(proto_graph, name: str) -> int | None:
    for v in list(proto_graph.input) + list(proto_graph.output) + list(proto_graph.value_info):
        if v.name == name:
            return v.type.tensor_type.elem_type
    return None


FLOAT = TensorProto.FLOAT


def topo_sort(graph) -> None:
    """Nodes in an order where each comes after its inputs' producers (the float16
    converter appends its Casts at the end; ONNX requires topological order). Stable."""
    nodes = list(graph.node)
    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[i] for i in n.input if i in producer} for n in nodes]
    users: dict[int, list[int]] = {}
    for k, d in enumerate(deps):
        for p in d:
            users.setdefault(p, []).append(k)
    import heapq

    waiting = [len(d) for d in deps]
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes) or order == list(range(len(nodes))):
        return  # a cycle is not ours to fix; already sorted needs nothing
    copies = [onnx.NodeProto() for _ in order]
    for c, k in zip(copies, order):
        c.CopyFrom(nodes[k])
    del graph.node[:]
    graph.node.extend(copies)
