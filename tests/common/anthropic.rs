//! A fake Anthropic API that checks what Anthropic checks (`x-api-key`,
//! `anthropic-version`, a `max_tokens`) and answers the documented Messages shapes
//! (tests/fixtures/anthropic), streamed when asked.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::fixture;

/// A fake Anthropic API: `POST /v1/messages` only, answering the documented fixtures.
pub struct FakeAnthropic {
    pub base_url: String,
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl FakeAnthropic {
    pub async fn start() -> Self {
        Self::answering("anthropic/message.json").await
    }

    /// A fake whose non-streamed answer is the fixture `answer` (a Messages JSON).
    pub async fn answering(answer_fixture: &'static str) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        let counted = received.clone();
        let app = axum::Router::new()
            .route(
                "/v1/messages",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let seen = seen.clone();
                    async move { answer(&seen, headers, &body, answer_fixture) }
                }),
            )
            .route(
                "/v1/messages/count_tokens",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    let seen = counted.clone();
                    async move { count_tokens(&seen, headers, &body) }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, received }
    }

    pub fn received(&self) -> Vec<(HeaderMap, Value)> {
        self.received.lock().unwrap().clone()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (status, axum::Json(body)).into_response()
}

fn answer(
    seen: &Mutex<Vec<(HeaderMap, Value)>>,
    headers: HeaderMap,
    body: &[u8],
    answer_fixture: &str,
) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((headers.clone(), body.clone()));
    if let Some(refused) = refuse_headers(&headers) {
        return refused;
    }
    if !body.get("max_tokens").is_some_and(Value::is_u64) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut resp = Response::new(Body::from(fixture("anthropic/message_stream.sse")));
        resp.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        return resp;
    }
    let mut resp = Response::new(Body::from(fixture(answer_fixture)));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

/// `count_tokens`: the same checks, then a fixed count (Anthropic's tokenizer is private).
fn count_tokens(
    seen: &Mutex<Vec<(HeaderMap, Value)>>,
    headers: HeaderMap,
    body: &[u8],
) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((headers.clone(), body));
    if let Some(refused) = refuse_headers(&headers) {
        return refused;
    }
    axum::Json(json!({"input_tokens": 1234})).into_response()
}

/// What Anthropic refuses before reading the body: a wrong `x-api-key` (401) or no
/// `anthropic-version` (400).
fn refuse_headers(headers: &HeaderMap) -> Option<Response> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("secret-P1_KEY") {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        ));
    }
    headers.get("anthropic-version").is_none().then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        )
    })
}
