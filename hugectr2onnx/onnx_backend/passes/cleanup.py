"""Structural clean-ups: Identity bypass and dead-node removal (no numerics change)."""

from __future__ import annotations

from .model import PassModel


def drop_identity(model: PassModel) -> int:
    """Bypass Identity nodes (Dropout at inference, fan-out Slice copies) whose output is not
    a graph output. The HugeCTR name of that tensor then no longer exists in the model."""
    outputs = {o.name for o in model.graph.output}
    alias = {}
    for n in model.nodes:
        if n.op_type == "Identity" and n.output[0] not in outputs:
            src = n.input[0]
            alias[n.output[0]] = alias.get(src, src)
    if not alias:
        return 0
    model.keep_nodes(k for k, n in enumerate(model.nodes)
                     if not (n.op_type == "Identity" and n.output[0] in alias))
    for n in model.nodes:
        for k, name in enumerate(n.input):
            if name in alias:
                n.input[k] = alias[name]
    return len(alias)


def drop_dead_nodes(model: PassModel) -> int:
    """Remove nodes none of whose outputs reach a graph output, and unused initializers."""
    needed = {o.name for o in model.graph.output}
    live = set()
    nodes = list(model.nodes)
    for k in range(len(nodes) - 1, -1, -1):  # nodes are in topological order
        if any(o in needed for o in nodes[k].output):
            live.add(k)
            needed.update(i for i in nodes[k].input if i)
    dead = len(nodes) - len(live)
    if dead:
        model.keep_nodes(live)
    model.drop_unused_tensors()
    return dead
