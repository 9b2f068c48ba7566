"""`GET /setup` (the registration page) and `GET /setup/callback` (GitHub's redirect with the
one-time code). Both refuse to register anything once an App is configured."""

from __future__ import annotations

import json
import logging
import socket
from typing import Annotated, Any

from litestar import Response, get
from litestar.params import Parameter
from litestar.response import Redirect, Template

from app.runtime import Runtime
from app.setup import manifest
from app.signing import InvalidToken

log = logging.getLogger(__name__)

STATE_PURPOSE = "setup-state"
STATE_TTL = 3600


def _page(rt: Runtime, error: str | None = None, status: int = 200) -> Template:
    creds = rt.credentials.current()
    context: dict[str, Any] = {"configured": creds is not None, "error": error}
    if creds is not None:
        context["slug"] = creds.slug
        context["install_url"] = f"{creds.html_url}/installations/new" if creds.html_url else None
    else:
        state = rt.signer.sign(STATE_PURPOSE, "register", STATE_TTL)
        web = rt.settings.github_web_url
        context.update(
            dispatch_url=rt.settings.dispatch_url,
            default_name=f"Dispatch {socket.gethostname()}"[:34],
            manifest_json=json.dumps(manifest.manifest(rt.settings.dispatch_url)),
            personal_url=f"{web}/settings/apps/new?state={state}",
            org_url_prefix=f"{web}/organizations/",
            org_url_suffix=f"/settings/apps/new?state={state}",
        )
    return Template(template_name="setup.html", context=context, status_code=status)


@get("/setup", include_in_schema=False)
async def setup_page(rt: Runtime) -> Template:
    return _page(rt)


@get("/setup/callback", include_in_schema=False)
async def setup_callback(
    rt: Runtime,
    code: str | None = None,
    setup_state: Annotated[str | None, Parameter(query="state")] = None,
) -> Response[Any] | Template:
    if rt.credentials.configured:
        return _page(rt, status=409)
    if not code:
        return _page(rt, "GitHub did not send a code; start again below.", status=400)
    try:
        rt.signer.verify(STATE_PURPOSE, setup_state or "")
    except InvalidToken:
        return _page(rt, "This link is not from this setup page (or it expired); start again.", 400)
    try:
        credentials = await manifest.convert(rt.github, code)
    except manifest.MalformedCode as exc:
        return _page(rt, str(exc), status=400)
    except manifest.ManifestConversionFailed as exc:
        return _page(rt, str(exc), status=502)
    rt.credentials.save(credentials)
    log.info(
        "github app registered", extra={"app_id": credentials.app_id, "slug": credentials.slug}
    )
    if credentials.html_url:
        return Redirect(f"{credentials.html_url}/installations/new")
    return _page(rt)


routes = [setup_page, setup_callback]
