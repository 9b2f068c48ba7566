"""Bad settings stop start-up with a message that names the variable; no traceback, no secret."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from app.modes import Mode


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"github_app_id": "twelve"}, "GITHUB_APP_ID"),
        ({"dispatch_url": "dispatch.example.com"}, "DISPATCH_URL"),
        ({"github_api_url": "ftp://x"}, "GITHUB_API_URL"),
        ({"dispatch_secret_key": "short"}, "DISPATCH_SECRET_KEY"),
        ({"worker_concurrency": "0"}, "WORKER_CONCURRENCY"),
        ({"log_level": "LOUD"}, "LOG_LEVEL"),
        ({"dispatch_alerts_repo": "just-a-name"}, "DISPATCH_ALERTS_REPO"),
        (
            {"github_app_id": "1", "github_private_key": "not a key", "github_webhook_secret": "s"},
            "GITHUB_PRIVATE_KEY",
        ),
        ({"github_app_id": "1"}, "GITHUB_WEBHOOK_SECRET"),
        ({"github_private_key_path": "/nonexistent/key.pem"}, "GITHUB_PRIVATE_KEY_PATH"),
        # The Secret template's placeholders, and shared secrets too short to be secret.
        ({"github_webhook_secret": "CHANGE-ME"}, "GITHUB_WEBHOOK_SECRET"),
        ({"github_webhook_secret": "change-me-please-soon"}, "GITHUB_WEBHOOK_SECRET"),
        ({"dispatch_secret_key": "CHANGE-ME-openssl-rand-hex-32-xxxxxx"}, "DISPATCH_SECRET_KEY"),
        ({"grafana_webhook_token": "grafana"}, "GRAFANA_WEBHOOK_TOKEN"),
        ({"delivery_row_retention_days": "5"}, "DELIVERY_ROW_RETENTION_DAYS"),
        ({"delivery_retention_days": "0"}, "DELIVERY_RETENTION_DAYS"),
        ({"delivery_retention_days": "30", "delivery_row_retention_days": "20"}, "DELIVERY_ROW"),
        ({"audit_retention_days": "0"}, "AUDIT_RETENTION_DAYS"),
    ],
)
def test_bad_values_name_the_variable(overrides, named):
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert named in str(caught.value)


def test_private_key_with_escaped_newlines_is_accepted(github):
    one_line = github.private_key_pem.strip().replace("\n", "\\n")
    settings = load_settings(
        github_app_id="7", github_private_key=one_line, github_webhook_secret="s3cret-s3cret-s3cret"
    )
    assert settings.github_private_key.startswith("-----BEGIN")
    assert "\n" in settings.github_private_key


def test_private_key_from_a_file(tmp_path, github):
    path = tmp_path / "app.pem"
    path.write_text(github.private_key_pem)
    settings = load_settings(
        github_app_id="7",
        github_private_key_path=str(path),
        github_webhook_secret="s3cret-s3cret-s3cret",
    )
    assert settings.github_private_key == github.private_key_pem


@pytest.mark.slow
def test_cli_reports_config_errors_in_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"],
        env={"GITHUB_APP_ID": "abc", "PATH": "/usr/bin:/bin", "DISPATCH_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "GITHUB_APP_ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_secret_values_are_not_echoed_in_errors():
    with pytest.raises(ConfigError) as caught:
        load_settings(dispatch_secret_key="hunter2")
    assert "hunter2" not in str(caught.value)


def test_a_plain_http_public_url_is_warned_about():
    from app.config import warnings_for

    assert warnings_for(load_settings(dispatch_url="http://localhost:3000")) == []
    [warning] = warnings_for(load_settings(dispatch_url="http://dispatch.example.com"))
    assert "unencrypted" in warning


def test_alert_and_embedding_secrets_are_never_logged():
    from app.logs import scrub

    load_settings(
        grafana_webhook_token="grafana-token-1234567890",
        sentry_client_secret="sentry-secret-abcdefghij",
        embeddings_api_key="emb-key-0987654321",
    )

    line = scrub("grafana-token-1234567890 sentry-secret-abcdefghij emb-key-0987654321")
    assert line == "[redacted] [redacted] [redacted]"


def test_retention_defaults_and_why_guids_outlive_redelivery():
    settings = load_settings()
    assert (
        settings.delivery_retention_days,
        settings.delivery_row_retention_days,
        settings.run_log_retention_days,
        settings.audit_retention_days,
    ) == (14, 90, 30, None)
    with pytest.raises(ConfigError, match="GitHub can redeliver a delivery for 7 days"):
        load_settings(delivery_row_retention_days=3)


def test_the_seeds_names_are_read_under_their_new_names(monkeypatch):
    monkeypatch.setenv("MAX_CONCURRENT_SPAWNS_ERROR", "7")
    monkeypatch.setenv("DAILY_SPAWN_BUDGET_ERROR", "3")
    settings = load_settings()
    assert settings.max_concurrent_spawns_auto_investigate == 7
    assert settings.daily_spawn_budget_auto_investigate == 3

    from app.config import environment_warnings

    warnings = environment_warnings()
    assert (
        "MAX_CONCURRENT_SPAWNS_ERROR is an old name: read as "
        "MAX_CONCURRENT_SPAWNS_AUTO_INVESTIGATE; rename it"
    ) in warnings
    assert any(w.startswith("DAILY_SPAWN_BUDGET_ERROR is an old name") for w in warnings)


def test_the_current_name_wins_over_the_seeds(monkeypatch):
    from app.config import environment_warnings

    monkeypatch.setenv("DAILY_SPAWN_BUDGET_ERROR", "3")
    monkeypatch.setenv("DAILY_SPAWN_BUDGET_AUTO_INVESTIGATE", "4")
    assert load_settings().daily_spawn_budget_auto_investigate == 4
    assert any(
        "which is set too: DAILY_SPAWN_BUDGET_ERROR is ignored" in w for w in environment_warnings()
    )


def test_unknown_names_are_warned_with_the_closest_known_one():
    from app.config import environment_warnings

    environ = {
        "DISPATCH_DATADIR": "/srv",
        "SPAWN_KILLSWITCH": "true",
        "GITHUB_WEBHOOK_SECRETS": "x",
        "MAX_CONCURRENT_SPAWNS_IMPLEMENTATION": "2",
        "DISPATCH_QQQQQQQQQQQQ": "1",
        # Known, or someone else's: never warned about.
        "DISPATCH_URL": "https://d.example",
        "GITHUB_TOKEN": "ghp_x",
        "GITHUB_ACTIONS": "true",
        "DISPATCH_TOKEN": "x",
        "PATH": "/bin",
    }
    assert environment_warnings(environ) == [
        "DISPATCH_DATADIR is not a Dispatch setting and is ignored: did you mean "
        "DISPATCH_DATA_DIR?",
        "DISPATCH_QQQQQQQQQQQQ is not a Dispatch setting and is ignored",
        "GITHUB_WEBHOOK_SECRETS is not a Dispatch setting and is ignored: did you mean "
        "GITHUB_WEBHOOK_SECRET?",
        "MAX_CONCURRENT_SPAWNS_IMPLEMENTATION is not a Dispatch setting and is ignored: did "
        "you mean MAX_CONCURRENT_SPAWNS_IMPLEMENT?",
        "SPAWN_KILLSWITCH is not a Dispatch setting and is ignored: did you mean "
        "SPAWN_KILL_SWITCH?",
    ]


def test_a_config_error_lists_each_problem():
    with pytest.raises(ConfigError) as caught:
        load_settings(worker_concurrency="0", log_level="LOUD")
    assert len(caught.value.problems) == 2
    assert {p.split(":")[0] for p in caught.value.problems} == {"WORKER_CONCURRENCY", "LOG_LEVEL"}


def test_the_readme_lists_every_mode_with_its_spawn_limits(monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [listed] = re.findall(r"^`<MODE>` is (.+)\.$", readme, re.M)
    assert re.findall(r"`([A-Z_]+)`", listed) == [mode.name for mode in Mode]
    for mode in Mode:  # and each name the README gives is one Dispatch reads
        monkeypatch.setenv(f"MAX_CONCURRENT_SPAWNS_{mode.name}", "7")
        monkeypatch.setenv(f"DAILY_SPAWN_BUDGET_{mode.name}", "8")
    settings = load_settings()
    for mode in Mode:
        assert getattr(settings, f"max_concurrent_spawns_{mode.value}") == 7
        assert getattr(settings, f"daily_spawn_budget_{mode.value}") == 8
