"""A stateful fake of GitHub Actions' OIDC issuer (`https://token.actions.githubusercontent.com`),
served over real HTTP on loopback, plus the Actions runtime's ID-token request endpoint.

Dispatch verifies an agent's token the way it verifies GitHub's: discovery document, JWKS fetched
over HTTP, key chosen by `kid`, RS256 only, its own audience, this issuer. The fake signs tokens
with RSA keys made by `cryptography` and publishes them like GitHub does (`kid`, `x5t`, `x5c`).

    with FakeOIDCIssuer() as oidc:
        token = oidc.token("https://dispatch.example", repository_id=42, run_id=7)
        ...  # point Dispatch's DISPATCH_OIDC_ISSUER at oidc.url
        oidc.rotate()                       # a new current key; the old one stays published
        oidc.forged_token(aud)              # same kid, a key the issuer never published
        oidc.token(aud, algorithm="HS256")  # alg confusion: HMAC keyed with the public PEM
        oidc.unsigned_token(aud)            # alg "none"
        oidc.fail_jwks_next(2)              # the next two JWKS fetches answer 503

An agent script runs end to end against `issue_request_token()`: it returns what a workflow sees
as `ACTIONS_ID_TOKEN_REQUEST_URL` (already carrying `?api-version=2.0`; callers append
`&audience=...`) and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.

Claims follow GitHub's: every id and number is a string (`repository_id`, `run_id`,
`run_attempt`, ...), `ref_protected` is `"true"`/`"false"`, `head_ref`/`base_ref` are empty
outside pull requests, and `sub` is `repo:<owner>/<name>:ref:<ref>` (`:environment:<name>` with an
environment, `:pull_request` for pull-request events).

RSA keys come from a process-wide pool, generated on first use (generation is slow): every issuer
signs with pool key 0 first and pool key `n` after its `n`-th rotation, each under a kid of its own.
The key behind `forged_token` is never in the pool. Every request and every call holds `lock`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.serving import LoopbackServer

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
REQUEST_TOKEN_PATH = "/actions-token"
REQUEST_API_VERSION = "2.0"
# `claims_supported` of GitHub's discovery document.
CLAIMS_SUPPORTED = (
    "sub",
    "aud",
    "exp",
    "iat",
    "iss",
    "jti",
    "nbf",
    "ref",
    "sha",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "enterprise",
    "enterprise_id",
    "run_id",
    "run_number",
    "run_attempt",
    "actor",
    "actor_id",
    "workflow",
    "workflow_ref",
    "workflow_sha",
    "head_ref",
    "base_ref",
    "event_name",
    "ref_type",
    "ref_protected",
    "environment",
    "environment_node_id",
    "job_workflow_ref",
    "job_workflow_sha",
    "repository_visibility",
    "runner_environment",
    "issuer_scope",
    "check_run_id",
)
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# ---------------------------------------------------------------- process-wide keys and ids

_key_lock = threading.Lock()
_key_pool: list[rsa.RSAPrivateKey] = []
_forger_key: rsa.RSAPrivateKey | None = None
_ids = itertools.count(880_000_001)
_stable_ids: dict[str, int] = {}


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pooled_key(index: int) -> rsa.RSAPrivateKey:
    """Pool key `index`, generated once per process."""
    with _key_lock:
        while len(_key_pool) <= index:
            _key_pool.append(_new_rsa_key())
        return _key_pool[index]


def forger_key() -> rsa.RSAPrivateKey:
    """An RSA key no issuer ever publishes (made once per process)."""
    global _forger_key
    with _key_lock:
        if _forger_key is None:
            _forger_key = _new_rsa_key()
        return _forger_key


def _stable_id(namespace: str) -> int:
    """The same number for the same name for the whole process (repository and owner ids)."""
    with _key_lock:
        if namespace not in _stable_ids:
            _stable_ids[namespace] = next(_ids)
        return _stable_ids[namespace]


def _next_id() -> int:
    with _key_lock:
        return next(_ids)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of an RSA key (the HS256 alg-confusion secret)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "token.actions.githubusercontent.com")]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class SigningKey:
    """One issuer key: its kid, RSA private key and self-signed certificate (for x5c/x5t)."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def make(cls, private_key: rsa.RSAPrivateKey) -> SigningKey:
        return cls(str(uuid.uuid4()), private_key, _self_signed(private_key))

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.private_key)

    @property
    def x5t(self) -> str:
        """base64url SHA-1 thumbprint of the DER certificate, as in GitHub's JWKS and headers."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return _b64url(hashlib.sha1(der).digest())

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(der).decode()],
            "x5t": self.x5t,
        }


@dataclass(frozen=True)
class _Response:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


# ---------------------------------------------------------------- the fake


class FakeOIDCIssuer(LoopbackServer):
    server_name = "fake-oidc"

    """GitHub Actions' OIDC issuer on `http://127.0.0.1:<port>`; `url` is also the `iss`.

    `now` supplies the epoch seconds used for `iat` when a token does not give `issued_at`.
    """

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self._now = now
        super().__init__()
        self._initial_key = SigningKey.make(pooled_key(0))
        self._clear_state()

    # ------------------------------------------------------------ lifecycle

    def _clear_state(self) -> None:
        self._keys: dict[str, SigningKey] = {self._initial_key.kid: self._initial_key}
        self._published: list[str] = [self._initial_key.kid]
        self._current = self._initial_key.kid
        self._rotations = 0
        self._jwks_failures: list[int] = []
        self._request_tokens: dict[str, dict[str, Any]] = {}
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.requested_audiences: list[str | None] = []
        self.server_errors: list[str] = []

    def reset(self) -> None:
        """Back to the first key only; forget counters, injected failures and request tokens."""
        with self.lock:
            self._clear_state()

    # ------------------------------------------------------------ keys

    @property
    def current_kid(self) -> str:
        with self.lock:
            return self._current

    @property
    def published_kids(self) -> list[str]:
        """Kids in the JWKS, oldest first."""
        with self.lock:
            return list(self._published)

    def signing_key(self, kid: str | None = None) -> SigningKey:
        """The issuer's key with `kid` (published or retired); the current key by default."""
        with self.lock:
            return self._keys[kid or self._current]

    def rotate(self) -> str:
        """Publish a new key and sign with it from now on; older keys stay until `retire`."""
        with self.lock:
            self._rotations += 1
            key = SigningKey.make(pooled_key(self._rotations))
            self._keys[key.kid] = key
            self._published.append(key.kid)
            self._current = key.kid
            return key.kid

    def retire(self, kid: str) -> None:
        """Drop a non-current key from the JWKS (`token(kid=...)` can still sign with it)."""
        with self.lock:
            if kid == self._current:
                raise ValueError("cannot retire the current key; rotate() first")
            if kid not in self._published:
                raise KeyError(kid)
            self._published.remove(kid)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document as served (without counting a fetch)."""
        with self.lock:
            return {"keys": [self._keys[kid].jwk() for kid in self._published]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": list(CLAIMS_SUPPORTED),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def fail_jwks_next(self, n: int = 1, status: int = 503) -> None:
        """Answer the next `n` JWKS fetches with `status` (they still count in `jwks_fetches`)."""
        with self.lock:
            self._jwks_failures += [status] * n

    # ------------------------------------------------------------ tokens

    def claims(
        self,
        audience: str | list[str],
        *,
        repository: str = "octo-org/widgets",
        repository_id: int | str | None = None,
        repository_owner_id: int | str | None = None,
        repository_visibility: str = "private",
        run_id: int | str | None = None,
        run_number: int | str | None = None,
        run_attempt: int | str = 1,
        ref: str = "refs/heads/main",
        ref_protected: bool = False,
        sha: str | None = None,
        workflow: str = "Dispatch agent",
        workflow_file: str = "dispatch-agent.yml",
        actor: str = "dispatch-bot",
        actor_id: int | str | None = None,
        event_name: str = "workflow_dispatch",
        environment: str | None = None,
        head_ref: str = "",
        base_ref: str = "",
        runner_environment: str = "github-hosted",
        expires_in: int = 300,
        issued_at: float | datetime | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        drop_claims: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The claim set `token()` signs (same arguments, no signing ones)."""
        owner = repository.split("/", 1)[0]
        if isinstance(issued_at, datetime):
            iat = int(issued_at.timestamp())
        else:
            iat = int(self._now() if issued_at is None else issued_at)
        if sha is None:
            sha = hashlib.sha1(f"{repository}@{ref}".encode()).hexdigest()
        if environment is not None:
            sub = f"repo:{repository}:environment:{environment}"
        elif event_name in PULL_REQUEST_EVENTS:
            sub = f"repo:{repository}:pull_request"
        else:
            sub = f"repo:{repository}:ref:{ref}"
        workflow_ref = f"{repository}/.github/workflows/{workflow_file}@{ref}"
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": sub,
            "aud": audience,
            "ref": ref,
            "sha": sha,
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": str(repository_owner_id or _stable_id(f"owner:{owner}")),
            "run_id": str(run_id if run_id is not None else _next_id()),
            "run_number": str(run_number if run_number is not None else _next_id() % 10_000),
            "run_attempt": str(run_attempt),
            "repository_visibility": repository_visibility,
            "repository_id": str(repository_id or _stable_id(f"repo:{repository}")),
            "actor_id": str(actor_id or _stable_id(f"user:{actor}")),
            "actor": actor,
            "workflow": workflow,
            "head_ref": head_ref,
            "base_ref": base_ref,
            "event_name": event_name,
            "ref_protected": "true" if ref_protected else "false",
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "workflow_ref": workflow_ref,
            "workflow_sha": sha,
            "job_workflow_ref": workflow_ref,
            "job_workflow_sha": sha,
            "runner_environment": runner_environment,
            "check_run_id": str(_next_id()),
            "iss": self.url,
            "nbf": iat - 600,
            "exp": iat + expires_in,
            "iat": iat,
        }
        if environment is not None:
            claims["environment"] = environment
        claims.update(extra_claims or {})
        for name in drop_claims:
            claims.pop(name, None)
        return claims

    def token(
        self,
        audience: str | list[str],
        *,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        algorithm: str = "RS256",
        headers: Mapping[str, Any] | None = None,
        **claim_args: Any,
    ) -> str:
        """A GitHub Actions ID token for `audience`; `claim_args` are `claims()`'s arguments.

        Signing: with `key` if given, else with the issuer's key named `kid` (published or
        retired), else with the current key. The header carries `kid` (the given one, even if no
        key has it, else the signing key's), `x5t` and `typ: JWT`; `headers` adds or overrides.
        `algorithm`: RS256/384/512 or PS256/384/512 sign with the RSA key; HS256/384/512 sign
        with the public key's PEM as the HMAC secret (alg confusion); `none` leaves it unsigned.
        """
        payload = self.claims(audience, **claim_args)
        with self.lock:
            own = self._keys.get(kid or self._current) or self._keys[self._current]
        private_key = key if key is not None else own.private_key
        header: dict[str, Any] = {"typ": "JWT", "alg": algorithm, "x5t": own.x5t}
        header["kid"] = kid or own.kid
        header.update(headers or {})
        return _sign(header, payload, private_key, algorithm)

    def forged_token(self, audience: str | list[str], **kw: Any) -> str:
        """Signed by a key the issuer never published, under the current key's kid and x5t."""
        return self.token(audience, key=forger_key(), **kw)

    def expired_token(self, audience: str | list[str], **kw: Any) -> str:
        """Properly signed, expired five minutes ago (beyond any sane leeway)."""
        kw.setdefault("issued_at", self._now() - 600)
        kw.setdefault("expires_in", 300)
        return self.token(audience, **kw)

    def unsigned_token(self, audience: str | list[str], **kw: Any) -> str:
        """`alg: none` with an empty signature."""
        return self.token(audience, algorithm="none", **kw)

    # ------------------------------------------------------------ Actions runtime endpoint

    def issue_request_token(
        self,
        *,
        repository: str = "octo-org/widgets",
        repository_id: int | str | None = None,
        run_id: int | str | None = None,
        **token_kwargs: Any,
    ) -> tuple[str, str]:
        """A job's `(ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN)`.

        Every request with that token mints a fresh ID token for this context (ids fixed now;
        `token_kwargs` are `token()`'s). Without `&audience=` the audience is GitHub's default,
        the owner's URL `https://github.com/<owner>`.
        """
        context = {
            "repository": repository,
            "repository_id": repository_id or _stable_id(f"repo:{repository}"),
            "run_id": run_id if run_id is not None else _next_id(),
            **token_kwargs,
        }
        request_token = secrets.token_urlsafe(32)
        with self.lock:
            self._request_tokens[request_token] = context
        return f"{self.url}{REQUEST_TOKEN_PATH}?api-version={REQUEST_API_VERSION}", request_token

    def revoke_request_token(self, request_token: str) -> None:
        """The job ended: its request token no longer works."""
        with self.lock:
            self._request_tokens.pop(request_token, None)

    # ------------------------------------------------------------ HTTP

    def asgi_app(self) -> Any:
        return self._asgi

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    async def _asgi(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return
        try:
            response = self._handle(
                scope["method"],
                scope["path"],
                scope.get("query_string", b"").decode("latin-1"),
                {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            )
        except Exception as exc:  # a bug in the fake: answer 500 and let the test see why
            with self.lock:
                self.server_errors.append(repr(exc))
            response = _Response(500, {"message": "fake OIDC issuer error"})
        body = json.dumps(response.body).encode()
        headers = [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in response.headers),
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str]) -> _Response:
        routes = {
            "/.well-known/openid-configuration": self._discovery,
            "/.well-known/jwks": self._jwks,
            REQUEST_TOKEN_PATH: lambda: self._request_token(query, headers),
        }
        handler = routes.get(path)
        if handler is None:
            return _Response(404, {"message": "Not Found"})
        if method != "GET":
            return _Response(405, {"message": "Method Not Allowed"}, (("allow", "GET"),))
        return handler()

    def _discovery(self) -> _Response:
        with self.lock:
            self.discovery_fetches += 1
        return _Response(200, self.openid_configuration())

    def _jwks(self) -> _Response:
        with self.lock:
            self.jwks_fetches += 1
            if self._jwks_failures:
                status = self._jwks_failures.pop(0)
                return _Response(status, {"message": "Service Unavailable"})
            return _Response(200, self.jwks())

    def _request_token(self, query: str, headers: dict[str, str]) -> _Response:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        with self.lock:
            context = self._request_tokens.get(presented.strip())
            if scheme.lower() != "bearer" or context is None:
                return _Response(401, {"message": "Unauthorized: invalid request token"})
            audiences = parse_qs(query).get("audience")
            audience = audiences[0] if audiences else None
            self.requested_audiences.append(audience)
        owner = str(context["repository"]).split("/", 1)[0]
        value = self.token(audience or f"https://github.com/{quote(owner)}", **context)
        return _Response(200, {"count": 1, "value": value})


def _sign(
    header: dict[str, Any], payload: dict[str, Any], key: rsa.RSAPrivateKey, algorithm: str
) -> str:
    if algorithm.startswith(("RS", "PS")):
        extra = {k: v for k, v in header.items() if k != "alg"}
        return jwt.encode(payload, key, algorithm=algorithm, headers=extra)
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    if algorithm.lower() == "none":
        return f"{signing_input}."
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    if algorithm not in digests:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    # PyJWT refuses a PEM as an HMAC secret, so the alg-confusion token is built by hand.
    mac = hmac.new(public_pem(key), signing_input.encode(), digests[algorithm]).digest()
    return f"{signing_input}.{_b64url(mac)}"
