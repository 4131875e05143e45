//! Clients served through a `vertex` provider (Google Cloud's Vertex AI in one project
//! and location), each model family in its own dialect: Gemini (`generateContent`,
//! answer and stream), Claude (`rawPredict` with the Messages body, `anthropic_version`
//! in the body and no `model`), and DeepSeek-R1 as a managed open model (the
//! OpenAI-compatible `endpoints/openapi`). Every request carries the provider's bearer
//! token: a static `access_token`, or one a service account's key obtains from
//! Google's token endpoint (a fake here), cached across requests.

#![expect(
    clippy::unwrap_used,
    reason = "the fake upstream and helpers below are test code; a failure should fail the test"
)]

mod common;

use std::str::FromStr;

use common::gemini::{FakeGemini, FakeGoogleOAuth, LOCATION, PROJECT};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// What the harness resolves `access_token = "env:VERTEX_TOKEN"` to.
const TOKEN: &str = "secret-VERTEX_TOKEN";

/// One Vertex provider (`credentials` is its token line) offering `upstream_model` as
/// the model `m`, priced with Claude Sonnet 4.5's row (3 in, 0.30 cached, 3.75 cache
/// write, 15 out per 1M tokens).
fn config(base_url: &str, credentials: &str, upstream_model: &str) -> String {
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "vertex-eu"
kind = "vertex"
base_url = "{base_url}"
gcp_project = "{PROJECT}"
gcp_location = "{LOCATION}"
{credentials}
region = "gcp:{LOCATION}"
jurisdiction = "EU"
scope = "regional"

[[models]]
name = "m"
offers = [{{ provider = "vertex-eu", upstream_model = "{upstream_model}", price = "anthropic/claude-sonnet-4-5" }}]
"#
    )
}

fn static_token() -> String {
    "access_token = \"env:VERTEX_TOKEN\"".to_owned()
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

fn assert_residency(h: &reqwest::header::HeaderMap, model: &str) {
    assert_eq!(h["x-tollgate-provider"], "vertex-eu");
    assert_eq!(h["x-tollgate-model"], model);
    assert_eq!(h["x-tollgate-region"], "gcp:europe-west4");
    assert_eq!(h["x-tollgate-jurisdiction"], "EU");
    assert_eq!(h["x-tollgate-processing-scope"], "regional");
}

fn publisher_path(publisher: &str, model_and_method: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/{publisher}/models/{model_and_method}")
}

#[tokio::test]
async fn a_chat_client_is_answered_by_gemini_on_vertex_with_thoughts_billed_as_output() {
    let fake = FakeGemini::start(TOKEN).await;
    let mut gw = start_gateway(&config(&fake.base_url, &static_token(), "gemini-2.5-flash")).await;
    let resp = gw.chat(chat_body("m")).await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), "gemini-2.5-flash");
    // 8 prompt·3 + (12 answer + 46 thought) output·15 = 24 + 870 = 894 per 1M tokens.
    let expected = Decimal::from_str("0.000894").unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "AI learns patterns from data and uses them to make predictions."
    );
    assert_eq!(body["usage"]["completion_tokens"], 58);
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        publisher_path("google", "gemini-2.5-flash:generateContent")
    );
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(usd(&rows[0]["cost_usd"]), expected);
}

#[tokio::test]
async fn a_gemini_stream_on_vertex_reaches_a_chat_client_with_its_usage() {
    let fake = FakeGemini::start(TOKEN).await;
    let mut gw = start_gateway(&config(&fake.base_url, &static_token(), "gemini-2.5-flash")).await;
    let resp = gw
        .chat(
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "How does AI work?"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), "gemini-2.5-flash");
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
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage["completion_tokens"], 37,
        "7 answer + 30 thought tokens"
    );
    // 8·3 + 37·15 = 24 + 555 = 579 per 1M tokens.
    let expected = Decimal::from_str("0.000579").unwrap();
    assert_eq!(
        usd(&chunks.last().unwrap()["tollgate"]["cost_usd"]),
        expected
    );
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        publisher_path("google", "gemini-2.5-flash:streamGenerateContent")
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(usd(&rows[0]["cost_usd"]), expected);
    assert_eq!(rows[0]["outcome"], "completed");
}

#[tokio::test]
async fn claude_on_vertex_is_reached_through_raw_predict_with_the_vertex_version() {
    let fake = FakeUpstream::start(Reply::json(fixture("anthropic/message.json"))).await;
    let model = "claude-sonnet-4-5@20250929";
    let mut gw = start_gateway(&config(&fake.base_url, &static_token(), model)).await;
    let resp = gw
        .chat(json!({"model": "m", "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "How many languages are there?"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), model);
    // 12 uncached·3 + 100 written·3.75 + 1000 read·0.30 + 6 out·15 = 801 per 1M tokens.
    let expected = Decimal::from_str("0.000801").unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! Roughly 7,000 languages are spoken today."
    );
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path_and_query,
        publisher_path("anthropic", &format!("{model}:rawPredict"))
    );
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert!(sent.headers.get("x-api-key").is_none());
    assert_eq!(sent.body["anthropic_version"], "vertex-2023-10-16");
    assert!(
        sent.body.get("model").is_none(),
        "the URL names the model: {}",
        sent.body
    );
    assert_eq!(sent.body["system"], "Answer briefly.");
    assert_eq!(sent.body["max_tokens"], 4096);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(usd(&rows[0]["cost_usd"]), expected);
}

#[tokio::test]
async fn a_messages_client_streams_from_claude_on_vertex_through_stream_raw_predict() {
    let fake =
        FakeUpstream::start(Reply::sse_events(&fixture("anthropic/message_stream.sse"))).await;
    let model = "claude-sonnet-4-5@20250929";
    let mut gw = start_gateway(&config(&fake.base_url, &static_token(), model)).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), model);
    let events = named_events(resp).await;
    assert_eq!(events.last().unwrap().0, "message_stop");
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path_and_query,
        publisher_path("anthropic", &format!("{model}:streamRawPredict"))
    );
    assert_eq!(sent.body["anthropic_version"], "vertex-2023-10-16");
    assert!(sent.body.get("model").is_none());
    assert_eq!(sent.body["stream"], true);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    // 25 uncached·3 + 2000 read·0.30 + 15 out·15 = 900 per 1M tokens.
    assert_eq!(
        usd(&rows[0]["cost_usd"]),
        Decimal::from_str("0.0009").unwrap()
    );
}

#[tokio::test]
async fn deepseek_r1_on_vertex_is_reached_through_the_openai_compatible_endpoint() {
    let fake = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let model = "deepseek-ai/deepseek-r1-0528-maas";
    let mut gw = start_gateway(&config(&fake.base_url, &static_token(), model)).await;
    let resp = gw.chat(chat_body("m")).await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), model);
    // 360 uncached·3 + 640 cached·0.30 + 92 out·15 = 1080 + 192 + 1380 = 2652 per 1M.
    let expected = Decimal::from_str("0.002652").unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "Okay, the user wrote \"hello\". I should greet them back."
    );
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected);
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path_and_query,
        format!("/v1/projects/{PROJECT}/locations/{LOCATION}/endpoints/openapi/chat/completions")
    );
    assert_eq!(sent.body["model"], model);
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_service_accounts_token_from_google_is_sent_and_reused() {
    let oauth = FakeGoogleOAuth::start(3600).await;
    let fake = FakeGemini::start("ya29.fake-1").await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("service-account.json");
    std::fs::write(&key_file, oauth.service_account_json()).unwrap();
    let credentials = format!("credentials_file = {:?}", key_file.display().to_string());
    let mut gw = start_gateway(&config(&fake.base_url, &credentials, "gemini-2.5-flash")).await;
    for _ in 0..2 {
        let resp = gw.chat(chat_body("m")).await;
        assert_eq!(resp.status(), 200);
        assert_residency(resp.headers(), "gemini-2.5-flash");
    }
    assert_eq!(
        oauth.issued(),
        1,
        "the token is cached until it nears expiry"
    );
    let sent = fake.received();
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|r| r.headers["authorization"] == "Bearer ya29.fake-1"));
    gw.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_a_credentials_failure_that_never_shows_the_token() {
    let fake = FakeGemini::start("another-token").await;
    let mut gw = start_gateway(&config(&fake.base_url, &static_token(), "gemini-2.5-flash")).await;
    let (status, body) = error_of(gw.chat(chat_body("m")).await).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("credentials"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
    gw.stop().await;
}
