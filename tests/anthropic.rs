//! OpenAI chat clients served by Claude through an `anthropic` provider: the request
//! translated into a Messages request (checked by a fake that refuses what Anthropic
//! refuses: a wrong `x-api-key`, no `anthropic-version`, no `max_tokens`), the answer
//! and the stream translated back, and the cost exact to the last decimal, with
//! Anthropic's cache reads and writes priced as their own token classes.

#![expect(
    clippy::unwrap_used,
    reason = "the fake upstream and helpers below are test code; a failure should fail the test"
)]

mod common;

use std::str::FromStr;

use common::anthropic::FakeAnthropic;
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn claude_config(base_url: &str) -> String {
    one_offer_config(
        "anthropic",
        base_url,
        "",
        "US",
        "claude",
        "claude-sonnet-4-5",
        Some("anthropic/claude-sonnet-4-5"),
    )
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_chat_client_is_answered_by_claude_with_cache_reads_and_writes_priced_exactly() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = gw
        .chat(json!({"model": "claude", "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "How many languages are there?"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    // 12 uncached·3 + 100 written·3.75 + 1000 read·0.30 + 6 out·15 = 801 per 1M tokens.
    let expected = Decimal::from_str("0.000801").unwrap();
    let header = resp.headers()["x-tollgate-cost-usd"].to_str().unwrap();
    assert_eq!(Decimal::from_str(header).unwrap(), expected);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! Roughly 7,000 languages are spoken today."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 1112);
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        1000
    );
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    assert_eq!(body["tollgate"]["usage"]["cache_write_tokens"], 100);
    assert_eq!(body["tollgate"]["usage_source"], "reported");

    let (headers, sent) = fake.received().pop().unwrap();
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert!(headers.get("authorization").is_none());
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "Answer briefly.");
    assert_eq!(sent["max_tokens"], 4096, "Anthropic requires one");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "How many languages are there?"}]}])
    );

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(
        (
            &row["input_tokens"],
            &row["cached_input_tokens"],
            &row["cache_write_tokens"]
        ),
        (&json!(1112), &json!(1000), &json!(100))
    );
    assert_eq!(row["provider"], "p1");
}

#[tokio::test]
async fn a_claude_stream_reaches_a_chat_client_as_chunks_with_the_usage_chunk_it_asked_for() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = gw
        .chat(json!({"model": "claude", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(resp).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello!");
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    // 25 uncached·3 + 2000 read·0.30 + 15 out·15 = 900 per 1M tokens.
    let expected = Decimal::from_str("0.0009").unwrap();
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 2025);
    assert_eq!(usage["usage"]["completion_tokens"], 15);
    assert_eq!(usd(&usage["tollgate"]["cost_usd"]), expected);
    assert!(
        !data.iter().any(|d| d.contains("ping")),
        "Anthropic's pings are not relayed"
    );

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["usage_source"], "reported");
    assert_eq!(row["outcome"], "completed");
    assert_eq!(fake.received()[0].1["stream"], true);
}

#[tokio::test]
async fn a_stream_without_include_usage_is_still_billed_from_anthropics_report() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = gw
        .chat(json!({"model": "claude", "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    let data = sse_data(resp).await;
    assert!(
        data.iter().all(|d| !d.contains("\"usage\"")),
        "no usage chunk was asked for"
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), Decimal::from_str("0.0009").unwrap());
    assert_eq!(row["usage_source"], "reported");
}

#[tokio::test]
async fn a_field_claude_cannot_honour_is_refused_by_name_and_nothing_is_sent() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = gw
        .chat(json!({"model": "claude", "logprobs": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    let (status, body) = error_of(resp).await;
    gw.stop().await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(body["error"]["param"], "logprobs");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn an_offer_that_can_honour_the_field_serves_it_instead() {
    let claude = FakeAnthropic::start().await;
    let openai = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "claude-us"
kind = "anthropic"
base_url = "{}"
api_key = "env:P1_KEY"
region = "anthropic:us"
jurisdiction = "US"
scope = "global"

[[providers]]
id = "openai-us"
kind = "openai"
base_url = "{}"
api_key = "env:P2_KEY"
region = "openai:us"
jurisdiction = "US"
scope = "global"

[[models]]
name = "assistant"
offers = [
  {{ provider = "claude-us", upstream_model = "claude-sonnet-4-5", price = "anthropic/claude-sonnet-4-5" }},
  {{ provider = "openai-us", upstream_model = "o1", price = "openai/o1" }},
]
"#,
        claude.base_url, openai.base_url
    );
    let mut gw = start_gateway(&config).await;
    let resp = gw
        .chat(json!({"model": "assistant", "logprobs": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "openai-us");
    let resp = gw
        .chat(json!({"model": "assistant", "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(resp.headers()["x-tollgate-provider"], "claude-us");
    gw.stop().await;
    assert_eq!(claude.received().len(), 1);
    assert_eq!(openai.count(), 1);
}

#[tokio::test]
async fn one_hour_cache_writes_are_priced_at_their_own_rate_and_kept_in_the_record() {
    let fake = FakeAnthropic::answering("anthropic/message_cache_1h.json").await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = gw
        .chat(json!({"model": "claude", "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    // 20 uncached·3 + 1000 written for 5 min·3.75 + 3000 written for 1 h·6 + 10 out·15
    // = 60 + 3750 + 18000 + 150 = 21960 per 1M tokens.
    let expected = Decimal::from_str("0.02196").unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    assert_eq!(body["tollgate"]["usage"]["cache_write_1h_tokens"], 3000);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["cache_write_tokens"], 4000);
    assert_eq!(row["cache_write_1h_tokens"], 3000);
}
