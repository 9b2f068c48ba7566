"""M9: what an alert carries cannot break out of the Markdown of the issue Dispatch opens for it:
no mentions, no links outside the configured hosts, no table or fence broken, and a link to a
configured host cannot end early and add Markdown of its own; fields are capped and so is the
number of alerts in one payload."""

from __future__ import annotations

import json
import re

import pytest

from app.db import engine
from app.github import addresses
from app.remediation import alerts
from tests.harness import drain
from tests.remediation.conftest import TOKEN, installed, settings  # noqa: F401  (fixtures)
from tests.security.rendered import assert_renders_harmless


def hostile_alert(n: int = 0) -> dict:
    return {
        "status": "firing",
        "labels": {
            "source": "billing | `x`",
            "feature": "charge` @octo-org/security [x](https://evil.example)",
            "msg": f"boom {n} ```\n@everyone\n``` ![p](https://evil.example/p.png)",
            "severity": "critical | ![i](https://evil.example/i.png) @admin",
        },
        "annotations": {},
        "generatorURL": "https://evil.example/grafana?x=1",
        "dashboardURL": "javascript:alert(1)",
        "panelURL": "https://ops.grafana.net/d/abc",
        "values": {"A": 3},
        "startsAt": "2026-11-30T10:00:00Z",
    }


async def test_hostile_alert_fields_stay_inside_their_cells_and_fences(
    rt,
    client,
    github,
    installed,  # noqa: F811
):
    installation, repository = installed
    body = {"status": "firing", "alerts": [hostile_alert()]}
    response = await client.post(
        "/webhooks/grafana", content=json.dumps(body), headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 202
    await drain(rt)

    async with engine.connection() as connection:
        number = await connection.fetchval("SELECT issue_number FROM alert_error")
    text = github.issue(repository, number)["body"]
    outside_code = re.sub(r"(`+)[^`]*?\1", "", re.sub(r"````.*?````", "", text, flags=re.S))
    assert "@octo-org" not in outside_code and "@admin" not in outside_code
    assert "@everyone" not in outside_code
    assert "](https://evil.example" not in outside_code and "](javascript:" not in text
    assert "[panel](https://ops.grafana.net/d/abc)" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 3 for row in rows)  # two cells each


def test_fields_and_alert_counts_are_capped():
    payload = {
        "alerts": [{**hostile_alert(n), "labels": {"msg": "x" * 100_000}} for n in range(500)]
    }

    found = alerts.from_grafana(payload)

    assert len(found) == alerts.MAX_ALERTS_PER_PAYLOAD
    assert len(found[0].message) == alerts.MAX_MESSAGE


async def test_a_link_on_an_allowed_host_cannot_end_early_and_add_an_image_or_mention(
    rt,
    client,
    github,
    installed,  # noqa: F811
):
    installation, repository = installed
    alert = hostile_alert()
    alert["panelURL"] = (
        "https://ops.grafana.net/d/x)![p](https://evil.example/p.png) cc @admin "
        "[login](https://evil.example/login)"
    )
    alert["dashboardURL"] = "https://ops.grafana.net/d/y> <img src=x>`\\'\"|"
    body = {"status": "firing", "alerts": [alert]}
    response = await client.post(
        "/webhooks/grafana", content=json.dumps(body), headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 202
    await drain(rt)

    async with engine.connection() as connection:
        number = await connection.fetchval("SELECT issue_number FROM alert_error")
    text = github.issue(repository, number)["body"]
    html = assert_renders_harmless(text, allowed_hosts=("grafana.net",))
    # The panel link still goes to the panel, with what followed it kept inside the address.
    assert '<a href="https://ops.grafana.net/d/x%29!%5Bp%5D%28https://evil.example' in html


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/o/r/pull/1) ![p](https://evil.example/p.png)",
        "https://github.com/o/r/pull/1>[x](https://evil.example)",
        'https://github.com/o/r/pull/1"title"',
        "https://github.com/o/r/pull/1'x'",
        "https://github.com/o/r/pull/1\\",
        "https://github.com/o/r/pull/1`code`",
        "https://github.com/o/r/pull/1\n\n[x]: https://evil.example",
        "https://github.com/o/r/pull/1 | x",
    ],
)
def test_safe_link_cannot_end_the_link_it_is_put_in(url):
    safe = addresses.safe_link(url, ["github.com"])

    assert safe is not None and safe.startswith("https://github.com/o/r/pull/1")
    assert not set(safe) & set(" \n\t()<>\"'\\`|[]")
    assert_renders_harmless(f"[pull request]({safe}) and <{safe}>")
    assert_renders_harmless(f"| a |\n|---|\n| [pull request]({safe}) |")


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/x",
        "http://github.com/o/r",
        "https://github.com.evil.example/x",
        "https://evil.example\\@github.com/x",
        "https://user@github.com/x",
        "https://github.com\\.evil.example/x",
        "//github.com/x",
        "javascript:alert(1)//github.com",
        "https://git\nhub.com/x",
    ],
)
def test_safe_link_refuses_other_hosts_and_schemes(url):
    assert addresses.safe_link(url, ["github.com"]) is None
