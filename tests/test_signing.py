"""Signed links: authentic, unexpired, and only for the purpose they were minted for."""

from __future__ import annotations

import pytest

from app.signing import InvalidToken, Signer


def test_round_trip_and_refusals():
    signer = Signer(b"k" * 32)
    token = signer.sign("stream", "run:7", 60)

    assert signer.verify("stream", token) == "run:7"
    with pytest.raises(InvalidToken):
        signer.verify("portal", token)
    with pytest.raises(InvalidToken):
        Signer(b"other" * 8).verify("stream", token)
    with pytest.raises(InvalidToken):
        signer.verify("stream", token[:-2] + "xx")
    with pytest.raises(InvalidToken):
        signer.verify("stream", signer.sign("stream", "run:7", -1))
    with pytest.raises(InvalidToken):
        signer.verify("stream", "garbage")
