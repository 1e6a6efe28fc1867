"""Validation: random token batches of several shapes, and per-output differences."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# (batch, sequence) pairs every export and optimization is checked on: single sample, odd
# lengths, and a batch whose last row is half padding.
SHAPES = ((1, 8), (2, 17), (4, 33))


def random_feeds(names: list[str], vocab_size: int, type_vocab_size: int, batch: int, seq: int,
                 seed: int = 0, special_ids: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Token ids drawn from the vocabulary (avoiding special tokens), a mask that pads the
    last row from its middle on, token types 0/1 where the model has two."""
    rng = np.random.default_rng(seed + 1000 * batch + seq)
    allowed = np.setdiff1d(np.arange(vocab_size), np.asarray(special_ids, dtype=np.int64))
    feeds = {"input_ids": rng.choice(allowed, size=(batch, seq)).astype(np.int64)}
    mask = np.ones((batch, seq), np.int64)
    if batch > 1:
        mask[-1, max(1, seq // 2):] = 0
    feeds["attention_mask"] = mask
    if "token_type_ids" in names:
        types = np.zeros((batch, seq), np.int64)
        if type_vocab_size > 1:
            types[:, seq // 2:] = 1
        feeds["token_type_ids"] = types
    return {n: feeds[n] for n in names}


@dataclass
class OutputDiff:
    name: str
    shape: tuple
    max_abs_diff: float
    tolerance: float
    nonfinite: int = 0  # NaN/Inf in the candidate where the reference is finite
    # int8 models are judged by direction, not by elementwise error (see cosine_diff)
    cosine: float | None = None
    min_cosine: float | None = None
    top_k: int = 0  # SPLADE under int8: the top-k term sets must stay the same
    top_kept: float = 1.0  # smallest fraction of a sample's top-k terms kept

    @property
    def ok(self) -> bool:
        if self.min_cosine is not None:
            return (self.nonfinite == 0 and self.cosine >= self.min_cosine
                    and self.top_kept == 1.0)
        return self.nonfinite == 0 and self.max_abs_diff <= self.tolerance

    def describe(self) -> str:
        bad = f", {self.nonfinite} non-finite" if self.nonfinite else ""
        if self.min_cosine is not None:
            crit = (f"min cosine {self.cosine:.5f} (at least {self.min_cosine}), "
                    f"max abs diff {self.max_abs_diff:.3g}")
            if self.top_k:
                crit += f", top-{self.top_k} terms kept {self.top_kept:.0%} (must be all)"
        else:
            crit = f"max abs diff {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g})"
        return f"{self.name} {list(self.shape)}: {crit}{bad} {'ok' if self.ok else 'EXCEEDED'}"


@dataclass
class ValidationReport:
    """Differences of a candidate model from its reference, per output and shape."""

    reference: str
    candidate: str
    diffs: list[OutputDiff] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.diffs) and all(d.ok for d in self.diffs)

    @property
    def max_abs_diff(self) -> float:
        return max((d.max_abs_diff for d in self.diffs), default=float("nan"))

    def summary(self) -> str:
        lines = [f"validation of {self.candidate} against {self.reference}: "
                 + ("OK" if self.ok else "FAILED")]
        lines += [f"  {d.describe()}" for d in self.diffs]
        return "\n".join(lines)


def diff(name: str, reference: np.ndarray, candidate: np.ndarray, atol: float,
         rtol: float) -> OutputDiff:
    """Tolerance ``atol + rtol * max|reference|``: scaled by the output's range, since logits of
    real vocabularies reach tens while embeddings stay below one."""
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape:
        return OutputDiff(name, candidate.shape, float("inf"), 0.0)
    finite = np.isfinite(reference)
    nonfinite = int(np.count_nonzero(finite & ~np.isfinite(candidate)))
    both = finite & np.isfinite(candidate)
    err = float(np.max(np.abs(reference[both] - candidate[both]), initial=0.0))
    scale = float(np.max(np.abs(reference[finite]), initial=0.0))
    return OutputDiff(name, reference.shape, err, atol + rtol * scale, nonfinite)


def cosine_diff(name: str, reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray,
                min_cosine: float, top_k: int = 0) -> OutputDiff:
    """The smallest cosine, over samples, between the reference's and the candidate's output
    vector of each sample: a [batch, seq, ...] output is mean-pooled over its unpadded tokens
    first (what a sentence embedding or SPLADE's pooling consumes). ``top_k``: also the
    share of each sample's k largest entries (SPLADE's top terms) that stay among the k
    largest."""
    out = diff(name, reference, candidate, 0.0, 0.0)
    if reference.shape != candidate.shape:
        return out
    r = np.asarray(reference, np.float64)
    c = np.nan_to_num(np.asarray(candidate, np.float64))
    if r.ndim >= 3 and r.shape[:2] == mask.shape:
        m = mask.reshape(mask.shape + (1,) * (r.ndim - 2)).astype(np.float64)
        r, c = (r * m).sum(1) / m.sum(1), (c * m).sum(1) / m.sum(1)
    r, c = r.reshape(len(r), -1), c.reshape(len(c), -1)
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1)
    cos = np.sum(r * c, axis=1) / np.where(norms > 0, norms, 1.0)
    out.cosine, out.min_cosine = float(cos.min()), min_cosine
    if top_k:
        k = min(top_k, r.shape[1])
        want, got = np.argsort(-r, axis=1)[:, :k], np.argsort(-c, axis=1)[:, :k]
        out.top_k = k
        out.top_kept = min(len(np.intersect1d(w, g)) / k for w, g in zip(want, got))
    return out
