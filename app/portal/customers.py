"""Customers: a name, a slug (unique among an installation's live customers, and the label
`customer/<slug>` that makes an issue theirs), a brand colour and logo, and a portal token.

Portal tokens are 256 random bits, shown once and stored as their SHA-256 (a hash without
stretching is right for random tokens). Checking one hashes it first, whatever was sent, looks the
hash up, and compares hash and slug in constant time: a wrong token, a rotated one and an unknown
or deleted slug all cost the same query and all end in the same "no"."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from app.audit import log as audit
from app.db import engine
from app.installations import service as installations
from app.issues.labels import CUSTOMER_PREFIX

TOKEN_PREFIX = "dpt_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_COLOR = "#0366d6"
SLUG_FORMAT = (
    "1 to 40 characters: lower-case letters, digits and hyphens, starting and ending with a "
    "letter or digit (e.g. `acme` or `acme-eu`)"
)
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})$")
COLUMNS = (
    "customer.id, customer.installation_id, customer.slug, customer.name, customer.color, "
    "customer.logo_url, customer.token_rotated_at, customer.created_at, customer.updated_at"
)
_COLUMNS = COLUMNS


class CustomerError(ValueError):
    """A request about customers that cannot be done; the message says why."""


class UnknownCustomer(CustomerError):
    pass


class AmbiguousSlug(CustomerError):
    pass


class DuplicateSlug(CustomerError):
    pass


@dataclass(frozen=True)
class Customer:
    id: int
    installation_id: int
    slug: str
    name: str
    color: str
    logo_url: str | None
    token_rotated_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def label(self) -> str:
        return label_for(self.slug)

    def as_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "installation_id": self.installation_id,
            "name": self.name,
            "color": self.color,
            "logo_url": self.logo_url,
            "label": self.label,
            "token_rotated_at": self.token_rotated_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def label_for(slug: str) -> str:
    return f"{CUSTOMER_PREFIX}{slug}"


def is_slug(text: str) -> bool:
    return bool(_SLUG.match(text))


def slugify(name: str) -> str:
    """A slug made from a name: "Acme Corp." → `acme-corp`."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug


def check_slug(slug: str) -> str:
    if not is_slug(slug):
        raise CustomerError(f"{slug!r} is not a valid slug: {SLUG_FORMAT}")
    return slug


def check_color(color: str) -> str:
    match = _COLOR.match(color.strip())
    if match is None:
        raise CustomerError(f"{color!r} is not a colour: use #rrggbb, e.g. {DEFAULT_COLOR}")
    return "#" + match.group(1).lower()


def check_logo(url: str | None) -> str | None:
    """An https:// URL of an image, or None. Shown as `<img src>` on the portal, whose Content
    Security Policy allows images from exactly that origin."""
    if url is None or not url.strip():
        return None
    url = url.strip()
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or len(url) > 500
        or any(c in url for c in " \"'<>\\`")
    ):
        raise CustomerError(f"{url!r} is not a logo URL: use an https:// address of an image")
    return url


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise CustomerError("a customer needs a name of 1 to 100 characters")
    return name


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def portal_url(base_url: str, slug: str, token: str) -> str:
    return f"{base_url}/portal/{slug}?token={token}"


_FIELDS = (
    "id",
    "installation_id",
    "slug",
    "name",
    "color",
    "logo_url",
    "token_rotated_at",
    "created_at",
    "updated_at",
)


def _customer(row: Any) -> Customer:
    return Customer(**{name: row[name] for name in _FIELDS})


async def create(
    installation_id: int,
    name: str,
    *,
    slug: str | None = None,
    color: str | None = None,
    logo_url: str | None = None,
    actor: str = "operator",
) -> tuple[Customer, str]:
    """A new customer and its portal token (returned once, never stored)."""
    name = check_name(name)
    slug = check_slug(slug if slug is not None else slugify(name))
    color = check_color(color) if color else DEFAULT_COLOR
    logo_url = check_logo(logo_url)
    if not await installations.is_installed(installation_id):
        raise CustomerError(f"the App is not installed on installation {installation_id}")
    token = new_token()
    try:
        async with engine.transaction(), engine.connection() as connection:
            row = await connection.fetchrow(
                "INSERT INTO customer (installation_id, slug, name, color, logo_url, token_hash) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
                installation_id,
                slug,
                name,
                color,
                logo_url,
                digest(token),
            )
            customer = _customer(row)
            await _audit(customer, "customer.create", actor, after=customer.as_json())
    except asyncpg.UniqueViolationError:
        raise DuplicateSlug(
            f"installation {installation_id} already has a customer {slug!r}; pick another slug"
        ) from None
    return customer, token


async def list_all(installation_id: int | None = None) -> list[Customer]:
    async with engine.connection() as connection:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM customer WHERE deleted_at IS NULL "
            "AND ($1::bigint IS NULL OR installation_id = $1) ORDER BY slug, installation_id",
            installation_id,
        )
    return [_customer(row) for row in rows]


async def find(slug: str, installation_id: int | None = None) -> Customer:
    """The live customer with this slug (in this installation, when given). Raises
    UnknownCustomer, or AmbiguousSlug when several installations have one."""
    found = [c for c in await list_all(installation_id) if c.slug == slug.lower()]
    if not found:
        where = f" in installation {installation_id}" if installation_id is not None else ""
        raise UnknownCustomer(f"no customer {slug!r}{where}")
    if len(found) > 1:
        ids = ", ".join(str(c.installation_id) for c in found)
        raise AmbiguousSlug(
            f"several installations ({ids}) have a customer {slug!r}: name the installation"
        )
    return found[0]


async def in_installation(installation_id: int, slug: str) -> Customer | None:
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM customer WHERE installation_id = $1 AND slug = $2 "
            "AND deleted_at IS NULL",
            installation_id,
            slug,
        )
    return _customer(row) if row else None


_UNCHANGED: Any = object()


async def update(
    customer: Customer,
    *,
    name: str | None = None,
    color: str | None = None,
    logo_url: str | None = _UNCHANGED,
    actor: str = "operator",
) -> Customer:
    """Change the name, colour or logo (`logo_url=None` removes it). The slug never changes:
    it is the label on the issues."""
    new_name = check_name(name) if name is not None else customer.name
    new_color = check_color(color) if color is not None else customer.color
    new_logo = customer.logo_url if logo_url is _UNCHANGED else check_logo(logo_url)
    async with engine.transaction(), engine.connection() as connection:
        row = await connection.fetchrow(
            "UPDATE customer SET name = $2, color = $3, logo_url = $4, updated_at = now() "
            f"WHERE id = $1 AND deleted_at IS NULL RETURNING {_COLUMNS}",
            customer.id,
            new_name,
            new_color,
            new_logo,
        )
        if row is None:
            raise UnknownCustomer(f"no customer {customer.slug!r}")
        changed = _customer(row)
        await _audit(
            changed, "customer.update", actor, before=customer.as_json(), after=changed.as_json()
        )
    return changed


async def rotate_token(customer: Customer, *, actor: str = "operator") -> str:
    """A new portal token; the old one stops working with this commit."""
    token = new_token()
    async with engine.transaction(), engine.connection() as connection:
        found = await connection.fetchval(
            "UPDATE customer SET token_hash = $2, token_rotated_at = now(), updated_at = now() "
            "WHERE id = $1 AND deleted_at IS NULL RETURNING id",
            customer.id,
            digest(token),
        )
        if found is None:
            raise UnknownCustomer(f"no customer {customer.slug!r}")
        await _audit(customer, "customer.rotate_token", actor)
    return token


async def delete(customer: Customer, *, actor: str = "operator") -> None:
    """Soft delete: the portal answers 404 at once; the slug may be used again."""
    async with engine.transaction(), engine.connection() as connection:
        found = await connection.fetchval(
            "UPDATE customer SET deleted_at = now(), updated_at = now() "
            "WHERE id = $1 AND deleted_at IS NULL RETURNING id",
            customer.id,
        )
        if found is None:
            raise UnknownCustomer(f"no customer {customer.slug!r}")
        await _audit(customer, "customer.delete", actor, before=customer.as_json())


async def authenticate(slug: str, token_hash: str) -> Customer | None:
    """The live customer `slug` whose token hashes to `token_hash`, or None (whatever the
    reason). The caller hashes what it was sent before calling, even when nothing was sent."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS}, token_hash FROM customer "
            "WHERE token_hash = $1 AND deleted_at IS NULL",
            token_hash,
        )
    return verified(row, slug, token_hash)


def verified(row: Any, slug: str, token_hash: str) -> Customer | None:
    """The customer of a row looked up by `token_hash`, if hash and slug match (compared in
    constant time); None for no row or any mismatch."""
    if row is None or row["token_hash"] is None:
        return None
    same_token = hmac.compare_digest(row["token_hash"], token_hash)
    same_slug = hmac.compare_digest(row["slug"].encode(), slug.encode())
    if not (same_token and same_slug):
        return None
    return Customer(**{name: row[name] for name in _FIELDS})


async def by_token(token_hash: str) -> Customer | None:
    """The live customer holding this token (the run viewer asks, knowing no slug)."""
    async with engine.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS}, token_hash FROM customer "
            "WHERE token_hash = $1 AND deleted_at IS NULL",
            token_hash,
        )
    if row is None or not hmac.compare_digest(row["token_hash"], token_hash):
        return None
    data = dict(row)
    data.pop("token_hash")
    return Customer(**data)


async def _audit(
    customer: Customer, action: str, actor: str, *, before: Any = None, after: Any = None
) -> None:
    await audit.record(
        actor=actor,
        action=action,
        target=f"customer/{customer.slug}",
        installation_id=customer.installation_id,
        before=before,
        after=after,
    )
