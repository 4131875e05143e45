"""The official OpenAI Python SDK's Responses API against the built tollgate binary on the demo config.

`POST /v1/responses` served by the demo's o1 (the built-in mock speaking OpenAI's chat
completions) through tollgate's Responses <-> chat-completions translation: the SDK's own
parsing of the `response` object and of the `response.*` event stream (including its
stream-state checks in `responses.stream`), exact cost against the catalog price, the
record, and the stateless refusals as the SDK's usual exceptions.
Run by .ci/run after `cargo build` (TOLLGATE_BIN names the binary).
"""

from decimal import Decimal

import httpx
import openai
import pytest
from conftest import start_tollgate

KEY = "tg-demo-key"
# USD per 1M tokens of the demo's o1 offer (config/prices.toml, openai/o1).
O1_PRICE = {"input": Decimal("15"), "cached": Decimal("7.5"), "output": Decimal("60")}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    ledger = tmp_path_factory.mktemp("ledger") / "responses-sdk.db"
    proc, base, _admin = start_tollgate(ledger, TOLLGATE__MOCK__LATENCY="20ms", TOLLGATE__MOCK__CHUNK_INTERVAL="2ms")
    yield {"base": base, "proc": proc}
    if proc.poll() is None:
        proc.kill()


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw["base"] + "/v1", api_key=KEY, max_retries=0)


def o1_cost(usage) -> Decimal:
    # Responses usage: input_tokens includes the cached ones; output includes reasoning.
    cached = usage.input_tokens_details.cached_tokens
    total = (
        (usage.input_tokens - cached) * O1_PRICE["input"]
        + cached * O1_PRICE["cached"]
        + usage.output_tokens * O1_PRICE["output"]
    )
    return total / Decimal(1_000_000)


def record(gw, request_id):
    return httpx.get(
        f"{gw['base']}/v1/tollgate/requests/{request_id}",
        headers={"authorization": f"Bearer {KEY}"},
    ).json()


def test_responses_create_is_answered_as_a_response_with_exact_cost(gateway):
    raw = client(gateway).responses.with_raw_response.create(
        model="o1",
        instructions="Answer briefly.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Explain entropy briefly."}]}],
        max_output_tokens=400,
        reasoning={"effort": "low"},
    )
    response = raw.parse()
    assert response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    usage = response.usage
    assert usage.output_tokens_details.reasoning_tokens > 0, "o1's hidden reasoning is reported"
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    extra = response.model_extra["tollgate"]
    expected = o1_cost(usage)
    assert Decimal(raw.headers["x-tollgate-cost-usd"]) == expected == Decimal(extra["cost_usd"])
    assert int(raw.headers["x-tollgate-output-tokens"]) == usage.output_tokens
    assert raw.headers["x-tollgate-jurisdiction"] == "US" == extra["jurisdiction"]
    stored = record(gateway, extra["request_id"])
    assert Decimal(stored["cost_usd"]) == expected
    assert stored["route"] == "responses"


def test_a_raw_stream_follows_the_documented_event_sequence_and_completes_with_the_cost(gateway):
    stream = client(gateway).responses.create(model="o1", input="Why is the sky blue?", stream=True)
    kinds, text, completed = [], [], None
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text.append(event.delta)
        if event.type == "response.completed":
            completed = event.response
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert completed is not None and completed.status == "completed"
    assert completed.output_text == "".join(text) != ""
    extra = completed.model_extra["tollgate"]
    expected = o1_cost(completed.usage)
    assert Decimal(extra["cost_usd"]) == expected
    stored = record(gateway, extra["request_id"])
    assert Decimal(stored["cost_usd"]) == expected
    assert stored["route"] == "responses" and stored["outcome"] == "completed"


def test_the_sdks_stream_helper_accepts_the_translated_events(gateway):
    with client(gateway).responses.stream(model="o1", input="Name three rivers.") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.output_text == text
    assert Decimal(final.model_extra["tollgate"]["cost_usd"]) == o1_cost(final.usage)


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"store": True}, "store"), ({"previous_response_id": "resp_123"}, "previous_response_id")],
)
def test_stateless_refusals_name_the_field(gateway, extra, param):
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway).responses.create(model="o1", input="hi", **extra)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param
    assert "stateless" in err.value.body["message"]
