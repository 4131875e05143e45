//! OpenAI chat clients served by Gemini through a `gemini` provider (the Gemini API,
//! `x-goog-api-key`), against a fake that refuses what Google refuses: the answer and
//! the `alt=sse` stream translated, thoughts billed as output, and an invalid key
//! reported as the operator's credentials failure, not the client's bad request.

#![expect(
    clippy::unwrap_used,
    reason = "the fake upstream and helpers below are test code; a failure should fail the test"
)]

mod common;

use std::str::FromStr;

use common::gemini::{FakeGemini, GEMINI_KEY};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn config(base_url: &str, key_env: &str) -> String {
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "gemini-api"
kind = "gemini"
base_url = "{base_url}"
api_key = "env:{key_env}"
region = "google:global"
jurisdiction = "GLOBAL"
scope = "global"

[[models]]
name = "flash"
offers = [{{ provider = "gemini-api", upstream_model = "gemini-2.5-flash", price = "anthropic/claude-sonnet-4-5" }}]
"#
    )
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

fn assert_residency(h: &reqwest::header::HeaderMap) {
    assert_eq!(h["x-tollgate-provider"], "gemini-api");
    assert_eq!(h["x-tollgate-model"], "gemini-2.5-flash");
    assert_eq!(h["x-tollgate-region"], "google:global");
    assert_eq!(h["x-tollgate-jurisdiction"], "GLOBAL");
    assert_eq!(h["x-tollgate-processing-scope"], "global");
}

#[tokio::test]
async fn a_chat_client_is_answered_by_the_gemini_api_with_thoughts_billed_as_output() {
    let fake = FakeGemini::start("unused").await;
    let mut gw = start_gateway(&config(&fake.base_url, "GEMINI_KEY")).await;
    let resp = gw.chat(chat_body("flash")).await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers());
    // Priced with Claude Sonnet 4.5's row (3 in, 15 out): 8 prompt·3 + (12 answer +
    // 46 thought) output·15 = 24 + 870 = 894 per 1M tokens.
    let expected = Decimal::from_str("0.000894").unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "AI learns patterns from data and uses them to make predictions."
    );
    assert_eq!(body["usage"]["completion_tokens"], 58);
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    let sent = fake.received().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.headers["x-goog-api-key"], GEMINI_KEY);
    assert_eq!(sent.query, None, "the key is never in the URL");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(usd(&rows[0]["cost_usd"]), expected);
    assert_eq!(rows[0]["output_tokens"], 58);
}

#[tokio::test]
async fn a_gemini_stream_reaches_a_chat_client_with_its_usage() {
    let fake = FakeGemini::start("unused").await;
    let mut gw = start_gateway(&config(&fake.base_url, "GEMINI_KEY")).await;
    let resp = gw
        .chat(
            json!({"model": "flash", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "How does AI work?"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers());
    let data = sse_data(resp).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "AI learns patterns from data.");
    // 8 prompt·3 + (7 answer + 30 thought)·15 = 24 + 555 = 579 per 1M tokens.
    let expected = Decimal::from_str("0.000579").unwrap();
    assert_eq!(
        usd(&chunks.last().unwrap()["tollgate"]["cost_usd"]),
        expected
    );
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(usd(&rows[0]["cost_usd"]), expected);
    assert_eq!(rows[0]["outcome"], "completed");
}

#[tokio::test]
async fn an_invalid_api_key_is_the_operators_credentials_failure() {
    let fake = FakeGemini::start("unused").await;
    let mut gw = start_gateway(&config(&fake.base_url, "WRONG_KEY")).await;
    let (status, body) = error_of(gw.chat(chat_body("flash")).await).await;
    // Google answers 400 INVALID_ARGUMENT (reason API_KEY_INVALID): not the client's 400.
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("credentials"), "{message}");
    assert!(!message.contains("secret-WRONG_KEY"), "{message}");
    gw.stop().await;
}
