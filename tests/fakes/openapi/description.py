"""Requests checked against GitHub's REST API description (the trimmed `github-rest-api.json`).

`RestDescription.load().check(...)` finds the operation a request is for and lists what GitHub's
description says is wrong with it: an unknown path or method, an unknown query parameter or a value
outside its schema (`per_page` over 100), a path parameter of the wrong type, a missing or invalid
JSON body, and body fields the operation does not declare. Each `Violation` names the operation id
and the field.

Two API versions are served, as GitHub does: 2022-11-28 is the document as published and
2026-03-10 applies the `x-github-breaking-changes` marked with that version (the dispatch of a
workflow loses `return_run_details`, issues lose `assignee`, ...).

Bodies are checked twice. Against the schema as published: what fails there GitHub refuses (422
"Invalid request"), and `Check.refusal` carries GitHub's message. Against the same schema with
every object closed (`additionalProperties: false` where the description lists `properties`):
what fails only there GitHub silently ignores, which hides typos (`lables`) and fields a newer API
version removed, so it is a violation too but not refused.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT4

DESCRIPTION_FILE = Path(__file__).with_name("github-rest-api.json")
BASE_VERSION = "2022-11-28"
VERSIONS = (BASE_VERSION, "2026-03-10")
_OPEN, _CLOSED = "urn:github-rest:open", "urn:github-rest:closed"
# Path parameters that may span several segments when they end the path (file paths, branch
# names with slashes).
_MULTI_SEGMENT = frozenset({"path", "basehead", "head", "ref"})
_PARAM = re.compile(r"\{([^}/]+)\}")
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class Violation:
    """One thing GitHub's description says is wrong with a request the fake received."""

    method: str
    path: str
    operation: str
    location: str  # "endpoint" | "path" | "query" | "body"
    field: str
    message: str

    def __str__(self) -> str:
        operation = self.operation or "no operation"
        where = f"{self.location} field {self.field!r}" if self.field else self.location
        return f"{self.method} {self.path} [{operation}]: {where}: {self.message}"


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    template: str
    docs_url: str
    # False: GitHub has the operation but the trimmed description (and so the fake) does not.
    described: bool = True


@dataclass
class Check:
    operation: Operation | None
    violations: list[Violation] = field(default_factory=list)
    # GitHub's answer to a body its schema refuses: (status, message).
    refusal: tuple[int, str] | None = None


_NO_BODY = object()


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _pointer(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


# ------------------------------------------------------------------------------ versions


def _apply_json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    for operation in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        *parents, last = parts
        node = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = operation["op"]
        if kind == "remove":
            del node[int(last) if isinstance(node, list) else last]
        elif kind in ("add", "replace"):
            if isinstance(node, list):
                index = len(node) if last == "-" else int(last)
                if kind == "add":
                    node.insert(index, operation["value"])
                else:
                    node[index] = operation["value"]
            else:
                node[last] = operation["value"]
        else:
            raise ValueError(f"unsupported JSON Patch operation {kind!r}")
    return target


def _apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _apply_merge_patch(target.get(key), value)
    return target


def _at_version(node: Any, version: str) -> Any:
    """`node` as API `version` has it: breaking changes up to that version applied, then dropped."""
    if isinstance(node, list):
        return [_at_version(item, version) for item in node]
    if not isinstance(node, dict):
        return node
    changes = node.get("x-github-breaking-changes", [])
    result = {
        k: _at_version(v, version) for k, v in node.items() if k != "x-github-breaking-changes"
    }
    for change in changes:
        if change["version"] > version:
            continue
        patch = change["patch"]
        if isinstance(patch, list):
            result = _apply_json_patch(result, copy.deepcopy(patch))
        else:
            result = _apply_merge_patch(result, copy.deepcopy(patch))
    return result


# ------------------------------------------------------------------------------ schemas


def _json_schema(node: Any, *, closed: bool) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema draft 4: `nullable` becomes a "null" type;
    `closed` adds `additionalProperties: false` to objects that list their properties."""
    if isinstance(node, list):
        return [_json_schema(item, closed=closed) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            result[key] = {name: _json_schema(v, closed=closed) for name, v in value.items()}
        else:
            result[key] = _json_schema(value, closed=closed)
    if closed and isinstance(result.get("properties"), dict):
        result.setdefault("additionalProperties", False)
    if result.pop("nullable", False) is True:
        if isinstance(result.get("type"), str):
            result["type"] = [result["type"], "null"]
            if "enum" in result:
                result["enum"] = [*result["enum"], None]
        elif "$ref" in result or "oneOf" in result or "anyOf" in result or "allOf" in result:
            return {"anyOf": [result, {"type": "null"}]}
    return result


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_datetime)


def _describe(error: ValidationError) -> tuple[str, str]:
    """(field, message) of a schema error, the message in GitHub's "Invalid request" words."""
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = [n for n in error.validator_value if n not in (error.instance or {})]
        name = ".".join(filter(None, [path, missing[0] if missing else ""]))
        return name, f'"{missing[0] if missing else path}" wasn\'t supplied.'
    if error.validator == "additionalProperties":
        allowed = set((error.schema or {}).get("properties", {}))
        extra = sorted(set(error.instance or {}) - allowed)
        name = ".".join(filter(None, [path, extra[0] if extra else ""]))
        return name, f"not a field of this operation ({', '.join(sorted(allowed)) or 'none'})"
    if error.validator == "type":
        shown = _short(json.dumps(error.instance))
        kinds = error.validator_value
        kind = " or ".join(kinds) if isinstance(kinds, list) else kinds
        return path, f"For 'properties/{path or 'body'}', {shown} is not {_article(kind)}."
    return path, _short(error.message)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _best(errors: Iterable[ValidationError]) -> ValidationError | None:
    return best_match(errors)


# ------------------------------------------------------------------------------ routes


@dataclass(frozen=True)
class _Route:
    operation: Operation
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    specificity: tuple[int, int, int]


def _compile(method: str, template: str, operation: Operation) -> _Route:
    """A path template as a regex; more literal segments (then characters) win a tie, so
    `/issues/comments` is not read as issue number "comments" and `{base}...{head}` beats
    `{basehead}`."""
    regex, names, literal, characters = "", [], 0, 0
    segments = template.split("/")
    for index, segment in enumerate(segments):
        if index:
            regex += "/"
        position = 0
        for match in _PARAM.finditer(segment):
            regex += re.escape(segment[position : match.start()])
            characters += match.start() - position
            name = match.group(1)
            last = index == len(segments) - 1 and match.end() == len(segment)
            regex += "(.+)" if last and name in _MULTI_SEGMENT else "([^/]+)"
            names.append(name)
            position = match.end()
        regex += re.escape(segment[position:])
        if _PARAM.search(segment):
            characters += len(segment) - position
        else:
            literal += 1
    return _Route(operation, re.compile(regex), tuple(names), (literal, characters, -len(names)))


class _View:
    """The description at one API version, compiled for checking."""

    def __init__(self, document: dict[str, Any], version: str) -> None:
        self.version = version
        patched = _at_version(document, version)
        self.open_doc = _json_schema(patched, closed=False)
        self.closed_doc = _json_schema(patched, closed=True)
        self.registry: Registry = Registry().with_resources(
            [
                (_OPEN, DRAFT4.create_resource(self.open_doc)),
                (_CLOSED, DRAFT4.create_resource(self.closed_doc)),
            ]
        )
        self.routes: dict[str, list[_Route]] = {}
        self.operations: dict[str, Operation] = {}
        self.locations: dict[str, tuple[str, str]] = {}
        for template, item in patched["paths"].items():
            for method, spec in item.items():
                operation = Operation(
                    spec["operationId"],
                    method.upper(),
                    template,
                    spec.get("externalDocs", {}).get("url", "https://docs.github.com/rest"),
                )
                self.operations[operation.id] = operation
                self.locations[operation.id] = (template, method)
                self.routes.setdefault(method.upper(), []).append(
                    _compile(method, template, operation)
                )
        for method, template, operation_id in patched.get("x-other-operations", []):
            operation = Operation(operation_id, method, template, "", described=False)
            self.routes.setdefault(method, []).append(_compile(method, template, operation))
        for routes in self.routes.values():
            routes.sort(key=lambda r: r.specificity, reverse=True)

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            kind_path = node["$ref"].removeprefix("#/").split("/")
            node = self.open_doc
            for part in kind_path:
                node = node[part]
        return node

    def spec(self, operation: Operation) -> dict[str, Any]:
        template, method = self.locations[operation.id]
        return self.open_doc["paths"][template][method]

    def parameters(self, operation: Operation) -> dict[tuple[str, str], dict[str, Any]]:
        found = {}
        for parameter in self.spec(operation).get("parameters", []):
            parameter = self._resolve(parameter)
            found[(parameter["in"], parameter["name"])] = parameter
        return found

    def validator(self, pointer: str, *, closed: bool) -> Draft4Validator:
        return _validator(self, pointer, closed)

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        for candidate in self.routes.get(method, []):
            found = candidate.pattern.fullmatch(raw_path)
            if found:
                return candidate.operation, dict(zip(candidate.names, found.groups(), strict=True))
        return None

    def methods_for(self, raw_path: str) -> list[str]:
        return sorted(
            method
            for method, routes in self.routes.items()
            if any(r.pattern.fullmatch(raw_path) for r in routes)
        )


@functools.lru_cache(maxsize=512)
def _validator(view: _View, pointer: str, closed: bool) -> Draft4Validator:
    base = _CLOSED if closed else _OPEN
    return Draft4Validator(
        {"$ref": f"{base}#{pointer}"}, registry=view.registry, format_checker=_FORMATS
    )


# ------------------------------------------------------------------------------ checking


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    if "number" in kinds and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return float(value)
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value


class RestDescription:
    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self._views: dict[str, _View] = {}

    @classmethod
    @functools.cache
    def load(cls) -> RestDescription:
        return cls(json.loads(DESCRIPTION_FILE.read_text()))

    def view(self, version: str) -> _View:
        if version not in VERSIONS:
            version = BASE_VERSION
        if version not in self._views:
            self._views[version] = _View(self._document, version)
        return self._views[version]

    def operation(self, operation_id: str, version: str = BASE_VERSION) -> Operation:
        return self.view(version).operations[operation_id]

    def operation_ids(self) -> set[str]:
        return set(self.view(BASE_VERSION).operations)

    def check(
        self,
        version: str,
        method: str,
        raw_path: str,
        query: Iterable[tuple[str, str]],
        body: Any = _NO_BODY,
    ) -> Check:
        """What is wrong with a request. `body`: the parsed JSON, omitted when none was sent."""
        view = self.view(version)
        matched = view.match(method, raw_path)
        if matched is None:
            others = view.methods_for(raw_path)
            message = (
                f"GitHub has no {method} on this path (it has {', '.join(others)})"
                if others
                else "no operation of GitHub's REST API has this path"
            )
            return Check(None, [Violation(method, raw_path, "", "endpoint", "", message)])
        operation, path_values = matched
        check = Check(operation)

        def violate(location: str, name: str, message: str) -> None:
            check.violations.append(
                Violation(method, raw_path, operation.id, location, name, message)
            )

        if not operation.described:
            violate(
                "endpoint",
                "",
                f"GitHub has this operation ({operation.template}) but the fake does not "
                "implement it: add a route to tests/fakes/github.py, then run "
                "`python -m tests.fakes.openapi.regenerate`",
            )
            return check
        parameters = view.parameters(operation)
        template, http_method = view.locations[operation.id]
        for name, raw in path_values.items():
            self._check_value(view, check, violate, parameters, "path", name, unquote(raw))
        seen = set()
        for name, value in query:
            seen.add(name)
            if ("query", name) not in parameters:
                known = sorted(n for (where, n) in parameters if where == "query")
                violate(
                    "query",
                    name,
                    f"not a query parameter of this operation ({', '.join(known) or 'none'})",
                )
                continue
            self._check_value(view, check, violate, parameters, "query", name, value)
        for (where, name), parameter in parameters.items():
            if where == "query" and parameter.get("required") and name not in seen:
                violate("query", name, "required query parameter missing")
        self._check_body(view, check, violate, template, http_method, body)
        return check

    def _check_value(self, view, check, violate, parameters, where, name, raw) -> None:  # type: ignore[no-untyped-def]
        parameter = parameters.get((where, name))
        if parameter is None:
            return
        schema = parameter.get("schema", {})
        value = _coerce(raw, view._resolve(schema))
        validator = Draft4Validator(schema, registry=view.registry, format_checker=_FORMATS)
        error = _best(validator.iter_errors(value))
        if error is not None:
            violate(where, name, _short(f"{json.dumps(raw)}: {error.message}"))

    def _check_body(self, view, check, violate, template, method, body) -> None:  # type: ignore[no-untyped-def]
        spec = view.open_doc["paths"][template][method]
        request_body = view._resolve(spec.get("requestBody"))
        if request_body is None:
            if body is not _NO_BODY:
                violate("body", "", "this operation takes no request body (GitHub ignores it)")
            return
        if body is _NO_BODY:
            if request_body.get("required"):
                violate("body", "", "request body missing")
                check.refusal = (
                    422,
                    "Invalid request.\n\nFor 'links/0/schema', nil is not an object.",
                )
            return
        if "application/json" not in request_body.get("content", {}):
            return
        pointer = "/" + "/".join(
            _pointer(part)
            for part in (
                "paths",
                template,
                method,
                "requestBody",
                "content",
                "application/json",
                "schema",
            )
        )
        refused = _best(view.validator(pointer, closed=False).iter_errors(body))
        if refused is not None:
            name, message = _describe(refused)
            violate("body", name, message)
            check.refusal = (422, f"Invalid request.\n\n{message}")
            return
        for error in _iter_closed(view.validator(pointer, closed=True), body):
            name, message = _describe(error)
            violate("body", name, f"{message}; GitHub ignores it")

    def check_answer(self, version: str, operation_id: str, status: int, body: Any) -> list[str]:
        """How a successful answer of the fake differs from what GitHub's description promises
        (errors are not checked: the description lists only some of them)."""
        view = self.view(version)
        if operation_id not in view.operations or not 200 <= status < 300:
            return []
        template, method = view.locations[operation_id]
        responses = view.open_doc["paths"][template][method].get("responses", {})
        if str(status) not in responses:
            listed = ", ".join(code for code in responses if code.startswith("2"))
            return [f"{operation_id}: GitHub answers {listed}, not {status}"]
        response = view._resolve(responses[str(status)])
        if "application/json" not in response.get("content", {}) or body is None:
            return []
        ref = responses[str(status)].get("$ref")
        where = ref.removeprefix("#/").split("/") if ref else ["paths", template, method]
        where += [] if ref else ["responses", str(status)]
        parts = [*where, "content", "application/json", "schema"]
        pointer = "/" + "/".join(_pointer(part) for part in parts)
        problems = []
        for error in view.validator(pointer, closed=False).iter_errors(body):
            where = ".".join(map(str, error.absolute_path))
            if any(
                erratum_operation == operation_id and re.fullmatch(pattern, where)
                for erratum_operation, pattern in _ERRATA
            ):
                continue
            deepest = min(
                [error, *(error.context or [])], key=lambda e: -len(list(e.absolute_path))
            )
            problems.append(
                f"{operation_id} {status} answer, at {where or 'top'}: {_short(deepest.message)}"
            )
        return problems


# Places where GitHub's description contradicts GitHub's own answers; the fake answers like GitHub.
_ERRATA = (
    # The inline schema says `allOf: [Simple User, Enterprise]`, which no account satisfies;
    # the `installation` component says `anyOf`, as GitHub answers.
    ("apps/list-installations", r"[0-9]+\.account"),
)


def _iter_closed(validator: Draft4Validator, body: Any) -> Iterator[ValidationError]:
    """The undeclared fields, one error each (nested in `oneOf` branches as needed)."""
    error = _best(validator.iter_errors(body))
    if error is None:
        return
    if error.validator == "additionalProperties":
        yield error
        return
    # A closed branch of a oneOf fails as a whole; name the field the best branch lacks.
    for sub in sorted(error.context or [], key=lambda e: len(list(e.absolute_path))):
        if sub.validator == "additionalProperties":
            yield sub
            return
    yield error
