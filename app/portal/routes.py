"""The portal's pages and JSON, and the operators' customer API.

Customers (portal token in `?token=` or `Authorization: Bearer`):
`GET /portal/{slug}` and `GET /portal/{slug}/{owner}/{repo}/{number}` (HTML, no JavaScript),
`GET /api/portal/{slug}` and `GET /api/portal/{slug}/{owner}/{repo}/{number}` (the same as JSON).
Whatever is wrong (no token, a wrong or rotated one, an unknown or deleted slug, an issue the
customer does not follow), the answer is the same 404 body. Every answer carries
`Referrer-Policy: no-referrer`, `Cache-Control: no-store`, `X-Robots-Tag: noindex` and a Content
Security Policy that allows nothing but the page's own style and the customer's logo.

Operators (admin API tokens): `GET/POST /api/customers`, `GET/PATCH/DELETE /api/customers/{slug}`,
`POST /api/customers/{slug}/token`, `GET /api/customers/{slug}/stats`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import MediaType, Request, Response, delete, get, patch, post
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.response import Template

from app.portal import access, customers, health, views
from app.portal.customers import Customer
from app.runtime import Runtime
from app.tokens.guard import api_token, require_scope
from app.tokens.service import ApiToken

TEMPLATES = Path(__file__).parent / "templates"
_NOT_FOUND_HTML = (TEMPLATES / "portal_404.html").read_text()
_NOT_FOUND_STYLE = re.search(r"<style>(.*?)</style>", _NOT_FOUND_HTML, re.DOTALL)
_NOT_FOUND_STYLE_HASH = base64.b64encode(
    hashlib.sha256((_NOT_FOUND_STYLE.group(1) if _NOT_FOUND_STYLE else "").encode()).digest()
).decode()
NOT_FOUND_JSON = {"error": "not found", "status": 404}
MAX_PAGE = 10_000

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def csp(*, style: str | None = None, logo_url: str | None = None) -> str:
    """Nothing may load or run but the page's own style block and the customer's logo."""
    logo = urlsplit(logo_url) if logo_url else None
    img = f"{logo.scheme}://{logo.netloc}" if logo else "'none'"
    styles = style or "'none'"
    return (
        f"default-src 'none'; style-src {styles}; img-src {img}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _headers(**policy: str | None) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp(**policy)}


def not_found(html: bool) -> Response[Any]:
    if html:
        return Response(
            _NOT_FOUND_HTML,
            status_code=404,
            media_type=MediaType.HTML,
            headers=_headers(style=f"'sha256-{_NOT_FOUND_STYLE_HASH}'"),
        )
    return Response(NOT_FOUND_JSON, status_code=404, headers=_headers())


def too_many(wait: int, html: bool) -> Response[Any]:
    message = f"Too many requests: try again in {wait} seconds."
    headers = {**_headers(), "Retry-After": str(wait)}
    if html:
        return Response(message, status_code=429, media_type=MediaType.TEXT, headers=headers)
    return Response(
        {"error": message, "status": 429, "retry_after": wait}, status_code=429, headers=headers
    )


async def _admit(
    request: Request, rt: Runtime, slug: str, html: bool
) -> tuple[Customer, access.Presented] | Response[Any]:
    who = access.presented(request)
    admitted = await access.admit(rt, who, access.client_address(request), slug)
    if isinstance(admitted, int):
        return too_many(admitted, html)
    if admitted is None:
        return not_found(html)
    return admitted, who


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes", "on")


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and int(raw) >= 1 else 1


def _per_page(request: Request) -> int:
    raw = request.query_params.get("per_page", "")
    if raw.isdigit() and int(raw) >= 1:
        return min(int(raw), views.MAX_PER_PAGE)
    return views.PER_PAGE


def _when(moment: datetime | None) -> str:
    return f"{moment:%-d %b %Y, %H:%M} UTC" if moment else "—"


def _on_brand(color: str) -> str:
    """Black or white text, whichever reads better on the customer's colour."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#ffffff"


def _page_response(template: str, customer: Customer, context: dict[str, Any]) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(
        template_name=template,
        context={
            **context,
            "customer": customer,
            "nonce": nonce,
            "on_brand": _on_brand(customer.color),
            "when": _when,
        },
        headers=_headers(style=f"'nonce-{nonce}'", logo_url=customer.logo_url),
    )


@get("/portal/{slug:str}", include_in_schema=False)
async def portal_page(request: Request, rt: Runtime, slug: str) -> Response[Any] | Template:
    admitted = await _admit(request, rt, slug, html=True)
    if isinstance(admitted, Response):
        return admitted
    customer, who = admitted
    show_closed, page = _flag(request, "closed"), _page(request)
    board = await views.board(customer, show_closed=show_closed, page=page)
    token = {"token": who.token} if who.in_query else {}

    def link(*, closed: bool = show_closed, page: int = 1) -> str:
        query = dict(token)
        if closed:
            query["closed"] = "1"
        if page > 1:
            query["page"] = str(page)
        return f"/portal/{customer.slug}" + (f"?{urlencode(query)}" if query else "")

    issue_query = f"?{urlencode(token)}" if token else ""
    return _page_response(
        "portal_board.html",
        customer,
        {"board": board, "link": link, "issue_query": issue_query},
    )


@get("/api/portal/{slug:str}")
async def portal_json(request: Request, rt: Runtime, slug: str) -> Response[Any]:
    """The board as JSON: the customer's issues by status column (`?closed=1`, `?page=`,
    `?per_page=`)."""
    admitted = await _admit(request, rt, slug, html=False)
    if isinstance(admitted, Response):
        return admitted
    customer, _ = admitted
    board = await views.board(
        customer,
        show_closed=_flag(request, "closed"),
        page=_page(request),
        per_page=_per_page(request),
    )
    return Response(board.as_json(), headers=_headers())


async def _issue(
    request: Request, rt: Runtime, slug: str, owner: str, name: str, number: str, html: bool
) -> tuple[views.IssuePage, access.Presented] | Response[Any]:
    admitted = await _admit(request, rt, slug, html)
    if isinstance(admitted, Response):
        return admitted
    customer, who = admitted
    if not number.isdigit() or len(number) > 9:
        return not_found(html)
    found = await views.issue_page(customer, f"{owner}/{name}", int(number))
    if found is None:
        return not_found(html)
    return found, who


@get("/portal/{slug:str}/{owner:str}/{name:str}/{number:str}", include_in_schema=False)
async def portal_issue_page(
    request: Request, rt: Runtime, slug: str, owner: str, name: str, number: str
) -> Response[Any] | Template:
    found = await _issue(request, rt, slug, owner, name, number, html=True)
    if isinstance(found, Response):
        return found
    page, who = found
    query = f"?{urlencode({'token': who.token})}" if who.in_query else ""
    return _page_response(
        "portal_issue.html",
        page.customer,
        {
            "page": page,
            "status_title": views.STATUS_TITLES[page.status],
            "back": f"/portal/{page.customer.slug}{query}",
            # The stream opens with the portal token; without one in the URL there is no link.
            "stream_query": query,
        },
    )


@get("/api/portal/{slug:str}/{owner:str}/{name:str}/{number:str}")
async def portal_issue_json(
    request: Request, rt: Runtime, slug: str, owner: str, name: str, number: str
) -> Response[Any]:
    """One followed issue as JSON, with its public timeline."""
    found = await _issue(request, rt, slug, owner, name, number, html=False)
    if isinstance(found, Response):
        return found
    page, _ = found
    return Response(page.as_json(rt.settings.dispatch_url), headers=_headers())


# --- the operators' API


def _refusal(exc: customers.CustomerError) -> HTTPException:
    if isinstance(exc, customers.UnknownCustomer):
        return NotFoundException(str(exc))
    if isinstance(exc, customers.AmbiguousSlug | customers.DuplicateSlug):
        return HTTPException(status_code=409, detail=str(exc))
    return HTTPException(status_code=422, detail=str(exc))


def _admin(token: ApiToken) -> str:
    """Customers are an operator's business: an `admin` token, and one for every repository (a
    customer follows issues across the installation, which a token limited to some of its
    repositories must not see)."""
    require_scope(token, "admin")
    if token.repositories:
        raise PermissionDeniedException(
            f"customers span every repository of an installation: token {token.name!r} is "
            "limited to some; use an admin token created with --all-repos"
        )
    return token.actor


async def _find(slug: str, installation: int | None) -> Customer:
    try:
        return await customers.find(slug, installation)
    except customers.CustomerError as exc:
        raise _refusal(exc) from None


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise HTTPException(status_code=422, detail=f"`{key}` is required")
        return None
    if not isinstance(value, str):
        raise HTTPException(status_code=422, detail=f"`{key}` must be a string")
    return value


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HTTPException(status_code=422, detail="send a JSON object")
    return data


def _issued(rt: Runtime, customer: Customer, token: str) -> dict[str, Any]:
    return {
        "customer": customer.as_json(),
        "token": token,
        "portal_url": customers.portal_url(rt.settings.dispatch_url, customer.slug, token),
        "note": "the token is shown once: store it now",
    }


_ADMIN = {"token": Provide(api_token)}


@get("/api/customers", dependencies=_ADMIN)
async def list_customers(
    rt: Runtime, token: ApiToken, installation: int | None = None
) -> dict[str, Any]:
    """Every live customer, with its health score."""
    _admin(token)
    now = rt.clock.now()
    found = []
    for customer in await customers.list_all(installation):
        stats = await health.of(customer, now)
        found.append({**customer.as_json(), "health": stats.as_json()})
    return {"customers": found}


@post("/api/customers", dependencies=_ADMIN, status_code=201)
async def create_customer(rt: Runtime, token: ApiToken, data: Any) -> dict[str, Any]:
    """`{"installation_id", "name", "slug"?, "color"?, "logo_url"?}` → the customer and its
    portal token and link, shown this once."""
    actor = _admin(token)
    body = _body(data)
    installation_id = body.get("installation_id")
    if not isinstance(installation_id, int) or isinstance(installation_id, bool):
        raise HTTPException(status_code=422, detail="`installation_id` (a number) is required")
    try:
        customer, secret = await customers.create(
            installation_id,
            _text(body, "name", required=True) or "",
            slug=_text(body, "slug"),
            color=_text(body, "color"),
            logo_url=_text(body, "logo_url"),
            actor=actor,
        )
    except customers.CustomerError as exc:
        raise _refusal(exc) from None
    return _issued(rt, customer, secret)


@get("/api/customers/{slug:str}", dependencies=_ADMIN)
async def get_customer(
    token: ApiToken, slug: str, installation: int | None = None
) -> dict[str, Any]:
    _admin(token)
    return (await _find(slug, installation)).as_json()


@patch("/api/customers/{slug:str}", dependencies=_ADMIN)
async def update_customer(
    token: ApiToken, slug: str, data: Any, installation: int | None = None
) -> dict[str, Any]:
    """Change `name`, `color` or `logo_url` (null removes the logo); the slug stays."""
    actor = _admin(token)
    body = _body(data)
    unknown = set(body) - {"name", "color", "logo_url"}
    if unknown:
        raise HTTPException(
            status_code=422,
            detail=f"cannot change {', '.join(sorted(unknown))}: only name, color and logo_url",
        )
    customer = await _find(slug, installation)
    changes: dict[str, Any] = {"name": _text(body, "name"), "color": _text(body, "color")}
    if "logo_url" in body:
        changes["logo_url"] = _text(body, "logo_url")
    try:
        changed = await customers.update(customer, actor=actor, **changes)
    except customers.CustomerError as exc:
        raise _refusal(exc) from None
    return changed.as_json()


@delete("/api/customers/{slug:str}", dependencies=_ADMIN, status_code=204)
async def delete_customer(token: ApiToken, slug: str, installation: int | None = None) -> None:
    """The portal link stops working at once; the `customer/<slug>` labels stay on the issues."""
    actor = _admin(token)
    customer = await _find(slug, installation)
    try:
        await customers.delete(customer, actor=actor)
    except customers.CustomerError as exc:
        raise _refusal(exc) from None


@post("/api/customers/{slug:str}/token", dependencies=_ADMIN, status_code=201)
async def rotate_customer_token(
    rt: Runtime, token: ApiToken, slug: str, installation: int | None = None
) -> dict[str, Any]:
    """A new portal token (shown once); the old one stops working at once."""
    actor = _admin(token)
    customer = await _find(slug, installation)
    try:
        secret = await customers.rotate_token(customer, actor=actor)
    except customers.CustomerError as exc:
        raise _refusal(exc) from None
    return _issued(rt, customer, secret)


@get("/api/customers/{slug:str}/stats", dependencies=_ADMIN)
async def customer_stats(
    rt: Runtime, token: ApiToken, slug: str, installation: int | None = None
) -> dict[str, Any]:
    """Health of the customer's issues and the 0-100 score (README: "Customers and the
    portal")."""
    _admin(token)
    customer = await _find(slug, installation)
    stats = await health.of(customer, rt.clock.now())
    return {"customer": customer.slug, **stats.as_json()}


routes = [
    portal_page,
    portal_json,
    portal_issue_page,
    portal_issue_json,
    list_customers,
    create_customer,
    get_customer,
    update_customer,
    delete_customer,
    rotate_customer_token,
    customer_stats,
]
