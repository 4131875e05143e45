//! Clients served by AWS Bedrock through a `bedrock` provider, against a fake that
//! checks each request's SigV4 signature the way Bedrock does: an OpenAI chat client
//! (answer and ConverseStream's binary eventstream, each priced to the last decimal),
//! an Anthropic Messages client streaming, failover from a throttled offer, and a cut
//! stream recorded as estimated. Credentials come from the AWS default chain's first
//! link, the environment, set once for this test binary.

#![expect(
    clippy::unwrap_used,
    reason = "the fake upstream and helpers below are test code; a failure should fail the test"
)]

mod common;

use std::str::FromStr;
use std::sync::Once;

use common::bedrock::{FakeBedrock, Mode, ACCESS_KEY, REGION, SECRET_KEY};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Bedrock's EU cross-region inference profile of Claude Sonnet 4.5.
const MODEL_ID: &str = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0";

static AWS_ENV: Once = Once::new();

/// The environment link of the AWS chain holds the fake's key; no other link answers
/// (no profile files, no instance metadata).
fn aws_environment() {
    AWS_ENV.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws/config");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws/credentials",
        );
    });
}

fn provider(id: &str, base_url: &str) -> String {
    format!(
        r#"
[[providers]]
id = "{id}"
kind = "bedrock"
base_url = "{base_url}"
aws_region = "{REGION}"
region = "aws:{REGION}"
jurisdiction = "EU"
scope = "datazone"
"#
    )
}

/// The demo key, `providers`, and the model `claude` offered by each of `offers` in order.
fn config(providers: &str, offers: &[&str]) -> String {
    let offers: Vec<String> = offers
        .iter()
        .map(|p| {
            format!(
                r#"{{ provider = "{p}", upstream_model = "{MODEL_ID}", price = "anthropic/claude-sonnet-4-5" }}"#
            )
        })
        .collect();
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"
{providers}
[[models]]
name = "claude"
offers = [{}]
"#,
        offers.join(", ")
    )
}

async fn gateway(fake: &FakeBedrock) -> Gateway {
    aws_environment();
    start_gateway(&config(
        &provider("bedrock-eu", &fake.base_url),
        &["bedrock-eu"],
    ))
    .await
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

fn assert_residency(h: &reqwest::header::HeaderMap, provider: &str) {
    assert_eq!(h["x-tollgate-provider"], provider);
    assert_eq!(h["x-tollgate-model"], MODEL_ID);
    assert_eq!(h["x-tollgate-region"], "aws:eu-central-1");
    assert_eq!(h["x-tollgate-jurisdiction"], "EU");
    assert_eq!(h["x-tollgate-processing-scope"], "datazone");
}

/// 125 input·3 + 60 output·15 = 1275 per 1M tokens (the fake's Converse usage).
fn expected_cost() -> Decimal {
    Decimal::from_str("0.001275").unwrap()
}

#[tokio::test]
async fn a_chat_client_is_answered_through_a_signed_converse_call_priced_exactly() {
    let fake = FakeBedrock::start().await;
    let mut gw = gateway(&fake).await;
    let resp = gw
        .chat(json!({"model": "claude", "max_tokens": 200, "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Three UK pop songs?"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), "bedrock-eu");
    assert_eq!(
        Decimal::from_str(resp.headers()["x-tollgate-cost-usd"].to_str().unwrap()).unwrap(),
        expected_cost()
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["model"], MODEL_ID,
        "Converse names no model; the offer's is filled in"
    );
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Here is a list of 3 pop songs"));
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 125);
    assert_eq!(body["usage"]["completion_tokens"], 60);
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected_cost());

    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    );
    let auth = sent.headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
            && auth.contains("/eu-central-1/bedrock/aws4_request"),
        "{auth}"
    );
    let converse: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(converse["system"], json!([{"text": "Answer briefly."}]));
    assert_eq!(
        converse["messages"],
        json!([{"role": "user", "content": [{"text": "Three UK pop songs?"}]}])
    );
    assert_eq!(converse["inferenceConfig"]["maxTokens"], 200);

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected_cost());
    assert_eq!(row["usage_source"], "reported");
    assert_eq!(row["provider"], "bedrock-eu");
}

#[tokio::test]
async fn a_converse_stream_reaches_a_chat_client_as_chunks_priced_exactly() {
    let fake = FakeBedrock::start().await;
    let mut gw = gateway(&fake).await;
    let resp = gw
        .chat(json!({"model": "claude", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Three UK pop songs?"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), "bedrock-eu");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let data = sse_data(resp).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == MODEL_ID), "{chunks:?}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Here is a list of 3 pop songs");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 125);
    assert_eq!(usage["usage"]["completion_tokens"], 60);
    assert_eq!(usd(&usage["tollgate"]["cost_usd"]), expected_cost());
    let sent = fake.received().pop().unwrap();
    assert!(sent.path.ends_with("%3A0/converse-stream"), "{}", sent.path);

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected_cost());
    assert_eq!(row["usage_source"], "reported");
    assert_eq!(row["outcome"], "completed");
}

#[tokio::test]
async fn an_anthropic_messages_client_streams_from_bedrock() {
    let fake = FakeBedrock::start().await;
    let mut gw = gateway(&fake).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude", "max_tokens": 300, "stream": true,
            "messages": [{"role": "user", "content": "Three UK pop songs?"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), "bedrock-eu");
    let events = named_events(resp).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(events[0].1["message"]["model"], MODEL_ID);
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Here is a list of 3 pop songs");
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 60);
    let converse: Value = serde_json::from_slice(&fake.received().pop().unwrap().body).unwrap();
    assert_eq!(converse["inferenceConfig"]["maxTokens"], 300);

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "messages");
    assert_eq!(usd(&row["cost_usd"]), expected_cost());
    assert_eq!(row["usage_source"], "reported");
}

#[tokio::test]
async fn a_throttled_offer_fails_over_to_the_next() {
    aws_environment();
    let throttled = FakeBedrock::start().await;
    throttled.set_mode(Mode::Throttle);
    let healthy = FakeBedrock::start().await;
    let providers =
        provider("bedrock-a", &throttled.base_url) + &provider("bedrock-b", &healthy.base_url);
    let mut gw = start_gateway(&config(&providers, &["bedrock-a", "bedrock-b"])).await;
    let resp = gw.chat(chat_body("claude")).await;
    assert_eq!(resp.status(), 200);
    assert_residency(resp.headers(), "bedrock-b");
    assert_eq!(
        throttled.received().len(),
        1,
        "a throttled offer is tried once"
    );
    assert_eq!(healthy.received().len(), 1);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["provider"], "bedrock-b");
    assert_eq!(rows[0]["attempts"], 2);
}

#[tokio::test]
async fn a_cut_converse_stream_is_recorded_as_estimated_and_flagged() {
    let fake = FakeBedrock::start().await;
    // messageStart and two text deltas, then half a frame and a reset connection.
    fake.set_mode(Mode::CutAfter(3));
    let mut gw = gateway(&fake).await;
    let resp = gw
        .chat(json!({"model": "claude", "stream": true,
            "messages": [{"role": "user", "content": "Three UK pop songs?"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(resp).await;
    let text: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Here is a list of 3 pop songs");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_error", "{data:?}");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["usage_source"], "estimated");
    assert_eq!(row["outcome"], "upstream_error");
    assert_eq!(row["error_code"], "upstream_error");
    assert!(row["output_tokens"].as_i64().unwrap() > 0, "{row}");
}

#[tokio::test]
async fn reasoning_effort_is_claudes_thinking_on_bedrock_and_refused_by_name_for_other_families() {
    aws_environment();
    let fake = FakeBedrock::start().await;
    let mut gw = gateway(&fake).await;
    let mut body = chat_body("claude");
    body["reasoning_effort"] = json!("high");
    body["max_tokens"] = json!(30000);
    let resp = gw.chat(body.clone()).await;
    assert_eq!(resp.status(), 200);
    let sent = fake.received().pop().unwrap();
    let sent: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        sent["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 24576})
    );
    gw.stop().await;

    // A family without that switch: refused before any upstream is called.
    let nova = config(&provider("bedrock-eu", &fake.base_url), &["bedrock-eu"])
        .replace(MODEL_ID, "eu.amazon.nova-pro-v1:0");
    let mut gw = start_gateway(&nova).await;
    let before = fake.received().len();
    let (status, err) = error_of(gw.chat(body).await).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "reasoning_effort");
    assert_eq!(fake.received().len(), before, "nothing was sent");
    gw.stop().await;
}
