"""M9: what an alert carries cannot break out of the Markdown of the issue Dispatch opens for it:
no mentions, no links outside the configured hosts, no table or fence broken; fields are capped
and so is the number of alerts in one payload."""

from __future__ import annotations

import json
import re

from app.db import engine
from app.remediation import alerts
from tests.harness import drain
from tests.remediation.conftest import TOKEN, installed, settings  # noqa: F401  (fixtures)


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
