"""The official Anthropic Python SDK against the built tollgate binary on the demo config.

`POST /v1/messages` served by DeepSeek-R1 on the demo's mock Azure AI Foundry offer, through
tollgate's Messages <-> chat-completions translation: the SDK's own request and event
parsing, exact cost against the catalog price, the record, and errors in Anthropic's shape.
Run by .ci/run after `cargo build` (TOLLGATE_BIN names the binary).
"""

import sqlite3
from decimal import Decimal

import anthropic
import httpx
import pytest
from conftest import start_tollgate

KEY = "tg-demo-key"
# USD per 1M tokens of the demo's R1 offer on Azure AI Foundry (config/prices.toml).
R1_FOUNDRY = {"input": Decimal("1.35"), "output": Decimal("5.40")}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    ledger = tmp_path_factory.mktemp("ledger") / "anthropic-sdk.db"
    proc, base, _admin = start_tollgate(ledger, TOLLGATE__MOCK__LATENCY="20ms", TOLLGATE__MOCK__CHUNK_INTERVAL="2ms")
    yield {"base": base, "proc": proc, "ledger": ledger}
    if proc.poll() is None:
        proc.kill()


def client(gw, key=KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw["base"], api_key=key, max_retries=0)


def r1_cost(usage) -> Decimal:
    # A chat upstream reports no cache writes; cache reads would be priced at the input
    # rate here (the Foundry offer has no cached price).
    prompt = usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return (prompt * R1_FOUNDRY["input"] + usage.output_tokens * R1_FOUNDRY["output"]) / Decimal(1_000_000)


def record(gw, request_id):
    return httpx.get(
        f"{gw['base']}/v1/tollgate/requests/{request_id}",
        headers={"authorization": f"Bearer {KEY}"},
    ).json()


def test_messages_create_is_answered_in_anthropics_shape_with_exact_cost(gateway):
    raw = client(gateway).messages.with_raw_response.create(
        model="deepseek-r1-azure",
        max_tokens=1024,
        system="Answer briefly.",
        messages=[{"role": "user", "content": "How many languages are there?"}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    text = "".join(b.text for b in message.content if b.type == "text")
    assert text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    extra = message.model_extra["tollgate"]
    expected = r1_cost(message.usage)
    assert Decimal(raw.headers["x-tollgate-cost-usd"]) == expected == Decimal(extra["cost_usd"])
    assert raw.headers["x-tollgate-jurisdiction"] == "EU" == extra["jurisdiction"]
    stored = record(gateway, extra["request_id"])
    assert Decimal(stored["cost_usd"]) == expected
    assert stored["route"] == "messages"


def test_a_stream_is_parsed_by_the_sdk_and_its_message_delta_carries_the_cost(gateway):
    with client(gateway).messages.stream(
        model="deepseek-r1-azure",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Name three rivers."}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.usage.output_tokens > 0
    # The raw events: the message_delta event carries the tollgate object.
    events = list(
        client(gateway).messages.create(
            model="deepseek-r1-azure",
            max_tokens=1024,
            messages=[{"role": "user", "content": "Name three rivers."}],
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop")
    delta = events[-2]
    tollgate = delta.model_extra["tollgate"]
    stored = record(gateway, tollgate["request_id"])
    assert Decimal(tollgate["cost_usd"]) == Decimal(stored["cost_usd"])
    assert stored["usage_source"] == "reported"
    assert stored["output_tokens"] == delta.usage.output_tokens


# USD per 1M tokens of the demo's Claude offers (config/prices.toml, anthropic/claude-sonnet-4-5).
SONNET = {"input": Decimal("3"), "write": Decimal("3.75"), "read": Decimal("0.30"), "output": Decimal("15")}


def test_claude_is_served_natively_with_cache_reads_priced_as_their_own_class(gateway):
    raw = client(gateway).messages.with_raw_response.create(
        model="claude-sonnet",
        max_tokens=300,
        system=[{"type": "text", "text": "You answer in one paragraph.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "What is a gateway?"},
            {"role": "assistant", "content": "A gateway forwards requests."},
            {"role": "user", "content": "And what does it cost?"},
        ],
    )
    message = raw.parse()
    usage = message.usage
    assert usage.cache_read_input_tokens > 0, "the mock answers a cached prefix as a cache hit"
    expected = (
        usage.input_tokens * SONNET["input"]
        + (usage.cache_creation_input_tokens or 0) * SONNET["write"]
        + usage.cache_read_input_tokens * SONNET["read"]
        + usage.output_tokens * SONNET["output"]
    ) / Decimal(1_000_000)
    extra = message.model_extra["tollgate"]
    assert Decimal(extra["cost_usd"]) == expected == Decimal(raw.headers["x-tollgate-cost-usd"])
    assert extra["provider"] == "anthropic" and extra["jurisdiction"] == "US"
    eu = client(gateway).messages.create(
        model="claude-sonnet",
        max_tokens=50,
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"x-tollgate-residency": "EU"},
    )
    assert eu.model_extra["tollgate"]["provider"] == "anthropic-eu"
    assert eu.model_extra["tollgate"]["jurisdiction"] == "EU"


def test_errors_are_the_sdks_own_exceptions(gateway):
    with pytest.raises(anthropic.AuthenticationError):
        client(gateway, key="not-a-key").messages.create(
            model="deepseek-r1-azure", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(gateway).messages.create(
            model="deepseek-r1-azure", max_tokens=10, extra_body={"top_k": 5}, messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.body["error"]["param"] == "top_k"
    with pytest.raises(anthropic.NotFoundError):
        client(gateway).messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


def test_every_messages_request_is_in_the_ledger(gateway):
    gateway["proc"].terminate()
    gateway["proc"].wait(timeout=30)
    rows = sqlite3.connect(gateway["ledger"]).execute(
        "SELECT count(*) FROM requests WHERE route = 'messages'"
    ).fetchone()
    # Three answers, two streams, three refusals (each refusal is recorded too).
    assert rows[0] == 8
