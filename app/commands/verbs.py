"""Every `/dispatch` verb, combined from the verb modules in the order `/dispatch help` lists
groups of equal permission."""

from __future__ import annotations

from app.commands import info, missions, review, similar, watch, work
from app.commands.registry import Registry

VERBS = Registry(
    info.registry,
    similar.registry,
    watch.registry,
    work.registry,
    review.registry,
    missions.registry,
)
