"""M4: a pull request's text cannot move issues it has no business with: closing keywords count
from the repository's own branches or from authors with write permission, at most ten per pull
request; a branch named like a run's claims the run only in the run's repository. M8: an agent
can report as its pull request only one GitHub says comes from the run's branch."""

from __future__ import annotations

import pytest

from app.agents import pull_requests, runs
from tests.agents.loop import AUDIENCE, create_run
from tests.webhooks import for_repo


def opened(repo, number, body, *, head_ref="feature", fork=False, author="alice"):
    installation, repository = repo
    payload = for_repo("pull_request/opened", installation, repository)
    head_repo = (
        {"id": 424242, "full_name": "mallory/widgets", "name": "widgets"}
        if fork
        else {"id": repository["id"], "full_name": repository["full_name"], "name": "widgets"}
    )
    payload["pull_request"].update(
        number=number,
        body=body,
        user={**payload["pull_request"]["user"], "login": author},
        head={**payload["pull_request"]["head"], "ref": head_ref, "repo": head_repo},
    )
    payload["sender"] = {**payload["sender"], "login": author}
    return payload


@pytest.fixture
def issues(github, repo):
    return [github.add_issue(repo[1], f"issue {n}", labels=["status/ready"]) for n in range(12)]


def statuses(github, repo, issues):
    return [
        next(
            (label for label in github.label_names(repo[1], i["number"]) if "status/" in label), ""
        )
        for i in issues
    ]


async def test_a_branch_of_the_repository_moves_the_issue_it_fixes(github, repo, issues, deliver):
    await deliver("pull_request", opened(repo, 500, f"Fixes #{issues[0]['number']}"))

    assert statuses(github, repo, issues)[0] == "status/in-review"


async def test_a_strangers_fork_moves_nothing(github, repo, issues, deliver):
    body = " ".join(f"fixes #{i['number']}" for i in issues)

    await deliver("pull_request", opened(repo, 501, body, fork=True, author="mallory"))

    assert set(statuses(github, repo, issues)) == {"status/ready"}


async def test_a_writers_fork_moves_at_most_ten_issues(github, repo, issues, deliver):
    github.set_permission(repo[1], "wendy", "write")
    body = " ".join(f"fixes #{i['number']}" for i in issues)

    await deliver("pull_request", opened(repo, 502, body, fork=True, author="wendy"))

    assert statuses(github, repo, issues).count("status/in-review") == 10


async def test_a_fork_branch_named_like_a_run_does_not_claim_it(github, repo, issues, deliver):
    run = await create_run(github, repo, state="running", workflow_run_id=880001)

    await deliver(
        "pull_request",
        opened(repo, 503, "", head_ref=f"dispatch/run-{run.id}-x", fork=True, author="mallory"),
    )

    assert (await runs.get(run.id)).pr_number is None
    assert "status/in-review" not in github.label_names(repo[1], run.issue_number)


async def test_an_agent_cannot_report_someone_elses_pull_request(client, oidc, github, repo):
    run = await create_run(github, repo, state="running", workflow_run_id=880002)
    other = github.add_pull(repo[1], "mallory-branch")
    own = github.add_pull(repo[1], f"{pull_requests.run_branch_prefix(run.id)}-fix")
    headers = {
        "authorization": "Bearer "
        + oidc.token(
            AUDIENCE, repository=repo[1]["full_name"], repository_id=repo[1]["id"], run_id=880002
        )
    }

    refused = await client.post(
        f"/api/runs/{run.id}/events",
        json={"type": "pr", "number": other["number"], "url": other["html_url"]},
        headers=headers,
    )
    accepted = await client.post(
        f"/api/runs/{run.id}/events",
        json={"type": "pr", "number": own["number"], "url": own["html_url"]},
        headers=headers,
    )

    assert refused.status_code == 422 and "not from this run's branch" in refused.json()["error"]
    assert accepted.status_code == 202
    assert (await runs.get(run.id)).pr_number == own["number"]


@pytest.mark.parametrize(
    "url",
    [
        "{own}) ![p](https://evil.example/p.png) cc @admin",
        "https://evil.example/octo-org/widgets/pull/{number}",
        "https://github.com/someone/else/pull/{number}",
        "https://github.com/octo-org/widgets/pull/{number}/../../../evil",
    ],
)
async def test_an_agent_cannot_report_an_address_other_than_its_pull_requests(
    client, oidc, github, repo, url
):
    run = await create_run(github, repo, state="running", workflow_run_id=880003)
    own = github.add_pull(repo[1], f"{pull_requests.run_branch_prefix(run.id)}-fix")
    token = oidc.token(
        AUDIENCE, repository=repo[1]["full_name"], repository_id=repo[1]["id"], run_id=880003
    )

    refused = await client.post(
        f"/api/runs/{run.id}/events",
        json={
            "type": "pr",
            "number": own["number"],
            "url": url.format(own=own["html_url"], number=own["number"]),
        },
        headers={"authorization": f"Bearer {token}"},
    )

    assert refused.status_code == 422 and "must be the address" in refused.json()["error"]
    stored = await runs.get(run.id)
    assert (stored.pr_number, stored.pr_url) == (None, None)


async def test_a_pull_request_in_another_repository_from_a_runs_branch_claims_nothing(
    github, repo, issues, deliver
):
    # Another repository the App is installed on (a fork in the same network, say): a pull
    # request opened there from the run's own branch of the run's repository.
    installation, repository = repo
    run = await create_run(github, repo, state="running", workflow_run_id=880004)
    other = github.add_repo(installation, "octo-org/widgets-mirror")
    theirs = [github.add_issue(other, f"other {n}", labels=["status/ready"]) for n in range(14)]
    target = next(i for i in theirs if i["number"] == run.issue_number)
    payload = opened(
        (installation, other), 504, "", head_ref=f"dispatch/run-{run.id}-x", author="mallory"
    )
    payload["pull_request"]["head"]["repo"] = {
        "id": repository["id"],
        "full_name": repository["full_name"],
        "name": "widgets",
    }

    await deliver("pull_request", payload)

    assert (await runs.get(run.id)).pr_number is None
    assert github.label_names(other, target["number"]) == ["status/ready"]
    assert "status/in-review" not in github.label_names(repository, run.issue_number)
