"""The fake OIDC issuer is checked the way Dispatch's server checks GitHub's tokens: discovery
document and JWKS fetched over HTTP, key chosen by `kid`, PyJWT decoding with RS256 only, the
expected audience and issuer. Good tokens pass; forged, expired, misaddressed, alg-confused and
unsigned ones fail; rotation, the Actions request-token endpoint and JWKS faults behave."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.oidc import FakeOIDCIssuer

pytestmark = pytest.mark.xdist_group("oidc-fake")

AUDIENCE = "https://dispatch.example.com"
REPO = "octo-org/widgets"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOIDCIssuer]:
    with FakeOIDCIssuer() as issuer:
        yield issuer


@pytest.fixture
def oidc(server: FakeOIDCIssuer) -> FakeOIDCIssuer:
    server.reset()
    return server


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify(issuer_url: str, token: str, audience: str = AUDIENCE) -> dict[str, Any]:
    """What a relying party does: discovery → JWKS over HTTP → key by kid → RS256-only decode."""
    discovery = httpx.get(f"{issuer_url}/.well-known/openid-configuration").raise_for_status()
    jwks = httpx.get(discovery.json()["jwks_uri"]).raise_for_status().json()
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}
    kid = jwt.get_unverified_header(token).get("kid")
    if kid not in keys:
        raise jwt.InvalidTokenError(f"no published key with kid {kid!r}")
    return jwt.decode(
        token,
        keys[kid],
        algorithms=["RS256"],
        audience=audience,
        issuer=issuer_url,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )


def test_discovery_document_points_at_the_jwks(oidc: FakeOIDCIssuer) -> None:
    doc = httpx.get(oidc.discovery_url).json()
    assert doc["issuer"] == oidc.url
    assert doc["jwks_uri"] == f"{oidc.url}/.well-known/jwks"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["response_types_supported"] == ["id_token"]
    assert {"repository_id", "run_id", "sub", "aud"} <= set(doc["claims_supported"])
    assert oidc.discovery_fetches == 1


def test_jwks_is_shaped_like_githubs(oidc: FakeOIDCIssuer) -> None:
    (key,) = httpx.get(oidc.jwks_url).json()["keys"]
    assert oidc.jwks_fetches == 1
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] == oidc.current_kid and key["e"] == "AQAB"
    der = base64.b64decode(key["x5c"][0])
    assert key["x5t"] == base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
    cert_key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(cert_key, rsa.RSAPublicKey)
    assert cert_key.public_numbers().n == int.from_bytes(_b64url_decode(key["n"]), "big")


def test_good_token_verifies_with_githubs_claims(oidc: FakeOIDCIssuer) -> None:
    token = oidc.token(AUDIENCE, repository_id=4242, run_id=987654321, run_attempt=2)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] == oidc.current_kid and header["x5t"] == oidc.signing_key().x5t

    claims = verify(oidc.url, token)
    assert claims["iss"] == oidc.url and claims["aud"] == AUDIENCE
    assert claims["sub"] == f"repo:{REPO}:ref:refs/heads/main"
    assert claims["repository"] == REPO and claims["repository_owner"] == "octo-org"
    # GitHub sends every id and counter as a string.
    assert claims["repository_id"] == "4242"
    assert claims["run_id"] == "987654321" and claims["run_attempt"] == "2"
    for name in ("repository_owner_id", "actor_id", "run_number"):
        assert isinstance(claims[name], str) and claims[name].isdigit()
    assert claims["workflow"] == "Dispatch agent" and claims["actor"] == "dispatch-bot"
    assert claims["event_name"] == "workflow_dispatch" and claims["ref_type"] == "branch"
    assert claims["workflow_ref"] == f"{REPO}/.github/workflows/dispatch-agent.yml@refs/heads/main"
    assert claims["job_workflow_ref"] == claims["workflow_ref"]
    assert len(claims["sha"]) == 40 and claims["workflow_sha"] == claims["sha"]
    assert claims["ref_protected"] == "false" and claims["head_ref"] == claims["base_ref"] == ""
    assert claims["runner_environment"] == "github-hosted"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] < claims["iat"]
    assert (
        claims["jti"]
        != jwt.decode(oidc.token(AUDIENCE), options={"verify_signature": False})["jti"]
    )


def test_subject_follows_githubs_rules(oidc: FakeOIDCIssuer) -> None:
    def sub(**kw: Any) -> str:
        return jwt.decode(oidc.token(AUDIENCE, **kw), options={"verify_signature": False})["sub"]

    assert sub(environment="prod") == f"repo:{REPO}:environment:prod"
    assert sub(event_name="pull_request", ref="refs/pull/7/merge") == f"repo:{REPO}:pull_request"
    assert sub(ref="refs/tags/v1") == f"repo:{REPO}:ref:refs/tags/v1"


def test_extra_and_dropped_claims(oidc: FakeOIDCIssuer) -> None:
    token = oidc.token(AUDIENCE, extra_claims={"repository_id": "1"}, drop_claims=["exp"])
    with pytest.raises(jwt.MissingRequiredClaimError):
        verify(oidc.url, token)
    assert verify(oidc.url, oidc.token(AUDIENCE, extra_claims={"x": 1}))["x"] == 1


def test_forged_token_fails_signature(oidc: FakeOIDCIssuer) -> None:
    token = oidc.forged_token(AUDIENCE)
    assert jwt.get_unverified_header(token)["kid"] == oidc.current_kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(oidc.url, token)


def test_expired_token_fails(oidc: FakeOIDCIssuer) -> None:
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(oidc.url, oidc.expired_token(AUDIENCE))


def test_wrong_audience_and_issuer_fail(oidc: FakeOIDCIssuer) -> None:
    with pytest.raises(jwt.InvalidAudienceError):
        verify(oidc.url, oidc.token("https://someone-else.example.com"))
    with pytest.raises(jwt.InvalidIssuerError):
        verify(oidc.url, oidc.token(AUDIENCE, extra_claims={"iss": "https://evil.example"}))


def test_hs256_alg_confusion_is_refused(oidc: FakeOIDCIssuer) -> None:
    token = oidc.token(AUDIENCE, algorithm="HS256")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    # It is the real attack: HMAC keyed with the published key's PEM, which a naive verifier
    # trusting the header's alg would rebuild from the JWKS and accept.
    (jwk,) = httpx.get(oidc.jwks_url).json()["keys"]
    pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_b64url_decode(signature), expected)
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(oidc.url, token)


def test_unsigned_token_is_refused(oidc: FakeOIDCIssuer) -> None:
    token = oidc.unsigned_token(AUDIENCE)
    assert token.endswith(".") and jwt.get_unverified_header(token)["alg"] == "none"
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(oidc.url, token)


def test_rotation_publishes_both_keys_until_retire(oidc: FakeOIDCIssuer) -> None:
    old_kid = oidc.current_kid
    old_token = oidc.token(AUDIENCE)
    new_kid = oidc.rotate()
    assert new_kid != old_kid and oidc.current_kid == new_kid
    new_token = oidc.token(AUDIENCE)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    kids = [key["kid"] for key in httpx.get(oidc.jwks_url).json()["keys"]]
    assert kids == [old_kid, new_kid]
    assert verify(oidc.url, old_token)["aud"] == AUDIENCE
    assert verify(oidc.url, oidc.token(AUDIENCE, kid=old_kid))["aud"] == AUDIENCE
    assert verify(oidc.url, new_token)["aud"] == AUDIENCE

    with pytest.raises(ValueError):
        oidc.retire(new_kid)
    oidc.retire(old_kid)
    assert [key["kid"] for key in httpx.get(oidc.jwks_url).json()["keys"]] == [new_kid]
    with pytest.raises(jwt.InvalidTokenError, match="no published key"):
        verify(oidc.url, old_token)
    assert verify(oidc.url, new_token)["aud"] == AUDIENCE


def test_request_token_endpoint_hands_out_the_jobs_token(oidc: FakeOIDCIssuer) -> None:
    request_url, request_token = oidc.issue_request_token(
        repository=REPO, repository_id=4242, run_id=555, run_attempt=3
    )
    assert parse_qs(urlsplit(request_url).query) == {"api-version": ["2.0"]}
    answer = httpx.get(
        f"{request_url}&audience={quote(AUDIENCE, safe='')}",
        headers={"Authorization": f"bearer {request_token}"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 1
    claims = verify(oidc.url, body["value"])
    assert (claims["repository_id"], claims["run_id"], claims["run_attempt"]) == (
        "4242",
        "555",
        "3",
    )

    # Without an audience GitHub uses the owner's URL.
    default = httpx.get(request_url, headers={"Authorization": f"Bearer {request_token}"})
    assert verify(oidc.url, default.json()["value"], audience="https://github.com/octo-org")
    assert oidc.requested_audiences == [AUDIENCE, None]


def test_request_token_endpoint_refuses_a_wrong_token(oidc: FakeOIDCIssuer) -> None:
    request_url, request_token = oidc.issue_request_token(repository_id=1, run_id=2)
    url = f"{request_url}&audience={quote(AUDIENCE, safe='')}"
    assert httpx.get(url, headers={"Authorization": "bearer not-the-token"}).status_code == 401
    assert httpx.get(url).status_code == 401
    oidc.revoke_request_token(request_token)
    assert httpx.get(url, headers={"Authorization": f"bearer {request_token}"}).status_code == 401
    assert oidc.requested_audiences == []


def test_fail_jwks_next(oidc: FakeOIDCIssuer) -> None:
    oidc.fail_jwks_next(2)
    assert httpx.get(oidc.jwks_url).status_code == 503
    assert httpx.get(oidc.jwks_url).status_code == 503
    assert httpx.get(oidc.jwks_url).status_code == 200
    oidc.fail_jwks_next(status=500)
    assert httpx.get(oidc.jwks_url).status_code == 500
    assert oidc.jwks_fetches == 4


def test_unknown_paths_and_methods(oidc: FakeOIDCIssuer) -> None:
    assert httpx.get(f"{oidc.url}/nope").status_code == 404
    answer = httpx.post(oidc.jwks_url)
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    assert oidc.server_errors == []
