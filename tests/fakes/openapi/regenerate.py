"""Regenerate `github-rest-api.json` from GitHub's official REST API description.

    python -m tests.fakes.openapi.regenerate [--version 23.0.2]

`npm pack @octokit/openapi@<version>` into a temporary directory, read
`generated/api.github.com.json` (github/rest-api-description with Octokit's `x-octokit` notes) and
keep only what the fake GitHub needs to check requests and answers:

- the operations the fake implements (the `op=` of every route in `tests/fakes/github.py`), with
  their parameters, request bodies, responses and `externalDocs` link;
- the components they `$ref`, transitively;
- the `x-github-breaking-changes` of those objects, so the checker can derive each API version
  (2022-11-28 is the document as published; 2026-03-10 applies the changes marked with it);
- `x-other-operations`: method, path and operation id of every other operation, so a request to
  an endpoint the fake lacks is told apart from one GitHub does not have.

Prose (`description`, `summary`) and examples are dropped. A parameter described as "(max N)"
gets `maximum: N` in its schema: GitHub documents the limit of `per_page` only in prose.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUTPUT = HERE / "github-rest-api.json"
PACKAGE = "@octokit/openapi"
DEFAULT_PACKAGE_VERSION = "23.0.2"
MEMBER = "package/generated/api.github.com.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keywords of prose and examples; never property names (those live under "properties").
DROPPED = frozenset({"description", "summary", "example", "examples", "x-octokit", "tags"})
KEPT_OPERATION_KEYS = (
    "operationId",
    "externalDocs",
    "parameters",
    "requestBody",
    "responses",
    "x-github-breaking-changes",
)
MAX_IN_PROSE = re.compile(r"\(max (\d+)\)")


def fetch(version: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{version}", "--silent"],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MEMBER)
            assert member is not None, f"{MEMBER} missing from {tarball.name}"
            return json.load(member)


def operations_the_fake_implements() -> set[str]:
    from tests.fakes.github import implemented_operations

    return set(implemented_operations())


def _strip(node: Any, *, names: bool = False) -> Any:
    """Drop prose and examples; `names`: the keys of `node` are property names, keep them all."""
    if isinstance(node, dict):
        kept: dict[str, Any] = {}
        for key, value in node.items():
            if not names and key in DROPPED:
                continue
            if not names and key == "x-github-breaking-changes":
                kept[key] = value  # trimmed later, once the object it patches is final
                continue
            kept[key] = _strip(
                value, names=not names and key in ("properties", "patternProperties")
            )
        return kept
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _limits_from_prose(parameter: dict[str, Any]) -> dict[str, Any]:
    found = MAX_IN_PROSE.search(parameter.get("description", ""))
    if found and parameter.get("schema", {}).get("type") == "integer":
        parameter = copy.deepcopy(parameter)
        parameter["schema"]["maximum"] = int(found.group(1))
    return parameter


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            elif key != "x-github-breaking-changes":
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)


def _applies(target: Any, operation: dict[str, Any]) -> bool:
    """Whether a JSON Patch operation still finds its target after stripping."""
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node = target
    for part in parents:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    if operation["op"] == "add":
        return isinstance(node, dict | list)
    if isinstance(node, list):
        return last.isdigit() and int(last) < len(node)
    return isinstance(node, dict) and last in node


def _trim_breaking_changes(node: Any) -> None:
    """Keep only the patches that still have a target once prose and examples are gone."""
    if isinstance(node, dict):
        changes = node.get("x-github-breaking-changes")
        if changes is not None:
            kept = []
            for change in changes:
                patch = change["patch"]
                if isinstance(patch, list):
                    patch = [op for op in patch if _applies(node, op)]
                    if not patch:
                        continue
                else:
                    patch = _strip_merge_patch(patch, node)
                    if not patch:
                        continue
                kept.append(
                    {"changeset": change["changeset"], "version": change["version"], "patch": patch}
                )
            if kept:
                node["x-github-breaking-changes"] = kept
            else:
                del node["x-github-breaking-changes"]
        for key, value in node.items():
            if key != "x-github-breaking-changes":
                _trim_breaking_changes(value)
    elif isinstance(node, list):
        for item in node:
            _trim_breaking_changes(item)


def _strip_merge_patch(patch: Any, target: Any) -> Any:
    """A JSON Merge Patch (RFC 7386) without the members whose target was stripped."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return patch
    kept = {}
    for key, value in patch.items():
        if key not in target:
            continue  # deleting or patching something stripped (prose, examples)
        if isinstance(value, dict):
            value = _strip_merge_patch(value, target[key])
            if not value:
                continue
        kept[key] = value
    return kept


def trim(document: dict[str, Any], wanted: set[str], package_version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    others: list[list[str]] = []
    seen: set[str] = set()
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            operation_id = operation["operationId"]
            if operation_id not in wanted:
                others.append([method.upper(), path, operation_id])
                continue
            seen.add(operation_id)
            kept = {key: operation[key] for key in KEPT_OPERATION_KEYS if key in operation}
            if "parameters" in kept:
                kept["parameters"] = [
                    _limits_from_prose(p) if "$ref" not in p else p for p in kept["parameters"]
                ]
            paths.setdefault(path, {})[method] = _strip(kept)
    missing = wanted - seen
    if missing:
        raise SystemExit(f"operations not in the description: {sorted(missing)}")

    components: dict[str, dict[str, Any]] = {}
    todo: set[str] = set()
    _refs(paths, todo)
    done: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in done:
            continue
        done.add(ref)
        _, _, kind, name = ref.split("/")
        component = document["components"][kind][name]
        if kind == "parameters":
            component = _limits_from_prose(component)
        component = _strip(component)
        components.setdefault(kind, {})[name] = component
        _refs(component, todo)
    for kind in components:
        components[kind] = dict(sorted(components[kind].items()))

    trimmed = {
        "openapi": document["openapi"],
        "info": {
            "title": "GitHub REST API (trimmed for Dispatch's fake GitHub)",
            "version": document["info"]["version"],
            "x-source": f"npm {PACKAGE}@{package_version}, generated/api.github.com.json",
            "license": {"name": "MIT", "url": "https://spdx.org/licenses/MIT"},
        },
        "paths": dict(sorted(paths.items())),
        "components": dict(sorted(components.items())),
        "x-other-operations": sorted(others, key=lambda row: (row[1], row[0])),
    }
    _trim_breaking_changes(trimmed["paths"])
    _trim_breaking_changes(trimmed["components"])
    return trimmed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_PACKAGE_VERSION, help="of @octokit/openapi")
    args = parser.parse_args()
    trimmed = trim(fetch(args.version), operations_the_fake_implements(), args.version)
    OUTPUT.write_text(json.dumps(trimmed, indent=1, ensure_ascii=False) + "\n")
    print(
        f"{OUTPUT.relative_to(Path.cwd())}: {len(trimmed['paths'])} paths, {OUTPUT.stat().st_size:,} bytes"
    )


if __name__ == "__main__":
    main()
