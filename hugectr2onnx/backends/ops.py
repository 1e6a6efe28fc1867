"""The ops namespace handlers' ``forward`` is written against (docs/backends.md).

Semantics follow numpy: broadcasting, negative axes, ``np.matmul`` batching, ``np.repeat``.
Floating results keep the dtype of the floating inputs (float32 in models, float64 in
gradient checks); python floats are scalars that adopt it. Every op must be differentiable
where its numpy counterpart is (``where`` in its value arguments). A backend implements
each method once; nothing here imports a backend.
"""

from __future__ import annotations


class Ops:
    """Abstract: a backend subclasses it and implements every method."""

    name = "abstract"

    # ------------------------------------------------------------------ constants
    def const(self, value, like):
        """``value`` (scalar or numpy array) as a tensor with the dtype and device of ``like``."""
        raise NotImplementedError

    def zeros_like(self, x):
        """Zeros of x's shape and dtype (the batch dimension may be dynamic)."""
        raise NotImplementedError

    def to_float(self, x, like):
        """A boolean or integer tensor as 0/1 floats in the dtype of ``like``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ element-wise
    def add(self, a, b):
        raise NotImplementedError

    def sub(self, a, b):
        raise NotImplementedError

    def mul(self, a, b):
        raise NotImplementedError

    def div(self, a, b):
        raise NotImplementedError

    def neg(self, x):
        raise NotImplementedError

    def abs(self, x):
        raise NotImplementedError

    def exp(self, x):
        raise NotImplementedError

    def log(self, x):
        raise NotImplementedError

    def log1p(self, x):
        """log(1 + x), accurate for small x."""
        raise NotImplementedError

    def sqrt(self, x):
        raise NotImplementedError

    def tanh(self, x):
        raise NotImplementedError

    def sigmoid(self, x):
        raise NotImplementedError

    def relu(self, x):
        """max(x, 0); the gradient at 0 is 0."""
        raise NotImplementedError

    def elu(self, x, alpha: float):
        """x for x >= 0, alpha·(exp(x) − 1) below."""
        raise NotImplementedError

    def maximum(self, a, b):
        raise NotImplementedError

    def trunc(self, x):
        """Round toward zero (C++ float -> int); no gradient."""
        raise NotImplementedError

    def greater(self, a, b):
        """Boolean a > b."""
        raise NotImplementedError

    def greater_equal(self, a, b):
        """Boolean a >= b."""
        raise NotImplementedError

    def logical_and(self, a, b):
        raise NotImplementedError

    def where(self, cond, a, b):
        """a where cond else b (broadcasting); gradients flow to a and b."""
        raise NotImplementedError

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, a, b):
        """np.matmul: 2-D product or batched over leading dimensions."""
        raise NotImplementedError

    def linear(self, x, w, b=None):
        """``x @ w + b`` with ``w`` [in, out] (HugeCTR's layout) and ``b`` [out] or None;
        x is 2-D or 3-D. A backend may fuse it (addmm)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shapes
    def shape(self, x) -> tuple:
        """Static shape as python ints (the batch included)."""
        raise NotImplementedError

    def reshape(self, x, shape):
        """Row-major reshape; one entry may be -1."""
        raise NotImplementedError

    def transpose(self, x, perm):
        raise NotImplementedError

    def expand_dims(self, x, axis: int):
        raise NotImplementedError

    def concat(self, xs, axis: int):
        raise NotImplementedError

    def stack(self, xs, axis: int):
        raise NotImplementedError

    def slice(self, x, axis: int, start: int, end: int):
        """Entries ``start:end`` along ``axis``."""
        raise NotImplementedError

    def take(self, x, indices, axis: int):
        """np.take with a python list of indices."""
        raise NotImplementedError

    def repeat(self, x, repeats: int, axis: int):
        """np.repeat: each entry along ``axis`` repeated ``repeats`` times in place."""
        raise NotImplementedError

    # ------------------------------------------------------------------ reductions
    def sum(self, x, axis, keepdims: bool = False):
        """``axis``: an int or a tuple of ints."""
        raise NotImplementedError

    def mean(self, x, axis, keepdims: bool = False):
        raise NotImplementedError

    def max(self, x, axis, keepdims: bool = False):
        raise NotImplementedError

    def softmax(self, x, axis: int):
        """exp(x) / sum exp(x) along ``axis`` (a backend may shift by the maximum)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training state
    def dropout(self, x, rate: float, training: bool):
        """Inverted dropout in training (zero with probability ``rate``, keep scaled by
        1/(1 − rate)); identity otherwise. The backend owns the random state."""
        raise NotImplementedError

    def assign(self, target, value) -> None:
        """Overwrite a non-trainable variable (a layer's ntp tensor) in place with
        ``value``, outside the gradient (running statistics)."""
        raise NotImplementedError
