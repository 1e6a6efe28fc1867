"""'Did you mean' suggestions for misspelt names (layer types, parameter keys)."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells: same letters in another case first, then
    difflib's closest match (ratio >= 0.6)."""
    choices = [c for c in choices if isinstance(c, str)]
    if not isinstance(word, str) or word in choices:
        return None
    folded = [c for c in choices if c.lower() == word.lower()]
    if folded:
        return folded[0]
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)``, or an empty string when nothing is close."""
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match else ""
