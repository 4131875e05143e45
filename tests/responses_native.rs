//! `POST /v1/responses` relayed natively to upstreams that serve OpenAI's Responses
//! API themselves: OpenAI (`{base}/responses`, Bearer) and Azure OpenAI's v1 API
//! (`{base}/openai/v1/responses`, `api-key`, the deployment as `model`). Fake
//! upstreams check the auth the real services check and answer the documented shapes
//! (tests/fixtures/openai/responses_*); the body reaches them with only `model`
//! changed, so `store` and `previous_response_id` work there; the answer and the
//! stream come back as sent, with the `tollgate` object added, at exact o1 prices.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers below; a failure should fail the test"
)]

mod common;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// What the fake received: path and query, headers, body.
type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

/// A fake serving the Responses API the OpenAI way (`/responses`, Bearer) and the
/// Azure v1 way (`/openai/v1/responses`, `api-key`); anything else is a 404, as it is
/// there. Streams when the body asks.
struct FakeResponses {
    base_url: String,
    seen: Seen,
}

impl FakeResponses {
    async fn start() -> Self {
        let seen: Seen = Arc::default();
        let state = seen.clone();
        let app = axum::Router::new().fallback(
            move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let seen = state.clone();
                async move { answer(&seen, &uri, headers, &body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, seen }
    }

    fn received(&self) -> Vec<(String, HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

fn openai_error(status: StatusCode, message: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
        "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

fn answer(seen: &Seen, uri: &Uri, headers: HeaderMap, body: &[u8]) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push((path, headers.clone(), body.clone()));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorized = match uri.path() {
        "/responses" => header("authorization") == Some("Bearer secret-P1_KEY"),
        // Azure takes its key in `api-key`; a Bearer value there would be an Entra
        // token, which an API key is not.
        "/openai/v1/responses" => {
            header("api-key") == Some("secret-P1_KEY") && header("authorization").is_none()
        }
        _ => return openai_error(StatusCode::NOT_FOUND, "Not found", "not_found"),
    };
    if !authorized {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_api_key",
        );
    }
    if !body["model"].is_string() || body.get("input").is_none() {
        return openai_error(StatusCode::BAD_REQUEST, "model and input are required", "");
    }
    if body["stream"] == true {
        let mut resp = Response::new(axum::body::Body::from(fixture(
            "openai/responses_stream.sse",
        )));
        resp.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        return resp;
    }
    let mut resp = fixture("openai/responses_o1.json").into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

/// After every o1 price's start (Azure's catalog entry starts 2025-04-30).
fn at() -> Option<chrono::DateTime<Utc>> {
    Some(Utc.with_ymd_and_hms(2025, 10, 1, 12, 0, 0).unwrap())
}

async fn post(gw: &Gateway, body: Value, residency: Option<&str>) -> reqwest::Response {
    let mut req = Gateway::client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(KEY)
        .json(&body);
    if let Some(r) = residency {
        req = req.header("x-tollgate-residency", r);
    }
    req.send().await.unwrap()
}

fn openai(base_url: &str) -> String {
    one_offer_config("openai", base_url, "", "US", "o1", "o1", Some("openai/o1"))
}

fn azure(base_url: &str) -> String {
    one_offer_config(
        "azure_openai",
        base_url,
        "api_version = \"2024-12-01-preview\"",
        "GLOBAL",
        "o1",
        "o1-deployment",
        Some("azure-openai/o1/global-standard"),
    )
}

/// The fixture's events, as the upstream sent them.
fn upstream_events() -> Vec<(String, Value)> {
    fixture("openai/responses_stream.sse")
        .split("\n\n")
        .filter(|ev| !ev.is_empty())
        .map(|ev| {
            let name = ev.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = ev.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn openai_gets_the_clients_body_natively_and_the_answer_comes_back_with_exact_cost() {
    let fake = FakeResponses::start().await;
    let mut gw = start_gateway_at(&openai(&fake.base_url), at()).await;
    let client_body = json!({"model": "o1", "input": "What is the answer?", "store": true,
        "previous_response_id": "resp_earlier", "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "web_search_preview"}], "future_field": {"x": [1]}});
    let resp = post(&gw, client_body.clone(), None).await;
    assert_eq!(resp.status(), 200);
    // (1200 − 1024)·15 + 1024·7.5 + 300·60 = 2640 + 7680 + 18000 = 28320 per 1M tokens.
    let expected = Decimal::from_str("0.02832").unwrap();
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(
        Decimal::from_str(&header("x-tollgate-cost-usd")).unwrap(),
        expected
    );
    assert_eq!(header("x-tollgate-input-tokens"), "1200");
    assert_eq!(header("x-tollgate-cached-tokens"), "1024");
    assert_eq!(header("x-tollgate-output-tokens"), "300");
    assert_eq!(header("x-tollgate-reasoning-tokens"), "192");
    let mut body: Value = resp.json().await.unwrap();
    let tollgate = body.as_object_mut().unwrap().remove("tollgate").unwrap();
    assert_eq!(usd(&tollgate["cost_usd"]), expected);
    assert_eq!(tollgate["usage_source"], "reported");
    assert_eq!(tollgate["provider"], "p1");
    assert_eq!(
        tollgate["usage"]["cached_input_tokens"], 1024,
        "read from the Responses usage"
    );
    let upstream: Value = serde_json::from_str(&fixture("openai/responses_o1.json")).unwrap();
    assert_eq!(body, upstream, "the upstream's response, untouched");
    // The client's body, with only `model` changed: what only OpenAI can honour reached it.
    let got = fake.received();
    assert_eq!(got.len(), 1);
    let (path, headers, sent) = &got[0];
    assert_eq!(path, "/responses");
    assert_eq!(headers["authorization"], "Bearer secret-P1_KEY");
    assert_eq!(sent, &client_body);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["route"], "responses");
    assert_eq!(usd(&row["cost_usd"]), expected);
}

#[tokio::test]
async fn an_openai_stream_is_relayed_event_for_event_with_the_object_in_response_completed() {
    let fake = FakeResponses::start().await;
    let mut gw = start_gateway_at(&openai(&fake.base_url), at()).await;
    let resp = post(
        &gw,
        json!({"model": "o1", "input": "hello", "stream": true, "store": true}),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "US");
    let mut got = named_events(resp).await;
    let sent = upstream_events();
    assert_eq!(got.len(), sent.len(), "no event added or dropped");
    let (name, last) = got.last_mut().unwrap();
    assert_eq!(name, "response.completed");
    let tollgate = last["response"]
        .as_object_mut()
        .unwrap()
        .remove("tollgate")
        .unwrap();
    // 80·15 + 250·60 = 1200 + 15000 = 16200 per 1M tokens.
    let expected = Decimal::from_str("0.0162").unwrap();
    assert_eq!(usd(&tollgate["cost_usd"]), expected);
    assert_eq!(tollgate["usage"]["reasoning_tokens"], 238);
    assert_eq!(got, sent, "every event as the upstream sent it");
    assert_eq!(fake.received()[0].2["store"], true);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(usd(&row["cost_usd"]), expected);
    assert_eq!(row["outcome"], "completed");
    assert_eq!(row["usage_source"], "reported");
}

#[tokio::test]
async fn azure_openai_is_reached_on_its_v1_responses_path_with_its_api_key() {
    let fake = FakeResponses::start().await;
    let mut gw = start_gateway_at(&azure(&fake.base_url), at()).await;
    let resp = post(
        &gw,
        json!({"model": "o1", "input": "What is the answer?", "store": true}),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-cost-usd"], "0.02832");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["output"][1]["content"][0]["text"], "The answer is 42.");
    assert_eq!(body["tollgate"]["cost_usd"], "0.02832");
    let resp = post(
        &gw,
        json!({"model": "o1", "input": "hello", "stream": true}),
        None,
    )
    .await;
    let got = named_events(resp).await;
    let completed = &got.last().unwrap().1["response"];
    assert_eq!(completed["tollgate"]["cost_usd"], "0.0162");
    let received = fake.received();
    for (path, headers, sent) in &received {
        // The v1 API takes no dated api-version; the deployment goes in `model`.
        assert_eq!(path, "/openai/v1/responses");
        assert_eq!(headers["api-key"], "secret-P1_KEY");
        assert_eq!(sent["model"], "o1-deployment");
    }
    assert_eq!(received[0].2["store"], true);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let costs: Vec<Decimal> = rows.iter().map(|r| usd(&r["cost_usd"])).collect();
    assert_eq!(
        costs,
        [
            Decimal::from_str("0.02832").unwrap(),
            Decimal::from_str("0.0162").unwrap()
        ]
    );
}

/// `m` has a chat-completions offer first (DeepSeek, CN) and a native one (OpenAI, US).
fn mixed(chat_url: &str, native_url: &str) -> String {
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "chat"
kind = "deepseek"
base_url = "{chat_url}"
api_key = "env:P2_KEY"
region = "deepseek:cn"
jurisdiction = "CN"
scope = "regional"

[[providers]]
id = "p1"
kind = "openai"
base_url = "{native_url}"
api_key = "env:P1_KEY"
region = "openai:us"
jurisdiction = "US"
scope = "global"

[[models]]
name = "m"
offers = [
  {{ provider = "chat", upstream_model = "deepseek-reasoner", price = "deepseek/deepseek-reasoner" }},
  {{ provider = "p1", upstream_model = "o1", price = "openai/o1" }},
]
"#
    )
}

#[tokio::test]
async fn store_is_served_by_the_native_offer_and_refused_by_name_when_only_chat_is_allowed() {
    let chat = FakeUpstream::start(Reply::json(fixture("deepseek/chat_reasoner.json"))).await;
    let native = FakeResponses::start().await;
    let mut gw = start_gateway_at(&mixed(&chat.base_url, &native.base_url), at()).await;
    let stored = json!({"model": "m", "input": "hi", "store": true});
    // The chat offer comes first, but cannot keep a response: the native one serves.
    let resp = post(&gw, stored.clone(), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "p1");
    assert_eq!(native.received().len(), 1);
    assert_eq!(native.received()[0].2["store"], true);
    // Without `store`, routing order holds: the chat offer serves the translation.
    let resp = post(&gw, json!({"model": "m", "input": "hi"}), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "chat");
    assert_eq!(chat.count(), 1);
    // Residency leaves only the chat offer: `store` is refused by name.
    let (status, err) = error_of(post(&gw, stored.clone(), Some("CN")).await).await;
    assert_eq!((status, &err["error"]["param"]), (400, &json!("store")));
    let previous = json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"});
    let (status, err) = error_of(post(&gw, previous, Some("CN")).await).await;
    assert_eq!(
        (status, &err["error"]["param"]),
        (400, &json!("previous_response_id"))
    );
    // Residency leaving only the native offer serves it; leaving none refuses.
    let resp = post(&gw, stored.clone(), Some("US")).await;
    assert_eq!(resp.status(), 200);
    let (status, err) = error_of(post(&gw, stored, Some("EU")).await).await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("residency_violation"))
    );
    assert_eq!(native.received().len(), 2, "refusals reach no upstream");
    assert_eq!(chat.count(), 1);
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.len(), 6, "each request is recorded");
}

#[tokio::test]
async fn an_upstream_tollgate_object_is_replaced_by_tollgates_own() {
    // A hostile upstream's answer: its own `tollgate` key must never reach the client.
    let spoofed = fixture("openai/responses_o1.json").replacen(
        "\"object\": \"response\",",
        "\"object\": \"response\", \"tollgate\": {\"cost_usd\": \"0\"},",
        1,
    );
    let fake = FakeUpstream::start(Reply::json(spoofed)).await;
    let mut gw = start_gateway_at(&openai(&fake.base_url), at()).await;
    let resp = post(&gw, json!({"model": "o1", "input": "hi"}), None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["tollgate"]["cost_usd"], "0.02832");
    assert_eq!(body["tollgate"]["provider"], "p1");
    gw.stop().await;
}

#[tokio::test]
async fn a_spoofed_tollgate_in_a_stream_is_removed_and_the_final_one_is_tollgates() {
    let stream = fixture("openai/responses_stream.sse")
        .replacen(
            "{\"type\":\"response.created\",",
            "{\"type\":\"response.created\",\"tollgate\":{\"cost_usd\":\"0\"},",
            1,
        )
        .replacen(
            "\"object\":\"response\",\"created_at\":1741290958,\"status\":\"completed\",",
            "\"object\":\"response\",\"created_at\":1741290958,\"status\":\"completed\",\"tollgate\":{\"cost_usd\":\"0\"},",
            1,
        );
    assert_eq!(stream.matches("tollgate").count(), 2);
    let fake = FakeUpstream::start(Reply::sse_events(&stream)).await;
    let mut gw = start_gateway_at(&openai(&fake.base_url), at()).await;
    let resp = post(
        &gw,
        json!({"model": "o1", "input": "hi", "stream": true}),
        None,
    )
    .await;
    let got = named_events(resp).await;
    assert!(got[0].1.get("tollgate").is_none(), "{}", got[0].1);
    let completed = &got.last().unwrap().1["response"];
    assert_eq!(completed["tollgate"]["cost_usd"], "0.0162");
    assert_eq!(completed["output"][1]["content"][0]["text"], "Hi there!");
    gw.stop().await;
}

#[tokio::test]
async fn an_incomplete_stream_has_completed_and_a_failed_one_is_an_upstream_error() {
    let incomplete = fixture("openai/responses_stream.sse")
        .replace("response.completed", "response.incomplete")
        .replacen(
            "\"status\":\"completed\",\"background\"",
            "\"status\":\"incomplete\",\"background\"",
            1,
        );
    let failed =
        fixture("openai/responses_stream.sse").replace("response.completed", "response.failed");
    let fake = FakeUpstream::start(Reply::sse_events(&incomplete)).await;
    fake.push(Reply::sse_events(&incomplete));
    fake.push(Reply::sse_events(&failed));
    let mut gw = start_gateway_at(&openai(&fake.base_url), at()).await;
    let body = json!({"model": "o1", "input": "hi", "stream": true});
    let got = named_events(post(&gw, body.clone(), None).await).await;
    let (name, last) = got.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["tollgate"]["cost_usd"], "0.0162");
    let got = named_events(post(&gw, body, None).await).await;
    let (name, last) = got.last().unwrap();
    assert_eq!(name, "error", "tollgate says the stream failed");
    assert_eq!(
        last["sequence_number"], 12,
        "numbered after the upstream's last"
    );
    assert_eq!(got[got.len() - 2].0, "response.failed");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let outcomes: Vec<&str> = rows
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["completed", "upstream_error"]);
    assert_eq!(
        usd(&rows[1]["cost_usd"]),
        Decimal::from_str("0.0162").unwrap()
    );
}
