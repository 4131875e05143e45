//! The mock's instant mode, for benchmarks: a fixed OpenAI chat completion (or its SSE stream,
//! one event per write) sent at once, without composing prose or counting tokens. The full mock
//! tokenizes every prompt to report exact usage, which on long prompts costs more than the
//! gateway being measured; here the work per request is one scan of the body, so a direct call
//! measures the network and HTTP stack and nothing else. Usage is reported (prompt ≈ body bytes
//! / 4) so the gateway meters, prices and records each request as it would a real one.

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// Tokens reported for the fixed answer.
const COMPLETION_TOKENS: usize = 12;
/// The answer, in the stream's content deltas; the plain body joins them.
const PIECES: [&str; 4] = [
    "The sky looks blue",
    " because air scatters",
    " short wavelengths",
    " more than long ones.",
];

/// What the instant mock reads from a request: serde skips every other field without building it.
#[derive(serde::Deserialize)]
struct Probe {
    model: String,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The largest request body accepted: above any gateway's limit, so the baseline never refuses
/// a prompt the gateway forwards (axum's default is 2 MB).
const MAX_BODY_BYTES: usize = 64 << 20;

/// `POST /v1/chat/completions` and `/chat/completions`, answered instantly in OpenAI's shape.
pub(super) fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(answer))
        .route("/chat/completions", post(answer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn answer(body: Bytes) -> Response {
    let probe: Probe = match serde_json::from_slice(&body) {
        Ok(probe) => probe,
        Err(error) => {
            let text = super::wire::error_body(
                &format!("We could not parse the JSON body of your request: {error}"),
                "invalid_request_error",
                None,
                None,
            );
            return (StatusCode::BAD_REQUEST, axum::Json(text)).into_response();
        }
    };
    // JSON-escaped once; the model is echoed like a real provider's.
    let model = serde_json::Value::String(probe.model).to_string();
    let usage = usage(body.len() / 4);
    let (content_type, mut response) = if probe.stream == Some(true) {
        let include_usage = probe
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let text = stream(&model, include_usage.then_some(&usage));
        ("text/event-stream", event_by_event(&text))
    } else {
        (
            "application/json",
            completion(&model, &usage).into_response(),
        )
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A chunked body sending one SSE event per write, yielding between them, as an upstream that
/// emits events as it generates them (at no delay): the gateway relays several small writes,
/// which is where Nagle's algorithm would hold one back.
fn event_by_event(text: &str) -> Response {
    use futures_util::StreamExt;
    let events: Vec<Bytes> = text
        .split_inclusive("\n\n")
        .map(|event| Bytes::copy_from_slice(event.as_bytes()))
        .collect();
    let body = futures_util::stream::iter(events).then(|event| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::convert::Infallible>(event)
    });
    axum::body::Body::from_stream(body).into_response()
}

fn usage(prompt: usize) -> String {
    format!(
        r#"{{"prompt_tokens":{prompt},"completion_tokens":{COMPLETION_TOKENS},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
        prompt + COMPLETION_TOKENS
    )
}

fn completion(model: &str, usage: &str) -> String {
    let content = PIECES.concat();
    format!(
        r#"{{"id":"chatcmpl-instant","object":"chat.completion","created":1738300000,"model":{model},"system_fingerprint":"fp_instant","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}","refusal":null}},"logprobs":null,"finish_reason":"stop"}}],"usage":{usage}}}"#
    )
}

fn stream(model: &str, usage: Option<&String>) -> String {
    let head = format!(
        r#"data: {{"id":"chatcmpl-instant","object":"chat.completion.chunk","created":1738300000,"model":{model},"system_fingerprint":"fp_instant","choices":"#
    );
    let mut out = format!(
        r#"{head}[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}]}}"#
    );
    out.push_str("\n\n");
    for piece in PIECES {
        out.push_str(&format!(
            r#"{head}[{{"index":0,"delta":{{"content":"{piece}"}},"logprobs":null,"finish_reason":null}}]}}"#
        ));
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        r#"{head}[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]}}"#
    ));
    out.push_str("\n\n");
    if let Some(usage) = usage {
        out.push_str(&format!(r#"{head}[],"usage":{usage}}}"#));
        out.push_str("\n\n");
    }
    out.push_str("data: [DONE]\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_is_json_and_usage_comes_last_when_asked() {
        let text = stream("\"gpt-4o-mini\"", Some(&usage(100)));
        let frames: Vec<&str> = text
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| f.trim_start_matches("data: "))
            .collect();
        assert_eq!(frames.last(), Some(&"[DONE]"));
        let chunks: Vec<serde_json::Value> = frames[..frames.len() - 1]
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, PIECES.concat());
        let last = chunks.last().unwrap();
        assert_eq!(last["usage"]["total_tokens"], 112);
        assert_eq!(last["model"], "gpt-4o-mini");
        assert!(!stream("\"m\"", None).contains("usage"));
    }

    /// Over a real socket, as `tollgate mock-upstream --instant` serves it: the model is echoed,
    /// a stream ends with usage then `[DONE]` when asked, and a body above axum's 2 MB default
    /// is answered, so the benchmark's baseline takes every prompt the gateway forwards.
    #[tokio::test]
    async fn serve_instant_answers_plain_streamed_and_large_requests() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/v1/chat/completions",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(super::super::serve(
            listener,
            super::super::MockOptions::default(),
            true,
            std::future::pending(),
        ));
        let client = reqwest::Client::new();
        let send = |body: String| client.post(&url).body(body).send();
        let messages = r#"[{"role":"user","content":"hi"}]"#;

        let plain = send(format!(
            r#"{{"model":"gpt-4o-mini","messages":{messages}}}"#
        ))
        .await
        .unwrap();
        assert_eq!(plain.status(), 200);
        let plain: serde_json::Value = plain.json().await.unwrap();
        assert_eq!(plain["model"], "gpt-4o-mini");
        assert_eq!(plain["usage"]["completion_tokens"], 12);

        let streamed = send(format!(
            r#"{{"model":"m","stream":true,"stream_options":{{"include_usage":true}},"messages":{messages}}}"#
        ))
        .await
        .unwrap();
        assert_eq!(
            streamed.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let text = streamed.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(
            text.contains(r#""choices":[],"usage":{"prompt_tokens""#),
            "{text}"
        );

        let long = "a".repeat(3 << 20);
        let large = send(format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{long}"}}]}}"#
        ))
        .await
        .unwrap();
        assert_eq!(large.status(), 200);
        let large: serde_json::Value = large.json().await.unwrap();
        assert!(large["usage"]["prompt_tokens"].as_u64().unwrap() > 3 << 18);
        server.abort();
    }

    #[test]
    fn plain_completion_is_openai_shaped() {
        let body: serde_json::Value =
            serde_json::from_str(&completion("\"m\\\"x\"", &usage(8))).unwrap();
        assert_eq!(body["model"], "m\"x");
        assert_eq!(body["choices"][0]["message"]["content"], PIECES.concat());
        assert_eq!(body["usage"]["prompt_tokens"], 8);
        assert_eq!(body["usage"]["completion_tokens"], 12);
    }
}
