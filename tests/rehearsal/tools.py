"""The programs a rehearsed workflow finds on PATH instead of the real ones.

- `claude`: replays a Claude Code stream-json session and does what the session's tool calls
  describe, in order, in its working directory (the checkout): `Write` writes a file, `Edit`
  replaces `old_string` by `new_string` (once, and it must be there once, unless `replace_all`),
  `MultiEdit` does several edits to one file, `Bash` runs the command (the attacks). A scenario's
  session is a recorded one (`../shared/fixtures/claude-stream-json/`) with the scenario's tool
  calls appended before its `result` line as `assistant` `tool_use` and `user` `tool_result`
  messages in the recording's own format (`session`), and the `result` line's fields replaced
  by the scenario's. It records what it saw (arguments, prompt, its environment, its parent's
  `/proc/<ppid>/environ`, what each Bash command printed) in a spy file for the test.
- `gh`: `gh pr create`, `gh pr view` and `gh api <path>` (GET), against the fake GitHub's REST API
  with `GH_TOKEN`.
- `npm`: accepts only `npm install -g @anthropic-ai/claude-code@<exact version>` (the workflow must
  pin it) and installs nothing: `claude` is already here.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STREAM_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "claude-stream-json"


def write(path: str, text: str) -> dict[str, Any]:
    """A `Write` tool call (`path` relative to the checkout)."""
    return {"name": "Write", "input": {"file_path": path, "content": text}}


def edit(path: str, old: str, new: str, *, replace_all: bool = False) -> dict[str, Any]:
    """An `Edit` tool call."""
    change: dict[str, Any] = {"file_path": path, "old_string": old, "new_string": new}
    if replace_all:
        change["replace_all"] = True
    return {"name": "Edit", "input": change}


def multi_edit(path: str, *edits: tuple[str, str]) -> dict[str, Any]:
    """A `MultiEdit` tool call: (old, new) pairs applied in order."""
    changes = [{"old_string": old, "new_string": new} for old, new in edits]
    return {"name": "MultiEdit", "input": {"file_path": path, "edits": changes}}


def bash(command: str) -> dict[str, Any]:
    """A `Bash` tool call."""
    return {"name": "Bash", "input": {"command": command}}


@dataclass
class Agent:
    """What the fake agent does: replays the recorded `stream` with `tools` (tool calls made by
    `write`, `edit`, `multi_edit`, `bash`) appended, its final `result` line's fields replaced
    by `result`, then exits with `exit`."""

    stream: str = "basic_query.ndjson"
    result: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    exit: int = 0

    @classmethod
    def answering(cls, text: str, *tools: dict[str, Any], **kwargs: Any) -> Agent:
        return cls(result={"result": text}, tools=list(tools), **kwargs)

    def session(self) -> list[dict[str, Any]]:
        """The recorded session with this agent's tool calls and result: the messages `claude`
        prints, one a line."""
        recorded = [json.loads(line) for line in (STREAM_FIXTURES / self.stream).open()]
        [result] = [m for m in recorded if m["type"] == "result"]
        head = [m for m in recorded if m is not result]
        template = next(m for m in recorded if m["type"] == "assistant")
        turns: list[dict[str, Any]] = []
        for number, call in enumerate(self.tools, 1):
            use_id = f"toolu_rehearsal{number:04d}"
            asked = copy.deepcopy(template)
            asked["uuid"] = f"00000000-0000-4000-8000-{number:012d}"
            asked["message"].update(
                id=f"msg_rehearsal{number:04d}",
                stop_reason="tool_use",
                content=[{"type": "tool_use", "id": use_id, **call}],
            )
            answer = _tool_result(call)
            turns.append(asked)
            turns.append(
                {
                    "type": "user",
                    "message": {
                        "role": "user",
                        "content": [
                            {
                                "tool_use_id": use_id,
                                "type": "tool_result",
                                "content": answer["content"],
                                "is_error": False,
                            }
                        ],
                    },
                    "parent_tool_use_id": None,
                    "session_id": template["session_id"],
                    "uuid": f"00000000-0000-4000-9000-{number:012d}",
                    "tool_use_result": answer["tool_use_result"],
                }
            )
        result = {**result, **self.result}
        if self.tools:
            result["num_turns"] = result.get("num_turns", 1) + len(self.tools)
        return [*head, *turns, result]


def _tool_result(call: dict[str, Any]) -> dict[str, Any]:
    """What Claude Code answers a tool call with (its wording, as far as the tests go)."""
    given = call["input"]
    if call["name"] == "Write":
        return {
            "content": f"File created successfully at: {given['file_path']}",
            "tool_use_result": {
                "type": "create",
                "filePath": given["file_path"],
                "content": given["content"],
            },
        }
    if call["name"] in ("Edit", "MultiEdit"):
        return {
            "content": f"The file {given['file_path']} has been updated.",
            "tool_use_result": {"filePath": given["file_path"]},
        }
    return {
        "content": "(output as the command printed it)",
        "tool_use_result": {"stdout": "", "stderr": "", "interrupted": False, "isImage": False},
    }


CLAUDE = r'''#!{python}
"""Fake Claude Code for rehearsals (tests/rehearsal/tools.py)."""
import json, os, subprocess, sys
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
    "tools": [],
}}
try:
    raw = open(f"/proc/{{os.getppid()}}/environ", "rb").read()
    record["parent_environ"] = raw.decode("utf-8", "replace").split("\0")
except OSError as error:
    record["parent_environ"] = [f"unreadable: {{error}}"]
def spy():
    with open(SPY, "w") as handle:
        json.dump(record, handle)
def refuse(message):
    spy()
    print(f"claude (rehearsal): {{message}}", file=sys.stderr)
    sys.exit(3)
def where(path):
    return os.path.join(os.getcwd(), path)
def replace(path, text, old, new, every):
    found = text.count(old)
    if found == 0 or (found > 1 and not every):
        refuse(f"Edit of {{path}}: old_string found {{found}} times: {{old!r}}")
    return text.replace(old, new) if every else text.replace(old, new, 1)
def use(name, given):
    record["tools"].append({{"name": name, "input": given}})
    if name == "Write":
        path = where(given["file_path"])
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as handle:
            handle.write(given["content"])
    elif name in ("Edit", "MultiEdit"):
        path = where(given["file_path"])
        text = open(path).read()
        for change in given["edits"] if name == "MultiEdit" else [given]:
            text = replace(given["file_path"], text, change["old_string"],
                           change["new_string"], change.get("replace_all", False))
        with open(path, "w") as handle:
            handle.write(text)
    elif name == "Bash":
        done = subprocess.run(["bash", "-c", given["command"]], capture_output=True, text=True)
        record["shell"].append({{"command": given["command"], "code": done.returncode,
                                 "out": done.stdout + done.stderr}})
for line in open({stream!r}):
    message = json.loads(line)
    print(json.dumps(message), flush=True)
    if message.get("type") == "assistant":
        for block in message["message"].get("content") or []:
            if block.get("type") == "tool_use":
                use(block["name"], block["input"])
spy()
sys.exit({exit})
'''

GH = r'''#!{python}
"""Fake GitHub CLI for rehearsals: pr create, pr view, api (tests/rehearsal/tools.py)."""
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
elif args[:1] == ["api"] and len(args) == 2:
    print(json.dumps(call("GET", "/" + args[1].lstrip("/"))))
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
    stream = spies / "stream.ndjson"
    stream.write_text("".join(json.dumps(message) + "\n" for message in agent.session()))
    python = sys.executable
    scripts = {
        "claude": CLAUDE.format(
            python=python,
            exit=agent.exit,
            spy=str(spies / "claude.json"),
            stream=str(stream),
        ),
        "gh": GH.format(python=python),
        "npm": NPM.format(python=python, spy=str(spies / "npm.log")),
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
