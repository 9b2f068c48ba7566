"""Real duplicate issues from public GitHub repositories (tests/search/real_pairs/, see its
README): the issues, the duplicate relations their projects stated, the tuning/reporting split
by repository, and real issue titles to pad each repository's pool to repository scale."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "real_pairs"

# By repository: no repository is in both halves. Nothing is chosen on the reporting half. The
# first four keep their halves; the others were dealt, largest first, to the smaller half
# (real_pairs/README.md).
TUNING = (
    "microsoft/PowerToys",
    "helix-editor/helix",
    "streamlit/streamlit",
    "angular/angular",
    "alacritty/alacritty",
    "astral-sh/ruff",
    "facebook/react",
    "vuejs/core",
    "angular/components",
    "jupyterlab/jupyterlab",
    "oven-sh/bun",
    "sveltejs/kit",
    "flutter/flutter",
    "moby/moby",
    "Lightning-AI/pytorch-lightning",
)
REPORTING = (
    "microsoft/vscode",
    "microsoft/WSL",
    "microsoft/terminal",
    "python/mypy",
    "cli/cli",
    "hashicorp/terraform",
    "microsoft/TypeScript",
    "denoland/deno",
    "zed-industries/zed",
    "pandas-dev/pandas",
    "neovim/neovim",
    "rust-lang/rust",
    "golang/go",
    "vercel/next.js",
    "godotengine/godot",
    "hashicorp/terraform-provider-aws",
    "kubernetes/kubectl",
)


@dataclass(frozen=True)
class RealIssue:
    repo: str
    number: int
    title: str
    body: str


@dataclass
class Repository:
    """One repository's evaluation pool: its issues, and which of them are duplicates of each
    other (`group[i]`: the same number for the members of one duplicate group, -1 for none)."""

    name: str
    issues: list[RealIssue] = field(default_factory=list)
    group: list[int] = field(default_factory=list)

    @property
    def queries(self) -> list[int]:
        """Positions of the issues that have a duplicate in the pool."""
        sizes: dict[int, int] = {}
        for g in self.group:
            if g >= 0:
                sizes[g] = sizes.get(g, 0) + 1
        return [i for i, g in enumerate(self.group) if g >= 0 and sizes[g] > 1]


def _lines(path: Path) -> list[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def relations() -> list[dict[str, object]]:
    return _lines(DATA / "relations.jsonl")


def repositories(names: tuple[str, ...]) -> list[Repository]:
    """The repositories' collected issues with their duplicate groups (issues joined by a stated
    relation, directly or through a common original)."""
    issues = [
        RealIssue(str(r["repo"]), int(str(r["number"])), str(r["title"]), str(r["body"]))
        for r in _lines(DATA / "issues.jsonl")
    ]
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(key: tuple[str, int]) -> tuple[str, int]:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    for relation in relations():
        repo = str(relation["repo"])
        a = find((repo, int(str(relation["duplicate"]))))
        b = find((repo, int(str(relation["original"]))))
        if a != b:
            parent[a] = b
    roots: dict[tuple[str, int], int] = {}
    result = []
    for name in names:
        repository = Repository(name)
        for issue in issues:
            if issue.repo != name:
                continue
            key = (name, issue.number)
            in_relation = key in parent or any(find(k) == key for k in parent)
            repository.issues.append(issue)
            repository.group.append(roots.setdefault(find(key), len(roots)) if in_relation else -1)
        result.append(repository)
    return result


PADDING = DATA / "padding.jsonl.gz"


def padding() -> list[RealIssue]:
    """Real issue titles (no bodies) to grow pools to repository scale, if a padding file is
    present (`padding.jsonl.gz`: `repo`, `number`, `title` per line). None is committed: the
    public export it was built from is not ours to redistribute, so the scale measurement runs
    only where an operator provides one."""
    if not PADDING.exists():
        return []
    return [
        RealIssue(str(r["repo"]), int(str(r["number"])), str(r["title"]), "")
        for r in _lines(PADDING)
    ]


def padded(repository: Repository, pads: list[RealIssue], size: int) -> Repository:
    """The repository's pool grown to `size` issues: first real issues of the same repository,
    then of the others, in a fixed order; issues already in the pool are skipped."""
    have = {(i.repo, i.number) for i in repository.issues}
    own = [p for p in pads if p.repo == repository.name and (p.repo, p.number) not in have]
    others = [p for p in pads if p.repo != repository.name]
    # Interleave the other repositories so that no single one dominates a pool.
    by_repo: dict[str, list[RealIssue]] = {}
    for p in others:
        by_repo.setdefault(p.repo, []).append(p)
    mixed = []
    for rank in range(max((len(v) for v in by_repo.values()), default=0)):
        mixed.extend(v[rank] for v in by_repo.values() if rank < len(v))
    extra = (own + mixed)[: max(0, size - len(repository.issues))]
    return Repository(
        repository.name, repository.issues + extra, repository.group + [-1] * len(extra)
    )
