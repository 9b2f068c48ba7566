"""Ranking of duplicate candidates beyond cosine similarity: pure functions, no database.

`duplicates.nearest` fetches the closest issues of a repository by cosine similarity of their
embeddings (pgvector); the functions here re-rank those candidates with what an embedding misses:

- `keyword_scores`: BM25 over the words the two reports share. Exact tokens (an error code,
  `0x80070057`, a setting name, a version, a product area like "FancyZones") are what a
  maintainer recognises a duplicate by, and a small sentence model blurs them. The document
  frequencies come from the candidates themselves plus the new issue (`DocumentFrequencies.of`),
  so no new table or index is needed; a repository-wide table can be passed instead.
- `fused`: cosine (less neighbourhood density, see app/search/density.py) plus a weighted,
  normalised keyword score.

Measured in bench/duplicates.py (see bench/README.md for the table and which variant won).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# BM25's usual constants: term-frequency saturation and length normalisation.
K1 = 1.2
B = 0.75

# Words that carry no information about which bug a report is about: English function words and
# the boilerplate of issue templates ("steps to reproduce", "expected behavior", "version").
_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    yours get got getting one two also still using use used work works working seems like
    issue issues bug bugs steps reproduce reproduction expected actual behavior behaviour result
    results version versions describe description additional context information screenshot
    screenshots please thanks thank hi hello same problem error
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_TOKEN = re.compile(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]")
_HEX_OR_NUMBERISH = re.compile(r"^0x[0-9a-f]+$|^[0-9]+(\.[0-9]+)*$")


def tokens(text: str) -> list[str]:
    """Lower-cased words of a text without stopwords; dotted and dashed identifiers
    (`0x80070057`, `libssl.so.3`, `debian-openssl-3.0.x`) stay whole and also count by their
    parts, so `openssl` matches `debian-openssl-3.0.x`."""
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if token in _STOPWORDS:
            continue
        if len(token) > 1 or token.isdigit():
            words.append(token)
        if any(mark in token for mark in ".-_") and not _HEX_OR_NUMBERISH.match(token):
            words.extend(
                part
                for part in re.split(r"[.\-_]+", token)
                if len(part) > 1 and part not in _STOPWORDS
            )
    return words


@dataclass(frozen=True)
class DocumentFrequencies:
    """How many documents of a collection contain each word, for BM25's inverse document
    frequency."""

    documents: int
    counts: dict[str, int]
    mean_length: float

    @classmethod
    def of(cls, documents: Iterable[Sequence[str]]) -> DocumentFrequencies:
        counts: Counter[str] = Counter()
        total = lengths = 0
        for words in documents:
            total += 1
            lengths += len(words)
            counts.update(set(words))
        return cls(total, dict(counts), lengths / total if total else 0.0)

    def idf(self, word: str) -> float:
        # The "plus one" form of BM25's idf: never negative, so a word found in most of the
        # candidates counts for little rather than against.
        n = self.counts.get(word, 0)
        return math.log(1 + (self.documents - n + 0.5) / (n + 0.5))


def keyword_scores(
    query: Sequence[str],
    candidates: Sequence[Sequence[str]],
    frequencies: DocumentFrequencies | None = None,
) -> np.ndarray:
    """BM25 score of each candidate (a list of words) for the query's words, divided by the
    query's score against itself, so 1.0 means "every word of the query, as often"; 0 when
    nothing is shared. Without `frequencies`, they are counted over the candidates and the query.
    """
    if frequencies is None:
        frequencies = DocumentFrequencies.of([query, *candidates])
    mean_length = frequencies.mean_length or 1.0
    weights = {word: frequencies.idf(word) for word in set(query)}
    query_counts = Counter(query)

    def score(words: Sequence[str]) -> float:
        counts = Counter(words)
        norm = K1 * (1 - B + B * len(words) / mean_length)
        total = 0.0
        for word, weight in weights.items():
            tf = counts.get(word, 0)
            if tf:
                # Each query word counts once per occurrence in the query (up to 3), so a word
                # the reporter repeats weighs a little more.
                total += min(query_counts[word], 3) * weight * tf * (K1 + 1) / (tf + norm)
        return total

    own = score(query)
    if own <= 0:
        return np.zeros(len(candidates), dtype=np.float64)
    return np.array([score(words) for words in candidates], dtype=np.float64) / own


def fused(
    cosine: np.ndarray, keyword: np.ndarray, density: np.ndarray | None, keyword_weight: float
) -> np.ndarray:
    """The rank score of each candidate: cosine similarity, less its neighbourhood density (if
    given), plus `keyword_weight` times its normalised keyword score."""
    score = cosine.astype(np.float64)
    if density is not None:
        score = score - density
    return score + keyword_weight * keyword


# Flag a new issue as a possible duplicate when the rank score of its top-ranked candidate
# (cosine less neighbourhood density, `density.adjusted`) is at least this. Chosen by
# `python bench/duplicates.py --real` as the lowest threshold whose flags were right at least 80%
# of the time on the tuning half with pools padded to 2,000 issues: precision 0.81, recall 0.18.
# The cosine alone never got there (best 0.67 at 0.60, recall 0.38), because an
# issue in a dense neighbourhood has a high cosine to many issues that are not its duplicate.
FLAG_THRESHOLD = 0.17
