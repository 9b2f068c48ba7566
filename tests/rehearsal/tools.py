"""The programs a rehearsed workflow finds on PATH instead of the real ones.

- `claude`: replays a recorded Claude Code stream-json session (`../shared/fixtures/claude-
  stream-json/`), after doing what the scenario's agent does in the checkout: edit files, or run
  shell lines (the attacks). It records what it saw (arguments, prompt, its environment, its
  parent's `/proc/<ppid>/environ`, what the shell lines printed) in a spy file for the test.
- `gh`: `gh pr create` and `gh pr view`, against the fake GitHub's REST API with `GH_TOKEN`.
- `npm`: accepts only `npm install -g @anthropic-ai/claude-code@<exact version>` (the workflow must
  pin it) and installs nothing: `claude` is already here.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STREAM_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "claude-stream-json"


@dataclass
class Agent:
    """What the fake agent does: `actions` in its checkout, then the recorded `stream` with the
    final `result` line's fields replaced by `result`, then exit with `exit`."""

    stream: str = "basic_query.ndjson"
    result: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, str]] = field(default_factory=list)
    exit: int = 0

    @classmethod
    def answering(cls, text: str, **kwargs: Any) -> Agent:
        return cls(result={"result": text}, **kwargs)


CLAUDE = r'''#!{python}
"""Fake Claude Code for rehearsals (tests/rehearsal/tools.py)."""
import json, os, subprocess, sys
SCENARIO = json.load(open({scenario!r}))
SPY = {spy!r}
args = sys.argv[1:]
def option(name):
    return args[args.index(name) + 1] if name in args else None
record = {{
    "argv": args,
    "prompt": option("-p"),
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "shell": [],
}}
try:
    raw = open(f"/proc/{{os.getppid()}}/environ", "rb").read()
    record["parent_environ"] = raw.decode("utf-8", "replace").split("\0")
except OSError as error:
    record["parent_environ"] = [f"unreadable: {{error}}"]
for action in SCENARIO["actions"]:
    if "write" in action:
        path = os.path.join(os.getcwd(), action["write"])
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as handle:
            handle.write(action["text"])
    elif "shell" in action:
        done = subprocess.run(["bash", "-c", action["shell"]], capture_output=True, text=True)
        record["shell"].append({{"command": action["shell"], "code": done.returncode,
                                 "out": done.stdout + done.stderr}})
with open(SPY, "w") as handle:
    json.dump(record, handle)
for line in open({stream!r}):
    message = json.loads(line)
    if message.get("type") == "result":
        message.update(SCENARIO["result"])
    print(json.dumps(message), flush=True)
sys.exit(SCENARIO["exit"])
'''

GH = r'''#!{python}
"""Fake GitHub CLI for rehearsals: pr create, pr view (tests/rehearsal/tools.py)."""
import json, os, sys, urllib.error, urllib.parse, urllib.request
args = sys.argv[1:]
api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
if not token:
    print("gh: set the GH_TOKEN environment variable", file=sys.stderr)
    sys.exit(4)
def option(name):
    return args[args.index(name) + 1] if name in args else None
def call(method, path, body=None):
    request = urllib.request.Request(
        api + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={{"Authorization": f"token {{token}}", "Accept": "application/vnd.github+json",
                 "Content-Type": "application/json"}},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{{}}")
        errors = "; ".join(e.get("message") or e.get("field", "") for e in detail.get("errors", []))
        print(f"HTTP {{error.code}}: {{detail.get('message')}} {{errors}}".strip(), file=sys.stderr)
        sys.exit(1)
repo = option("--repo") or os.environ["GITHUB_REPOSITORY"]
if args[:2] == ["pr", "create"]:
    pull = call("POST", f"/repos/{{repo}}/pulls", {{
        "title": option("--title"), "head": option("--head"), "base": option("--base"),
        "body": option("--body") or "",
    }})
    print(pull["html_url"])
elif args[:2] == ["pr", "view"]:
    owner = repo.split("/")[0]
    query = urllib.parse.urlencode({{"head": f"{{owner}}:{{args[2]}}", "state": "all"}})
    pulls = call("GET", f"/repos/{{repo}}/pulls?{{query}}")
    if not pulls:
        print(f"no pull requests found for branch {{args[2]!r}}", file=sys.stderr)
        sys.exit(1)
    print(pulls[0]["html_url"] if option("--jq") == ".url" else json.dumps(pulls[0]))
else:
    print(f"gh (rehearsal): unsupported: {{' '.join(args)}}", file=sys.stderr)
    sys.exit(2)
'''

NPM = r'''#!{python}
"""Fake npm for rehearsals: only a pinned Claude Code install passes (tests/rehearsal/tools.py)."""
import re, sys
with open({spy!r}, "a") as handle:
    handle.write(" ".join(sys.argv[1:]) + "\n")
args = sys.argv[1:]
ok = args[:2] == ["install", "-g"] and len(args) == 3 and re.fullmatch(
    r"@anthropic-ai/claude-code@\d+\.\d+\.\d+", args[2]
)
if not ok:
    print("npm (rehearsal): only `npm install -g @anthropic-ai/claude-code@X.Y.Z`", file=sys.stderr)
    sys.exit(1)
print("added 1 package (rehearsal)")
'''


def install(bin_dir: Path, spies: Path, agent: Agent) -> None:
    """Write the fake tools for one rehearsal (the agent's scenario baked in)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    spies.mkdir(parents=True, exist_ok=True)
    scenario = spies / "scenario.json"
    scenario.write_text(json.dumps(asdict(agent)))
    python = sys.executable
    scripts = {
        "claude": CLAUDE.format(
            python=python,
            scenario=str(scenario),
            spy=str(spies / "claude.json"),
            stream=str(STREAM_FIXTURES / agent.stream),
        ),
        "gh": GH.format(python=python),
        "npm": NPM.format(python=python, spy=str(spies / "npm.log")),
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
