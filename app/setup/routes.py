"""`GET /setup` (unlock with the setup code, then the registration page), `POST /setup` (the
setup code) and `GET /setup/callback` (GitHub's redirect with the one-time code). None of them
registers anything once an App is configured.

The registration is bound to the browser that proved it holds the setup code: unlocking sets a
signed session cookie (`__Host-` prefixed, HttpOnly, SameSite=Lax, so GitHub's redirect back still
carries it), the manifest flow's `state` is bound to that session, and the callback checks both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Redirect, Template

from app.github.credentials import AlreadyConfigured
from app.runtime import Runtime
from app.setup import code as setup_code
from app.setup import manifest
from app.signing import InvalidToken

log = logging.getLogger(__name__)

STATE_PURPOSE = "setup-state"
SESSION_PURPOSE = "setup-session"
SESSION_TTL = 3600


def _headers(script_nonce: str = "") -> dict[str, str]:
    scripts = f"'nonce-{script_nonce}'" if script_nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src {scripts}; "
            "form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _cookie_name(rt: Runtime) -> str:
    # `__Host-` cookies must be Secure, which browsers only keep over https (and localhost).
    return "__Host-dispatch-setup" if _secure(rt) else "dispatch-setup"


def _secure(rt: Runtime) -> bool:
    return rt.settings.dispatch_url.startswith("https://")


def _session(rt: Runtime, request: Request) -> str | None:
    """The nonce of this browser's unlocked setup session, if its cookie is authentic."""
    cookie = request.cookies.get(_cookie_name(rt))
    if not cookie:
        return None
    try:
        return rt.signer.verify(SESSION_PURPOSE, cookie)
    except InvalidToken:
        return None


def _bound(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _page(rt: Runtime, request: Request, error: str | None = None, status: int = 200) -> Template:
    creds = rt.credentials.current()
    script_nonce = secrets.token_urlsafe(16)
    context: dict[str, Any] = {
        "configured": creds is not None,
        "error": error,
        "script_nonce": script_nonce,
    }
    if creds is not None:
        context.update(
            slug=creds.slug,
            app_id=creds.app_id,
            owner=creds.owner,
            install_url=f"{creds.html_url}/installations/new" if creds.html_url else None,
        )
    elif (nonce := _session(rt, request)) is None:
        setup_code.ensure(rt.settings.dispatch_data_dir)
        context.update(
            locked=True, code_path=str(rt.settings.dispatch_data_dir / setup_code.CODE_FILE)
        )
    else:
        state = rt.signer.sign(STATE_PURPOSE, _bound(nonce), SESSION_TTL)
        web = rt.settings.github_web_url
        context.update(
            locked=False,
            dispatch_url=rt.settings.dispatch_url,
            default_name=f"Dispatch {socket.gethostname()}"[:34],
            manifest_json=json.dumps(manifest.manifest(rt.settings.dispatch_url)),
            personal_url=f"{web}/settings/apps/new?state={state}",
            org_url_prefix=f"{web}/organizations/",
            org_url_suffix=f"/settings/apps/new?state={state}",
        )
    return Template(
        template_name="setup.html",
        context=context,
        status_code=status,
        headers=_headers(script_nonce),
    )


@get("/setup", include_in_schema=False)
async def setup_page(rt: Runtime, request: Request) -> Template:
    return _page(rt, request)


@post("/setup", include_in_schema=False, status_code=303, request_max_body_size=4096)
async def unlock(
    rt: Runtime,
    request: Request,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any] | Template:
    """The setup code from the operator: unlocks registration for this browser."""
    if rt.credentials.configured:
        return _page(rt, request, status=409)
    if not setup_code.matches(rt.settings.dispatch_data_dir, str(data.get("code", ""))):
        log.warning("wrong setup code entered at /setup")
        return _page(rt, request, "That is not the setup code; it is in the server's output.", 403)
    session = rt.signer.sign(SESSION_PURPOSE, secrets.token_urlsafe(32), SESSION_TTL)
    return Redirect(
        "/setup",
        status_code=303,
        cookies=[
            Cookie(
                key=_cookie_name(rt),
                value=session,
                path="/",
                max_age=SESSION_TTL,
                secure=_secure(rt),
                httponly=True,
                samesite="lax",
            )
        ],
        headers=_headers(),
    )


@get("/setup/callback", include_in_schema=False)
async def setup_callback(
    rt: Runtime,
    request: Request,
    code: str | None = None,
    setup_state: Annotated[str | None, Parameter(query="state")] = None,
) -> Response[Any] | Template:
    if rt.credentials.configured:
        return _page(rt, request, status=409)
    nonce = _session(rt, request)
    try:
        bound = rt.signer.verify(STATE_PURPOSE, setup_state or "")
    except InvalidToken:
        bound = None
    if nonce is None or bound is None or not hmac.compare_digest(bound, _bound(nonce)):
        return _page(
            rt,
            request,
            "This link is not from this setup page in this browser (or it expired); start again.",
            400,
        )
    if not code:
        return _page(rt, request, "GitHub did not send a code; start again below.", status=400)
    try:
        credentials = await manifest.convert(rt.github, code)
    except manifest.MalformedCode as exc:
        return _page(rt, request, str(exc), status=400)
    except manifest.ManifestConversionFailed as exc:
        return _page(rt, request, str(exc), status=502)
    try:
        rt.credentials.save(credentials)
    except AlreadyConfigured:
        return _page(rt, request, status=409)
    setup_code.discard(rt.settings.dispatch_data_dir)
    log.info(
        "github app registered",
        extra={"app_id": credentials.app_id, "slug": credentials.slug, "owner": credentials.owner},
    )
    return _page(rt, request)


routes = [setup_page, unlock, setup_callback]
