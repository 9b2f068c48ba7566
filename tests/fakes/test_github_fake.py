"""The fake GitHub answers githubkit the way GitHub does: the shapes parse into githubkit's models
and match GitHub's response schemas (`check_answers`), authentication follows the
App/installation mechanics and installation permissions, faults look like GitHub's, and a request
GitHub's REST description refuses is reported with its operation and field."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from githubkit import AppAuthStrategy, BaseAuthStrategy, GitHub, UnauthAuthStrategy
from githubkit.exception import (
    GitHubException,
    PrimaryRateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
    SecondaryRateLimitExceeded,
)
from githubkit.typing import RetryOption
from githubkit_schemas.v2026_03_10.models import ContentFile, WorkflowDispatchResponse

from tests.fakes.github import _ROUTES, FakeGitHub, implemented_operations
from tests.fakes.openapi.description import RestDescription
from tests.harness import AGENT_WORKFLOW

pytestmark = pytest.mark.xdist_group("github-fake")

pytest_plugins = ("pytester",)

REPO = "octo-org/widgets"
OWNER, NAME = REPO.split("/")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGitHub]:
    with FakeGitHub(check_answers=True) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGitHub) -> FakeGitHub:
    server.reset()
    return server


@pytest.fixture
def installation(fake: FakeGitHub) -> int:
    installation_id = fake.add_installation("octo-org")
    fake.add_repo(installation_id, REPO)
    return installation_id


def _client(fake: FakeGitHub, installation_id: int | None = None, **options: Any) -> GitHub:
    strategy: BaseAuthStrategy = AppAuthStrategy(str(fake.app_id), fake.private_key_pem)
    if installation_id is not None:
        strategy = AppAuthStrategy(str(fake.app_id), fake.private_key_pem).as_installation(
            installation_id
        )
    return GitHub(
        strategy,
        base_url=fake.url + "/",
        rest_api_validate_body=False,
        http_cache=False,
        **options,
    )


@pytest.fixture
def app(fake: FakeGitHub) -> GitHub:
    return _client(fake)


@pytest.fixture
def github(fake: FakeGitHub, installation: int) -> GitHub:
    return _client(fake, installation, auto_retry=False)


def _quick_retry(exc: GitHubException, retry_count: int) -> RetryOption:
    if retry_count < 3 and isinstance(exc, RequestFailed) and exc.response.status_code >= 500:
        return RetryOption(True, timedelta(milliseconds=10))
    return RetryOption(False)


# ---------------------------------------------------------------------- authentication


async def test_app_jwt_and_installation_token_flow(
    fake: FakeGitHub, app: GitHub, installation: int
) -> None:
    me = (await app.rest.apps.async_get_authenticated()).parsed_data
    assert me is not None and me.slug == "dispatch-test" and me.id == fake.app_id

    installations = (await app.rest.apps.async_list_installations()).parsed_data
    assert [i.id for i in installations] == [installation]
    assert installations[0].account is not None

    token = (await app.rest.apps.async_create_installation_access_token(installation)).parsed_data
    assert token.token.startswith("ghs_") and len(token.token) == 40

    github = _client(fake, installation)
    repos = (await github.rest.apps.async_list_repos_accessible_to_installation()).parsed_data
    assert [r.full_name for r in repos.repositories] == [REPO]

    token_call = fake.calls_to("POST", r"/app/installations/\d+/access_tokens")[-1]
    assert token_call.auth == "app" and token_call.status == 201
    repo_call = fake.calls_to("GET", "/installation/repositories")[-1]
    assert repo_call.auth == "installation" and repo_call.installation_id == installation
    assert repo_call.headers["authorization"].startswith("token ghs_")


async def test_bad_credentials_are_refused_like_github(fake: FakeGitHub, installation: int) -> None:
    stranger = GitHub(
        AppAuthStrategy("999999", fake.private_key_pem),
        base_url=fake.url + "/",
        http_cache=False,
        auto_retry=False,
    )
    with pytest.raises(RequestFailed) as refused:
        await stranger.rest.apps.async_get_authenticated()
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["message"] == "A JSON web token could not be decoded"

    app = _client(fake, auto_retry=False)
    with pytest.raises(RequestFailed) as unknown:
        await app.rest.apps.async_create_installation_access_token(1)
    assert unknown.value.response.status_code == 404

    other = fake.add_installation("someone-else", "User")
    elsewhere = _client(fake, other, auto_retry=False)
    with pytest.raises(RequestFailed) as hidden:
        await elsewhere.rest.repos.async_get(OWNER, NAME)
    assert hidden.value.response.status_code == 404

    fake.revoke_tokens()
    cached = _client(fake, installation, auto_retry=False)
    await cached.rest.repos.async_get(OWNER, NAME)  # a fresh token is minted here
    fake.revoke_tokens()
    with pytest.raises(RequestFailed) as revoked:
        await cached.rest.repos.async_get(OWNER, NAME)
    assert revoked.value.response.json()["message"] == "Bad credentials"


async def test_every_answer_carries_rate_limit_headers_and_unknown_is_a_github_404(
    fake: FakeGitHub, github: GitHub
) -> None:
    with pytest.raises(RequestFailed) as missing:
        await github.arequest("GET", "/repos/octo-org/widgets/no-such-thing")
    response = missing.value.response
    assert response.status_code == 404
    assert response.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404",
    }
    for name in ("limit", "remaining", "reset", "used", "resource"):
        assert f"x-ratelimit-{name}" in response.headers
    assert response.headers["x-github-request-id"]
    assert fake.calls[-1].status == 404
    (violation,) = fake.take_violations()
    assert (violation.operation, violation.location) == ("", "endpoint")
    assert "no operation of GitHub's REST API has this path" in str(violation)


async def test_manifest_code_converts_once(fake: FakeGitHub) -> None:
    anonymous = GitHub(
        UnauthAuthStrategy(), base_url=fake.url + "/", http_cache=False, auto_retry=False
    )
    code = fake.manifest_code()
    response = await anonymous.arequest("POST", f"/app-manifests/{code}/conversions")
    assert response.status_code == 201
    data = response.json()
    assert data["id"] == fake.app_id and data["pem"] == fake.private_key_pem
    assert data["webhook_secret"] == fake.webhook_secret
    assert data["html_url"] == "https://github.com/apps/dispatch-test"
    with pytest.raises(RequestFailed) as again:
        await anonymous.arequest("POST", f"/app-manifests/{code}/conversions")
    assert again.value.response.status_code == 404


# ---------------------------------------------------------------------- issues, labels


async def test_labels_added_and_removed_by_url_encoded_name(
    fake: FakeGitHub, github: GitHub
) -> None:
    fake.add_label(REPO, "status/ready", "0e8a16", "groomed")
    fake.add_issue(REPO, "Crash on save", labels=["status/ready"])

    added = await github.rest.issues.async_add_labels(
        OWNER, NAME, 1, data={"labels": ["status/in-progress"]}
    )
    assert [label.name for label in added.parsed_data] == ["status/ready", "status/in-progress"]
    created = {label["name"]: label for label in fake.repo_labels(REPO)}
    assert created["status/in-progress"]["color"] == "ededed"

    remaining = await github.rest.issues.async_remove_label(OWNER, NAME, 1, "status%2Fready")
    assert [label.name for label in remaining.parsed_data] == ["status/in-progress"]
    assert fake.label_names(REPO, 1) == ["status/in-progress"]
    assert fake.calls_to("DELETE", "/repos/octo-org/widgets/issues/1/labels/status/ready")

    with pytest.raises(RequestFailed) as absent:
        await github.rest.issues.async_remove_label(OWNER, NAME, 1, "status%2Fready")
    assert absent.value.response.json()["message"] == "Label does not exist"

    await github.rest.issues.async_set_labels(OWNER, NAME, 1, data={"labels": ["type/bug"]})
    assert fake.label_names(REPO, 1) == ["type/bug"]
    assert len(fake.calls_to("PUT", "/repos/octo-org/widgets/issues/1/labels")) == 1


async def test_edits_made_on_github_com_are_not_api_calls(fake: FakeGitHub, github: GitHub) -> None:
    repo = fake.add_repo(fake.add_installation("octo-org"), "octo-org/gadgets")
    issue = fake.add_issue(repo, "Crash", labels=["type/bug"])
    fake.add_label_to_issue(repo, issue["number"], "status/ready")
    fake.remove_label_from_issue(repo, issue["number"], "type/bug")
    closed = fake.update_issue(repo, issue["number"], state="closed", title="Crash (Safari)")
    assert [label["name"] for label in closed["labels"]] == ["status/ready"]
    assert closed["closed_at"] is not None
    assert closed["title"] == "Crash (Safari)"
    assert fake.calls == []

    fake.add_issue(REPO, "t", labels=["status/backlog"])
    await github.rest.issues.async_remove_label(OWNER, NAME, 1, "status%2Fbacklog")
    assert fake.calls_to("DELETE", r"/issues/\d+/labels/status%2Fbacklog")
    assert fake.calls_to(None, re.compile(r"/labels/status/backlog$"))
    assert not fake.calls_to("PUT", r"/labels")


async def test_repo_labels_and_duplicate_is_validation_failed(
    fake: FakeGitHub, github: GitHub
) -> None:
    label = await github.rest.issues.async_create_label(
        OWNER, NAME, data={"name": "priority/p1", "color": "b60205", "description": "soon"}
    )
    assert label.status_code == 201 and label.parsed_data.color == "b60205"
    with pytest.raises(RequestFailed) as duplicate:
        await github.rest.issues.async_create_label(OWNER, NAME, data={"name": "Priority/P1"})
    assert duplicate.value.response.status_code == 422
    assert duplicate.value.response.json()["errors"] == [
        {"resource": "Label", "code": "already_exists", "field": "name"}
    ]
    await github.rest.issues.async_update_label(
        OWNER, NAME, "priority%2Fp1", data={"color": "d93f0b"}
    )
    fetched = await github.rest.issues.async_get_label(OWNER, NAME, "priority%2Fp1")
    assert fetched.parsed_data.color == "d93f0b"
    await github.rest.issues.async_delete_label(OWNER, NAME, "priority%2Fp1")
    assert fake.repo_labels(REPO) == []


async def test_issue_create_patch_and_close(fake: FakeGitHub, github: GitHub) -> None:
    with pytest.raises(RequestFailed) as untitled:
        await github.rest.issues.async_create(OWNER, NAME, data={"body": "no title"})
    assert untitled.value.response.status_code == 422
    assert (
        untitled.value.response.json()["message"] == 'Invalid request.\n\n"title" wasn\'t supplied.'
    )
    (violation,) = fake.take_violations()
    assert (violation.operation, violation.location, violation.field) == (
        "issues/create",
        "body",
        "title",
    )

    created = await github.rest.issues.async_create(
        OWNER, NAME, data={"title": "Flaky test", "labels": ["type/bug"]}
    )
    assert created.status_code == 201
    issue = created.parsed_data
    assert issue.user is not None and issue.user.login == "dispatch-test[bot]"

    closed = await github.rest.issues.async_update(
        OWNER, NAME, issue.number, data={"state": "closed", "state_reason": "not_planned"}
    )
    assert closed.parsed_data.state == "closed" and closed.parsed_data.closed_at is not None
    assert fake.issue(REPO, issue.number)["state_reason"] == "not_planned"
    reopened = await github.rest.issues.async_update(
        OWNER, NAME, issue.number, data={"state": "open"}
    )
    assert reopened.parsed_data.closed_at is None


async def test_250_issues_page_with_link_headers_and_filters(
    fake: FakeGitHub, github: GitHub
) -> None:
    for n in range(250):
        labels = ["status/ready"] if n % 5 == 0 else []
        fake.add_issue(REPO, f"Issue {n}", labels=labels, state="closed" if n % 2 else "open")
    fake.add_pull(REPO, "fix/crash", user="bob")

    first = await github.rest.issues.async_list_for_repo(OWNER, NAME, state="all", per_page=100)
    assert len(first.parsed_data) == 100
    link = first.headers["link"]
    assert 'page=2>; rel="next"' in link and 'page=3>; rel="last"' in link

    everything = [
        issue
        async for issue in github.rest.paginate(
            github.rest.issues.async_list_for_repo,
            owner=OWNER,
            repo=NAME,
            state="all",
            per_page=100,
        )
    ]
    assert len(everything) == 251
    assert [i.number for i in everything] == list(range(251, 0, -1))
    assert everything[0].pull_request is not None

    ready_open = await github.rest.issues.async_list_for_repo(
        OWNER, NAME, labels="status/ready", per_page=100
    )
    assert len(ready_open.parsed_data) == 25
    assert all(i.state == "open" for i in ready_open.parsed_data)

    pull = (await github.rest.pulls.async_get(OWNER, NAME, 251)).parsed_data
    assert pull.head.ref == "fix/crash" and pull.user.login == "bob"


# ---------------------------------------------------------------------- comments, reactions


async def test_comment_create_edit_parse(fake: FakeGitHub, github: GitHub) -> None:
    fake.add_issue(REPO, "Crash on save")
    created = await github.rest.issues.async_create_comment(
        OWNER, NAME, 1, data={"body": "<!-- dispatch:run -->queued"}
    )
    assert created.status_code == 201
    comment = created.parsed_data
    assert comment.user is not None
    assert (comment.user.login, comment.user.type) == ("dispatch-test[bot]", "Bot")

    edited = await github.rest.issues.async_update_comment(
        OWNER, NAME, comment.id, data={"body": "<!-- dispatch:run -->running"}
    )
    assert edited.parsed_data.body == "<!-- dispatch:run -->running"
    listed = await github.rest.issues.async_list_comments(OWNER, NAME, 1)
    assert [c.id for c in listed.parsed_data] == [comment.id]
    assert fake.comments(REPO, 1)[0]["body"].endswith("running")
    assert fake.issue(REPO, 1)["comments"] == 1


async def test_reactions_201_then_200_and_bad_content(fake: FakeGitHub, github: GitHub) -> None:
    fake.add_issue(REPO, "Crash on save")
    comment = fake.add_comment(REPO, 1, "/dispatch investigate", user="alice")

    first = await github.rest.reactions.async_create_for_issue_comment(
        OWNER, NAME, comment["id"], data={"content": "eyes"}
    )
    again = await github.rest.reactions.async_create_for_issue_comment(
        OWNER, NAME, comment["id"], data={"content": "eyes"}
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.parsed_data.id == again.parsed_data.id
    await github.rest.reactions.async_create_for_issue_comment(
        OWNER, NAME, comment["id"], data={"content": "rocket"}
    )
    assert fake.reactions(REPO, comment["id"]) == ["eyes", "rocket"]
    assert fake.comment(REPO, comment["id"])["reactions"]["total_count"] == 2

    with pytest.raises(RequestFailed) as bad:
        await github.arequest(
            "POST",
            f"/repos/{REPO}/issues/comments/{comment['id']}/reactions",
            json={"content": "thumbs"},
        )
    assert bad.value.response.status_code == 422
    (violation,) = fake.take_violations()
    assert (violation.operation, violation.field) == (
        "reactions/create-for-issue-comment",
        "content",
    )

    await github.rest.reactions.async_create_for_issue(OWNER, NAME, 1, data={"content": "+1"})
    assert fake.issue_reactions(REPO, 1) == ["+1"]


async def test_permission_levels(fake: FakeGitHub, github: GitHub, installation: int) -> None:
    fake.set_permission(REPO, "mia", "maintain")
    fake.set_permission(REPO, "tom", "triage")
    maintain = (
        await github.rest.repos.async_get_collaborator_permission_level(OWNER, NAME, "mia")
    ).parsed_data
    assert (maintain.permission, maintain.role_name) == ("write", "maintain")
    triage = (
        await github.rest.repos.async_get_collaborator_permission_level(OWNER, NAME, "tom")
    ).parsed_data
    assert (triage.permission, triage.role_name) == ("read", "triage")
    stranger = (
        await github.rest.repos.async_get_collaborator_permission_level(OWNER, NAME, "zed")
    ).parsed_data
    assert stranger.permission == "read"

    fake.add_repo(installation, "octo-org/secret", private=True)
    hidden = (
        await github.rest.repos.async_get_collaborator_permission_level("octo-org", "secret", "zed")
    ).parsed_data
    assert (hidden.permission, hidden.role_name) == ("none", "none")


# ---------------------------------------------------------------------- actions


async def test_workflow_dispatch_returns_run_details(fake: FakeGitHub, github: GitHub) -> None:
    fake.add_workflow(REPO, "dispatch-agent.yml", AGENT_WORKFLOW)
    assert fake.runs(REPO) == []
    inputs = {"run_id": "42", "mode": "investigate", "dispatch_url": "http://x"}
    response = await github.rest.actions.async_create_workflow_dispatch(
        OWNER, NAME, "dispatch-agent.yml", data={"ref": "main", "inputs": inputs}
    )
    assert response.status_code == 200  # API 2026-03-10 always answers with the run
    details = WorkflowDispatchResponse.model_validate(response.json())
    assert details.html_url.endswith(f"/actions/runs/{details.workflow_run_id}")
    assert fake.dispatches(REPO) == [
        {
            "workflow": "dispatch-agent.yml",
            "ref": "main",
            "inputs": inputs,
            "run_id": details.workflow_run_id,
        }
    ]

    run = await github.rest.actions.async_get_workflow_run(OWNER, NAME, details.workflow_run_id)
    # The run is named by the workflow's `run-name: dispatch-run-${{ inputs.run_id }}`.
    assert run.parsed_data.name == "dispatch-run-42" and run.parsed_data.status == "queued"
    cancel = await github.rest.actions.async_cancel_workflow_run(
        OWNER, NAME, details.workflow_run_id
    )
    assert cancel.status_code == 202
    with pytest.raises(RequestFailed) as twice:
        await github.rest.actions.async_cancel_workflow_run(OWNER, NAME, details.workflow_run_id)
    assert twice.value.response.status_code == 409

    # API 2022-11-28 answers 204 unless asked for the run, and knows `return_run_details`.
    path = f"/repos/{REPO}/actions/workflows/dispatch-agent.yml/dispatches"
    old = {"X-GitHub-Api-Version": "2022-11-28"}
    quiet = await github.arequest("POST", path, json={"ref": "main", "inputs": inputs}, headers=old)
    assert quiet.status_code == 204
    asked = {"ref": "main", "inputs": inputs, "return_run_details": True}
    assert (await github.arequest("POST", path, json=asked, headers=old)).status_code == 200
    assert fake.take_violations() == []

    # ... which 2026-03-10 removed: GitHub ignores it, the fake reports it.
    await github.arequest("POST", path, json=asked, headers={"X-GitHub-Api-Version": "2026-03-10"})
    (violation,) = fake.take_violations()
    assert (violation.operation, violation.field) == (
        "actions/create-workflow-dispatch",
        "return_run_details",
    )
    assert "GitHub ignores it" in violation.message

    fake.dispatch_supports_run_details = False
    older = await github.arequest("POST", path, json=asked, headers=old)  # ignored by old servers
    assert older.status_code == 204


async def test_workflow_dispatch_errors(fake: FakeGitHub, github: GitHub) -> None:
    async def dispatch(data: dict[str, Any], workflow: str = "dispatch-agent.yml") -> Any:
        with pytest.raises(RequestFailed) as refused:
            await github.rest.actions.async_create_workflow_dispatch(
                OWNER, NAME, workflow, data=data
            )
        return refused.value.response

    inputs = {"run_id": "42", "mode": "investigate", "dispatch_url": "http://x"}
    assert (await dispatch({"ref": "main", "inputs": inputs})).status_code == 404
    fake.add_workflow(REPO, "dispatch-agent.yml", AGENT_WORKFLOW)

    typed = await dispatch({"ref": "main", "inputs": {**inputs, "run_id": 42}})
    assert typed.status_code == 422
    assert (
        typed.json()["message"]
        == "Invalid request.\n\nFor 'properties/run_id', 42 is not a string."
    )

    unknown_ref = await dispatch({"ref": "no-such-branch", "inputs": inputs})
    assert (unknown_ref.status_code, unknown_ref.json()["message"]) == (
        422,
        "No ref found for: no-such-branch",
    )
    assert unknown_ref.json()["documentation_url"] == (
        "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"
    )

    extra = await dispatch({"ref": "main", "inputs": {**inputs, "issue": "7", "agent": "x"}})
    assert (extra.status_code, extra.json()["message"]) == (
        422,
        'Unexpected inputs provided: ["issue", "agent"]',
    )

    missing = await dispatch({"ref": "main", "inputs": {"run_id": "42", "mode": "qa"}})
    assert missing.json()["message"] == "Required input 'dispatch_url' not provided"

    fake.add_workflow(REPO, "ci.yml", "name: CI\non: [push, pull_request]\njobs: {}\n")
    untriggered = await dispatch({"ref": "main"}, "ci.yml")
    assert untriggered.json()["message"] == "Workflow does not have 'workflow_dispatch' trigger"

    fake.add_workflow(
        REPO,
        "deploy.yml",
        "on:\n  workflow_dispatch:\n    inputs:\n      env:\n        type: choice\n"
        "        options: [staging, production]\n        default: staging\n",
    )
    choice = await dispatch({"ref": "main", "inputs": {"env": "moon"}}, "deploy.yml")
    assert choice.json()["message"] == (
        "Provided value 'moon' for input 'env' not in the list of allowed values"
    )
    fine = await github.rest.actions.async_create_workflow_dispatch(
        OWNER, NAME, "deploy.yml", data={"ref": "refs/heads/main"}
    )
    assert fine.status_code == 200
    assert fake.dispatches(REPO)[-1]["inputs"] == {"env": "staging"}  # the declared default
    assert len(fake.dispatches(REPO)) == 1
    # All of these are valid per the description: GitHub refuses them for the repository's state.
    assert fake.take_violations() == []


# ---------------------------------------------------------------------- contents, compare


async def test_contents_are_base64_with_git_blob_sha(fake: FakeGitHub, github: GitHub) -> None:
    text = "agents:\n  default: claude\n" * 10
    fake.add_file(REPO, ".github/dispatch.yml", text)
    response = await github.rest.repos.async_get_content(OWNER, NAME, ".github/dispatch.yml")
    content = response.parsed_data
    assert isinstance(content, ContentFile)
    raw = content.content
    assert all(len(line) <= 60 for line in raw.splitlines())
    assert base64.b64decode(raw).decode() == text
    data = text.encode()
    assert content.sha == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    with pytest.raises(RequestFailed) as missing:
        await github.rest.repos.async_get_content(OWNER, NAME, ".github/dispatch.yml", ref="dev")
    assert missing.value.response.status_code == 404


async def test_compare_follows_the_pushed_history(fake: FakeGitHub, github: GitHub) -> None:
    base = fake.push_commit(REPO)
    middle = fake.push_commit(REPO)
    head = fake.push_commit(REPO)
    ahead = await github.rest.repos.async_compare_commits(OWNER, NAME, f"{base}...{head}")
    assert (ahead.parsed_data.status, ahead.parsed_data.ahead_by) == ("ahead", 2)
    assert [c.sha for c in ahead.parsed_data.commits] == [middle, head]
    behind = await github.rest.repos.async_compare_commits(OWNER, NAME, f"{head}...{base}")
    assert (behind.parsed_data.status, behind.parsed_data.behind_by) == ("behind", 2)
    same = await github.rest.repos.async_compare_commits(OWNER, NAME, f"{head}...main")
    assert same.parsed_data.status == "identical"
    branch = fake.push_commit(REPO, branch="fix")
    fake.push_commit(REPO)
    forked = await github.rest.repos.async_compare_commits(OWNER, NAME, f"main...{branch}")
    assert forked.parsed_data.status == "diverged"
    with pytest.raises(RequestFailed) as unknown:
        await github.rest.repos.async_compare_commits(OWNER, NAME, f"{base}...{'0' * 40}")
    assert unknown.value.response.status_code == 404


async def test_reviews_their_inline_comments_and_a_pulls_files(
    fake: FakeGitHub, github: GitHub
) -> None:
    pull = fake.add_pull(REPO, "fix-coupons")
    number, head = pull["number"], pull["head"]["sha"]
    asked = fake.add_review(
        REPO,
        number,
        body="Two things.",
        comments=[
            {"path": "src/cart.py", "line": 2, "body": "This drops duplicates."},
            {"path": "src/cart.py", "start_line": 4, "line": 6, "body": "Name this."},
        ],
    )
    fake.add_review(REPO, number, state="APPROVED", user="carol", commit_id="a" * 40)
    fake.set_pull_files(
        REPO,
        number,
        [{"filename": "src/cart.py", "status": "modified", "additions": 3, "deletions": 1}],
    )

    reviews = (await github.rest.pulls.async_list_reviews(OWNER, NAME, number)).parsed_data
    assert [(r.user.login, r.state, r.commit_id) for r in reviews if r.user] == [
        ("bob", "CHANGES_REQUESTED", head),
        ("carol", "APPROVED", "a" * 40),
    ]
    assert reviews[0].body == "Two things." and reviews[0].id == asked["id"]
    comments = (await github.rest.pulls.async_list_review_comments(OWNER, NAME, number)).parsed_data
    assert [(c.path, c.start_line, c.line, c.pull_request_review_id) for c in comments] == [
        ("src/cart.py", None, 2, asked["id"]),
        ("src/cart.py", 4, 6, asked["id"]),
    ]
    files = (await github.rest.pulls.async_list_files(OWNER, NAME, number)).parsed_data
    assert [(f.filename, f.status, f.additions, f.deletions) for f in files] == [
        ("src/cart.py", "modified", 3, 1)
    ]
    # A push to the branch moves the pull request's head; an old review keeps its commit.
    fake.set_branch(REPO, "fix-coupons", "b" * 40)
    moved = (await github.rest.pulls.async_get(OWNER, NAME, number)).parsed_data
    assert moved.head.sha == "b" * 40
    with pytest.raises(RequestFailed) as issue:
        await github.rest.pulls.async_list_reviews(
            OWNER, NAME, fake.add_issue(REPO, "not a PR")["number"]
        )
    assert issue.value.response.status_code == 404


# ---------------------------------------------------------------------- hook deliveries


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    _Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/github", _Receiver.received
    httpd.shutdown()
    httpd.server_close()


async def test_hook_deliveries_page_by_cursor_and_redeliver(
    fake: FakeGitHub, app: GitHub, installation: int, receiver: Any
) -> None:
    target, received = receiver
    for n in range(5):
        fake.add_hook_delivery(
            f"guid-{n}",
            "issues",
            "opened",
            status_code=502,
            installation_id=installation,
            delivered_at=f"2026-01-01T00:0{n}:00Z",
            payload={"action": "opened", "n": n},
        )
    first = await app.rest.apps.async_list_webhook_deliveries(per_page=2)
    assert [d.guid for d in first.parsed_data] == ["guid-4", "guid-3"]
    assert 'rel="next"' in first.headers["link"] and "cursor=" in first.headers["link"]
    everything = [
        d async for d in app.rest.paginate(app.rest.apps.async_list_webhook_deliveries, per_page=2)
    ]
    assert [d.guid for d in everything] == [f"guid-{n}" for n in range(4, -1, -1)]

    detail = await app.rest.apps.async_get_webhook_delivery(everything[-1].id)
    assert detail.parsed_data.guid == "guid-0"
    assert detail.json()["request"]["payload"] == {"action": "opened", "n": 0}

    fake.set_webhook_target(target)
    answer = await app.rest.apps.async_redeliver_webhook_delivery(everything[-1].id)
    assert answer.status_code == 202
    fake.wait_for_deliveries()
    assert fake.redeliveries == [everything[-1].id]
    headers, body = received[0]
    assert json.loads(body) == {"action": "opened", "n": 0}
    assert headers["x-github-event"] == "issues" and headers["x-github-delivery"] == "guid-0"
    expected = hmac.new(fake.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    attempt = fake.deliveries()[0]
    assert (attempt["guid"], attempt["redelivery"], attempt["status_code"]) == ("guid-0", True, 202)


# ---------------------------------------------------------------------- fault injection


async def test_fail_next_is_retried_or_raised(fake: FakeGitHub, installation: int) -> None:
    patient = _client(fake, installation, auto_retry=_quick_retry)
    fake.fail_next(2, status=502)
    repo = await patient.rest.repos.async_get(OWNER, NAME)
    assert repo.parsed_data.full_name == REPO
    statuses = [c.status for c in fake.calls_to("GET", "/repos/octo-org/widgets")]
    assert statuses == [502, 502, 200]

    impatient = _client(fake, installation, auto_retry=False)
    fake.fail_next(1, status=503)
    with pytest.raises(RequestFailed) as failed:
        await impatient.rest.repos.async_get(OWNER, NAME)
    assert failed.value.response.status_code == 503
    assert failed.value.response.json() == {
        "message": "Service Unavailable",
        "documentation_url": "https://docs.github.com/rest",
        "status": "503",
    }


async def test_faults_target_one_endpoint_until_cleared(fake: FakeGitHub, github: GitHub) -> None:
    fake.add_issue(REPO, "Crash on save")
    fake.fail_next(None, status=502, method="POST", path=r"/issues/\d+/comments$")
    with pytest.raises(RequestFailed) as outage:
        await github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "hi"})
    assert outage.value.response.status_code == 502
    # Other endpoints, and other methods on the same path, are not touched.
    assert (await github.rest.issues.async_get(OWNER, NAME, 1)).status_code == 200
    assert (await github.rest.issues.async_list_comments(OWNER, NAME, 1)).status_code == 200
    for _ in range(3):
        with pytest.raises(RequestFailed):
            await github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "hi"})
    assert fake.comments(REPO, 1) == []
    fake.clear_faults()  # GitHub recovers
    created = await github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "hi"})
    assert created.status_code == 201


async def test_rate_limit_next_is_a_secondary_rate_limit(
    fake: FakeGitHub, installation: int
) -> None:
    strict = _client(fake, installation, auto_retry=False)
    await strict.rest.repos.async_get(OWNER, NAME)  # fetch the token first
    fake.rate_limit_next(1, retry_after=1)
    with pytest.raises(SecondaryRateLimitExceeded) as limited:
        await strict.rest.repos.async_get(OWNER, NAME)
    assert limited.value.retry_after == timedelta(seconds=1)
    response = limited.value.response
    assert response.status_code == 403
    assert response.headers["retry-after"] == "1"
    assert response.json()["message"].startswith("You have exceeded a secondary rate limit")

    fake.rate_limit_next(1, retry_after=1, status=429, path="/repos/octo-org/widgets")
    patient = _client(fake, installation)
    await patient.rest.repos.async_get(OWNER, NAME)  # githubkit's default retry waits it out
    answered = fake.calls_to("GET", "/repos/octo-org/widgets$")[-2:]
    assert [c.status for c in answered] == [429, 200]


async def test_exhausted_primary_limit_lifts_at_its_reset_on_the_fakes_clock(
    fake: FakeGitHub, github: GitHub, installation: int
) -> None:
    class Clock:
        offset = timedelta()

        def now(self) -> datetime:
            return datetime.now(UTC) + self.offset

    clock = fake.clock = Clock()
    await github.rest.repos.async_get(OWNER, NAME)  # fetch the token first
    reset = fake.exhaust_primary_limit(reset_in=300, installation_id=installation)
    with pytest.raises(PrimaryRateLimitExceeded) as limited:
        await github.rest.repos.async_get(OWNER, NAME)
    response = limited.value.response
    assert response.status_code == 403
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-reset"] == str(reset)
    assert reset - datetime.now(UTC).timestamp() == pytest.approx(300, abs=2)
    assert "retry-after" not in response.headers
    assert response.json() == {
        "message": f"API rate limit exceeded for installation ID {installation}.",
        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        "status": "403",
    }
    assert 298 <= limited.value.retry_after.total_seconds() <= 301

    clock.offset = timedelta(seconds=301)
    assert (await github.rest.repos.async_get(OWNER, NAME)).status_code == 200

    fake.exhaust_primary_limit(reset_in=60, status=429, method="POST")
    fake.add_issue(REPO, "Crash")
    with pytest.raises(PrimaryRateLimitExceeded) as again:
        await github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "hi"})
    assert again.value.response.status_code == 429
    assert (await github.rest.issues.async_get(OWNER, NAME, 1)).status_code == 200


async def test_timeouts_and_dropped_connections(fake: FakeGitHub, installation: int) -> None:
    fake.add_issue(REPO, "Crash on save")
    hasty = _client(fake, installation, auto_retry=False, timeout=0.5)
    await hasty.rest.repos.async_get(OWNER, NAME)  # fetch the token first

    fake.timeout_next(1, hold=30, method="POST", path="/comments")
    with pytest.raises(RequestTimeout):
        await hasty.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "lost"})
    assert fake.comments(REPO, 1) == []
    assert fake.calls_to("POST", "/comments")[-1].status == 0

    # The comment is posted, only the answer is lost: a blind retry posts it twice.
    fake.timeout_next(1, hold=30, applied=True, path="/comments")
    with pytest.raises(RequestTimeout):
        await hasty.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "posted"})
    assert [c["body"] for c in fake.comments(REPO, 1)] == ["posted"]

    fake.drop_next(1, method="GET")
    with pytest.raises(RequestError) as dropped:
        await hasty.rest.issues.async_get(OWNER, NAME, 1)
    assert not isinstance(dropped.value, RequestTimeout)
    assert "disconnected" in str(dropped.value.__cause__).lower()
    assert (await hasty.rest.issues.async_get(OWNER, NAME, 1)).status_code == 200


async def test_reset_forgets_everything(fake: FakeGitHub, installation: int) -> None:
    fake.add_issue(REPO, "Crash")
    fake.fail_next(3)
    fake.exhaust_primary_limit()
    fake.reset()
    assert fake.calls == [] and fake.redeliveries == []
    with pytest.raises(KeyError):
        fake.issue(REPO, 1)
    fresh = fake.add_installation("octo-org")
    fake.add_repo(fresh, REPO)
    client = _client(fake, fresh)
    assert (await client.rest.repos.async_get(OWNER, NAME)).status_code == 200


# ---------------------------------------------------------------------- GitHub's rules


async def test_missing_installation_permission_is_403_not_accessible(
    fake: FakeGitHub, installation: int
) -> None:
    fake.add_repo(installation, "octo-org/secret", private=True)
    fake.add_issue("octo-org/secret", "Crash")
    fake.add_pull("octo-org/secret", "fix/crash")
    github = _client(fake, installation, auto_retry=False)
    created = await github.rest.issues.async_create_comment(
        "octo-org", "secret", 1, data={"body": "a"}
    )
    assert created.headers["x-accepted-github-permissions"] == "issues=write; pull_requests=write"

    fake.set_installation_permissions(installation, issues="read")
    with pytest.raises(RequestFailed) as refused:
        await github.rest.issues.async_create_comment("octo-org", "secret", 1, data={"body": "b"})
    response = refused.value.response
    assert response.status_code == 403
    assert response.json() == {
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
        "status": "403",
    }
    assert response.headers["x-accepted-github-permissions"] == "issues=write; pull_requests=write"
    # Reading needs only `issues: read`; a pull request is reached through `pull_requests`.
    assert (await github.rest.issues.async_get("octo-org", "secret", 1)).status_code == 200
    on_pull = await github.rest.issues.async_create_comment(
        "octo-org", "secret", 2, data={"body": "c"}
    )
    assert on_pull.status_code == 201

    fake.set_installation_permissions(installation, actions=None, issues=None)
    fake.add_workflow("octo-org/secret", "dispatch-agent.yml", AGENT_WORKFLOW)
    with pytest.raises(RequestFailed) as no_actions:
        await github.rest.actions.async_list_workflow_runs_for_repo("octo-org", "secret")
    assert no_actions.value.response.headers["x-accepted-github-permissions"] == "actions=read"
    with pytest.raises(RequestFailed) as no_issues:
        await github.rest.issues.async_get("octo-org", "secret", 1)
    assert no_issues.value.response.status_code == 403
    # Public resources can be read without the permission.
    fake.add_issue(REPO, "Public crash")
    assert (await github.rest.issues.async_get(OWNER, NAME, 1)).status_code == 200


async def test_deleted_issue_is_410_gone(fake: FakeGitHub, github: GitHub) -> None:
    fake.add_issue(REPO, "Spam")
    fake.add_comment(REPO, 1, "more spam")
    fake.delete_issue(REPO, 1)
    for call in (
        github.rest.issues.async_get(OWNER, NAME, 1),
        github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": "hi"}),
        github.rest.issues.async_add_labels(OWNER, NAME, 1, data={"labels": ["x"]}),
        github.rest.issues.async_update(OWNER, NAME, 1, data={"state": "closed"}),
    ):
        with pytest.raises(RequestFailed) as gone:
            await call
        assert gone.value.response.status_code == 410
        assert gone.value.response.json()["message"] == "This issue was deleted"
    with pytest.raises(RequestFailed) as missing:
        await github.rest.issues.async_get(OWNER, NAME, 2)
    assert missing.value.response.status_code == 404
    assert fake.add_issue(REPO, "Next")["number"] == 2  # numbers are never reused


async def test_bodies_over_65536_characters_are_refused(fake: FakeGitHub, github: GitHub) -> None:
    fake.add_issue(REPO, "Crash")
    longest = "x" * 65536
    created = await github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": longest})
    assert created.status_code == 201

    with pytest.raises(RequestFailed) as comment:
        await github.rest.issues.async_create_comment(OWNER, NAME, 1, data={"body": longest + "!"})
    assert comment.value.response.status_code == 422
    assert comment.value.response.json()["errors"] == [
        {
            "resource": "IssueComment",
            "code": "unprocessable",
            "field": "data",
            "message": "Body is too long (maximum is 65536 characters)",
        }
    ]
    with pytest.raises(RequestFailed) as issue:
        await github.rest.issues.async_create(
            OWNER, NAME, data={"title": "Report", "body": "é" * 65537}
        )
    assert issue.value.response.json()["errors"] == [
        {
            "resource": "Issue",
            "code": "custom",
            "field": "body",
            "message": "body is too long (maximum is 65536 characters)",
        }
    ]
    violations = fake.take_violations()
    assert [(v.operation, v.field) for v in violations] == [
        ("issues/create-comment", "body"),
        ("issues/create", "body"),
    ]
    assert "65,537 characters" in violations[0].message
    assert len(fake.comments(REPO, 1)) == 1


async def test_label_names_over_50_and_descriptions_over_100_characters_are_refused(
    fake: FakeGitHub, github: GitHub
) -> None:
    with pytest.raises(RequestFailed) as named:
        await github.rest.issues.async_create_label(OWNER, NAME, data={"name": "agent/" + "x" * 45})
    assert named.value.response.json()["errors"] == [
        {
            "resource": "Label",
            "code": "custom",
            "field": "name",
            "message": "name is too long (maximum is 50 characters)",
        }
    ]
    with pytest.raises(RequestFailed) as described:
        await github.rest.issues.async_create_label(
            OWNER, NAME, data={"name": "status/ready", "description": "d" * 101}
        )
    assert described.value.response.json()["errors"][0]["message"] == (
        "description is too long (maximum is 100 characters)"
    )
    assert [(v.operation, v.field) for v in fake.take_violations()] == [
        ("issues/create-label", "name"),
        ("issues/create-label", "description"),
    ]
    assert fake.repo_labels(REPO) == []


# ---------------------------------------------------------------------- strictness


async def test_requests_outside_the_description_are_reported_with_operation_and_field(
    fake: FakeGitHub, github: GitHub
) -> None:
    fake.add_issue(REPO, "Crash")
    listed = await github.arequest(
        "GET", f"/repos/{REPO}/issues/1/comments", params={"per_page": 101, "order": "asc"}
    )
    assert listed.status_code == 200  # GitHub caps and ignores; the test still fails
    with pytest.raises(RequestFailed) as typed:
        await github.arequest("POST", f"/repos/{REPO}/issues/1/comments", json={"body": 7})
    assert typed.value.response.json()["message"] == (
        "Invalid request.\n\nFor 'properties/body', 7 is not a string."
    )
    await github.arequest(
        "POST", f"/repos/{REPO}/issues/1/labels", json={"labels": ["a"], "lables": ["b"]}
    )
    with pytest.raises(RequestFailed):
        await github.arequest(
            "GET", f"/repos/{REPO}/issues/comments"
        )  # GitHub has it, the fake not
    with pytest.raises(RequestFailed):
        await github.arequest("PUT", f"/repos/{REPO}/issues/1")

    found = [(v.operation, v.location, v.field) for v in fake.take_violations()]
    assert found == [
        ("issues/list-comments", "query", "per_page"),
        ("issues/list-comments", "query", "order"),
        ("issues/create-comment", "body", "body"),
        ("issues/add-labels", "body", "lables"),
        ("issues/list-comments-for-repo", "endpoint", ""),
        ("", "endpoint", ""),
    ]


async def test_problems_come_back_once_for_the_harness_to_fail_the_test(
    fake: FakeGitHub, github: GitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_issue(REPO, "Crash")
    await github.arequest("GET", f"/repos/{REPO}/issues", params={"per_page": 500})

    def broken(*args: Any) -> Any:
        raise ZeroDivisionError("a bug in the fake")

    monkeypatch.setattr(FakeGitHub, "_issue_json", broken)
    with pytest.raises(RequestFailed) as crashed:
        await github.rest.issues.async_get(OWNER, NAME, 1)
    assert crashed.value.response.status_code == 500
    problems = fake.take_problems()
    assert len(problems) == 2
    assert "[issues/list-for-repo]: query field 'per_page'" in problems[0]
    assert "500 is greater than the maximum of 100" in problems[0]
    assert problems[1].startswith("error inside the fake GitHub: Traceback")
    assert "ZeroDivisionError: a bug in the fake" in problems[1]
    assert fake.take_problems() == []


def test_every_route_is_an_operation_of_githubs_description() -> None:
    description = RestDescription.load()
    samples = {"int": "7", "path": "a/b", None: "x"}

    def sample(match: re.Match[str]) -> str:
        return "main...fix/crash" if match.group(1) == "basehead" else samples[match.group(2)]

    for route in _ROUTES:
        path = re.sub(r"\{(\w+)(?::(int|path))?\}", sample, route.template)
        check = description.check("2026-03-10", route.method, path, [])
        assert check.operation is not None and check.operation.id == route.operation, route
        assert route.pattern.fullmatch(path), route
    assert len(set(implemented_operations())) == len(implemented_operations())
    assert set(implemented_operations()) == description.operation_ids()


def test_the_harness_fails_the_test_that_sent_an_invalid_request(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest("from tests.conftest import pytest_runtest_call, strict_fake_github\n")
    pytester.makepyfile(
        """
        import httpx
        from tests.fakes.github import FakeGitHub

        def test_sends_per_page_500():
            with FakeGitHub() as fake:
                httpx.get(fake.url + "/repos/o/r/issues", params={"per_page": 500})

        def test_sends_nothing():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]issues/list-for-repo[]]: query field 'per_page'*500 is greater than the maximum*",
            "FAILED *::test_sends_per_page_500*",
        ]
    )


def test_a_job_token_writes_only_what_the_job_declared_and_opens_pull_requests(
    fake: FakeGitHub, installation: int
) -> None:
    import httpx

    fake.set_branch(REPO, "main", "a" * 40)
    fake.set_branch(REPO, "dispatch/run-1-x", "b" * 40, {"b" * 40: "a" * 40})
    reader = fake.mint_job_token(installation, {"contents": "read"})
    writer = fake.mint_job_token(installation, {"contents": "write", "pull-requests": "write"})
    assert fake.token_grants(reader) == (installation, {"contents": "read"})

    def post(token: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{fake.url}/repos/{REPO}/pulls", json=body, headers={"authorization": f"token {token}"}
        )

    pull = {"title": "Fix", "head": "octo-org:dispatch/run-1-x", "base": "main", "body": "Fixes #1"}
    assert post(reader, pull).status_code == 403
    created = post(writer, pull)
    assert created.status_code == 201, created.text
    data = created.json()
    assert (data["head"]["ref"], data["head"]["sha"], data["base"]["ref"]) == (
        "dispatch/run-1-x",
        "b" * 40,
        "main",
    )
    assert data["user"]["login"] == "github-actions[bot]" and data["body"] == "Fixes #1"
    again = post(writer, pull)
    assert again.status_code == 422 and "already exists" in again.text
    missing = post(writer, {**pull, "head": "nowhere"})
    assert missing.status_code == 422 and '"field": "head"' in missing.text
    listed = httpx.get(
        f"{fake.url}/repos/{REPO}/pulls",
        params={"head": "octo-org:dispatch/run-1-x"},
        headers={"authorization": f"token {reader}"},
    ).json()
    assert [p["number"] for p in listed] == [data["number"]]
    fake.revoke_token(writer)
    assert fake.token_grants(writer) is None
    assert post(writer, pull).status_code == 401
