"""From a comment to answered commands.

`record()` runs inside the delivery's transaction: it parses the generic comment, drops what
must be ignored (Dispatch's own comments, bots not allow-listed), and stores one `command` row per
`/dispatch` line with a job to run it; a replayed delivery finds its rows and adds none. Once the
delivery has committed, the comment gets its 👀 at once ("Dispatch saw your command"), before the
command's job is even picked up; delivery jobs go ahead of other jobs in the queue, so the 👀
does not wait behind a backlog of commands.

The 👀 goes out once per comment, whoever sends it: `app/commands/eyes.py`.

`execute()` runs one command in its own job: 👀 (if nobody sent it yet), the repository config,
the verb, the commenter's permission, the verb's handler, then the answer (🚀 and a reply, or 😕
and a reply that quotes the command and says why). No transaction stays open while GitHub
answers: the outcome is stored first and the answer is a comment marked with the command's id,
so a command is answered once even if its job is retried after a crash or a lost answer. While
GitHub is down the job keeps trying (GITHUB_OUTAGE_RETRY_HOURS), and the command shows in
`dispatch deliveries --failed` with the error that keeps it unanswered.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

import msgspec
from pgqueuer.errors import RetryRequested

from app import jobs, queue
from app.audit import log as audit
from app.commands import answers, eyes
from app.commands.context import CommandContext, GenericComment, Result
from app.commands.parser import Command, parse
from app.commands.verbs import VERBS
from app.db import engine
from app.events import Event, is_bot
from app.github import markdown, rest
from app.github import retry as github_retry
from app.github.permissions import Permission
from app.github.rest import ReactionTarget
from app.issues import repo_config
from app.logs import scrub
from app.runtime import Runtime

log = logging.getLogger(__name__)


class CommandState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


SETTLED = (CommandState.DONE, CommandState.REFUSED, CommandState.FAILED)

# Only this many commands of one comment run; the rest are ignored (and audited).
MAX_COMMANDS_PER_COMMENT = 5
# Commands one person without write permission may send in one repository per window, before
# they are refused.
RATE_LIMIT = 20
RATE_WINDOW_MINUTES = 10


async def record(event: Event, rt: Runtime) -> int:
    comment = GenericComment.from_event(event)
    if comment is None:
        return 0
    commands = parse(comment.body)
    if not commands:
        return 0
    if await rt.github.is_self(comment.author):
        return 0
    if comment.author_is_bot:
        loaded = await repo_config.load(rt, comment.installation_id, comment.repository)
        if not loaded.config.bot_allowed(comment.author):
            await audit.record(
                actor=comment.author,
                action="command.ignored",
                repository=comment.repository,
                issue_number=comment.number,
                installation_id=comment.installation_id,
                outcome=audit.Outcome.SKIPPED,
                reason="comment by a bot that is not in allowed_bots",
                delivery=comment.delivery,
            )
            return 0
    if len(commands) > MAX_COMMANDS_PER_COMMENT:
        await audit.record(
            actor=comment.author,
            action="command.ignored",
            repository=comment.repository,
            issue_number=comment.number,
            installation_id=comment.installation_id,
            outcome=audit.Outcome.SKIPPED,
            reason=f"only the first {MAX_COMMANDS_PER_COMMENT} commands of a comment run; "
            f"{len(commands) - MAX_COMMANDS_PER_COMMENT} ignored",
            delivery=comment.delivery,
        )
        commands = commands[:MAX_COMMANDS_PER_COMMENT]
    stored: list[int] = []
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
                stored.append(command_id)
        if stored:
            # One comment's commands run one after another, in the order they were written:
            # the first is queued here, each queues the next when it is settled (or given up).
            await _queue(stored[0])
    if stored:
        event.after_commit(functools.partial(eyes.acknowledge, rt, comment))
    return len(stored)


async def execute(command_id: int, rt: Runtime) -> None:
    """Run one command. No database transaction is held while GitHub answers (or while the
    content pacer waits): the verb's own writes are short transactions, the outcome is stored
    before the answer is posted, and the answer is an idempotent marked comment, so a retry after
    a crash or a lost answer answers once. An error is noted on the command (for `dispatch
    deliveries --failed`) and raised for the queue to retry. A command answered while another
    sender's claim on its 👀 was live runs again when the claim ends (the sender may have died)."""
    try:
        eyes_held_for = await _execute(command_id, rt)
    except Exception as exc:
        await _note_error(command_id, exc)
        raise
    await _queue_next(command_id)
    if eyes_held_for > 0:
        raise RetryRequested(delay=timedelta(seconds=eyes_held_for + 1), reason="👀 claimed")


async def _queue(command_id: int) -> None:
    await queue.enqueue(
        jobs.RUN_COMMAND, {"command": command_id}, dedupe_key=f"command:{command_id}"
    )


async def _queue_next(command_id: int) -> None:
    """Queue the command written after this one in the same comment, if any. A crash before
    this runs leaves this command's job to be picked again, which comes back here."""
    async with engine.connection() as connection:
        following = await connection.fetchval(
            "SELECT next.id FROM command AS this JOIN command AS next "
            "ON next.delivery_guid = this.delivery_guid AND next.position > this.position "
            "WHERE this.id = $1 AND next.answered_at IS NULL "
            "ORDER BY next.position LIMIT 1",
            command_id,
        )
    if following is not None:
        await _queue(following)


async def _note_error(command_id: int, exc: BaseException) -> None:
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE command SET last_error = $2 WHERE id = $1 AND answered_at IS NULL",
            command_id,
            scrub(github_retry.describe(exc))[:1000],
        )


async def _execute(command_id: int, rt: Runtime) -> float:
    async with engine.connection() as connection:
        found = await connection.fetchrow(
            "UPDATE command SET attempts = attempts + CASE WHEN state = 'pending' THEN 1 ELSE 0 "
            "END WHERE id = $1 RETURNING *",
            command_id,
        )
    if found is None:
        return 0.0
    row = dict(found)
    comment, command = _from_row(row)
    client = rt.github.installation(comment.installation_id)
    if row["state"] == CommandState.PENDING:
        if row["acknowledged_at"] is None:
            await eyes.before_running(rt, client, comment)
        result = await _run(rt, client, comment, command, command_id)
        settled = await _settle(comment, command, command_id, result)
        if settled is None:
            return 0.0  # another attempt settled it first
        row.update(settled)
    if row["answered_at"] is None and row["state"] in SETTLED:
        await _answer(rt, client, comment, row)
    # The 👀 another sender claimed may never have gone out (it failed, or died): send it now,
    # or say how long its claim has left.
    return await eyes.send(rt, client, comment)


async def _load(command_id: int) -> Any:
    async with engine.connection() as connection:
        return await connection.fetchrow("SELECT * FROM command WHERE id = $1", command_id)


async def _settle(
    comment: GenericComment, command: Command, command_id: int, result: Result
) -> dict[str, Any] | None:
    """Store the outcome (and audit it) once; None if the command was settled already."""
    reaction = result.reaction if result.ok else "confused"
    # The kind of answer a flood repeats, if it is one (stored as the command's `refused_for`).
    repeated = result.refused_for or result.repeats
    body = None
    if result.reply:
        body = (
            result.reply
            if result.ok
            else f"{markdown.quoted_command(command.line)}\n\n@{comment.author} {result.reply}"
        )
    async with engine.transaction(), engine.connection() as connection:
        if repeated:
            # One person's commands settle one at a time here, so of a flood only the first
            # answer of a kind carries a reply; 😕 says the rest.
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                f"refusal:{comment.repository.lower()}:{comment.author.lower()}",
            )
            if await _replied_recently(comment, repeated, command_id):
                body, reaction = None, "confused"
        settled = await connection.fetchval(
            "UPDATE command SET state = $2, reply = $3, reaction = $4, refused_for = $5, "
            "finished_at = now() WHERE id = $1 AND state = 'pending' RETURNING id",
            command_id,
            (CommandState.DONE if result.ok else CommandState.REFUSED).value,
            body,
            reaction,
            repeated,
        )
        if settled is None:
            return None
        await audit.record(
            actor=comment.author,
            action=f"command.{command.verb or 'empty'}",
            repository=comment.repository,
            issue_number=comment.number,
            installation_id=comment.installation_id,
            after={"line": command.line, **result.data},
            outcome=audit.Outcome.DONE if result.ok else audit.Outcome.REFUSED,
            reason=None if result.ok else result.reply,
            delivery=comment.delivery,
        )
    state = CommandState.DONE if result.ok else CommandState.REFUSED
    return {"state": state.value, "reply": body, "reaction": reaction}


async def _replied_recently(comment: GenericComment, refused_for: str, command_id: int) -> bool:
    """Whether this person already got a reply for this kind of answer (a refusal, or help,
    status and similar for people below write) in this repository within the rate window."""
    async with engine.connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT 1 FROM command WHERE lower(repository) = lower($1) "
                "AND lower(author) = lower($2) AND refused_for = $3 AND reply IS NOT NULL "
                "AND id <> $4 AND created_at > now() - make_interval(mins => $5) LIMIT 1",
                comment.repository,
                comment.author,
                refused_for,
                command_id,
                RATE_WINDOW_MINUTES,
            )
        )


async def _sent_recently(comment: GenericComment, command_id: int) -> int:
    """Commands this person sent in this repository within the rate window, before this one."""
    async with engine.connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM command WHERE lower(repository) = lower($1) "
                "AND lower(author) = lower($2) AND id < $3 "
                "AND created_at > now() - make_interval(mins => $4)",
                comment.repository,
                comment.author,
                command_id,
                RATE_WINDOW_MINUTES,
            )
        )


async def give_up(payload: dict[str, Any], exc: Exception, rt: Runtime) -> None:
    """After the last retry: mark the command failed and say so on the issue (never silence)."""
    await _note_error(payload["command"], exc)
    row = await _load(payload["command"])
    if row is None:
        return
    if row["state"] == CommandState.FAILED:  # given up before (and answered, or answering)
        await _queue_next(row["id"])
        return
    comment, command = _from_row(row)
    if row["state"] == CommandState.PENDING:
        reason = (
            "Dispatch hit an error running this command and gave up after retrying "
            f"(`{type(exc).__name__}`). An operator can find it in the server log; "
            "you can try the command again."
        )
        async with engine.connection() as connection:
            await connection.execute(
                "UPDATE command SET state = 'failed', reaction = 'confused', reply = $2, "
                "finished_at = now() WHERE id = $1 AND state = 'pending'",
                row["id"],
                f"{markdown.quoted_command(command.line)}\n\n@{comment.author} {reason}",
            )
        row = await _load(payload["command"])
    await _queue_next(row["id"])
    client = rt.github.installation(comment.installation_id)
    await _answer(rt, client, comment, row)


def _from_row(row: Any) -> tuple[GenericComment, Command]:
    target = row["target"]
    comment = GenericComment(
        installation_id=row["installation_id"],
        repository=row["repository"],
        repository_id=row["repository_id"],
        number=row["issue_number"],
        is_pull=row["is_pull"],
        author=row["author"],
        author_is_bot=is_bot({"login": row["author"]}),
        body="",
        target=ReactionTarget(**target),
        delivery=row["delivery_guid"],
    )
    return comment, Command(verb=row["verb"], args=row["args"], line=row["line"])


async def _run(
    rt: Runtime, client: Any, comment: GenericComment, command: Command, command_id: int
) -> Result:
    level = await rt.permissions.level(client, comment.repository, comment.author)
    # People who may write are trusted not to flood; everyone else is slowed down.
    if level < Permission.WRITE and await _sent_recently(comment, command_id) >= RATE_LIMIT:
        return Result.refuse(
            f"you sent more than {RATE_LIMIT} commands in {RATE_WINDOW_MINUTES} minutes here; "
            "wait a few minutes and send it again.",
            refused_for="rate_limit",
        )
    # What anyone may send, a flood of it included, is answered once per rate window to people
    # below write: a paused repository, unknown verbs, the verbs that only tell (help, status,
    # similar).
    below_write = level < Permission.WRITE
    loaded = await repo_config.load(rt, comment.installation_id, comment.repository)
    if loaded.error:
        return Result.refuse(
            f"Commands are paused in this repository until `{repo_config.CONFIG_PATH}` is "
            f"fixed:\n\n```\n{loaded.error}\n```",
            refused_for="config" if below_write else None,
        )
    verb = VERBS.get(command.verb)
    if verb is None:
        unknown = "verb" if below_write else None
        if not command.verb:
            return Result.refuse(
                "That command has no verb. See `/dispatch help`.", refused_for=unknown
            )
        suggestion = VERBS.closest(command.verb)
        hint = f" Did you mean `/dispatch {suggestion}`?" if suggestion else ""
        shown = markdown.code_span(markdown.no_mentions(command.verb))
        return Result.refuse(
            f"{shown} is not a Dispatch command.{hint} See `/dispatch help`.", refused_for=unknown
        )
    needed = loaded.config.permission_for(verb.name) or verb.permission
    if level < needed:
        return Result.refuse(
            f"`/dispatch {verb.name}` needs **{needed.label}** permission on "
            f"{comment.repository}; @{comment.author} has **{level.label}**.",
            refused_for="permission",
        )
    context = CommandContext(
        rt=rt,
        comment=comment,
        command=command,
        config=loaded.config,
        permission=level,
        client=client,
        verbs=VERBS,
        command_id=command_id,
    )
    result = await verb.handler(context)
    if below_write and verb.permission <= Permission.READ and not result.refused_for:
        result = dataclasses.replace(result, repeats=verb.name)
    return result


async def _answer(rt: Runtime, client: Any, comment: GenericComment, row: Any) -> None:
    """Post the stored outcome: the reaction, and the reply as a comment marked with the
    command's id. The first try posts it; a later one (the answer of the first may have been
    lost with GitHub having posted it) finds the marked comment and edits it instead."""
    if row["reaction"]:
        await rest.react(client, comment.repository, comment.target, row["reaction"])
    if row["reply"]:
        async with engine.connection() as connection:
            tries = await connection.fetchval(
                "UPDATE command SET answer_attempts = answer_attempts + 1 WHERE id = $1 "
                "RETURNING answer_attempts",
                row["id"],
            )
        marker = f"command:{row['id']}"
        body = answers.fit_reply(rt, row["id"], row["reply"])
        if tries == 1:
            await rest.comment(
                client, comment.repository, comment.number, f"{rest.marker(marker)}\n{body}"
            )
        else:
            await rest.upsert_marked_comment(
                client,
                comment.repository,
                comment.number,
                marker,
                body,
                bot_login=await rt.github.bot_login(),
            )
    async with engine.connection() as connection:
        await connection.execute(
            "UPDATE command SET answered_at = now(), last_error = NULL WHERE id = $1", row["id"]
        )
