"""From a comment to answered commands.

`record()` runs inside the delivery's transaction: it parses the generic comment, drops what
must be ignored (Dispatch's own comments, bots not allow-listed), and stores one `command` row per
`/dispatch` line with a job to run it; a replayed delivery finds its rows and adds none.

`execute()` runs one command in its own job: 👀, the repository config, the verb, the
commenter's permission, the verb's handler, then the answer (🚀 and a reply, or 😕 and a reply
that quotes the command and says why). The row is locked while it runs and marked finished in the
same transaction, so a command is answered once even if workers race or crash.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from app import jobs, queue
from app.audit import log as audit
from app.commands.context import CommandContext, GenericComment, Result
from app.commands.parser import Command, parse
from app.commands.registry import registry
from app.db import engine
from app.events import Event
from app.github import rest
from app.github.rest import ReactionTarget
from app.issues import repo_config
from app.runtime import Runtime

log = logging.getLogger(__name__)


async def record(event: Event, rt: Runtime) -> int:
    comment = GenericComment.from_event(event)
    if comment is None:
        return 0
    commands = parse(comment.body)
    if not commands:
        return 0
    if comment.author.lower() == (await rt.github.bot_login()).lower():
        return 0
    if comment.author_is_bot:
        loaded = await repo_config.load(rt, comment.installation_id, comment.repository)
        if not loaded.config.bot_allowed(comment.author):
            await audit.record(
                actor=comment.author,
                action="command.ignored",
                target=f"{comment.repository}#{comment.number}",
                repository=comment.repository,
                issue_number=comment.number,
                installation_id=comment.installation_id,
                outcome=audit.Outcome.SKIPPED,
                reason="comment by a bot that is not in allowed_bots",
                delivery=comment.delivery,
            )
            return 0
    stored = 0
    async with engine.connection() as connection:
        for position, command in enumerate(commands):
            command_id = await connection.fetchval(
                """
                INSERT INTO command (delivery_guid, position, installation_id, repository,
                    repository_id, issue_number, is_pull, author, verb, args, line, target)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                ON CONFLICT (delivery_guid, position) DO NOTHING
                RETURNING id
                """,
                comment.delivery,
                position,
                comment.installation_id,
                comment.repository,
                comment.repository_id,
                comment.number,
                comment.is_pull,
                comment.author,
                command.verb,
                command.args,
                command.line,
                msgspec.to_builtins(comment.target),
            )
            if command_id is not None:
                await queue.enqueue(
                    jobs.RUN_COMMAND, {"command": command_id}, dedupe_key=f"command:{command_id}"
                )
                stored += 1
    return stored


async def execute(command_id: int, rt: Runtime) -> None:
    async with engine.transaction(), engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM command WHERE id = $1 FOR UPDATE", command_id
        )
        if row is None or row["state"] != "pending":
            return
        await connection.execute(
            "UPDATE command SET attempts = attempts + 1 WHERE id = $1", command_id
        )
        comment, command = _from_row(row)
        client = rt.github.installation(comment.installation_id)
        await rest.react(client, comment.repository, comment.target, "eyes")
        result = await _run(rt, client, comment, command, command_id)
        reply = await _answer(rt, client, comment, command, result)
        state = "done" if result.ok else "refused"
        await connection.execute(
            "UPDATE command SET state = $2, reply = $3, finished_at = now() WHERE id = $1",
            command_id,
            state,
            reply,
        )
        await audit.record(
            actor=comment.author,
            action=f"command.{command.verb or 'empty'}",
            target=f"{comment.repository}#{comment.number}",
            repository=comment.repository,
            issue_number=comment.number,
            installation_id=comment.installation_id,
            after={"line": command.line, **result.data},
            outcome=audit.Outcome.DONE if result.ok else audit.Outcome.REFUSED,
            reason=None if result.ok else result.reply,
            delivery=comment.delivery,
        )


async def give_up(payload: dict[str, Any], exc: Exception, rt: Runtime) -> None:
    """After the last retry: mark the command failed and say so on the issue (never silence)."""
    async with engine.transaction(), engine.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM command WHERE id = $1 FOR UPDATE", payload["command"]
        )
        if row is None or row["state"] != "pending":
            return
        comment, command = _from_row(row)
        reason = (
            "Dispatch hit an error running this command and gave up after retrying "
            f"(`{type(exc).__name__}`). An operator can find it in the server log; "
            "you can try the command again."
        )
        await connection.execute(
            "UPDATE command SET state = 'failed', reply = $2, finished_at = now() WHERE id = $1",
            row["id"],
            reason,
        )
    client = rt.github.installation(comment.installation_id)
    await _answer(rt, client, comment, command, Result.refuse(reason))


def _from_row(row: Any) -> tuple[GenericComment, Command]:
    target = row["target"]
    comment = GenericComment(
        installation_id=row["installation_id"],
        repository=row["repository"],
        repository_id=row["repository_id"],
        number=row["issue_number"],
        is_pull=row["is_pull"],
        author=row["author"],
        author_is_bot=row["author"].endswith("[bot]"),
        body="",
        target=ReactionTarget(**target),
        delivery=row["delivery_guid"],
    )
    return comment, Command(verb=row["verb"], args=row["args"], line=row["line"])


async def _run(
    rt: Runtime, client: Any, comment: GenericComment, command: Command, command_id: int
) -> Result:
    loaded = await repo_config.load(rt, comment.installation_id, comment.repository)
    if loaded.error:
        return Result.refuse(
            f"Commands are paused in this repository until `{repo_config.CONFIG_PATH}` is "
            f"fixed:\n\n```\n{loaded.error}\n```"
        )
    verb = registry.get(command.verb)
    if verb is None:
        if not command.verb:
            return Result.refuse("That command has no verb. See `/dispatch help`.")
        suggestion = registry.closest(command.verb)
        hint = f" Did you mean `/dispatch {suggestion}`?" if suggestion else ""
        return Result.refuse(
            f"`{command.verb}` is not a Dispatch command.{hint} See `/dispatch help`."
        )
    needed = loaded.config.permission_for(verb.name) or verb.permission
    level = await rt.permissions.level(client, comment.repository, comment.author)
    if level < needed:
        return Result.refuse(
            f"`/dispatch {verb.name}` needs **{needed.label}** permission on "
            f"{comment.repository}; @{comment.author} has **{level.label}**."
        )
    context = CommandContext(
        rt=rt,
        comment=comment,
        command=command,
        config=loaded.config,
        permission=level,
        client=client,
        command_id=command_id,
    )
    return await verb.handler(context)


async def _answer(
    rt: Runtime, client: Any, comment: GenericComment, command: Command, result: Result
) -> str | None:
    reaction = result.reaction if result.ok else "confused"
    if reaction:
        await rest.react(client, comment.repository, comment.target, reaction)
    if not result.reply:
        return None
    body = (
        f"> {command.line}\n\n@{comment.author} {result.reply}" if not result.ok else result.reply
    )
    await rest.comment(client, comment.repository, comment.number, body)
    return body
