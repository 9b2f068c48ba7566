"""The `api_token` dependency for routes that take `Authorization: Bearer dsp_...`."""

from __future__ import annotations

from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from app.tokens import service
from app.tokens.service import ApiToken


async def api_token(request: Request) -> ApiToken:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise NotAuthorizedException("send an API token as `Authorization: Bearer <token>`")
    token = await service.authenticate(credential.strip())
    if token is None:
        raise NotAuthorizedException("the API token is unknown or revoked")
    return token


def require_repository(token: ApiToken, repository: str) -> None:
    if not token.allows(repository):
        raise PermissionDeniedException(f"this token is not allowed on {repository}")


def require_admin(token: ApiToken) -> None:
    if token.scope != "admin":
        raise PermissionDeniedException("this endpoint needs an admin-scoped token")


def require_scope(token: ApiToken, scope: str) -> None:
    """Refuse (403) a token whose scope does not include `scope`, saying what it would take."""
    if not token.permits(scope):
        raise PermissionDeniedException(
            f"this needs a token with the `{scope}` scope (or a wider one); "
            f"token {token.name!r} has `{token.scope}`"
        )
