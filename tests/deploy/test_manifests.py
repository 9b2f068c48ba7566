"""The Dockerfile and the Kubernetes manifests agree with the app: commands exist, ports match,
probes hit real routes, nothing runs as root."""

from __future__ import annotations

from pathlib import Path

import dockerfile
import yaml
from click.testing import CliRunner

from app.cli import main
from app.health.routes import routes as health_routes

ROOT = Path(__file__).resolve().parents[2]
PROBE_PATHS = {path for route in health_routes for path in route.paths}


def documents() -> list[dict]:
    found = []
    for path in sorted((ROOT / "manifests").glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def containers(kind: str | None = None) -> list[tuple[dict, dict]]:
    out = []
    for doc in documents():
        if kind and doc["kind"] != kind:
            continue
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        out += [(doc, c) for c in spec.get("containers", [])]
    return out


def assert_cli_accepts(argv: list[str]) -> None:
    assert argv[0] == "dispatch"
    result = CliRunner().invoke(main, [*argv[1:], "--help"])
    assert result.exit_code == 0, f"{argv}: {result.output}"


def test_every_container_runs_a_real_dispatch_command():
    seen = set()
    for _, container in containers():
        assert_cli_accepts(container["command"])
        seen.add(container["command"][1])
    assert {"serve", "worker", "migrate"} <= seen


def test_web_ports_and_probes_match_the_app():
    web = [c for d, c in containers("Deployment") if c["command"][1] == "serve"]
    assert web
    for container in web:
        command = container["command"]
        port = int(command[command.index("--port") + 1])
        assert {p["containerPort"] for p in container["ports"]} == {port}
        assert "--no-worker" in command  # workers run in their own Deployment
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] in PROBE_PATHS
    services = [d for d in documents() if d["kind"] == "Service"]
    assert services[0]["spec"]["ports"][0]["targetPort"] == "http"


def test_everything_runs_as_non_root_and_reads_the_same_config():
    for doc in documents():
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"dispatch"}
    secret = next(d for d in documents() if d["kind"] == "Secret")
    assert {"DATABASE_URL", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET"} <= set(
        secret["stringData"]
    )


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    by = lambda name: [c for c in commands if c.cmd == name]  # noqa: E731
    assert len(by("FROM")) == 2
    user = by("USER")[-1].value[0]
    assert user not in {"root", "0"}
    cmd = list(by("CMD")[-1].value)
    assert cmd[:2] == ["dispatch", "serve"] and "0.0.0.0" in cmd
    assert_cli_accepts(cmd)
    port = cmd[cmd.index("--port") + 1]
    assert by("EXPOSE")[0].value == (port,)
    healthcheck = " ".join(by("HEALTHCHECK")[0].value)
    assert f"127.0.0.1:{port}/healthz" in healthcheck


def test_containers_are_locked_down():
    for doc, container in containers():
        pod = doc["spec"]["template"]["spec"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False


def test_the_ingress_exposes_no_operator_pages():
    [ingress] = [doc for doc in documents() if doc["kind"] == "Ingress"]
    exposed = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for private in ("/setup", "/setup/callback", "/metrics", "/schema", "/readyz", "/"):
        assert not any(private.startswith(path) and path != "/healthz" for path in exposed), private
    assert {"/webhooks/", "/api/", "/agent/", "/runs/"} <= set(exposed)


def test_network_policies_cover_web_and_worker():
    policies = [doc for doc in documents() if doc["kind"] == "NetworkPolicy"]
    selected = {
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in policies
    }
    assert selected == {"web", "worker"}
    worker = next(p for p in policies if "worker" in p["metadata"]["name"])
    assert worker["spec"]["ingress"] == []
