//! A Responses client served by Claude: the request goes through the Responses → chat
//! translation and on to Anthropic's Messages API; the answer comes back as a
//! Messages answer read as a chat completion and translated into a `response`, and
//! the stream as Anthropic events decoded into neutral events and encoded as the
//! documented `response.*` sequence. Two translations, one meter: the cost is exact,
//! with Anthropic's cache reads and writes priced as their own token classes.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers below; a failure should fail the test"
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
        "EU",
        "claude",
        "claude-sonnet-4-5",
        Some("anthropic/claude-sonnet-4-5"),
    )
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

async fn post(gw: &Gateway, body: Value) -> reqwest::Response {
    Gateway::client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_responses_client_is_answered_by_claude_with_exact_cost() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = post(
        &gw,
        json!({"model": "claude", "instructions": "Answer briefly.",
            "max_output_tokens": 500, "input": "How many languages are there?"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // 12 uncached·3 + 100 written·3.75 + 1000 read·0.30 + 6 out·15 = 801 per 1M tokens.
    let expected = Decimal::from_str("0.000801").unwrap();
    let header = resp.headers()["x-tollgate-cost-usd"].to_str().unwrap();
    assert_eq!(Decimal::from_str(header).unwrap(), expected);
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "EU");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "Hello! Roughly 7,000 languages are spoken today."
    );
    assert_eq!(body["usage"]["input_tokens"], 1112);
    assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 1000);
    assert_eq!(body["usage"]["output_tokens"], 6);
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);

    let (headers, sent) = fake.received().pop().unwrap();
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent["system"], "Answer briefly.");
    assert_eq!(
        sent["max_tokens"], 500,
        "max_output_tokens is Anthropic's max_tokens"
    );
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "How many languages are there?"}]}])
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "responses");
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["cache_write_tokens"], 100);
}

#[tokio::test]
async fn a_claude_stream_reaches_a_responses_client_as_the_documented_events() {
    let fake = FakeAnthropic::start().await;
    let mut gw = start_gateway(&claude_config(&fake.base_url)).await;
    let resp = post(
        &gw,
        json!({"model": "claude", "stream": true, "input": "Hi"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got = named_events(resp).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in got.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(
        got[0].1["response"]["id"], "resp_msg_1",
        "Claude's message id"
    );
    let completed = &got[9].1["response"];
    assert_eq!(completed["output"][0]["content"][0]["text"], "Hello!");
    assert_eq!(completed["usage"]["input_tokens"], 2025);
    assert_eq!(
        completed["usage"]["input_tokens_details"]["cached_tokens"],
        2000
    );
    assert_eq!(completed["usage"]["output_tokens"], 15);
    // 25 uncached·3 + 2000 read·0.30 + 15 out·15 = 900 per 1M tokens.
    let expected = Decimal::from_str("0.0009").unwrap();
    assert_eq!(usd(&completed["tollgate"]["cost_usd"]), expected);
    assert_eq!(completed["tollgate"]["usage_source"], "reported");
    assert_eq!(fake.received()[0].1["stream"], true);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["outcome"], "completed");
}
