"""The fake GitHub answers githubkit the way GitHub does: the shapes parse into githubkit's models,
authentication follows the App/installation mechanics, and faults look like GitHub's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from githubkit import AppAuthStrategy, BaseAuthStrategy, GitHub, UnauthAuthStrategy
from githubkit.exception import GitHubException, RequestFailed, SecondaryRateLimitExceeded
from githubkit.typing import RetryOption
from githubkit_schemas.v2026_03_10.models import ContentFile, WorkflowDispatchResponse

from tests.fakes.github import FakeGitHub

REPO = "octo-org/widgets"
OWNER, NAME = REPO.split("/")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
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
    fake.add_workflow(REPO, "dispatch-agent.yml")
    inputs = {"run_id": "42", "mode": "investigate", "dispatch_url": "http://x"}
    response = await github.rest.actions.async_create_workflow_dispatch(
        OWNER,
        NAME,
        "dispatch-agent.yml",
        data={"ref": "main", "inputs": inputs, "return_run_details": True},
    )
    assert response.status_code == 200
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
    assert run.parsed_data.name == "dispatch-run-42" and run.parsed_data.status == "queued"
    cancel = await github.rest.actions.async_cancel_workflow_run(
        OWNER, NAME, details.workflow_run_id
    )
    assert cancel.status_code == 202
    with pytest.raises(RequestFailed) as twice:
        await github.rest.actions.async_cancel_workflow_run(OWNER, NAME, details.workflow_run_id)
    assert twice.value.response.status_code == 409

    fake.dispatch_supports_run_details = False
    older = await github.rest.actions.async_create_workflow_dispatch(
        OWNER, NAME, "dispatch-agent.yml", data={"ref": "main", "return_run_details": True}
    )
    assert older.status_code == 204


async def test_workflow_dispatch_errors(fake: FakeGitHub, github: GitHub) -> None:
    with pytest.raises(RequestFailed) as missing:
        await github.rest.actions.async_create_workflow_dispatch(
            OWNER, NAME, "dispatch-agent.yml", data={"ref": "main"}
        )
    assert missing.value.response.status_code == 404
    fake.add_workflow(REPO, "dispatch-agent.yml")
    with pytest.raises(RequestFailed) as typed:
        await github.rest.actions.async_create_workflow_dispatch(
            OWNER, NAME, "dispatch-agent.yml", data={"ref": "main", "inputs": {"run_id": 42}}
        )
    assert typed.value.response.status_code == 422
    assert fake.dispatches(REPO) == []


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
    assert failed.value.response.json()["message"] == "Service Unavailable"


async def test_rate_limit_next_is_a_secondary_rate_limit(
    fake: FakeGitHub, installation: int
) -> None:
    strict = _client(fake, installation, auto_retry=False)
    await strict.rest.repos.async_get(OWNER, NAME)  # fetch the token first
    fake.rate_limit_next(1, retry_after=1)
    with pytest.raises(SecondaryRateLimitExceeded) as limited:
        await strict.rest.repos.async_get(OWNER, NAME)
    assert limited.value.retry_after == timedelta(seconds=1)
    assert limited.value.response.status_code == 403

    fake.rate_limit_next(1, retry_after=1)
    started = time.monotonic()
    patient = _client(fake, installation)
    await patient.rest.repos.async_get(OWNER, NAME)  # githubkit's default retry waits it out
    assert time.monotonic() - started >= 1


async def test_reset_forgets_everything(fake: FakeGitHub, installation: int) -> None:
    fake.add_issue(REPO, "Crash")
    fake.fail_next(3)
    fake.reset()
    assert fake.calls == [] and fake.redeliveries == []
    with pytest.raises(KeyError):
        fake.issue(REPO, 1)


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
