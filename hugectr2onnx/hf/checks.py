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

    @property
    def ok(self) -> bool:
        return self.nonfinite == 0 and self.max_abs_diff <= self.tolerance


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
        for d in self.diffs:
            bad = f", {d.nonfinite} non-finite" if d.nonfinite else ""
            lines.append(f"  {d.name} {list(d.shape)}: max abs diff {d.max_abs_diff:.3g} "
                         f"(tolerance {d.tolerance:.3g}){bad} {'ok' if d.ok else 'EXCEEDED'}")
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
