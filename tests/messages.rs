//! The Anthropic Messages surface, `POST /v1/messages`: served natively by an
//! `anthropic` provider (the client's body relayed with only the model changed, the
//! answer and the event stream relayed with the `tollgate` object added) and by a
//! chat-completions upstream (DeepSeek-R1 here) through the explicit translation
//! both ways; exact costs, the ledger record, errors in Anthropic's shape.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers below; a failure should fail the test"
)]

mod common;

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use common::anthropic::FakeAnthropic;
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

async fn post(gw: &Gateway, body: Value, key_header: (&str, &str)) -> reqwest::Response {
    Gateway::client()
        .post(format!("{}/v1/messages", gw.url))
        .header(key_header.0, key_header.1)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn claude(base_url: &str) -> String {
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

#[tokio::test]
async fn an_anthropic_client_is_served_natively_with_its_own_fields_and_exact_cost() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude(&fake.base_url)).await;
    let resp = post(
        &gw,
        json!({"model": "claude", "max_tokens": 300, "top_k": 5, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi",
                "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}),
        ("x-api-key", KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(
        body["content"][0]["text"],
        "Hello! Roughly 7,000 languages are spoken today."
    );
    assert_eq!(
        body["usage"]["cache_read_input_tokens"], 1000,
        "Anthropic's usage as sent"
    );
    // 12·3 + 100·3.75 + 1000·0.30 + 6·15 = 801 per 1M tokens.
    assert_eq!(
        usd(&body["tollgate"]["cost_usd"]),
        Decimal::from_str("0.000801").unwrap()
    );
    let (headers, sent) = fake.received().pop().unwrap();
    assert_eq!(
        headers["x-api-key"], "secret-P1_KEY",
        "the provider's key, not the client's"
    );
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["top_k"], 5, "the client's own fields pass through");
    assert_eq!(
        sent["messages"][0]["content"][0]["cache_control"]["ttl"],
        "1h"
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "messages");
    assert_eq!(
        usd(&row["cost_usd"]),
        Decimal::from_str("0.000801").unwrap()
    );
}

#[tokio::test]
async fn a_native_stream_is_relayed_event_for_event_with_the_cost_in_message_delta() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude(&fake.base_url)).await;
    let resp = post(
        &gw,
        json!({"model": "claude", "max_tokens": 300, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}),
        ("authorization", &format!("Bearer {KEY}")),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got = named_events(resp).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // 25·3 + 2000·0.30 + 15·15 = 900 per 1M tokens.
    let expected = Decimal::from_str("0.0009").unwrap();
    let delta = &got[6].1;
    assert_eq!(delta["usage"]["output_tokens"], 15);
    assert_eq!(usd(&delta["tollgate"]["cost_usd"]), expected);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["outcome"], "completed");
}

#[tokio::test]
async fn an_anthropic_client_is_served_by_deepseek_r1_through_the_translation() {
    let fake = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let at = Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap();
    let mut gw = start_gateway_at(&deepseek_r1(&fake.base_url), Some(at)).await;
    let resp = post(
        &gw,
        json!({"model": "r1", "max_tokens": 1000, "system": "Be kind.",
            "messages": [{"role": "user", "content": "hello"}]}),
        ("x-api-key", KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["type"], "thinking");
    assert_eq!(
        body["content"][1]["text"],
        "Hello! How can I assist you today?"
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 360, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 640, "output_tokens": 92})
    );
    // 2025-10-01 (V3.2): 360·0.28 + 640·0.028 + 92·0.42 = 157.36 per 1M tokens.
    let expected = Decimal::from_str("0.00015736").unwrap();
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    assert_eq!(body["tollgate"]["jurisdiction"], "CN");
    let sent = &fake.received()[0];
    assert_eq!(sent.path_and_query, "/chat/completions");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hello"}])
    );
    assert_eq!(sent.body["max_tokens"], 1000);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(usd(&rows.last().unwrap()["cost_usd"]), expected);
}

#[tokio::test]
async fn a_deepseek_stream_reaches_an_anthropic_client_as_anthropic_events() {
    let fake = FakeUpstream::start(Reply::sse_events(&fixture("deepseek/chat_stream.sse"))).await;
    let at = Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap();
    let mut gw = start_gateway_at(&deepseek_r1(&fake.base_url), Some(at)).await;
    let resp = post(
        &gw,
        json!({"model": "r1", "max_tokens": 4000, "stream": true,
            "messages": [{"role": "user", "content": "hello"}]}),
        ("x-api-key", KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got = named_events(resp).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let blocks: Vec<&str> = got
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d["content_block"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        blocks,
        ["thinking", "text"],
        "reasoning first, then the answer"
    );
    let starts = names
        .iter()
        .filter(|n| **n == "content_block_start")
        .count();
    let stops = names.iter().filter(|n| **n == "content_block_stop").count();
    assert_eq!(starts, stops, "every block is closed");
    let delta = &got[got.len() - 2].1;
    // 2025-10-01 (V3.2): 6·0.28 + 1552·0.42 = 653.52 per 1M tokens.
    let expected = Decimal::from_str("0.00065352").unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 1552);
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(usd(&delta["tollgate"]["cost_usd"]), expected);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["usage_source"], "reported");
}

#[tokio::test]
async fn errors_come_in_anthropics_shape_and_untranslatable_fields_are_named() {
    let fake = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let mut gw = start_gateway(&deepseek_r1(&fake.base_url)).await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let resp = post(
        &gw,
        json!({"model": "r1", "max_tokens": 10, "messages": hi}),
        ("x-api-key", "not-a-key"),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let resp = post(
        &gw,
        json!({"model": "r1", "messages": hi}),
        ("x-api-key", KEY),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, &body["error"]["type"]),
        (400, &json!("invalid_request_error"))
    );
    assert_eq!(body["error"]["param"], "max_tokens");
    let resp = post(
        &gw,
        json!({"model": "r1", "max_tokens": 10, "top_k": 5, "messages": hi}),
        ("x-api-key", KEY),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "top_k", "DeepSeek has no top_k");
    let resp = Gateway::client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("x-tollgate-residency", "EU")
        .json(&json!({"model": "r1", "max_tokens": 10, "messages": hi}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, &body["error"]["type"]),
        (403, &json!("permission_error"))
    );
    gw.stop().await;
    assert_eq!(fake.count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn count_tokens_asks_claude_and_counts_itself_for_other_upstreams() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude(&fake.base_url)).await;
    let ask = json!({"model": "claude", "messages": [{"role": "user", "content": "Hi"}]});
    let resp = Gateway::client()
        .post(format!("{}/v1/messages/count_tokens", gw.url))
        .header("x-api-key", KEY)
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-usage-source"], "reported");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"input_tokens": 1234})
    );
    let (headers, sent) = fake.received().pop().unwrap();
    assert_eq!(headers["x-api-key"], "secret-P1_KEY");
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "count_tokens");
    assert!(row["cost_usd"].is_null(), "counting is not billed");

    let r1 = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let mut gw = start_gateway(&deepseek_r1(&r1.base_url)).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/messages/count_tokens", gw.url))
        .header("x-api-key", KEY)
        .json(&json!({"model": "r1", "messages": [{"role": "user", "content": "Hi there"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-tollgate-usage-source"], "estimated");
    let n = resp.json::<Value>().await.unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    assert!((3..20).contains(&n), "{n}");
    gw.stop().await;
    assert_eq!(
        r1.count(),
        0,
        "DeepSeek has no counting API: nothing is sent"
    );
}

#[tokio::test]
async fn output_beyond_the_clients_max_tokens_is_not_billed_as_reported_on_the_native_path() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude(&fake.base_url)).await;
    // The fixture reports 6 output tokens; the client allowed 3.
    let resp = post(
        &gw,
        json!({"model": "claude", "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]}),
        ("x-api-key", KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["tollgate"]["usage_source"], "implausible");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.last().unwrap()["usage_source"], "implausible");
}

/// Regression: a native Messages answer without any usage was billed with no input
/// (no chat translation was made, so there was no prompt to count). tollgate now
/// counts the client's own prompt, as it would a chat client's.
#[tokio::test]
async fn a_native_answer_without_usage_is_billed_from_tollgates_count_of_the_prompt() {
    let answer = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
        "content":[{"type":"text","text":"Roughly seven thousand."}],"stop_reason":"end_turn"}"#;
    let fake = FakeUpstream::start(Reply::json(answer)).await;
    let mut gw = start_gateway(&claude(&fake.base_url)).await;
    let question = "How many languages are spoken in the world today?";
    let resp = post(
        &gw,
        json!({"model": "claude", "max_tokens": 100,
            "messages": [{"role": "user", "content": question}]}),
        ("x-api-key", KEY),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["tollgate"]["usage_source"], "estimated");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    // The same prompt as a chat client sends it, counted by the offer's tokenizer.
    let chat = tollgate::api::openai::ChatRequest::parse(
        json!({"model": "claude", "messages": [{"role": "user",
            "content": [{"type": "text", "text": question}]}]})
        .to_string()
        .as_bytes(),
        None,
    )
    .unwrap();
    let kind = tollgate::tokens::estimate::TokenizerKind::for_model("claude-sonnet-4-5");
    let counted = chat.prompt_tokens(kind);
    assert!(counted > 10, "{counted}");
    assert_eq!(row["input_tokens"], counted);
    assert_eq!(row["usage_source"], "estimated");
    assert!(usd(&row["cost_usd"]) > Decimal::ZERO);
}
