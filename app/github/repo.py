"""A repository's name as a value: owner and name parsed once, compared the way GitHub compares
them (case-insensitively), and quoted when they become part of an API path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

# GitHub's own rules: owners are letters, digits and single hyphens; names add `.` and `_`.
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class InvalidRepo(ValueError):
    """Not an `owner/name` GitHub would accept."""


@dataclass(frozen=True)
class Repo:
    owner: str = field(compare=False)
    name: str = field(compare=False)
    _key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not _OWNER.match(self.owner) or not _NAME.match(self.name) or self.name in (".", ".."):
            raise InvalidRepo(f"{self.owner}/{self.name!s} is not a repository name (owner/name)")
        object.__setattr__(self, "_key", f"{self.owner}/{self.name}".lower())

    @classmethod
    def parse(cls, full_name: str) -> Repo:
        owner, sep, name = full_name.strip().partition("/")
        if not sep:
            raise InvalidRepo(f"{full_name!r} is not owner/name")
        return cls(owner, name)

    @classmethod
    def of(cls, value: Repo | str) -> Repo:
        return value if isinstance(value, Repo) else cls.parse(value)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def key(self) -> str:
        """The lower-case full name: what Dispatch stores and compares."""
        return self._key

    @property
    def api_path(self) -> str:
        """`/repos/{owner}/{name}`, each segment quoted."""
        return f"/repos/{quote(self.owner, safe='')}/{quote(self.name, safe='')}"

    def __str__(self) -> str:
        return self.full_name
