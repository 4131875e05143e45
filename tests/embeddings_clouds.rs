//! `POST /v1/embeddings` served by the clouds, each against its fake speaking the
//! documented embeddings wire format and checking what the real service checks (the
//! Gemini API's key, Vertex AI's bearer token and publisher path, Bedrock's SigV4
//! signature over the InvokeModel request actually sent): the client gets OpenAI's
//! list (vectors in input order, `usage`), priced exactly from the catalog's
//! `openai/text-embedding-3-small` row ($0.02 per 1M input tokens).

#![expect(
    clippy::unwrap_used,
    reason = "the fake upstreams and helpers below are test code; a failure should fail the test"
)]

mod common;

use std::sync::Once;

use base64::Engine;
use common::bedrock::{FakeBedrock, ACCESS_KEY, REGION, SECRET_KEY};
use common::gemini::{FakeGemini, GEMINI_KEY, LOCATION, PROJECT};
use common::*;
use serde_json::{json, Value};

/// 8 tokens (o200k_base), 7 words, 40 bytes.
const INPUT: &str = "The food was delicious and the waiter...";

fn config(provider: &str, upstream_model: &str) -> String {
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"
{provider}
[[models]]
name = "emb"
kind = "embeddings"
offers = [{{ provider = "p", upstream_model = "{upstream_model}", price = "openai/text-embedding-3-small" }}]
"#
    )
}

async fn embed(gw: &Gateway, body: Value) -> reqwest::Response {
    Gateway::client()
        .post(format!("{}/v1/embeddings", gw.url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The vector the fakes give `text`: its length, then the fake's marker.
#[expect(clippy::cast_precision_loss, reason = "short test texts")]
fn vector(text: &str, marker: f64) -> Value {
    json!([text.len() as f64, marker])
}

#[tokio::test]
async fn the_gemini_api_embeds_a_batch_billed_from_tollgates_own_count() {
    let fake = FakeGemini::start("unused").await;
    let provider = format!(
        r#"
[[providers]]
id = "p"
kind = "gemini"
base_url = "{}"
api_key = "env:GEMINI_KEY"
region = "google:global"
jurisdiction = "GLOBAL"
scope = "global"
"#,
        fake.base_url
    );
    let mut gw = start_gateway(&config(&provider, "gemini-embedding-001")).await;
    let resp = embed(
        &gw,
        json!({"model": "emb", "input": ["hello world", INPUT], "dimensions": 2}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let answer: Value = resp.json().await.unwrap();
    // No usage from Google: 2 + 8 tokens counted, × $0.02 / 1M = 0.0000002.
    assert_eq!(h["x-tollgate-usage-source"], "estimated");
    assert_eq!(h["x-tollgate-input-tokens"], "10");
    assert_eq!(h["x-tollgate-cost-usd"], "0.0000002");
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "gemini-embedding-001");
    assert_eq!(
        answer["data"][0],
        json!({"object": "embedding", "index": 0, "embedding": vector("hello world", 0.5)})
    );
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(answer["data"][1]["embedding"], vector(INPUT, 0.5));
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 10, "total_tokens": 10})
    );
    assert_eq!(answer["tollgate"]["cost_usd"], "0.0000002");
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent.headers["x-goog-api-key"], GEMINI_KEY);
    assert_eq!(sent.query, None, "the key is never in the URL");
    assert_eq!(
        sent.body["requests"][1]["content"]["parts"][0]["text"],
        INPUT
    );
    assert_eq!(sent.body["requests"][0]["outputDimensionality"], 2);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows[0]["input_tokens"], 10);
    assert_eq!(rows[0]["output_tokens"], 0);
}

#[tokio::test]
async fn token_id_inputs_are_not_sent_to_a_text_only_cloud() {
    let fake = FakeGemini::start("unused").await;
    let provider = format!(
        "[[providers]]\nid = \"p\"\nkind = \"gemini\"\nbase_url = \"{}\"\napi_key = \"env:GEMINI_KEY\"\nregion = \"google:global\"\njurisdiction = \"GLOBAL\"\nscope = \"global\"\n",
        fake.base_url
    );
    let mut gw = start_gateway(&config(&provider, "gemini-embedding-001")).await;
    let resp = embed(&gw, json!({"model": "emb", "input": [15339, 1917]})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input");
    gw.stop().await;
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn vertex_ai_embeds_through_predict_with_its_token_counts() {
    let fake = FakeGemini::start("secret-VERTEX_TOKEN").await;
    let provider = format!(
        r#"
[[providers]]
id = "p"
kind = "vertex"
base_url = "{}"
gcp_project = "{PROJECT}"
gcp_location = "{LOCATION}"
access_token = "env:VERTEX_TOKEN"
region = "gcp:{LOCATION}"
jurisdiction = "EU"
scope = "regional"
"#,
        fake.base_url
    );
    let mut gw = start_gateway(&config(&provider, "text-embedding-005")).await;
    let resp = embed(
        &gw,
        json!({"model": "emb", "input": ["hello world", INPUT]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let answer: Value = resp.json().await.unwrap();
    // token_count 2 + 7 = 9, × $0.02 / 1M = 0.00000018.
    assert_eq!(h["x-tollgate-usage-source"], "reported");
    assert_eq!(h["x-tollgate-cost-usd"], "0.00000018");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 9, "total_tokens": 9})
    );
    assert_eq!(answer["data"][0]["embedding"], vector("hello world", 0.25));
    assert_eq!(answer["data"][1]["embedding"], vector(INPUT, 0.25));
    assert_eq!(answer["data"][1]["index"], 1);
    let sent = fake.received().pop().unwrap();
    assert_eq!(
        sent.path,
        format!("/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/text-embedding-005:predict")
    );
    assert_eq!(sent.headers["authorization"], "Bearer secret-VERTEX_TOKEN");
    assert_eq!(
        sent.body,
        json!({"instances": [{"content": "hello world"}, {"content": INPUT}]})
    );
    gw.stop().await;
}

static AWS_ENV: Once = Once::new();

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

fn bedrock_provider(base_url: &str) -> String {
    format!(
        r#"
[[providers]]
id = "p"
kind = "bedrock"
base_url = "{base_url}"
aws_region = "{REGION}"
region = "aws:{REGION}"
jurisdiction = "EU"
scope = "regional"
"#
    )
}

#[tokio::test]
async fn bedrock_titan_embeds_one_text_signed_and_answers_base64() {
    aws_environment();
    let fake = FakeBedrock::start().await;
    let config = config(
        &bedrock_provider(&fake.base_url),
        "amazon.titan-embed-text-v2:0",
    );
    let mut gw = start_gateway(&config).await;
    let resp = embed(
        &gw,
        json!({"model": "emb", "input": INPUT, "dimensions": 4, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let answer: Value = resp.json().await.unwrap();
    // inputTextTokenCount 7, × $0.02 / 1M = 0.00000014.
    assert_eq!(h["x-tollgate-usage-source"], "reported");
    assert_eq!(h["x-tollgate-cost-usd"], "0.00000014");
    assert_eq!(answer["usage"]["prompt_tokens"], 7);
    assert_eq!(answer["model"], "amazon.titan-embed-text-v2:0");
    // OpenAI's base64: the float32 values' little-endian bytes.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(answer["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "a short text")]
    let expected = vec![INPUT.len() as f32, 0.125, 0.0, 0.0];
    assert_eq!(floats, expected);
    // The fake verified the SigV4 signature before answering; this is what it signed.
    let sent = fake.received().pop().unwrap();
    assert_eq!(sent.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert!(sent.headers["authorization"]
        .to_str()
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body, json!({"inputText": INPUT, "dimensions": 4}));
    gw.stop().await;
}

#[tokio::test]
async fn bedrock_titan_is_not_sent_several_texts() {
    aws_environment();
    let fake = FakeBedrock::start().await;
    let config = config(
        &bedrock_provider(&fake.base_url),
        "amazon.titan-embed-text-v2:0",
    );
    let mut gw = start_gateway(&config).await;
    let resp = embed(&gw, json!({"model": "emb", "input": ["a", "b"]})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input");
    gw.stop().await;
    assert!(fake.received().is_empty(), "Titan embeds one text per call");
}

#[tokio::test]
async fn vertex_gemini_embedding_is_not_sent_several_texts() {
    let fake = FakeGemini::start("secret-VERTEX_TOKEN").await;
    let provider = format!(
        r#"
[[providers]]
id = "p"
kind = "vertex"
base_url = "{}"
gcp_project = "{PROJECT}"
gcp_location = "{LOCATION}"
access_token = "env:VERTEX_TOKEN"
region = "gcp:{LOCATION}"
jurisdiction = "EU"
scope = "regional"
"#,
        fake.base_url
    );
    let mut gw = start_gateway(&config(&provider, "gemini-embedding-001")).await;
    let resp = embed(&gw, json!({"model": "emb", "input": ["a", "b"]})).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input");
    gw.stop().await;
    assert!(fake.received().is_empty(), "one instance per predict call");
}
