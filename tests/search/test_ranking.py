"""Re-ranking duplicate candidates with shared words: the tokens an error message or a setting
name is made of survive, template boilerplate does not, and a candidate that shares the rare
words of the new issue moves up past one that only reads alike."""

from __future__ import annotations

import numpy as np
import pytest

from bench import ranking


def test_tokens_keep_identifiers_whole_and_by_their_parts() -> None:
    words = ranking.tokens(
        "### Steps to reproduce\nWslRegisterDistribution failed with error: 0x80070057 "
        "on debian-openssl-3.0.x"
    )

    assert "0x80070057" in words
    assert "wslregisterdistribution" in words
    assert {"debian-openssl-3.0.x", "debian", "openssl"} <= set(words)
    # Template headings and function words say nothing about which bug it is.
    assert not {"steps", "to", "reproduce", "with", "error", "on"} & set(words)


def test_keyword_scores_are_relative_to_the_query_itself() -> None:
    query = ranking.tokens("FancyZones layout lost after monitor sleep")
    candidates = [
        ranking.tokens("FancyZones layout lost after monitor sleep"),
        ranking.tokens("FancyZones forgets layout when the monitor wakes from sleep"),
        ranking.tokens("Color picker shows wrong hex value"),
    ]

    scores = ranking.keyword_scores(query, candidates)

    assert scores[0] == pytest.approx(1.0)
    assert 0 < scores[1] < 1
    assert scores[2] == 0
    assert ranking.keyword_scores([], candidates).tolist() == [0, 0, 0]


def test_rare_shared_words_count_more_than_common_ones() -> None:
    query = ranking.tokens("terminal blank 0x80070057")
    candidates = [
        ranking.tokens("terminal blank after update"),
        ranking.tokens("terminal blank after resize"),
        ranking.tokens("terminal blank on start"),
        ranking.tokens("launch fails 0x80070057"),
    ]

    scores = ranking.keyword_scores(query, candidates)

    # "0x80070057" is in one candidate of four, "terminal" and "blank" in three.
    assert scores[3] > scores[0]


def test_fused_score_adds_weighted_keywords_to_cosine_less_density() -> None:
    cosine = np.array([0.80, 0.75])
    keyword = np.array([0.0, 0.6])
    density = np.array([0.40, 0.40])

    plain = ranking.fused(cosine, keyword, density, keyword_weight=0.0)
    hybrid = ranking.fused(cosine, keyword, density, keyword_weight=0.2)

    assert plain.argmax() == 0
    assert hybrid.argmax() == 1
    assert hybrid[1] == pytest.approx(0.75 - 0.40 + 0.2 * 0.6)
    assert ranking.fused(cosine, keyword, None, 0.0).tolist() == pytest.approx([0.80, 0.75])
