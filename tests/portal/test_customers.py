"""Customers as operators manage them: the service, `dispatch customer …` and the admin API.
Portal tokens are 256 random bits, printed once, stored as SHA-256 only; rotating or deleting
stops the old link at once."""

from __future__ import annotations

import pytest

from app.db import engine
from app.portal import customers
from app.tokens import service as tokens
from tests.harness import dispatch_cli, settings_env


async def test_tokens_are_random_shown_once_and_stored_as_hashes(installed):
    installation, _ = installed
    customer, token = await customers.create(installation, "Acme Corp")

    assert customer.slug == "acme-corp" and customer.color == "#0366d6"
    assert token.startswith("dpt_") and len(token) == 4 + 43  # 32 bytes of base64url: 256 bits
    async with engine.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM customer")
    assert token not in str(dict(row)).replace(row["token_hash"], "")
    assert row["token_hash"] == customers.digest(token)
    assert (await customers.authenticate("acme-corp", customers.digest(token))).id == customer.id
    assert await customers.authenticate("acme", customers.digest(token)) is None
    assert await customers.authenticate("acme-corp", customers.digest(token + "x")) is None


async def test_rotating_and_deleting_stop_the_old_link_at_once(installed):
    installation, _ = installed
    customer, first = await customers.create(installation, "Acme", slug="acme")

    second = await customers.rotate_token(customer)
    assert await customers.authenticate("acme", customers.digest(first)) is None
    assert await customers.authenticate("acme", customers.digest(second)) is not None

    await customers.delete(customer)
    assert await customers.authenticate("acme", customers.digest(second)) is None
    again, _ = await customers.create(installation, "Acme again", slug="acme")
    assert again.id != customer.id  # the slug is free again


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slug": "Acme!"}, "not a valid slug"),
        ({"slug": "-acme"}, "not a valid slug"),
        ({"slug": "a" * 41}, "not a valid slug"),
        ({"color": "red"}, "not a colour"),
        ({"logo_url": "http://example.com/logo.png"}, "not a logo URL"),
        ({"logo_url": "javascript:alert(1)"}, "not a logo URL"),
    ],
)
async def test_bad_values_are_refused_with_what_to_do(installed, changes, message):
    installation, _ = installed
    with pytest.raises(customers.CustomerError, match=message):
        await customers.create(installation, "Acme", **changes)


async def test_slugs_are_unique_per_installation(installed, github):
    installation, _ = installed
    await customers.create(installation, "Acme", slug="acme")
    with pytest.raises(customers.DuplicateSlug):
        await customers.create(installation, "Acme 2", slug="acme")
    with pytest.raises(customers.CustomerError, match="not installed"):
        await customers.create(987654, "Acme", slug="acme")


@pytest.mark.slow
async def test_the_cli_prints_the_link_once_and_lists_health(rt, settings, database, installed):
    installation, _ = installed
    env = settings_env(settings, database)

    code, out, err = await dispatch_cli(
        env, "customer", "create", "--installation", str(installation), "--name", "Acme Corp",
        "--slug", "acme", "--color", "#D73A4A", "--logo", "https://cdn.acme.example/logo.png",
    )  # fmt: skip
    assert code == 0, err
    link = out.strip()
    assert link.startswith("http://dispatch.test/portal/acme?token=dpt_")
    token = link.split("token=")[1]
    assert "not shown again" in err and "customer/acme" in err

    code, listing, _ = await dispatch_cli(env, "customer", "list")
    assert code == 0 and "acme" in listing and "Acme Corp" in listing and token not in listing
    assert "score" in listing and " 100 " in listing

    code, rotated, _ = await dispatch_cli(env, "customer", "rotate-token", "acme")
    assert code == 0 and rotated.strip() != link and "/portal/acme?token=dpt_" in rotated
    assert await customers.authenticate("acme", customers.digest(token)) is None

    code, _, err = await dispatch_cli(env, "customer", "create", "--installation", str(installation),
                                  "--name", "Acme", "--slug", "acme")  # fmt: skip
    assert code == 1 and "already has a customer 'acme'" in err
    code, _, err = await dispatch_cli(env, "customer", "rotate-token", "nobody")
    assert code == 1 and "no customer 'nobody'" in err

    code, out, _ = await dispatch_cli(env, "customer", "delete", "acme")
    assert code == 0 and "deleted customer acme" in out
    code, listing, _ = await dispatch_cli(env, "customer", "list")
    assert "no customers" in listing


async def test_the_api_is_for_admin_tokens_only(client, installed):
    installation, _ = installed
    admin = await tokens.create("ops", "admin", [])
    created = await client.post(
        "/api/customers",
        json={"installation_id": installation, "name": "Acme"},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert created.status_code == 201, created.text
    routes = [
        ("GET", "/api/customers", None),
        ("POST", "/api/customers", {"installation_id": installation, "name": "Globex"}),
        ("GET", "/api/customers/acme", None),
        ("PATCH", "/api/customers/acme", {"name": "Evil"}),
        ("DELETE", "/api/customers/acme", None),
        ("POST", "/api/customers/acme/token", None),
        ("GET", "/api/customers/acme/stats", None),
    ]
    assert (await client.get("/api/customers")).status_code == 401
    for scope in ("read", "agent", "dispatch"):
        token = await tokens.create(f"not-admin-{scope}", scope, [])
        for method, path, body in routes:
            refused = await client.request(
                method, path, json=body, headers={"authorization": f"Bearer {token}"}
            )
            assert refused.status_code == 403, (scope, method, path)
            assert "admin" in refused.json()["error"]
    # An admin token limited to some repositories would see customers' issues in others.
    limited = await tokens.create("ops-widgets", "admin", ["octo-org/widgets"])
    for method, path, body in routes:
        refused = await client.request(
            method, path, json=body, headers={"authorization": f"Bearer {limited}"}
        )
        assert refused.status_code == 403 and "--all-repos" in refused.json()["error"]
    [customer] = await customers.list_all()
    assert (customer.slug, customer.name) == ("acme", "Acme")


async def test_the_api_manages_customers(client, installed, github):
    installation, _ = installed
    admin = await tokens.create("ops", "admin", [])
    auth = {"authorization": f"Bearer {admin}"}

    created = await client.post(
        "/api/customers",
        json={"installation_id": installation, "name": "Acme Corp", "slug": "acme"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["token"]
    assert body["portal_url"] == f"http://dispatch.test/portal/acme?token={token}"
    assert body["customer"]["label"] == "customer/acme"

    listing = (await client.get("/api/customers", headers=auth)).json()["customers"]
    assert [c["slug"] for c in listing] == ["acme"] and listing[0]["health"]["score"] == 100
    assert token not in str(listing)

    patched = await client.patch(
        "/api/customers/acme",
        json={"name": "Acme Inc", "color": "#00FF00", "logo_url": "https://a.example/l.svg"},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["color"]) == ("Acme Inc", "#00ff00")
    bad = await client.patch("/api/customers/acme", json={"color": "green"}, headers=auth)
    assert bad.status_code == 422 and "#rrggbb" in bad.json()["error"]
    renamed = await client.patch("/api/customers/acme", json={"slug": "x"}, headers=auth)
    assert renamed.status_code == 422
    duplicate = await client.post(
        "/api/customers", json={"installation_id": installation, "name": "Acme"}, headers=auth
    )
    assert duplicate.status_code == 409 and "pick another slug" in duplicate.json()["error"]
    missing = await client.post("/api/customers", json={"name": "Acme"}, headers=auth)
    assert missing.status_code == 422 and "installation_id" in missing.json()["error"]

    rotated = await client.post("/api/customers/acme/token", headers=auth)
    assert rotated.status_code == 201 and rotated.json()["token"] != token
    assert (await client.get(f"/portal/acme?token={token}")).status_code == 404
    assert (await client.get(f"/portal/acme?token={rotated.json()['token']}")).status_code == 200

    stats = await client.get("/api/customers/acme/stats", headers=auth)
    assert stats.status_code == 200
    assert {"open", "critical", "stale", "critical_stale", "unresponded", "last_activity",
            "median_first_response_hours", "score"} <= set(stats.json())  # fmt: skip

    assert (await client.get("/api/customers/nobody", headers=auth)).status_code == 404
    deleted = await client.delete("/api/customers/acme", headers=auth)
    assert deleted.status_code == 204
    assert (await client.get("/api/customers/acme", headers=auth)).status_code == 404
    portal = await client.get(f"/portal/acme?token={rotated.json()['token']}")
    assert portal.status_code == 404


async def test_a_slug_in_two_installations_needs_the_installation(client, installed, github):
    from app.installations import service as installations

    installation, _ = installed
    other = github.add_installation("globex", "Organization")
    await installations.upsert_installation({"id": other, "account": {"login": "globex"}})
    await customers.create(installation, "Acme", slug="acme")
    await customers.create(other, "Acme EU", slug="acme")
    admin = await tokens.create("ops", "admin", [])
    auth = {"authorization": f"Bearer {admin}"}

    ambiguous = await client.get("/api/customers/acme", headers=auth)
    assert ambiguous.status_code == 409 and "name the installation" in ambiguous.json()["error"]
    one = await client.get(f"/api/customers/acme?installation={other}", headers=auth)
    assert one.status_code == 200 and one.json()["name"] == "Acme EU"
