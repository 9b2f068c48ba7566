"""Duplicate detection quality and embedding speed of the local model, on the hand-written pairs
in tests/search/eval_pairs.py (duplicates written differently, and related non-duplicates).

Prints, offline:
- recall@3: is an issue's duplicate among its 3 nearest neighbours (by cosine alone, and
  ranked as Dispatch ranks them: cosine less neighbourhood density)?
- precision/recall/F1 of "cosine(a, b) >= t means duplicate" over all pairs, t = 0.50 … 0.95,
  and the threshold the rule in `choose` picks;
- the same threshold applied the way Dispatch uses it: flag a new issue when its most likely
  neighbour in the repository has a cosine similarity of at least t;
- throughput on one core and on every available core.

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

from app.search import density
from app.search.duplicates import CANDIDATES
from app.search.embeddings import (
    DEFAULT_DUPLICATE_THRESHOLD,
    LocalMiniLM,
    available_cores,
    issue_text,
)
from tests.search.eval_pairs import PAIRS, SAME_SIDE, SYMPTOM_AND_CAUSE, Issue, Pair

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


def embed(model: LocalMiniLM, issues: list[Issue]) -> np.ndarray:
    return model.embed_array([text(issue) for issue in issues])


def pair_scores(model: LocalMiniLM, pairs: list[Pair]) -> np.ndarray:
    a = embed(model, [pair["a"] for pair in pairs])
    b = embed(model, [pair["b"] for pair in pairs])
    return np.einsum("ij,ij->i", a, b)


def repository(duplicates: list[Pair], others: list[Issue]) -> tuple[list[Issue], dict[int, int]]:
    """A pool of issues (both members of each duplicate pair, then `others`) and who is whose
    duplicate, by position."""
    pool = [p["a"] for p in duplicates] + [p["b"] for p in duplicates] + others
    n = len(duplicates)
    partner = {i: n + i for i in range(n)} | {n + i: i for i in range(n)}
    return pool, partner


def similarities(model: LocalMiniLM, pool: list[Issue]) -> np.ndarray:
    vectors = embed(model, pool)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)  # an issue is not its own neighbour
    return similarity


def ranked(similarity: np.ndarray) -> np.ndarray:
    """The scores Dispatch ranks neighbours by (app/search/duplicates.py::nearest)."""
    return density.rank_scores(similarity, CANDIDATES)


def recall_at_k(
    model: LocalMiniLM, duplicates: list[Pair], others: list[Issue], k: int = 3
) -> tuple[float, float]:
    """Share of duplicate-pair members whose partner is among their k nearest neighbours: by
    cosine alone, and as Dispatch ranks them (cosine less neighbourhood density)."""
    pool, partner = repository(duplicates, others)
    similarity = similarities(model, pool)
    recalls = []
    for scores in (similarity, ranked(similarity)):
        hits = sum(partner[i] in np.argsort(-scores[i])[:k] for i in partner)
        recalls.append(hits / len(partner))
    return recalls[0], recalls[1]


def nearest_neighbour_flags(
    model: LocalMiniLM, duplicates: list[Pair], others: list[Issue], thresholds: list[float]
) -> list[Row]:
    """Dispatch's rule on a pool: flag an issue when its most likely neighbour (ranked as
    Dispatch ranks them) has a cosine similarity >= t.

    A flag is right when that neighbour is the issue's duplicate; recall is over the issues
    that have one. Every issue in the pool is asked, as if each had just been opened.
    """
    pool, partner = repository(duplicates, others)
    similarity = similarities(model, pool)
    nearest = ranked(similarity).argmax(axis=1)
    score = similarity[np.arange(len(pool)), nearest]
    rows = []
    for threshold in thresholds:
        flagged = np.flatnonzero(score >= threshold)
        right = sum(partner.get(int(i)) == nearest[i] for i in flagged)
        precision = right / len(flagged) if len(flagged) else 1.0
        recall = right / len(partner)
        f1 = 2 * precision * recall / (precision + recall) if right else 0.0
        rows.append(Row(threshold, precision, recall, f1))
    return rows


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
    best F1; otherwise the threshold of the best F1. A wrong "possible duplicate" flag costs a
    maintainer a look and a label removal, so precision is worth a little recall, but not so
    much that the check stops finding duplicates.
    """
    best = max(rows, key=lambda row: (row.f1, -row.threshold))
    precise = next((row for row in rows if row.precision >= MIN_PRECISION), None)
    if precise is not None and precise.f1 >= best.f1 - F1_TOLERANCE:
        return precise, f"lowest threshold with precision >= {MIN_PRECISION:.2f} (F1 close to best)"
    return best, "max F1; precision >= 0.90 costs too much F1"


@contextmanager
def one_core() -> Iterator[None]:
    """Pin the process to one core, so the tokenizer's threads cannot borrow others either."""
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
    """Issues per second in batches, best of a few rounds (after a warm-up)."""
    model.embed_array(texts[:8])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        model.embed_array(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def latency_ms(model: LocalMiniLM, texts: list[str]) -> float:
    """Median time to embed one issue on its own, as for one `issues.opened` webhook."""
    timings = []
    for sample in texts[:60]:
        start = time.perf_counter()
        model.embed_array([sample])
        timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000)


def print_rows(rows: list[Row], chosen: float | None = None) -> None:
    print(f"{'threshold':>9} {'precision':>9} {'recall':>7} {'F1':>6}")
    for row in rows:
        mark = "  <- chosen" if row.threshold == chosen else ""
        print(f"{row.threshold:9.2f} {row.precision:9.3f} {row.recall:7.3f} {row.f1:6.3f}{mark}")


def print_mistakes(pairs: list[Pair], scores: np.ndarray, threshold: float) -> None:
    scored = list(zip(scores, pairs, strict=True))
    misses = sorted((s, p) for s, p in scored if p["duplicate"] and s < threshold)
    false_flags = sorted(((s, p) for s, p in scored if not p["duplicate"] and s >= threshold))
    print(f"\nduplicates missed at {threshold:.2f}: {len(misses)}; the 8 lowest:")
    for score, pair in misses[:8]:
        print(f"  {score:.2f}  {pair['a']['title']!r} / {pair['b']['title']!r}")
    print(f"non-duplicates flagged at {threshold:.2f}: {len(false_flags)}; the 8 highest:")
    for score, pair in false_flags[::-1][:8]:
        print(f"  {score:.2f}  {pair['a']['title']!r} / {pair['b']['title']!r}")


def quality(model: LocalMiniLM) -> None:
    duplicates = [pair for pair in PAIRS if pair["duplicate"]]
    related = [pair for pair in PAIRS if not pair["duplicate"]]
    # The `a` of a related pair restates the bug of a duplicate pair (that is what makes the
    # pair a hard negative), so only the `b` sides are independent issues for a pool.
    others = [pair["b"] for pair in related]

    scores = pair_scores(model, PAIRS)
    truth = np.array([pair["duplicate"] for pair in PAIRS])
    print(
        f"\n{len(duplicates)} duplicate pairs ({len(SYMPTOM_AND_CAUSE)} symptom/cause, "
        f"{len(SAME_SIDE)} same side): cosine mean {scores[truth].mean():.3f}"
    )
    print(f"{len(related)} related non-duplicate pairs: cosine mean {scores[~truth].mean():.3f}")

    print(
        "\n(a) recall@3, partner among the 3 nearest neighbours: by cosine alone, and as "
        "Dispatch ranks\n    (cosine less neighbourhood density, app/search/density.py):"
    )
    print(f"  {'':<44} {'cosine':>7} {'Dispatch':>9}")
    for label, group, extra in (
        (f"pool of the {2 * len(duplicates)} duplicate-pair issues", duplicates, []),
        (f"the same + {len(others)} related issues", duplicates, others),
        (f"symptom/cause pairs alone ({2 * len(SYMPTOM_AND_CAUSE)})", SYMPTOM_AND_CAUSE, []),
        (f"same-side pairs alone ({2 * len(SAME_SIDE)})", SAME_SIDE, []),
    ):
        by_cosine, as_ranked = recall_at_k(model, group, extra)
        print(f"  {label:<44} {by_cosine:7.3f} {as_ranked:9.3f}")

    print("\n(b) score(a, b) >= t means duplicate, over all pairs:")
    rows = sweep(scores, truth)
    chosen, rule = choose(rows)
    print_rows(rows, chosen.threshold)
    print(f"\nchosen threshold {chosen.threshold:.2f} ({rule}):")
    print(f"  precision {chosen.precision:.3f}, recall {chosen.recall:.3f}, F1 {chosen.f1:.3f}")
    print(
        f"  DEFAULT_DUPLICATE_THRESHOLD (app/search/embeddings.py) is {DEFAULT_DUPLICATE_THRESHOLD}"
    )
    print_mistakes(PAIRS, scores, chosen.threshold)

    print(
        f"\n(c) as Dispatch uses it: flag when the most likely of "
        f"{2 * len(duplicates) + len(others)} issues has cosine >= t:"
    )
    steps = sorted({chosen.threshold, DEFAULT_DUPLICATE_THRESHOLD, 0.55, 0.60, 0.65, 0.70})
    print_rows(nearest_neighbour_flags(model, duplicates, others, steps), chosen.threshold)


def speed(model: LocalMiniLM) -> None:
    texts = [text(issue) for pair in PAIRS for issue in (pair["a"], pair["b"])]
    single = LocalMiniLM(threads=1)
    print(f"\nthroughput over {len(texts)} issues (batches of {model.batch_size}):")
    with one_core():
        rate, alone = throughput(single, texts), latency_ms(single, texts)
    print(f"  1 core:  {rate:6.1f} issues/s; one issue alone {alone:.1f} ms (median)")
    rate, alone = throughput(model, texts), latency_ms(model, texts)
    cores = available_cores()
    print(f"  {cores} cores: {rate:6.1f} issues/s; one issue alone {alone:.1f} ms (median)")


def main() -> None:
    model = LocalMiniLM()
    start = time.perf_counter()
    model.load()
    print(f"model loaded in {time.perf_counter() - start:.2f} s ({model.threads} threads)")
    quality(model)
    speed(model)


if __name__ == "__main__":
    main()
