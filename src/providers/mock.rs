//! The `mock` provider: a simulated upstream that speaks the real OpenAI Chat Completions wire
//! format over HTTP, so tollgate can be tried without provider keys and the mock goes through the
//! same adapter, SSE and metering path as a real upstream.
//!
//! This module owns the simulated server: routes, request validation, error hooks and pacing.
//! `reply` decides what is said and counts it; `wire` renders each flavor's JSON and SSE shapes.
//! It is served by tollgate itself on an ephemeral loopback port, or in its own process by
//! `tollgate mock-upstream` (see [`serve`]). It never reads secrets (any
//! `Authorization` or `api-key` is accepted) and it is not an adapter: the gateway reaches it
//! through the ordinary OpenAI-compatible provider code.

mod embed;
mod instant;
mod messages;
mod prose;
mod reply;
mod wire;

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::Value;

use reply::Prompt;
use wire::{Frame, Meta, Pace};

pub use crate::config::MockFlavor;

/// Pacing of simulated responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockOptions {
    /// Time to first token (for non-streamed requests, added to the simulated generation time).
    pub latency: Duration,
    /// Pause between stream chunks.
    pub chunk_interval: Duration,
}

/// The mock upstream's routes, all `POST`:
/// `/v1/chat/completions` and `/chat/completions` (plain OpenAI flavor), and
/// `/{flavor}/v1/chat/completions`, `/{flavor}/chat/completions` and
/// `/{flavor}/models/chat/completions` (Azure AI Inference's path) for any [`MockFlavor`], so one
/// server serves every mock provider. Query strings such as `api-version` are ignored.
pub fn router(opts: MockOptions) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_plain))
        .route("/chat/completions", post(chat_plain))
        .route("/{flavor}/v1/chat/completions", post(chat_flavored))
        .route("/{flavor}/chat/completions", post(chat_flavored))
        .route("/{flavor}/models/chat/completions", post(chat_flavored))
        .route("/{flavor}/v1/messages", post(messages_flavored))
        .route(
            "/{flavor}/v1/messages/count_tokens",
            post(count_tokens_flavored),
        )
        .route("/v1/embeddings", post(embeddings))
        .route("/{flavor}/v1/embeddings", post(embeddings_flavored))
        .with_state(opts)
}

/// Binds `127.0.0.1:0`, serves [`router`] in a tokio task, and returns the base URL
/// (`http://127.0.0.1:PORT`) and the task's handle; abort the handle to stop the server.
pub async fn spawn(opts: MockOptions) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let app = router(opts);
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "mock upstream stopped");
        }
    });
    Ok((format!("http://{addr}"), handle))
}

/// Serves the mock on `listener` until `shutdown` resolves, for `tollgate mock-upstream`: the
/// full [`router`], or with `instant` a fixed answer sent at once (no prose, no token counting;
/// see `instant`), the baseline for benchmarks. `TCP_NODELAY` is set on every connection so
/// a response's last segment is never held back by Nagle's algorithm.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: MockOptions,
    instant: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = if instant {
        instant::router()
    } else {
        router(opts)
    };
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn chat_plain(State(opts): State<MockOptions>, body: Bytes) -> Response {
    respond(opts, MockFlavor::Openai, &body).unwrap_or_else(IntoResponse::into_response)
}

async fn chat_flavored(
    State(opts): State<MockOptions>,
    Path(segment): Path<String>,
    body: Bytes,
) -> Response {
    MockFlavor::from_segment(&segment)
        .ok_or(MockError::UnknownFlavor { segment })
        .and_then(|flavor| respond(opts, flavor, &body))
        .unwrap_or_else(IntoResponse::into_response)
}

/// Only the Anthropic flavor speaks the Messages API.
async fn messages_flavored(
    State(opts): State<MockOptions>,
    Path(segment): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    match MockFlavor::from_segment(&segment) {
        Some(MockFlavor::Anthropic) => messages::answer(opts, &headers, &body),
        _ => MockError::UnknownFlavor { segment }.into_response(),
    }
}

async fn count_tokens_flavored(
    Path(segment): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    match MockFlavor::from_segment(&segment) {
        Some(MockFlavor::Anthropic) => messages::count_tokens(&headers, &body),
        _ => MockError::UnknownFlavor { segment }.into_response(),
    }
}

async fn embeddings(State(opts): State<MockOptions>, body: Bytes) -> Response {
    embed_response(opts, MockFlavor::Openai, &body)
}

/// Every flavor answers embeddings in OpenAI's shape (the flavor only picks the
/// request-id header), so an embeddings offer can use any mock provider.
async fn embeddings_flavored(
    State(opts): State<MockOptions>,
    Path(segment): Path<String>,
    body: Bytes,
) -> Response {
    MockFlavor::from_segment(&segment)
        .ok_or(MockError::UnknownFlavor { segment })
        .map(|flavor| embed_response(opts, flavor, &body))
        .unwrap_or_else(IntoResponse::into_response)
}

fn embed_response(opts: MockOptions, flavor: MockFlavor, body: &[u8]) -> Response {
    match embed::answer(body) {
        Ok(json) => {
            let frames = vec![Frame {
                delay: opts.latency,
                text: json.to_string(),
            }];
            paced_response(flavor, "application/json", frames)
        }
        Err(e) => e.into_response(),
    }
}

fn respond(opts: MockOptions, flavor: MockFlavor, body: &[u8]) -> Result<Response, MockError> {
    if flavor == MockFlavor::Anthropic {
        return Err(MockError::UnknownFlavor {
            segment: "anthropic (it answers /v1/messages only)".to_owned(),
        });
    }
    let request = MockRequest::parse(body)?;
    if request.last_user_text.contains("[mock:error:429]") {
        return Err(MockError::SimulatedRateLimit);
    }
    if request.last_user_text.contains("[mock:error:500]") {
        return Err(MockError::SimulatedServerError);
    }
    let reply = reply::compose(flavor, &request.prompt);
    let meta = Meta::new(flavor, &request.prompt.model);
    let pace = Pace {
        latency: opts.latency,
        interval: opts.chunk_interval,
    };
    if request.stream {
        let frames = wire::stream_frames(flavor, &meta, &reply, request.include_usage, pace);
        return Ok(paced_response(
            flavor,
            "text/event-stream; charset=utf-8",
            frames,
        ));
    }
    let chunks = reply.reasoning_chunks.len() + reply.content_chunks.len();
    let generation = opts.latency + opts.chunk_interval * u32::try_from(chunks).unwrap_or(u32::MAX);
    let json = wire::completion(flavor, &meta, &reply).to_string();
    let mut frames = Vec::with_capacity(2);
    if flavor == MockFlavor::Deepseek {
        // DeepSeek keeps a queued non-stream request alive with blank lines before the JSON.
        frames.push(Frame {
            delay: Duration::ZERO,
            text: "\n\n".to_owned(),
        });
    }
    frames.push(Frame {
        delay: generation,
        text: json,
    });
    Ok(paced_response(flavor, "application/json", frames))
}

/// Sends each frame after its delay, so time to first byte and inter-chunk gaps are real.
fn paced_response(flavor: MockFlavor, content_type: &'static str, frames: Vec<Frame>) -> Response {
    let stream = futures_util::stream::iter(frames).then(|frame| async move {
        tokio::time::sleep(frame.delay).await;
        Ok::<_, Infallible>(Bytes::from(frame.text))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let (name, value) = trace_header(flavor);
    headers.insert(name, value);
    response
}

/// The request-id header each provider sets, which the gateway may log for support tickets.
fn trace_header(flavor: MockFlavor) -> (HeaderName, HeaderValue) {
    let hex = format!("{:032x}", rand::rng().random::<u128>());
    let (name, value) = match flavor {
        MockFlavor::Openai | MockFlavor::OpenaiReasoning => ("x-request-id", format!("req_{hex}")),
        MockFlavor::Deepseek => ("x-ds-trace-id", hex),
        MockFlavor::AzureThink => ("apim-request-id", hex),
        MockFlavor::Anthropic => ("request-id", format!("req_{hex}")),
    };
    let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("mock"));
    (HeaderName::from_static(name), value)
}

/// A validated chat request.
#[derive(Debug)]
struct MockRequest {
    prompt: Prompt,
    stream: bool,
    include_usage: bool,
    /// Text of the last `user` message, where the demo error hooks live.
    last_user_text: String,
}

impl MockRequest {
    fn parse(body: &[u8]) -> Result<Self, MockError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|source| MockError::BadJson { source })?;
        let body = value.as_object().ok_or(MockError::InvalidType {
            param: "body",
            expected: "an object",
        })?;
        let model = match body.get("model") {
            None | Some(Value::Null) => return Err(MockError::MissingParam { param: "model" }),
            Some(Value::String(model)) => model.clone(),
            Some(_) => return Err(invalid("model", "a string")),
        };
        let messages = match body.get("messages") {
            None | Some(Value::Null) => return Err(MockError::MissingParam { param: "messages" }),
            Some(Value::Array(items)) if items.is_empty() => return Err(MockError::EmptyMessages),
            Some(messages @ Value::Array(_)) => messages.clone(),
            Some(_) => return Err(invalid("messages", "an array")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("stream", "a boolean")),
        };
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let max_tokens = match optional_count(body, "max_completion_tokens")? {
            Some(n) => Some(n),
            None => optional_count(body, "max_tokens")?,
        };
        let seed = fnv1a(format!("{model}\u{0}{messages}").as_bytes());
        Ok(Self {
            last_user_text: last_user_text(&messages),
            prompt: Prompt {
                model,
                messages,
                max_tokens,
                seed,
            },
            stream,
            include_usage,
        })
    }
}

fn invalid(param: &'static str, expected: &'static str) -> MockError {
    MockError::InvalidType { param, expected }
}

fn optional_count(
    body: &serde_json::Map<String, Value>,
    param: &'static str,
) -> Result<Option<u64>, MockError> {
    match body.get(param) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(param, "a non-negative integer")),
    }
}

fn last_user_text(messages: &Value) -> String {
    let items = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    let last_user = items
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    match last_user.and_then(|m| m.get("content")) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, fixed across Rust releases), so a prompt gets
/// the same reply on every build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Why the mock refuses a request; rendered as OpenAI's error body.
#[derive(Debug, thiserror::Error)]
enum MockError {
    #[error("We could not parse the JSON body of your request. The API expects a JSON payload.")]
    BadJson { source: serde_json::Error },
    #[error("Missing required parameter: '{param}'.")]
    MissingParam { param: &'static str },
    #[error("Invalid type for '{param}': expected {expected}.")]
    InvalidType {
        param: &'static str,
        expected: &'static str,
    },
    #[error("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")]
    EmptyMessages,
    #[error("Unknown mock flavor '{segment}'; expected openai, openai_reasoning, deepseek, azure_think or anthropic.")]
    UnknownFlavor { segment: String },
    #[error(
        "Rate limit reached for requests (simulated by [mock:error:429]). Please try again in 1s."
    )]
    SimulatedRateLimit,
    #[error("The server had an error while processing your request. Sorry about that! (simulated by [mock:error:500])")]
    SimulatedServerError,
}

impl IntoResponse for MockError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, kind, param, code) = match &self {
            Self::BadJson { .. } => (StatusCode::BAD_REQUEST, "invalid_request_error", None, None),
            Self::MissingParam { param } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(*param),
                Some("missing_required_parameter"),
            ),
            Self::InvalidType { param, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(*param),
                Some("invalid_type"),
            ),
            Self::EmptyMessages => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("messages"),
                Some("empty_array"),
            ),
            Self::UnknownFlavor { .. } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                None,
                Some("unknown_url"),
            ),
            Self::SimulatedRateLimit => (
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                None,
                Some("rate_limit_exceeded"),
            ),
            Self::SimulatedServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                None,
            ),
        };
        let body = wire::error_body(&message, kind, param, code);
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, Self::SimulatedRateLimit) {
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            headers.insert(
                HeaderName::from_static("x-ratelimit-remaining-requests"),
                HeaderValue::from_static("0"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests;
