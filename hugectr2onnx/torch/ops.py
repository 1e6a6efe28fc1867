"""``backends.ops.Ops`` in PyTorch: each op is one torch call (docs/backends.md)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..backends.ops import Ops


class TorchOps(Ops):
    name = "torch"

    def const(self, value, like):
        return torch.as_tensor(np.asarray(value), dtype=like.dtype, device=like.device)

    zeros_like = staticmethod(torch.zeros_like)

    def to_float(self, x, like):
        return x.to(like.dtype)

    add = staticmethod(torch.add)
    sub = staticmethod(torch.sub)
    mul = staticmethod(torch.mul)
    div = staticmethod(torch.div)
    neg = staticmethod(torch.neg)
    abs = staticmethod(torch.abs)
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    log1p = staticmethod(torch.log1p)
    sqrt = staticmethod(torch.sqrt)
    tanh = staticmethod(torch.tanh)
    sigmoid = staticmethod(torch.sigmoid)
    relu = staticmethod(torch.relu)
    trunc = staticmethod(torch.trunc)
    greater = staticmethod(torch.gt)
    greater_equal = staticmethod(torch.ge)
    logical_and = staticmethod(torch.logical_and)
    matmul = staticmethod(torch.matmul)

    def elu(self, x, alpha):
        return F.elu(x, alpha=alpha)

    def maximum(self, a, b):
        if not torch.is_tensor(b):
            return torch.clamp_min(a, b)
        return torch.maximum(a, b)

    def where(self, cond, a, b):
        return torch.where(cond, a, b)

    def linear(self, x, w, b=None):
        if x.dim() == 2 and b is not None:
            return torch.addmm(b, x, w)
        y = torch.matmul(x, w)
        return y if b is None else y + b

    def shape(self, x):
        return tuple(x.shape)

    def reshape(self, x, shape):
        return torch.reshape(x, tuple(shape))

    def transpose(self, x, perm):
        return x.permute(*perm)

    def expand_dims(self, x, axis):
        return torch.unsqueeze(x, axis)

    def concat(self, xs, axis):
        return torch.cat(list(xs), dim=axis)

    def stack(self, xs, axis):
        return torch.stack(list(xs), dim=axis)

    def slice(self, x, axis, start, end):
        return torch.narrow(x, axis, start, end - start)

    def take(self, x, indices, axis):
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=x.device)
        return torch.index_select(x, axis, idx)

    def repeat(self, x, repeats, axis):
        return torch.repeat_interleave(x, repeats, dim=axis)

    def sum(self, x, axis, keepdims=False):
        return torch.sum(x, dim=axis, keepdim=keepdims)

    def mean(self, x, axis, keepdims=False):
        return torch.mean(x, dim=axis, keepdim=keepdims)

    def max(self, x, axis, keepdims=False):
        return torch.amax(x, dim=axis, keepdim=keepdims)

    def softmax(self, x, axis):
        return torch.softmax(x, dim=axis)

    def dropout(self, x, rate, training):
        return F.dropout(x, p=rate, training=training) if training and rate > 0 else x

    def assign(self, target, value):
        with torch.no_grad():
            target.copy_(value.detach().reshape(target.shape))


OPS = TorchOps()
