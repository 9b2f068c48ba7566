"""The portal as a customer meets it over HTTP: their issues in status columns, an issue page with
a public timeline and never a comment, the same 404 for anything wrong, the headers that keep the
link private, JSON twins, and no GitHub call while serving any of it."""

from __future__ import annotations

import asyncio
import re

import pytest

from app.agents import runs
from app.agents.runs import NewRun, Trigger
from app.audit import log as audit
from app.installations import service as installations
from app.issues import repo_config
from app.modes import Mode
from app.portal import activity, customers
from tests.portal.seed import follow
from tests.webhooks import for_repo


def page_of(client, customer, token, *path, **params):
    url = "/".join([f"/portal/{customer.slug}", *path])
    return client.get(url, params={"token": token, **params})


def card_titles(html: str, column: str) -> list[str]:
    section = re.search(rf'<section class="column" id="column-{column}".*?</section>', html, re.S)
    assert section, f"no column {column}"
    return re.findall(r'<li class="card"[^>]*>\s*<a [^>]*>([^<]*)</a>', section.group(0))


async def test_the_board_shows_followed_issues_in_their_status_columns(
    client, github, installed, acme
):
    customer, token = acme
    await follow(github, installed, "Checkout fails", labels=["customer/acme", "status/ready"])
    await follow(github, installed, "Slow search", labels=["customer/acme", "status/in-progress"])
    await follow(github, installed, "No status yet")
    await follow(github, installed, "Old bug", state="closed", labels=["customer/acme"])
    await follow(github, installed, "Someone else's", labels=["customer/globex", "status/ready"])
    await follow(github, installed, "Internal", labels=["status/ready"])

    response = await page_of(client, customer, token)

    assert response.status_code == 200
    html = response.text
    assert "Acme Corp" in html and "#d73a4a" in html
    assert card_titles(html, "ready") == ["Checkout fails"]
    assert card_titles(html, "in-progress") == ["Slow search"]
    assert card_titles(html, "backlog") == ["No status yet"]
    assert card_titles(html, "done") == []
    assert "Someone else" not in html and "Internal" not in html and "Old bug" not in html
    assert f"/portal/acme/octo-org/widgets/1?token={token}" in html

    closed = await page_of(client, customer, token, closed="1")
    assert card_titles(closed.text, "done") == ["Old bug"]
    assert "Hide closed issues" in closed.text


async def test_paging_keeps_the_most_urgent_first(client, github, installed, acme):
    customer, token = acme
    for i in range(5):
        await follow(github, installed, f"issue {i}", labels=["customer/acme", "status/ready"])
    await follow(github, installed, "urgent", labels=["customer/acme", "priority/p0"])

    first = await client.get(f"/api/portal/acme?token={token}&per_page=4")
    second = await client.get(f"/api/portal/acme?token={token}&per_page=4&page=2")

    body = first.json()
    assert (body["total"], body["pages"], body["page"]) == (6, 2, 1)
    titles = [i["title"] for c in body["columns"] for i in c["issues"]]
    assert len(titles) == 4 and "urgent" in titles
    assert {c["title"]: c["count"] for c in body["columns"]}["Ready"] == 5
    later = [i["title"] for c in second.json()["columns"] for i in c["issues"]]
    assert len(later) == 2 and not set(later) & set(titles)


async def test_the_page_links_carry_the_token_and_the_closed_switch(
    client, github, installed, acme
):
    customer, token = acme
    for i in range(53):
        await follow(github, installed, f"issue {i}", labels=["customer/acme", "status/ready"])
    await follow(github, installed, "closed one", state="closed")

    first = (await page_of(client, customer, token)).text
    assert "page 1 of 2" in first and len(card_titles(first, "ready")) == 50
    assert f'href="/portal/acme?token={token}&amp;page=2"' in first
    second = (await page_of(client, customer, token, page="2")).text
    assert len(card_titles(second, "ready")) == 3 and "← newer page" in second
    with_closed = (await page_of(client, customer, token, closed="1", page="2")).text
    assert "page 2 of 2" in with_closed
    assert f'href="/portal/acme?token={token}&amp;closed=1"' in with_closed  # back to page 1
    beyond = await page_of(client, customer, token, page="99")
    assert beyond.status_code == 200 and card_titles(beyond.text, "ready") == []


async def test_the_issue_page_shows_a_public_timeline_and_never_a_comment(
    client, github, installed, acme, deliver
):
    customer, token = acme
    installation, repository = installed
    issue = await follow(
        github,
        installed,
        "Export breaks on big files",
        labels=["customer/acme", "status/in-progress"],
        body="The body mentions our internal host db-7.internal",
    )
    number = issue["number"]
    await audit.record(
        actor="alice",
        action="status.set",
        target=f"octo-org/widgets#{number}",
        repository="octo-org/widgets",
        issue_number=number,
        after={"status": "status/in-progress"},
    )
    refused = await runs.create(
        NewRun(
            installation,
            "octo-org/widgets",
            repository["id"],
            number,
            Mode.QA,
            Trigger.COMMAND,
            requested_by="alice",
        )
    )
    await runs.update(refused.id, state="refused", refusal="daily budget spent")
    run = await runs.create(
        NewRun(
            installation,
            "octo-org/widgets",
            repository["id"],
            number,
            Mode.INVESTIGATE,
            Trigger.COMMAND,
            requested_by="alice",
        )
    )
    await runs.update(run.id, state="running")
    await activity.record_pull_request(
        repository["id"],
        {number},
        {
            "number": 77,
            "html_url": "https://github.com/octo-org/widgets/pull/77",
            "state": "open",
            "created_at": "2026-12-01T10:00:00Z",
        },
    )
    secret = "SECRET-COMMENT-TEXT: the customer's DB password is hunter2"
    github.add_comment(repository, number, secret, user="alice")
    payload = for_repo("issue_comment/created", installation, repository)
    payload["issue"] = {**payload["issue"], "number": number, "labels": []}
    payload["comment"] = {**payload["comment"], "body": secret}
    await deliver("issue_comment", payload)

    response = await page_of(client, customer, token, "octo-org", "widgets", str(number))

    assert response.status_code == 200, response.text
    html = response.text
    assert "Export breaks on big files" in html
    assert "Status: In progress" in html
    assert "Agent investigation" in html and "running" in html
    assert f'href="/runs/{run.id}?token={token}"' in html
    assert "Pull request #77" in html and "https://github.com/octo-org/widgets/pull/77" in html
    assert "hunter2" not in html and "SECRET-COMMENT" not in html
    assert "Agent qa" not in html and "budget" not in html  # a refused run never started
    assert "db-7.internal" not in html  # no body unless the repository says so

    as_json = await client.get(
        f"/api/portal/acme/octo-org/widgets/{number}",
        headers={"authorization": f"Bearer {token}"},
    )
    assert as_json.status_code == 200
    data = as_json.json()
    assert data["issue"]["title"] == "Export breaks on big files" and data["issue"]["body"] is None
    kinds = [entry["kind"] for entry in data["timeline"]]
    assert {"opened", "status", "run", "pull_request"} <= set(kinds)
    live = next(entry for entry in data["timeline"] if entry["kind"] == "run")
    assert live["stream_url"].endswith(f"/runs/{run.id}") and token not in as_json.text
    assert "hunter2" not in as_json.text


async def test_the_body_shows_only_where_the_repository_allows_and_never_for_alerts(
    client, github, installed, acme, rt
):
    customer, token = acme
    installation, repository = installed
    github.add_file(repository, ".github/dispatch.yml", "portal:\n  show_body: true\n")
    await repo_config.refresh(rt, installation, "octo-org/widgets")
    plain = await follow(github, installed, "Plain", body="Steps: open the export page")
    alert = await follow(
        github,
        installed,
        "[billing/invoices] timeout",
        body="<!-- dispatch:alert:abc123 -->\nstack with customer emails",
    )
    calls = len(github.calls)

    shown = await page_of(client, customer, token, "octo-org", "widgets", str(plain["number"]))
    hidden = await page_of(client, customer, token, "octo-org", "widgets", str(alert["number"]))

    assert "Steps: open the export page" in shown.text
    assert hidden.status_code == 200 and "customer emails" not in hidden.text
    assert len(github.calls) == calls  # the config came from the cache


async def test_everything_wrong_gets_the_same_404(client, github, installed, acme, rt):
    customer, token = acme
    installation, repository = installed
    followed = await follow(github, installed, "Followed")
    other = await follow(github, installed, "Not theirs", labels=["customer/globex"])
    globex, globex_token = await customers.create(installation, "Globex", slug="globex")
    gone, gone_token = await customers.create(installation, "Gone Inc", slug="gone")
    await customers.delete(gone)
    old_customer, old_token = await customers.create(installation, "Initech", slug="initech")
    await customers.rotate_token(old_customer)
    n = followed["number"]

    ok = await client.get(f"/portal/acme?token={token}")
    assert ok.status_code == 200
    wrong = [
        "/portal/acme",
        "/portal/acme?token=",
        "/portal/acme?token=dpt_wrong",
        f"/portal/acme?token={token[:-1]}",
        f"/portal/nobody?token={token}",
        f"/portal/globex?token={token}",
        f"/portal/acme?token={globex_token}",
        f"/portal/gone?token={gone_token}",
        f"/portal/initech?token={old_token}",
        f"/portal/acme/octo-org/widgets/{other['number']}?token={token}",
        f"/portal/acme/octo-org/widgets/999?token={token}",
        f"/portal/acme/octo-org/other/{n}?token={token}",
        f"/portal/acme/octo-org/widgets/x{n}?token={token}",
        f"/portal/acme/octo-org/widgets/{n}?token={globex_token}",
        f"/portal/acme/octo-org/widgets/{n}",
    ]
    pages = [await client.get(url) for url in wrong]
    assert {page.status_code for page in pages} == {404}
    assert len({page.text for page in pages}) == 1
    assert "does not exist" in pages[0].text and "acme" not in pages[0].text.lower()
    apis = [await client.get(url.replace("/portal/", "/api/portal/", 1)) for url in wrong]
    assert {page.status_code for page in apis} == {404}
    assert {page.text for page in apis} == {'{"error":"not found","status":404}'}
    assert (await client.get(f"/portal/acme/octo-org/widgets/{n}?token={token}")).status_code == 200
    # The same through `Authorization: Bearer`.
    for path in ("/portal/acme", f"/api/portal/acme/octo-org/widgets/{n}"):
        for bad in ("dpt_wrong", old_token, gone_token, globex_token):
            answer = await client.get(path, headers={"authorization": f"Bearer {bad}"})
            assert answer.status_code == 404
            assert answer.text in (pages[0].text, '{"error":"not found","status":404}')
        good = await client.get(path, headers={"authorization": f"Bearer {token}"})
        assert good.status_code == 200


async def test_pages_keep_the_link_private(client, github, installed, acme):
    customer, token = acme
    issue = await follow(github, installed, "Followed")
    urls = [
        f"/portal/acme?token={token}",
        f"/portal/acme/octo-org/widgets/{issue['number']}?token={token}",
        f"/api/portal/acme?token={token}",
        "/portal/acme?token=nope",
        "/api/portal/acme?token=nope",
    ]
    for url in urls:
        response = await client.get(url)
        assert response.headers["referrer-policy"] == "no-referrer", url
        assert response.headers["cache-control"] == "no-store", url
        assert response.headers["x-robots-tag"].startswith("noindex"), url
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, url
        assert "script-src" not in policy and "unsafe-inline" not in policy, url
    page = await client.get(urls[0])
    nonce = re.search(r"style-src 'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce and f'<style nonce="{nonce.group(1)}">' in page.text
    assert "<script" not in page.text


async def test_text_is_escaped(client, github, installed, acme):
    customer, token = acme
    await follow(github, installed, '<script>alert("x")</script><img src=x onerror=alert(1)>')

    html = (await page_of(client, customer, token)).text

    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


async def test_the_logo_is_the_only_image_allowed(client, github, installed):
    installation, _ = installed
    customer, token = await customers.create(
        installation, "Initech", slug="initech", logo_url="https://cdn.initech.example/logo.png"
    )

    response = await page_of(client, customer, token)

    assert "img-src https://cdn.initech.example;" in response.headers["content-security-policy"]
    assert 'src="https://cdn.initech.example/logo.png"' in response.text
    assert 'referrerpolicy="no-referrer"' in response.text


async def test_deleted_transferred_and_unlabelled_issues_disappear(
    client, github, installed, acme, deliver
):
    customer, token = acme
    installation, repository = installed
    deleted = await follow(github, installed, "Will be deleted")
    moved = await follow(github, installed, "Will be transferred")
    unlabelled = await follow(github, installed, "Will lose its label")

    gone = for_repo("issues/deleted", installation, repository)
    gone["issue"] = github.issue(repository, deleted["number"])
    await deliver("issues", gone)
    transferred = for_repo("issues/transferred", installation, repository)
    transferred["issue"] = github.issue(repository, moved["number"])
    transferred["changes"] = {}
    await deliver("issues", transferred)
    github.remove_label_from_issue(repository, unlabelled["number"], "customer/acme")
    removed = for_repo("issues/unlabeled", installation, repository)
    removed["issue"] = github.issue(repository, unlabelled["number"])
    removed["label"] = {**removed["label"], "name": "customer/acme"}
    await deliver("issues", removed)

    html = (await page_of(client, customer, token, closed="1")).text
    assert "Will be deleted" not in html and "Will be transferred" not in html
    assert "Will lose its label" not in html
    for issue in (deleted, moved, unlabelled):
        page = await page_of(client, customer, token, "octo-org", "widgets", str(issue["number"]))
        assert page.status_code == 404


async def test_issues_of_repositories_the_app_lost_disappear(client, github, installed, acme):
    customer, token = acme
    installation, repository = installed
    issue = await follow(github, installed, "In a repository soon removed")

    await installations.remove_repositories(installation, [repository])

    assert "soon removed" not in (await page_of(client, customer, token)).text
    page = await page_of(client, customer, token, "octo-org", "widgets", str(issue["number"]))
    assert page.status_code == 404


async def test_a_portal_token_opens_the_streams_of_followed_issues_only(
    client, github, installed, acme
):
    customer, token = acme
    installation, repository = installed
    followed = await follow(github, installed, "Followed")
    other = await follow(github, installed, "Not followed", labels=[])

    def run_on(number: int):
        return runs.create(
            NewRun(
                installation,
                "octo-org/widgets",
                repository["id"],
                number,
                Mode.INVESTIGATE,
                Trigger.COMMAND,
            )
        )

    mine, theirs = await run_on(followed["number"]), await run_on(other["number"])

    page = await client.get(f"/runs/{mine.id}", params={"token": token})
    assert page.status_code == 200 and f"/runs/{mine.id}/stream?token={token}" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-robots-tag"].startswith("noindex")
    async with client.stream("GET", f"/runs/{mine.id}/stream", params={"token": token}) as s:
        assert s.status_code == 200
    assert (await client.get(f"/runs/{theirs.id}", params={"token": token})).status_code == 404
    assert (
        await client.get(f"/runs/{theirs.id}/stream", params={"token": token})
    ).status_code == 404
    new_token = await customers.rotate_token(customer)
    assert (await client.get(f"/runs/{mine.id}", params={"token": token})).status_code == 404
    assert (await client.get(f"/runs/{mine.id}", params={"token": new_token})).status_code == 200
    # When Dispatch closes a run's viewer links (a public repository's run ended), the portal's
    # way in closes with them.
    await runs.update(mine.id, viewer_key=None)
    assert (await client.get(f"/runs/{mine.id}", params={"token": new_token})).status_code == 404
    closed = await client.get(f"/runs/{mine.id}/stream", params={"token": new_token})
    assert closed.status_code == 404


@pytest.mark.timeout(120)
async def test_two_hundred_concurrent_views_make_no_github_call(
    client, github, installed, acme, rt
):
    customer, token = acme
    numbers = [
        (await follow(github, installed, f"issue {i}", labels=["customer/acme", "status/ready"]))[
            "number"
        ]
        for i in range(20)
    ]
    before = len(github.calls)

    async def view(i: int):
        if i % 2:
            return await client.get(f"/portal/acme?token={token}")
        number = numbers[i % len(numbers)]
        return await client.get(f"/portal/acme/octo-org/widgets/{number}?token={token}")

    answers = await asyncio.gather(*(view(i) for i in range(200)))

    assert {a.status_code for a in answers} == {200}
    assert len(github.calls) == before


async def test_pull_requests_that_fix_the_issue_join_its_timeline(
    client, github, installed, acme, deliver
):
    customer, token = acme
    installation, repository = installed
    issue = await follow(github, installed, "Export breaks", labels=["customer/acme"])
    number = issue["number"]
    pull = github.add_pull(repository, "fix-export", body=f"Fixes #{number}")

    def event(action: str, **changes) -> dict:
        payload = for_repo(f"pull_request/{action}", installation, repository)
        payload["pull_request"] = {
            **payload["pull_request"],
            "number": pull["number"],
            "body": f"Fixes #{number}",
            "html_url": f"https://github.com/octo-org/widgets/pull/{pull['number']}",
            # A branch of the repository itself: its closing keywords count.
            "head": {**payload["pull_request"]["head"], "ref": "fix-export", "repo": repository},
            "created_at": "2026-12-01T10:00:00Z",
            **changes,
        }
        return payload

    await deliver("pull_request", event("opened", state="open", merged=False))
    opened = await client.get(f"/api/portal/acme/octo-org/widgets/{number}?token={token}")
    [entry] = [e for e in opened.json()["timeline"] if e["kind"] == "pull_request"]
    assert (entry["text"], entry["state"]) == (f"Pull request #{pull['number']}", "open")

    await deliver(
        "pull_request",
        event("closed", state="closed", merged=True, merged_at="2026-12-01T12:00:00Z"),
    )
    merged = await client.get(f"/api/portal/acme/octo-org/widgets/{number}?token={token}")
    [entry] = [e for e in merged.json()["timeline"] if e["kind"] == "pull_request"]
    assert entry["state"] == "merged" and entry["ended_at"].startswith("2026-12-01T12:00")
