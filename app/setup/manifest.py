"""The App manifest (`app.yml`) with this deployment's URLs filled in, and the code exchange."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from githubkit.exception import RequestError, RequestFailed

from app.github import rest
from app.github.clients import GitHubClients
from app.github.credentials import AppCredentials

_PACKAGED = Path(__file__).resolve().parent.parent / "_manifest" / "app.yml"
_SOURCE = Path(__file__).resolve().parent.parent.parent / "app.yml"
MANIFEST_PATH = _PACKAGED if _PACKAGED.is_file() else _SOURCE


def manifest(dispatch_url: str, name: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST_PATH.read_text())
    data["hook_attributes"]["url"] = f"{dispatch_url}/webhooks/github"
    data["redirect_url"] = f"{dispatch_url}/setup/callback"
    data["setup_url"] = f"{dispatch_url}/setup"
    if name:
        data["name"] = name
    return data


class ManifestConversionFailed(Exception):
    pass


class MalformedCode(ManifestConversionFailed):
    """The callback's code cannot be one GitHub issued; GitHub is not asked about it."""


async def convert(github: GitHubClients, code: str) -> AppCredentials:
    """Trade the one-time code GitHub sends to the redirect URL for the App's credentials."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", code):
        raise MalformedCode("the code is malformed; start again from /setup")
    try:
        data = await rest.convert_manifest(github.anonymous(), code)
    except RequestFailed as exc:
        raise ManifestConversionFailed(
            f"GitHub refused the code ({exc.response.status_code}); it is single-use and "
            "expires after an hour, so start again from /setup"
        ) from None
    except RequestError as exc:
        raise ManifestConversionFailed(
            f"could not reach GitHub at {github.settings.github_api_url} "
            f"({type(exc.__cause__ or exc).__name__}); check GITHUB_API_URL and try again"
        ) from None
    return AppCredentials(
        app_id=int(data["id"]),
        slug=data.get("slug"),
        private_key=data["pem"],
        webhook_secret=data["webhook_secret"],
        client_id=data.get("client_id"),
        client_secret=data.get("client_secret"),
        html_url=data.get("html_url"),
        owner=(data.get("owner") or {}).get("login"),
    )
