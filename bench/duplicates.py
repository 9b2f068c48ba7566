"""Duplicate detection quality and embedding speed of the local model, on the hand-written pairs
in tests/search/eval_pairs.py (duplicates written differently, and related non-duplicates).

Prints recall@3 (is an issue's duplicate among its 3 nearest neighbours?), precision/recall/F1
of "cosine >= t means duplicate" for t = 0.50 … 0.95, the threshold that rule picks, the pairs
it gets wrong, and throughput on one core and on every available core. Offline.

    python bench/duplicates.py
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.search.embeddings import (
    DEFAULT_DUPLICATE_THRESHOLD,
    LocalMiniLM,
    available_cores,
    issue_text,
)
from tests.search.eval_pairs import (
    PAIRS,
    RELATED,
    RELATED_SAME_SIDE,
    SAME_SIDE,
    SYMPTOM_AND_CAUSE,
    Issue,
    Pair,
)

THRESHOLDS = [round(0.50 + 0.01 * step, 2) for step in range(46)]
MIN_PRECISION = 0.90
# How much F1 the precision-first pick may give up against the best F1 and still count as
# "close" to it.
F1_TOLERANCE = 0.05


@dataclass(frozen=True)
class Row:
    threshold: float
    precision: float
    recall: float
    f1: float


def text(issue: Issue) -> str:
    return issue_text(issue["title"], issue["body"])


def pair_scores(model: LocalMiniLM, pairs: list[Pair]) -> np.ndarray:
    a = model.embed_array([text(pair["a"]) for pair in pairs])
    b = model.embed_array([text(pair["b"]) for pair in pairs])
    return np.einsum("ij,ij->i", a, b)


def recall_at_k(
    model: LocalMiniLM, duplicates: list[Pair], extra: list[Issue], k: int = 3
) -> float:
    """Share of duplicate-pair members whose partner is among their k nearest neighbours.

    The pool holds both members of every duplicate pair, plus `extra` issues as distractors.
    """
    pool = [p["a"] for p in duplicates] + [p["b"] for p in duplicates] + extra
    vectors = model.embed_array([text(issue) for issue in pool])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    n = len(duplicates)
    hits = 0
    for i in range(n):
        for query, partner in ((i, n + i), (n + i, i)):
            nearest = np.argsort(-similarity[query])[:k]
            hits += partner in nearest
    return hits / (2 * n)


def sweep(scores: np.ndarray, truth: np.ndarray) -> list[Row]:
    rows = []
    for threshold in THRESHOLDS:
        flagged = scores >= threshold
        true_positives = int((flagged & truth).sum())
        precision = true_positives / flagged.sum() if flagged.any() else 1.0
        recall = true_positives / truth.sum()
        f1 = 2 * precision * recall / (precision + recall) if true_positives else 0.0
        rows.append(Row(threshold, float(precision), float(recall), float(f1)))
    return rows


def choose(rows: list[Row]) -> tuple[Row, str]:
    """The default threshold.

    Rule: the lowest threshold whose precision reaches 0.90, if its F1 is within 0.05 of the
    best F1; otherwise the threshold of the best F1. A false "possible duplicate" costs a
    maintainer a look and a label removal on every wrong flag, so precision is worth a little
    recall, but not so much that the check stops finding duplicates.
    """
    best = max(rows, key=lambda row: (row.f1, -row.threshold))
    precise = next((row for row in rows if row.precision >= MIN_PRECISION), None)
    if precise is not None and precise.f1 >= best.f1 - F1_TOLERANCE:
        return precise, f"lowest threshold with precision >= {MIN_PRECISION:.2f} (F1 close to best)"
    return best, "max F1"


@contextmanager
def one_core() -> Iterator[None]:
    """Pin the process to one core, so tokenization threads cannot borrow others either."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def throughput(model: LocalMiniLM, texts: list[str], rounds: int = 3) -> float:
    """Issues per second, best of a few rounds (after a warm-up)."""
    model.embed_array(texts[:8])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        model.embed_array(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def latency_ms(model: LocalMiniLM, texts: list[str]) -> float:
    """Median time to embed one issue on its own, as on an `issues.opened` webhook."""
    timings = []
    for sample in texts[:60]:
        start = time.perf_counter()
        model.embed_array([sample])
        timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000)


def print_table(rows: list[Row], chosen: Row) -> None:
    print(f"{'threshold':>9} {'precision':>9} {'recall':>7} {'F1':>6}")
    for row in rows:
        mark = "  <- chosen" if row is chosen else ""
        print(f"{row.threshold:9.2f} {row.precision:9.3f} {row.recall:7.3f} {row.f1:6.3f}{mark}")


def print_mistakes(pairs: list[Pair], scores: np.ndarray, threshold: float) -> None:
    misses = [
        (s, p) for s, p in zip(scores, pairs, strict=True) if p["duplicate"] and s < threshold
    ]
    false_flags = [
        (s, p) for s, p in zip(scores, pairs, strict=True) if not p["duplicate"] and s >= threshold
    ]
    print(f"\nmissed duplicates at {threshold:.2f} ({len(misses)}), lowest first:")
    for score, pair in sorted(misses, key=lambda item: item[0])[:10]:
        print(f"  {score:.2f}  {pair['a']['title']!r} / {pair['b']['title']!r}")
    print(f"non-duplicates flagged at {threshold:.2f} ({len(false_flags)}), highest first:")
    for score, pair in sorted(false_flags, key=lambda item: -item[0])[:10]:
        print(f"  {score:.2f}  {pair['a']['title']!r} / {pair['b']['title']!r}")


def main() -> None:
    model = LocalMiniLM()
    start = time.perf_counter()
    model.load()
    print(f"model loaded in {time.perf_counter() - start:.2f} s ({model.threads} threads)")

    duplicates = [pair for pair in PAIRS if pair["duplicate"]]
    related = [pair for pair in PAIRS if not pair["duplicate"]]
    scores = pair_scores(model, PAIRS)
    truth = np.array([pair["duplicate"] for pair in PAIRS])
    print(
        f"\n{len(duplicates)} duplicate pairs: cosine mean {scores[truth].mean():.3f}, "
        f"min {scores[truth].min():.3f}"
    )
    print(
        f"{len(related)} related non-duplicate pairs: cosine mean {scores[~truth].mean():.3f}, "
        f"max {scores[~truth].max():.3f}\n"
    )

    rows = sweep(scores, truth)
    chosen, rule = choose(rows)
    print_table(rows, chosen)
    print(
        f"\nchosen threshold: {chosen.threshold:.2f} ({rule}): precision {chosen.precision:.3f}, "
        f"recall {chosen.recall:.3f}, F1 {chosen.f1:.3f}"
    )
    print(f"DEFAULT_DUPLICATE_THRESHOLD in app/search/embeddings.py: {DEFAULT_DUPLICATE_THRESHOLD}")
    print_mistakes(PAIRS, scores, chosen.threshold)

    distractors = [p["a"] for p in related] + [p["b"] for p in related]
    print(
        f"\nrecall@3 (partner among the 3 nearest; pool = both issues of every duplicate pair, "
        f"{2 * len(duplicates)} issues):"
    )
    print(f"  all duplicate pairs:          {recall_at_k(model, duplicates, []):.3f}")
    print(
        f"  + {len(distractors)} related issues as distractors: "
        f"{recall_at_k(model, duplicates, distractors):.3f}"
    )
    for name, group in (("SYMPTOM_AND_CAUSE", SYMPTOM_AND_CAUSE), ("SAME_SIDE", SAME_SIDE)):
        print(f"  {name} alone ({len(group)} pairs): {recall_at_k(model, group, []):.3f}")
    print("\nper group at the chosen threshold:")
    for name, group in (
        ("SYMPTOM_AND_CAUSE", SYMPTOM_AND_CAUSE),
        ("SAME_SIDE", SAME_SIDE),
        ("RELATED", RELATED),
        ("RELATED_SAME_SIDE", RELATED_SAME_SIDE),
    ):
        group_scores = pair_scores(model, group)
        share = (group_scores >= chosen.threshold).mean()
        print(f"  {name:18s} cosine mean {group_scores.mean():.3f}, flagged {share:.0%}")

    texts = [text(issue) for pair in PAIRS for issue in (pair["a"], pair["b"])]
    single = LocalMiniLM(threads=1)
    with one_core():
        print(
            f"\nthroughput, 1 core:  {throughput(single, texts):7.1f} issues/s; "
            f"one issue alone: {latency_ms(single, texts):.1f} ms (median)"
        )
    print(
        f"throughput, {available_cores()} cores: {throughput(model, texts):7.1f} issues/s; "
        f"one issue alone: {latency_ms(model, texts):.1f} ms (median)"
    )


if __name__ == "__main__":
    main()
