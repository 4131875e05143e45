//! A dialect added from outside the crate: the made-up "Acme" API below (its own
//! request body, answer shape, usage fields and SSE events) becomes a provider kind
//! with one `Registry::with` line. The test then proves that such an offer is routed,
//! metered from the dialect's own usage, priced and reported like a built-in one, and
//! translated for chat, Messages and Responses clients, streamed or not: nothing in
//! tollgate names the dialect.

#![expect(
    clippy::unwrap_used,
    reason = "test code; a failure should fail the test"
)]

mod common;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tollgate::api::openai::ChatRequest;
use tollgate::providers::sse::SseEvent;
use tollgate::providers::stream::{FinishReason, StreamDecoder, StreamEvent};
use tollgate::providers::{
    ChatAnswer, Dialect, ProviderAdapter, Registry, Target, UpstreamRequest,
};
use tollgate::tokens::Usage;

/// The Acme dialect: `POST {base}/v1/generate` with an `acme-key` header and
/// `{"model", "turns": [{"speaker", "text"}], "limit", "stream"}`.
struct Acme;

impl ProviderAdapter for Acme {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let mut turns = Vec::new();
        req.for_each_message(|m| {
            let speaker = match m["role"].as_str() {
                Some("assistant") => "bot",
                Some("system") => "system",
                _ => "user",
            };
            turns.push(json!({"speaker": speaker, "text": m["content"]}));
        });
        let body = json!({"model": target.upstream_model, "turns": turns,
            "limit": req.body.get("max_tokens"), "stream": req.is_streaming});
        let mut headers = HeaderMap::new();
        let key = target.provider.api_key.as_ref().unwrap().expose();
        headers.insert("acme-key", HeaderValue::from_str(key).unwrap());
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        UpstreamRequest {
            url: format!("{}/v1/generate", target.provider.base_url),
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    fn usage_from_wire(&self, meter: &Value) -> Usage {
        Usage {
            input: meter["read"].as_u64(),
            output: meter["written"].as_u64(),
            ..Usage::default()
        }
    }

    fn answers_in(&self) -> Dialect {
        Dialect::Other
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(AcmeDecoder { started: false })
    }

    fn chat_answer(&self, body: &[u8], created: i64) -> Option<ChatAnswer> {
        let answer: Value = serde_json::from_slice(body).ok()?;
        let text = answer["text"].as_str()?.to_owned();
        let usage = self.usage_from_wire(&answer["meter"]);
        let chat = json!({"id": answer["id"], "object": "chat.completion", "created": created,
            "model": "acme", "choices": [{"index": 0, "finish_reason": finish(&answer).as_chat(),
            "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": usage.input, "completion_tokens": usage.output}});
        Some(ChatAnswer {
            body: chat.to_string().into_bytes(),
            usage,
            text,
            reasoning: String::new(),
        })
    }
}

fn finish(v: &Value) -> FinishReason {
    match v["finish"].as_str() {
        Some("limit") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

/// Acme streams `event: piece` (`{"text"}`) then one `event: finish` (`{"finish", "meter"}`).
struct AcmeDecoder {
    started: bool,
}

impl StreamDecoder for AcmeDecoder {
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: "gen_stream".into(),
                model: "acme".into(),
                created: None,
            });
        }
        match event.event.as_deref() {
            Some("piece") => out.push(StreamEvent::Text(
                data["text"].as_str().unwrap_or_default().into(),
            )),
            Some("finish") => {
                out.push(StreamEvent::Finish(finish(&data)));
                out.push(StreamEvent::Usage(data["meter"].clone()));
                out.push(StreamEvent::End);
            }
            _ => {}
        }
    }
}

/// A fake Acme API: checks the key, answers `Bonjour` with 20 tokens read and 5 written.
async fn fake_acme() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/v1/generate",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move { generate(&seen, &headers, &body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

fn generate(seen: &Mutex<Vec<Value>>, headers: &HeaderMap, body: &[u8]) -> Response {
    if headers.get("acme-key").and_then(|v| v.to_str().ok()) != Some("secret-P1_KEY") {
        return (StatusCode::UNAUTHORIZED, "bad key").into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    seen.lock().unwrap().push(body.clone());
    if body["stream"] == true {
        let events = "event: piece\ndata: {\"text\":\"Bon\"}\n\n\
            event: piece\ndata: {\"text\":\"jour\"}\n\n\
            event: finish\ndata: {\"finish\":\"done\",\"meter\":{\"read\":20,\"written\":5}}\n\n";
        return ([("content-type", "text/event-stream")], events).into_response();
    }
    axum::Json(json!({"id": "gen_1", "text": "Bonjour", "finish": "done",
        "meter": {"read": 20, "written": 5}}))
    .into_response()
}

async fn acme_gateway(base: &str) -> Gateway {
    static ACME: Acme = Acme;
    // The one line that adds the dialect.
    let registry = Registry::builtin().with("acme", &ACME);
    // Priced from the catalog's Claude Sonnet 4.5 row: $3 in, $15 out per 1M tokens.
    let config = one_offer_config(
        "acme",
        base,
        "",
        "EU",
        "acme-model",
        "acme-large",
        Some("anthropic/claude-sonnet-4-5"),
    );
    start_gateway_with_registry(&config, registry).await
}

/// 20 read·3 + 5 written·15 = 135 per 1M tokens.
fn expected_cost() -> Decimal {
    Decimal::from_str("0.000135").unwrap()
}

fn usd(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_chat_client_is_served_by_the_added_dialect_metered_from_its_own_usage() {
    let (base, received) = fake_acme().await;
    let mut gw = acme_gateway(&base).await;
    let resp = gw
        .chat(json!({"model": "acme-model", "max_tokens": 50,
            "messages": [{"role": "user", "content": "Say hello in French"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-jurisdiction"], "EU");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Bonjour");
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected_cost());
    assert_eq!(body["tollgate"]["usage_source"], "reported");
    let sent = received.lock().unwrap()[0].clone();
    assert_eq!(
        sent,
        json!({"model": "acme-large", "limit": 50, "stream": false,
            "turns": [{"speaker": "user", "text": "Say hello in French"}]})
    );
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["provider"], "p1");
    assert_eq!(
        (&row["input_tokens"], &row["output_tokens"]),
        (&json!(20), &json!(5))
    );
    assert_eq!(usd(&row["cost_usd"]), expected_cost());
}

#[tokio::test]
async fn the_added_dialects_stream_reaches_chat_and_messages_clients_translated() {
    let (base, _) = fake_acme().await;
    let mut gw = acme_gateway(&base).await;

    let resp = gw
        .chat(json!({"model": "acme-model", "stream": true,
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
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour");
    let last = chunks.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 20);
    assert_eq!(usd(&last["tollgate"]["cost_usd"]), expected_cost());

    let resp = Gateway::client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "acme-model", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = named_events(resp).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let delta = &events[5].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["input_tokens"], 20);
    assert_eq!(delta["usage"]["output_tokens"], 5);
    assert_eq!(usd(&delta["tollgate"]["cost_usd"]), expected_cost());

    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| usd(&r["cost_usd"]) == expected_cost()));
    assert_eq!(rows[1]["route"], "messages");
}

#[tokio::test]
async fn a_responses_client_is_served_by_the_added_dialect() {
    let (base, _) = fake_acme().await;
    let mut gw = acme_gateway(&base).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(KEY)
        .json(&json!({"model": "acme-model", "input": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["output"][0]["content"][0]["text"], "Bonjour");
    assert_eq!(body["usage"]["input_tokens"], 20);
    assert_eq!(usd(&body["tollgate"]["cost_usd"]), expected_cost());
    gw.stop().await;
}

#[test]
fn a_config_naming_an_unregistered_kind_is_refused_with_the_kinds_it_could_name() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml");
    std::fs::copy(catalog, dir.path().join("prices.toml")).unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(
        &path,
        one_offer_config("acme", "http://127.0.0.1:1", "", "EU", "m", "u", None),
    )
    .unwrap();
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let err = tollgate::config::validate(raw, dir.path(), &|_| Some("k".into())).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown kind \"acme\""), "{text}");
    let raw = tollgate::config::load(&path, vec![]).unwrap();
    let settings =
        tollgate::config::validate_with_kinds(raw, dir.path(), &|_| Some("k".into()), &["acme"])
            .unwrap();
    assert_eq!(settings.providers[0].kind.as_str(), "acme");
}
