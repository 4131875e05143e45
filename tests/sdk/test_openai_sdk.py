"""The official OpenAI Python SDK against the built tollgate binary on the demo config.

Run by .ci/run after `cargo build`: TOLLGATE_BIN names the binary. Every model of the
demo is served by the built-in mock upstream, so no provider key is needed.
"""

import signal
import sqlite3
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from conftest import start_tollgate

ROOT = Path(__file__).resolve().parents[2]
KEY = "tg-demo-key"
# USD per 1M tokens of the demo's o1 offer (config/prices.toml, openai/o1).
O1_PRICE = {"input": Decimal("15"), "cached": Decimal("7.5"), "output": Decimal("60")}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    ledger = tmp_path_factory.mktemp("ledger") / "sdk.db"
    proc, base, _admin = start_tollgate(ledger, TOLLGATE__MOCK__LATENCY="20ms", TOLLGATE__MOCK__CHUNK_INTERVAL="2ms")
    state = {"base": base, "proc": proc, "ledger": ledger, "requests": 0}
    yield state
    if proc.poll() is None:
        proc.kill()


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw["base"] + "/v1", api_key=KEY, max_retries=0)


def o1_cost(usage) -> Decimal:
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    total = (
        (usage.prompt_tokens - cached) * O1_PRICE["input"]
        + cached * O1_PRICE["cached"]
        + usage.completion_tokens * O1_PRICE["output"]
    )
    return total / Decimal(1_000_000)


def test_non_streaming_reports_cost_residency_and_usage(gateway):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="o1", messages=[{"role": "user", "content": "Explain entropy briefly."}], max_tokens=400
    )
    gateway["requests"] += 1
    completion = raw.parse()
    headers = raw.headers
    extra = completion.model_extra["tollgate"]
    assert headers["x-tollgate-provider"] == "openai" == extra["provider"]
    assert headers["x-tollgate-jurisdiction"] == "US" == extra["jurisdiction"]
    assert headers["x-tollgate-region"] == "openai:us"
    assert extra["usage_source"] == "reported"
    assert completion.usage.completion_tokens_details.reasoning_tokens > 0
    assert int(headers["x-tollgate-output-tokens"]) == completion.usage.completion_tokens
    expected = o1_cost(completion.usage)
    assert Decimal(headers["x-tollgate-cost-usd"]) == expected
    assert Decimal(extra["cost_usd"]) == expected
    record = httpx.get(
        f"{gateway['base']}/v1/tollgate/requests/{extra['request_id']}",
        headers={"authorization": f"Bearer {KEY}"},
    ).json()
    assert Decimal(record["cost_usd"]) == expected


def test_streaming_with_usage_carries_the_tollgate_object(gateway):
    stream = client(gateway).chat.completions.create(
        model="deepseek-r1-azure",
        messages=[{"role": "user", "content": "How many languages are there?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    gateway["requests"] += 1
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("<think>")
    final = [c for c in chunks if c.usage is not None][-1]
    extra = final.model_extra["tollgate"]
    assert extra["jurisdiction"] == "EU"
    assert extra["provider"] == "azure-swedencentral"
    # R1 on Azure AI Foundry: 1.35 in / 5.40 out per 1M, no cache.
    expected = (final.usage.prompt_tokens * Decimal("1.35") + final.usage.completion_tokens * Decimal("5.40")) / Decimal(1_000_000)
    assert Decimal(extra["cost_usd"]) == expected


def test_streaming_without_usage_never_sees_an_empty_choices_chunk(gateway):
    with client(gateway).chat.completions.with_streaming_response.create(
        model="deepseek-r1-github", messages=[{"role": "user", "content": "Hi"}], stream=True
    ) as response:
        assert response.headers["x-tollgate-jurisdiction"] == "US"
        chunks = list(response.parse())
    gateway["requests"] += 1
    assert chunks and all(len(c.choices) > 0 for c in chunks)


def test_stream_without_usage_is_billed_from_reported_usage(gateway):
    # The client does not ask for usage; tollgate asks the upstream for it, hides the
    # usage chunk, and bills the stream from what the provider reported (not an estimate).
    with client(gateway).chat.completions.with_streaming_response.create(
        model="o1", messages=[{"role": "user", "content": "Why is the sky blue?"}], stream=True
    ) as response:
        request_id = response.headers["x-tollgate-request-id"]
        chunks = list(response.parse())
    gateway["requests"] += 1
    assert chunks and all(c.usage is None for c in chunks)
    assert all("tollgate" not in (c.model_extra or {}) for c in chunks)
    record = httpx.get(
        f"{gateway['base']}/v1/tollgate/requests/{request_id}",
        headers={"authorization": f"Bearer {KEY}"},
    ).json()
    assert record["usage_source"] == "reported"
    # o1 reasons: the reported output includes hidden reasoning a count could not see.
    assert record["reasoning_tokens"] > 0
    cached = record["cached_input_tokens"] or 0
    expected = (
        (record["input_tokens"] - cached) * O1_PRICE["input"]
        + cached * O1_PRICE["cached"]
        + record["output_tokens"] * O1_PRICE["output"]
    ) / Decimal(1_000_000)
    assert Decimal(record["cost_usd"]) == expected


def test_azure_openai_client_uses_the_deployments_route(gateway):
    azure = openai.AzureOpenAI(
        azure_endpoint=gateway["base"], api_key=KEY, api_version="2024-10-21", max_retries=0
    )
    raw = azure.chat.completions.with_raw_response.create(
        model="deepseek-flash", messages=[{"role": "user", "content": "Hello"}]
    )
    gateway["requests"] += 1
    completion = raw.parse()
    assert raw.headers["x-tollgate-jurisdiction"] == "CN"
    assert completion.model_extra["tollgate"]["provider"] == "deepseek"
    assert completion.choices[0].message.content


def test_errors_raise_the_sdks_usual_exceptions(gateway):
    bad = openai.OpenAI(base_url=gateway["base"] + "/v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad.chat.completions.create(model="o1", messages=[{"role": "user", "content": "x"}])
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        client(gateway).chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    gateway["requests"] += 2


def test_models_lists_the_demo_models(gateway):
    ids = {m.id for m in client(gateway).models.list()}
    assert {"deepseek-r1", "o1", "deepseek-flash"} <= ids


# USD per 1M input tokens of the demo's embeddings offers (openai/text-embedding-3-small).
EMBEDDING_PRICE = Decimal("0.02")


def test_embeddings_are_priced_and_honour_the_encoding_and_residency(gateway):
    # The SDK asks for base64 by default and decodes it: the vectors come through as sent.
    raw = client(gateway).embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["Why is the sky blue?", "Hello"]
    )
    gateway["requests"] += 1
    result = raw.parse()
    assert [len(d.embedding) for d in result.data] == [1536, 1536]
    assert abs(sum(x * x for x in result.data[0].embedding) - 1.0) < 1e-3
    expected = Decimal(result.usage.prompt_tokens) * EMBEDDING_PRICE / Decimal(1_000_000)
    assert result.usage.total_tokens == result.usage.prompt_tokens > 0
    assert Decimal(raw.headers["x-tollgate-cost-usd"]) == expected
    extra = result.model_extra["tollgate"]
    assert Decimal(extra["cost_usd"]) == expected
    assert extra["usage"]["output_tokens"] == 0
    # Floats asked for explicitly, from the EU offer: the same vector, served in the EU.
    eu = client(gateway).embeddings.with_raw_response.create(
        model="text-embedding-3-small",
        input="Why is the sky blue?",
        encoding_format="float",
        extra_headers={"x-tollgate-residency": "EU"},
    )
    gateway["requests"] += 1
    assert eu.headers["x-tollgate-jurisdiction"] == "EU"
    assert len(eu.parse().data[0].embedding) == 1536
    record = httpx.get(
        f"{gateway['base']}/v1/tollgate/requests/{extra['request_id']}",
        headers={"authorization": f"Bearer {KEY}"},
    ).json()
    assert record["route"] == "embeddings"
    assert Decimal(record["cost_usd"]) == expected


def test_embeddings_through_the_azure_client_and_refusals(gateway):
    azure = openai.AzureOpenAI(
        azure_endpoint=gateway["base"], api_key=KEY, api_version="2024-10-21", max_retries=0
    )
    result = azure.embeddings.create(model="text-embedding-3-small", input="Hello", dimensions=256)
    gateway["requests"] += 1
    assert len(result.data[0].embedding) == 256
    assert result.model_extra["tollgate"]["pricing"] == "priced"
    with pytest.raises(openai.BadRequestError) as wrong_kind:
        client(gateway).embeddings.create(model="o1", input="x")
    assert wrong_kind.value.code == "invalid_request"
    with pytest.raises(openai.BadRequestError):
        client(gateway).chat.completions.create(
            model="text-embedding-3-small", messages=[{"role": "user", "content": "x"}]
        )
    gateway["requests"] += 2


def test_sigterm_flushes_the_ledger_and_exits_zero(gateway):
    # Requests of its own, answered just before the signal (so their records are still
    # queued for the writer), whether or not the other tests ran first.
    ids = []
    for stream in (False, True, False):
        raw = client(gateway).chat.completions.with_raw_response.create(
            model="o1", messages=[{"role": "user", "content": "One more, then stop."}], stream=stream
        )
        ids.append(raw.headers["x-tollgate-request-id"])
        if stream:
            assert any(chunk.choices for chunk in raw.parse())
        gateway["requests"] += 1
    proc = gateway["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    ledger = sqlite3.connect(gateway["ledger"])
    rows = ledger.execute("SELECT count(*) FROM requests").fetchone()[0]
    assert rows == gateway["requests"] >= len(ids)
    stored = {r[0] for r in ledger.execute("SELECT request_id FROM requests")}
    assert set(ids) <= stored
