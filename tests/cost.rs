//! Exact costs, end to end: a fake upstream in the provider's wire format, the
//! gateway in between, and the cost checked in the headers, the `tollgate` body
//! object and the SQLite ledger, to the last decimal.

#![expect(
    clippy::unwrap_used,
    reason = "the request helper below is test code; a failure should fail the test"
)]

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use serde_json::{json, Value};

async fn one_request(
    kind: &str,
    extra: &str,
    upstream_model: &str,
    price: Option<&str>,
    reply: Reply,
    at: Option<chrono::DateTime<Utc>>,
    body: Value,
) -> (FakeUpstream, reqwest::header::HeaderMap, Value, Vec<Value>) {
    let fake = FakeUpstream::start(reply).await;
    let config = one_offer_config(
        kind,
        &fake.base_url,
        extra,
        "US",
        "m",
        upstream_model,
        price,
    );
    let mut gw = start_gateway_at(&config, at).await;
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let answer: Value = resp.json().await.unwrap();
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    (fake, headers, answer, rows)
}

#[tokio::test]
async fn o1_with_cached_and_reasoning_tokens_costs_exactly() {
    // (2385-2304)·15 + 2304·7.5 + 2535·60 = 1215 + 17280 + 152100 = 170595 µ$ per 1M → 0.170595
    // The limit is above the fixture's 2535 output tokens: output beyond the request's
    // own limit would be implausible and billed from tollgate's count instead.
    let body = json!({"model": "m", "max_tokens": 4000, "messages": [{"role": "user", "content": "Think hard."}]});
    let (fake, headers, answer, rows) = one_request(
        "openai",
        "",
        "o1",
        Some("openai/o1"),
        Reply::json(fixture("openai/chat_o1.json")),
        None,
        body,
    )
    .await;
    assert_eq!(headers["x-tollgate-cost-usd"], "0.170595");
    assert_eq!(headers["x-tollgate-input-tokens"], "2385");
    assert_eq!(headers["x-tollgate-cached-tokens"], "2304");
    assert_eq!(headers["x-tollgate-output-tokens"], "2535");
    assert_eq!(headers["x-tollgate-reasoning-tokens"], "2241");
    assert_eq!(headers["x-tollgate-provider"], "p1");
    assert_eq!(headers["x-tollgate-model"], "o1");
    assert_eq!(headers["x-tollgate-jurisdiction"], "US");
    assert_eq!(answer["tollgate"]["cost_usd"], "0.170595");
    assert_eq!(answer["tollgate"]["usage_source"], "reported");
    assert!(answer["tollgate"]["price_id"]
        .as_str()
        .unwrap()
        .starts_with("openai/o1"));
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "The answer is 42."
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cost_usd"], "0.170595");
    // o1 refuses max_tokens: the adapter renamed it, and authenticated with the provider key.
    let sent = &fake.received()[0];
    assert_eq!(sent.path_and_query, "/chat/completions");
    assert_eq!(sent.body["max_completion_tokens"], 4000);
    assert!(sent.body.get("max_tokens").is_none());
    assert_eq!(sent.headers["authorization"], "Bearer secret-P1_KEY");
}

#[tokio::test]
async fn deepseek_reasoner_cache_hit_and_miss_priced_at_two_dates() {
    let history = json!({"model": "m", "messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi!", "reasoning_content": "they said hello"},
        {"role": "user", "content": "hello again"}]});
    // 2025-02-10 standard price: 360 miss·0.55 + 640 hit·0.14 + 92 out·2.19 = 198 + 89.6 + 201.48 = 489.08 → 0.00048908
    let at = Utc.with_ymd_and_hms(2025, 2, 10, 12, 0, 0).unwrap();
    let (fake, headers, answer, rows) = one_request(
        "deepseek",
        "",
        "deepseek-reasoner",
        Some("deepseek/deepseek-reasoner"),
        Reply::json(fixture("deepseek/chat_reasoner.json")),
        Some(at),
        history.clone(),
    )
    .await;
    assert_eq!(headers["x-tollgate-cost-usd"], "0.00048908");
    assert_eq!(headers["x-tollgate-cached-tokens"], "640");
    assert_eq!(rows[0]["cost_usd"], "0.00048908");
    assert_eq!(
        answer["choices"][0]["message"]["reasoning_content"],
        "Okay, the user wrote \"hello\". I should greet them back."
    );
    // reasoning_content of earlier turns is never sent back to DeepSeek.
    let sent = &fake.received()[0].body;
    assert!(
        sent["messages"][1].get("reasoning_content").is_none(),
        "{sent}"
    );
    assert_eq!(sent["messages"][1]["content"], "Hi!");

    // 2025-10-01 (V3.2): 360·0.28 + 640·0.028 + 92·0.42 = 100.8 + 17.92 + 38.64 = 157.36 → 0.00015736
    let at = Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap();
    let (_, headers, answer, _) = one_request(
        "deepseek",
        "",
        "deepseek-reasoner",
        Some("deepseek/deepseek-reasoner"),
        Reply::json(fixture("deepseek/chat_reasoner.json")),
        Some(at),
        history,
    )
    .await;
    assert_eq!(headers["x-tollgate-cost-usd"], "0.00015736");
    assert_ne!(
        answer["tollgate"]["price_id"], rows[0]["price_id"],
        "a different dated row priced it"
    );
}

#[tokio::test]
async fn r1_on_azure_ai_foundry_costs_exactly() {
    // 11·1.35 + 886·5.40 = 14.85 + 4784.4 = 4799.25 → 0.00479925
    let (fake, headers, answer, rows) = one_request(
        "azure_ai_inference",
        "api_version = \"2024-05-01-preview\"",
        "DeepSeek-R1",
        Some("azure-ai-foundry/DeepSeek-R1"),
        Reply::json(fixture("azure_ai_inference/chat_r1.json")),
        None,
        chat_body("m"),
    )
    .await;
    assert_eq!(headers["x-tollgate-cost-usd"], "0.00479925");
    assert_eq!(rows[0]["cost_usd"], "0.00479925");
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("<think>"));
    let sent = &fake.received()[0];
    assert_eq!(
        sent.path_and_query,
        "/chat/completions?api-version=2024-05-01-preview"
    );
    assert_eq!(sent.headers["api-key"], "secret-P1_KEY");
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(sent.body["model"], "DeepSeek-R1");
}

#[tokio::test]
async fn github_models_free_tier_is_priced_at_zero_not_unpriced() {
    let (fake, headers, answer, rows) = one_request(
        "github_models",
        "",
        "deepseek/DeepSeek-R1",
        Some("github-models/deepseek/DeepSeek-R1/free"),
        Reply::json(fixture("github_models/chat_r1.json")),
        None,
        chat_body("m"),
    )
    .await;
    assert_eq!(headers["x-tollgate-cost-usd"], "0");
    assert_eq!(headers["x-tollgate-pricing"], "priced");
    assert_eq!(answer["tollgate"]["pricing"], "priced");
    assert_eq!(rows[0]["cost_usd"], "0");
    assert_eq!(rows[0]["input_tokens"], 8);
    let sent = &fake.received()[0];
    assert_eq!(sent.headers["x-github-api-version"], "2022-11-28");
    assert_eq!(sent.body["model"], "deepseek/DeepSeek-R1");
}

#[tokio::test]
async fn an_unpriced_offer_records_null_cost_never_zero() {
    let (_, headers, answer, rows) = one_request(
        "openai_compatible",
        "",
        "some-model",
        None,
        Reply::json(fixture("github_models/chat_r1.json")),
        None,
        chat_body("m"),
    )
    .await;
    assert!(headers.get("x-tollgate-cost-usd").is_none());
    assert_eq!(headers["x-tollgate-pricing"], "unpriced");
    assert_eq!(answer["tollgate"]["cost_usd"], Value::Null);
    assert_eq!(answer["tollgate"]["pricing"], "unpriced");
    assert_eq!(rows[0]["cost_usd"], Value::Null);
    assert_eq!(rows[0]["pricing"], "unpriced");
}
