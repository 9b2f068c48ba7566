"""The planning tools that read the repository's files at its default branch: the file tree
(optionally under a prefix) and one file's text, both size-capped.
"""

from __future__ import annotations

from app.github import rest
from app.orchestrator.tool_calls import FileTree, ReadFile, Result, Scope, untrusted

MAX_FILE_CHARS = 20_000
MAX_TREE_ENTRIES = 400


async def _default_branch(scope: Scope) -> str:
    data = await rest.get_repository(scope.client, scope.repository)
    return str(data.get("default_branch") or "main")


async def file_tree(scope: Scope, args: FileTree) -> Result:
    branch = await _default_branch(scope)
    tree = await rest.file_tree(scope.client, scope.repository, branch)
    if tree is None:
        return Result(f"The repository has no files on {branch}.", True)
    prefix = args.prefix.strip("/")
    entries = [
        e for e in tree.entries if not prefix or e.path == prefix or e.path.startswith(prefix + "/")
    ]
    shown = entries[:MAX_TREE_ENTRIES]
    lines = [
        f"{e.path}/" if e.type == "tree" else f"{e.path} ({e.size} bytes)"
        for e in shown
        if e.type in ("tree", "blob")
    ]
    notes = []
    if len(entries) > len(shown):
        notes.append(f"{len(entries) - len(shown)} more entries not shown: narrow the prefix")
    if tree.truncated:
        notes.append("GitHub cut the tree (the repository is very large)")
    head = f"{len(entries)} entries on {branch}" + (f" under {prefix}/" if prefix else "") + ":"
    body = untrusted(scope, "FILE TREE", "\n".join(lines) or "(none)")
    return Result("\n".join([head, body, *notes]))


async def read_file(scope: Scope, args: ReadFile) -> Result:
    path = args.path.strip("/")
    if any(part in ("", ".", "..") for part in path.split("/")):
        return Result(f"{args.path!r} is not a path in the repository.", True)
    branch = await _default_branch(scope)
    found = await rest.file_content(scope.client, scope.repository, path, ref=branch)
    if found is None:
        return Result(f"There is no file {path} on {branch} (directories: use file_tree).", True)
    text = found.text
    if "\x00" in text:
        return Result(f"{path} is a binary file; it is not shown.")
    cut = ""
    if len(text) > MAX_FILE_CHARS:
        cut = f"\n(the file has {len(text)} characters; the first {MAX_FILE_CHARS} shown)"
        text = text[:MAX_FILE_CHARS]
    return Result(f"{path} on {branch}:\n" + untrusted(scope, f"FILE {path}", text) + cut)
