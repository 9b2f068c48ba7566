"""GitHub's git side for a rehearsal: bare repositories served over smart HTTP (`git
http-backend`, the real protocol), where only a valid token of the fake GitHub may fetch and only
a token with `contents: write` may push, as with `x-access-token` basic auth on github.com.

A push that lands is told to the fake GitHub (its branches and commits), so the pull request the
workflow opens next refers to commits that exist, and dispatches start from the real head.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_PATH = re.compile(
    r"^/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?"
    r"(?P<rest>/info/refs|/git-upload-pack|/git-receive-pack)$"
)
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run git for the harness itself (never with a user's configuration)."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class Push:
    repository: str
    token_installation: int
    refs_before: dict[str, str]
    refs_after: dict[str, str]


@dataclass
class GitServer:
    """`http://127.0.0.1:<port>/<owner>/<name>` for every bare repository under `root`."""

    root: Path
    github: Any  # tests.fakes.github.FakeGitHub
    pushes: list[Push] = field(default_factory=list)
    refused: list[tuple[str, str, int]] = field(default_factory=list)  # (repo, service, status)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def create(self, full_name: str, files: dict[str, str], branch: str = "main") -> str:
        """A bare repository holding one commit with `files` on `branch`; returns its sha, and
        points the fake GitHub's branch at it."""
        bare = self.root / f"{full_name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        git("config", "http.receivepack", "true", cwd=bare)
        seed = self.root / ".seed" / full_name
        seed.mkdir(parents=True)
        git("init", "--quiet", f"--initial-branch={branch}", cwd=seed)
        for path, text in files.items():
            (seed / path).parent.mkdir(parents=True, exist_ok=True)
            (seed / path).write_text(text)
        git("add", "-A", cwd=seed)
        identity = {
            "GIT_AUTHOR_NAME": "Alice",
            "GIT_AUTHOR_EMAIL": "alice@example.com",
            "GIT_COMMITTER_NAME": "Alice",
            "GIT_COMMITTER_EMAIL": "alice@example.com",
        }
        git("commit", "--quiet", "-m", "Initial commit", cwd=seed, env=identity)
        git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=seed)
        self._sync(full_name)
        return self.refs(full_name)[f"refs/heads/{branch}"]

    def push_branch(
        self, full_name: str, branch: str, files: dict[str, str], base: str = "main"
    ) -> str:
        """A commit changing `files` on a new `branch` from `base`, pushed as a person would;
        returns its sha (the fake GitHub learns the branch)."""
        seed = self.root / ".seed" / full_name
        identity = {
            "GIT_AUTHOR_NAME": "Alice",
            "GIT_AUTHOR_EMAIL": "alice@example.com",
            "GIT_COMMITTER_NAME": "Alice",
            "GIT_COMMITTER_EMAIL": "alice@example.com",
        }
        bare = self.bare(full_name)
        git(
            "fetch",
            "--quiet",
            str(bare),
            f"+refs/heads/{base}:refs/remotes/origin/{base}",
            cwd=seed,
        )
        git("switch", "--quiet", "-C", branch, f"origin/{base}", cwd=seed)
        for path, text in files.items():
            (seed / path).parent.mkdir(parents=True, exist_ok=True)
            (seed / path).write_text(text)
        git("add", "-A", cwd=seed)
        git("commit", "--quiet", "-m", f"Change on {branch}", cwd=seed, env=identity)
        git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=seed)
        self._sync(full_name)
        return self.refs(full_name)[f"refs/heads/{branch}"]

    def bare(self, full_name: str) -> Path:
        return self.root / f"{full_name}.git"

    def refs(self, full_name: str) -> dict[str, str]:
        lines = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=self.bare(full_name))
        return dict(line.split(" ", 1) for line in lines.splitlines())  # type: ignore[misc]

    def show(self, full_name: str, revision: str, path: str) -> str:
        return git("show", f"{revision}:{path}", cwd=self.bare(full_name))

    def changed_paths(self, full_name: str, base: str, head: str) -> list[str]:
        out = git("diff", "--name-only", "--no-renames", base, head, cwd=self.bare(full_name))
        return out.splitlines()

    def _sync(self, full_name: str) -> None:
        bare = self.bare(full_name)
        parents: dict[str, str | None] = {}
        for line in git("rev-list", "--parents", "--all", cwd=bare).splitlines():
            sha, *rest = line.split()
            parents[sha] = rest[0] if rest else None
        for ref, sha in self.refs(full_name).items():
            if ref.startswith("refs/heads/"):
                self.github.set_branch(full_name, ref.removeprefix("refs/heads/"), sha, parents)

    # ------------------------------------------------------------------ serving

    def start(self) -> GitServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _grants(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str]] | None:
        scheme, _, value = (handler.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            _, _, token = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            return None
        grants: tuple[int, dict[str, str]] | None = self.github.token_grants(token)
        return grants

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        match = _PATH.match(parts.path)
        if match is None or not self.bare(f"{match['owner']}/{match['name']}").is_dir():
            return _answer(handler, 404, b"Repository not found.\n")
        full_name = f"{match['owner']}/{match['name']}"
        service = "git-receive-pack" if "receive-pack" in handler.path else "git-upload-pack"
        grants = self._grants(handler)
        installation = self._installation_of(full_name)
        if grants is None or grants[0] != installation:
            self.refused.append((full_name, service, 401))
            return _answer(
                handler, 401, b"Authentication failed\n", {"WWW-Authenticate": 'Basic realm="x"'}
            )
        needed = "write" if service == "git-receive-pack" else ("read", "write")
        if grants[1].get("contents") not in needed:
            self.refused.append((full_name, service, 403))
            message = f"Permission to {full_name}.git denied to github-actions[bot].\n"
            return _answer(handler, 403, message.encode())
        body = _read_body(handler)
        before = self.refs(full_name) if service == "git-receive-pack" else {}
        env = {
            "PATH": os.environ["PATH"],
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{full_name}.git{match['rest']}",
            "QUERY_STRING": parts.query,
            "REQUEST_METHOD": handler.command,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        if service == "git-receive-pack" and handler.command == "POST" and status == 200:
            after = self.refs(full_name)
            if after != before:
                self.pushes.append(Push(full_name, grants[0], before, after))
                self._sync(full_name)
        _answer(handler, status, payload, headers)

    def _installation_of(self, full_name: str) -> int | None:
        try:
            installation: int = self.github.installation_of(full_name)
        except KeyError:
            return None
        return installation


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _answer(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
