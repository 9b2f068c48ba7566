"""The fake Messages API answers the real `anthropic` SDK the way Anthropic does: scripted
messages with usage, the real error shapes the SDK turns into its own exception classes, and the
API's refusals of requests it would not accept (recorded as violations)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.fakes.anthropic import FakeAnthropic, Reply, text, tool_use

MODEL = "claude-sonnet-5-5"
TOOLS = [
    {
        "name": "lookup",
        "description": "Look something up.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
]
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fake(claude) -> FakeAnthropic:
    return claude


@pytest.fixture
async def client(fake) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(
        api_key=fake.api_key, base_url=fake.url, max_retries=0, timeout=30
    )
    try:
        yield sdk
    finally:
        await sdk.close()


async def create(client, **changes):
    request = {"model": MODEL, "max_tokens": 512, "messages": HELLO, **changes}
    return await client.messages.create(**request)


async def test_a_scripted_tool_call_and_its_result(fake, client):
    fake.reply(text("Looking."), tool_use("lookup", {"q": "x"}), usage=(120, 30))
    fake.reply(text("Found it."))

    first = await create(client, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    assert first.usage.input_tokens == 120 and first.usage.output_tokens == 30
    call = first.content[1]
    assert call.type == "tool_use" and call.id.startswith("toolu_01") and call.input == {"q": "x"}

    second = await create(
        client,
        tools=TOOLS,
        messages=[
            *HELLO,
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "42"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].text == "Found it."
    assert second.usage.input_tokens > 0  # estimated when not scripted
    assert fake.requests[-1].tool_results() == {call.id: "42"}


async def test_a_scripted_answer_can_read_the_request(fake, client):
    fake.reply(lambda request: Reply([text(f"{len(request.messages)} message(s)")]))

    answer = await create(client)

    assert answer.content[0].text == "1 message(s)"


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("overloaded", anthropic.OverloadedError, 529),
        ("rate_limited", anthropic.RateLimitError, 429),
        ("server_error", anthropic.InternalServerError, 500),
    ],
)
async def test_errors_have_the_real_shapes(fake, client, fault, error, status):
    getattr(fake, fault)()

    with pytest.raises(error) as raised:
        await create(client)

    assert raised.value.status_code == status
    assert (
        raised.value.type
        == {529: "overloaded_error", 429: "rate_limit_error", 500: "api_error"}[status]
    )
    assert raised.value.request_id.startswith("req_")
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "1"
        assert raised.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


async def test_a_dropped_connection_is_a_connection_error(fake, client):
    fake.drop()

    with pytest.raises(anthropic.APIConnectionError):
        await create(client)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "claude-imaginary"}, "model: claude-imaginary"),
        ({"max_tokens": 100_000}, "max_tokens: 100000 > 64000"),
        ({"messages": []}, "messages: at least one message is required"),
        (
            {"messages": [{"role": "assistant", "content": "hi"}, *HELLO]},
            'first message must use the "user" role',
        ),
        (
            {"messages": [*HELLO, {"role": "assistant", "content": "Sure"}]},
            "does not support assistant message prefill",
        ),
        (
            {
                "tools": TOOLS,
                "messages": [
                    *HELLO,
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
                        ],
                    },
                    {"role": "user", "content": "what did you find?"},
                ],
            },
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
        ),
        (
            {
                "tools": TOOLS,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}
                        ],
                    }
                ],
            },
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9",
        ),
        (
            {"tool_choice": {"type": "any"}},
            "tool_choice may only be specified while providing tools",
        ),
        ({"tools": [*TOOLS, *TOOLS]}, "Tool names must be unique"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "tool", "name": "other"}},
            "Tool 'other' not found",
        ),
    ],
)
async def test_requests_the_api_refuses_are_refused_and_recorded(fake, client, changes, message):
    with pytest.raises(anthropic.APIStatusError) as raised:
        await create(client, **changes)

    assert message in str(raised.value)
    [violation] = fake.take_violations()
    assert message in violation


async def test_consecutive_turns_of_one_role_are_one_turn(fake, client):
    fake.reply(text("ok"))

    await create(client, messages=[*HELLO, {"role": "user", "content": "and more"}])

    assert fake.take_violations() == []


async def test_a_wrong_key_is_an_authentication_error(fake):
    sdk = anthropic.AsyncAnthropic(api_key="sk-ant-wrong", base_url=fake.url, max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError):
            await create(sdk)
    finally:
        await sdk.close()
    assert fake.take_violations() == ["401 authentication_error: invalid x-api-key"]


async def test_a_script_the_api_would_never_answer_is_a_test_bug(fake, client):
    fake.reply(text("no tool, although one is required"))

    with pytest.raises(anthropic.InternalServerError):
        await create(client, tools=TOOLS, tool_choice={"type": "any"})

    problems = fake.take_problems()
    assert problems and "no tool call under tool_choice any" in problems[0]


async def test_under_auto_a_model_may_name_a_tool_nobody_offered(fake, client):
    fake.reply(tool_use("delete_everything", {}))

    answer = await create(client, tools=TOOLS)

    assert answer.content[0].name == "delete_everything"
