"""Checks of every installation and repository: the installation can be reached, and each
repository has Dispatch's labels, a valid `.github/dispatch.yml` and the agent workflow as
shipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from githubkit import GitHub

from app.agents import workflow_files
from app.doctor.github_app import missing_grants
from app.doctor.report import Check, fail, github_error, ok, warn
from app.github import rest
from app.issues import repo_config
from app.issues.labels import LABEL_SET
from app.modes import Mode
from app.runtime import Runtime
from app.setup import manifest

Progress = Callable[[int, int, str], None]


class _Repository(NamedTuple):
    installation_id: int
    data: dict[str, Any]


async def installations(
    rt: Runtime, app: dict[str, Any], progress: Progress | None = None
) -> list[Check]:
    area = "installation"
    try:
        found = await rest.app_installations(rt.github.app())
    except Exception as exc:
        return [fail(area, "list", f"GET /app/installations failed: {github_error(exc)}", "retry")]
    if not found:
        return [
            warn(
                area,
                "list",
                "the App is installed nowhere",
                f"install it from {rt.settings.github_web_url}/apps/{app.get('slug')}",
            )
        ]
    wanted = manifest.manifest(rt.settings.dispatch_url)
    checks: list[Check] = []
    repositories: list[_Repository] = []
    for installation in found:
        account = (installation.get("account") or {}).get("login") or installation["id"]
        name = f"{account} (installation {installation['id']})"
        if installation.get("suspended_at"):
            checks.append(
                fail(
                    name,
                    "suspended",
                    f"suspended since {installation['suspended_at']}: no token, no events",
                    f"unsuspend it at {installation.get('html_url')}",
                )
            )
            continue
        missing = missing_grants(
            installation.get("permissions") or {}, wanted["default_permissions"]
        )
        if missing:
            checks.append(
                fail(
                    name,
                    "permissions",
                    f"not granted yet: {', '.join(missing)}",
                    f"an owner of {account} accepts the App's new permissions at "
                    f"{installation.get('html_url')}",
                )
            )
        try:
            reachable = await rest.installation_repositories(
                rt.github.installation(int(installation["id"]))
            )
        except Exception as exc:
            checks.append(
                fail(
                    name,
                    "token",
                    f"no installation token: {github_error(exc)}",
                    f"check the installation at {installation.get('html_url')}",
                )
            )
            continue
        checks.append(ok(name, "token", f"{len(reachable)} repositories reachable"))
        repositories += [_Repository(int(installation["id"]), r) for r in reachable]
    for index, repository in enumerate(repositories, start=1):
        if progress is not None:
            progress(index, len(repositories), repository.data["full_name"])
        checks += await repository_checks(rt, repository.installation_id, repository.data)
    return checks


async def repository_checks(
    rt: Runtime, installation_id: int, repository: dict[str, Any]
) -> list[Check]:
    """Labels, `.github/dispatch.yml` and the agent workflow of one repository. A healthy one is
    one ✓ line; otherwise each finding on its own."""
    name = repository["full_name"]
    client = rt.github.installation(installation_id)
    try:
        findings = [
            await _labels(client, name),
            *await _config_and_workflows(rt, client, repository),
        ]
    except Exception as exc:
        return [fail(name, "repository", f"could not be read: {github_error(exc)}", "retry")]
    problems = [check for check in findings if check.status.value != "ok"]
    if problems:
        return problems
    return [ok(name, "repository", "; ".join(check.detail for check in findings))]


async def _labels(client: GitHub, repository: str) -> Check:
    present = {label["name"].lower() for label in await rest.repo_labels(client, repository)}
    missing = [spec.name for spec in LABEL_SET if spec.name.lower() not in present]
    if missing:
        shown = ", ".join(missing[:6]) + (" …" if len(missing) > 6 else "")
        return warn(
            repository,
            "labels",
            f"{len(missing)} of Dispatch's labels missing: {shown}",
            f"`dispatch sync --repo {repository}` creates them",
        )
    return ok(repository, "labels", "labels present")


async def _config_and_workflows(
    rt: Runtime, client: GitHub, repository: dict[str, Any]
) -> list[Check]:
    name = repository["full_name"]
    found = await rest.file_content(client, name, repo_config.CONFIG_PATH)
    checks = []
    config = repo_config.RepoConfig()
    if found is None:
        checks.append(ok(name, "config", f"no {repo_config.CONFIG_PATH} (defaults)"))
    else:
        try:
            config = repo_config.parse(found.text)
            checks.append(ok(name, "config", f"{repo_config.CONFIG_PATH} valid"))
        except ValueError as exc:
            checks.append(
                fail(
                    name,
                    "config",
                    str(exc),
                    f"fix {repo_config.CONFIG_PATH} on the default branch: commands in "
                    f"{name} are paused until it is valid",
                )
            )
    ref = config.workflows.ref or repository.get("default_branch") or "main"
    files = sorted({config.workflows.for_mode(mode.value) for mode in Mode})
    for file in files:
        checks.append(await _workflow(rt, client, name, file, ref))
    return checks


async def _workflow(rt: Runtime, client: GitHub, repository: str, file: str, ref: str) -> Check:
    served = f"{rt.settings.dispatch_url}/agent/dispatch-agent.yml"
    path = f".github/workflows/{file}"
    if file.isdigit():
        return ok(repository, "workflow", f"workflow id {file} (not checked by id)")
    found = await rest.file_content(client, repository, path, ref=ref)
    if found is None:
        return fail(
            repository,
            "workflow",
            f"{path} is missing on {ref}: no agent can run",
            f"copy {served} to {path} on {ref}",
        )
    doc = workflow_files.parse(found.text)
    inputs = workflow_files.dispatch_inputs(doc) if doc is not None else None
    if doc is None or inputs is None:
        return fail(
            repository,
            "workflow",
            f"{path} on {ref} cannot be dispatched (no workflow_dispatch trigger)",
            f"replace it with {served}",
        )
    lacking = [i for i in workflow_files.INPUTS if i not in inputs]
    required = [
        i
        for i, spec in inputs.items()
        if i not in workflow_files.INPUTS and spec.get("required") and "default" not in spec
    ]
    if lacking or required:
        said = []
        if lacking:
            said.append(f"does not take {', '.join(lacking)}")
        if required:
            said.append(f"requires {', '.join(required)}, which Dispatch does not send")
        return fail(
            repository,
            "workflow",
            f"{path} on {ref} {' and '.join(said)}: every dispatch would be refused",
            f"replace it with {served}",
        )
    if found.text == workflow_files.shipped_workflow():
        return ok(repository, "workflow", f"{path} is the shipped version")
    pinned = workflow_files.pinned_reporter(doc)
    serving = workflow_files.reporter_sha256()
    if pinned is not None and pinned != serving:
        return fail(
            repository,
            "workflow",
            f"{path} pins reporter {pinned[:12]}…, this server serves {serving[:12]}…: every "
            "run stops at “Dispatch reporter mismatch”",
            f"copy the workflow of this version from {served} to {path}",
        )
    return warn(
        repository,
        "workflow",
        f"{path} differs from the shipped version",
        f"compare it with {served} (an older copy, or edited by hand)",
    )
