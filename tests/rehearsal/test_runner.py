"""The rehearsal runner behaves like GitHub's where the workflow relies on it: expressions,
`needs` order and outputs, command files, masks, and credentials that follow the job's
permissions (no `id-token: write`, no OIDC request variables; a token that can only do what the
job declared)."""

from __future__ import annotations

import pytest

from tests.rehearsal.expressions import Status, condition, evaluate, render
from tests.rehearsal.git_server import GitServer
from tests.rehearsal.runner import Rehearsal, World, job_order, python_shim

CONTEXT = {
    "inputs": {"mode": "implement", "run_id": "7"},
    "env": {"A": "1"},
    "needs": {"prepare": {"result": "success", "outputs": {"token": "t"}}},
    "steps": {"commit": {"outcome": "success", "outputs": {"changed": "true"}}},
}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("inputs.mode == 'IMPLEMENT'", True),  # strings compare case-insensitively
        ("inputs.run_id == 7", True),
        ("needs.prepare.outputs.token", "t"),
        ("needs['prepare'].result != 'success'", False),
        ("steps.commit.outputs.changed == 'true' && inputs.mode", "implement"),
        ("steps.missing.outputs.changed || 'default'", "default"),
        ("!steps.missing", True),
        ("contains('abc', 'B') && startsWith(inputs.mode, 'imp')", True),
        ("format('{0}-{1}', inputs.run_id, env.A)", "7-1"),
        ("(1 < 2) && !(2 <= 1)", True),
    ],
)
def test_expressions(expression, value):
    assert evaluate(expression, CONTEXT) == value


def test_conditions_imply_success_unless_they_ask_about_status():
    failed = Status(failed=True)
    assert condition(None, CONTEXT, Status()) is True
    assert condition(None, CONTEXT, failed) is False
    assert condition("inputs.mode == 'implement'", CONTEXT, failed) is False
    assert condition("always() && inputs.mode == 'implement'", CONTEXT, failed) is True
    assert condition("${{ failure() }}", CONTEXT, failed) is True
    assert condition("!cancelled() && needs.prepare.result == 'success'", CONTEXT, failed)
    assert render("x-${{ inputs.run_id }}-${{ env.NOPE }}", CONTEXT) == "x-7-"


WORKFLOW = {
    "name": "probe",
    "permissions": {},
    "env": {"MODE": "${{ inputs.mode }}"},
    "jobs": {
        "second": {
            "needs": "first",
            "permissions": {"contents": "read"},
            "steps": [
                {
                    "name": "see",
                    "env": {"FROM_FIRST": "${{ needs.first.outputs.word }}"},
                    "run": 'env | sort > "$RUNNER_TEMP/env"; echo "::add-mask::$FROM_FIRST";'
                    ' echo "got $FROM_FIRST"',
                },
                {
                    "name": "write with the job's token",
                    "env": {"TOKEN": "${{ github.token }}"},
                    "run": 'curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: '
                    'token $TOKEN" "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/issues" -d \'{"title":'
                    '"x"}\' > "$RUNNER_TEMP/status"',
                },
            ],
        },
        "first": {
            "permissions": {"id-token": "write", "issues": "write"},
            "outputs": {"word": "${{ steps.say.outputs.word }}"},
            "steps": [
                {
                    "name": "env file",
                    "run": 'echo "LATER=yes" >> "$GITHUB_ENV"; echo "NODE_OPTIONS=x" >> "$GITHUB_ENV"',
                },
                {
                    "id": "say",
                    "name": "say",
                    "run": 'env | sort > "$RUNNER_TEMP/env"; echo "word=hello-$LATER" >> '
                    '"$GITHUB_OUTPUT"; [ -z "${NODE_OPTIONS:-}" ]',
                },
                {"name": "skipped", "if": "inputs.mode == 'qa'", "run": "exit 1"},
                {"name": "fails", "run": "exit 3", "continue-on-error": True},
                {"name": "still runs", "run": "echo fine"},
            ],
        },
    },
}


def test_jobs_run_in_needs_order_with_their_own_credentials(github, oidc, repo, tmp_path):
    installation, repository = repo
    server = GitServer(tmp_path / "git", github).start()
    try:
        sha = server.create(repository["full_name"], {"README.md": "hi\n"})
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        python_shim(bin_dir)
        world = World(github, oidc, server.url, installation, repository, bin_dir)
        rehearsal = Rehearsal(
            WORKFLOW,
            world=world,
            root=tmp_path / "run",
            inputs={"mode": "implement"},
            secrets={},
            run_id=99,
            sha=sha,
        )
        run = rehearsal.run()
    finally:
        server.stop()
    assert job_order(WORKFLOW["jobs"]) == ["first", "second"]
    first, second = run.jobs["first"], run.jobs["second"]
    assert [s.outcome for s in first.steps] == [
        "success",
        "success",
        "skipped",
        "failure",
        "success",
    ]
    assert first.result == "success" and first.outputs == {"word": "hello-yes"}
    env_first = (first.temp / "env").read_text()
    env_second = (second.temp / "env").read_text()
    # id-token: write → OIDC request variables for this repository's workflow run; else none.
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" in env_first
    assert "ACTIONS_ID_TOKEN_REQUEST" not in env_second
    assert "MODE=implement" in env_second and "RUNNER_TEMP=" in env_second
    assert "GITHUB_TOKEN" not in env_first + env_second  # only as ${{ github.token }}
    assert first.temp != second.temp and first.home != second.home
    # The job token can do what the job declared and nothing else, and dies with the job.
    assert (second.temp / "status").read_text() == "403"
    assert github.token_grants(second.github_token) is None
    assert "got ***" in second.log and "hello-yes" not in second.log
    assert oidc.requested_audiences == []  # nothing asked for an OIDC token here
