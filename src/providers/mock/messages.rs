//! The mock's Anthropic Messages API (`POST /anthropic/v1/messages`): the request
//! checked as Anthropic checks it (`anthropic-version` header, `model`, `max_tokens`,
//! non-empty `messages`; errors in Anthropic's shape), the same deterministic reply as
//! the other flavors (`reply`), rendered as a Messages answer or Anthropic's named
//! event sequence (providers.md §5). A prompt whose blocks carry `cache_control` is
//! answered as a cache hit on its earlier turns, so the demo shows cache-read pricing.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::reply::{self, Prompt, Reply};
use super::wire::{self, Frame, Meta};
use super::{fnv1a, paced_response, MockFlavor, MockOptions};

const FLAVOR: MockFlavor = MockFlavor::Anthropic;

/// Answer one Messages request.
pub(super) fn answer(opts: MockOptions, headers: &HeaderMap, body: &[u8]) -> Response {
    match parse(headers, body) {
        Ok(request) => respond(opts, &request),
        Err((status, kind, message)) => {
            let body = json!({"type": "error", "error": {"type": kind, "message": message}});
            (status, axum::Json(body)).into_response()
        }
    }
}

/// `POST /anthropic/v1/messages/count_tokens`: the prompt's tokens, as the answer's
/// `usage` would count them (cache reads included).
pub(super) fn count_tokens(headers: &HeaderMap, body: &[u8]) -> Response {
    // count_tokens takes a Messages body without max_tokens.
    let with_limit = serde_json::from_slice::<Value>(body).map(|mut v| {
        if let Some(o) = v.as_object_mut() {
            o.entry("max_tokens").or_insert(json!(1));
        }
        v.to_string()
    });
    let parsed = with_limit
        .map_err(|e| bad(&format!("invalid JSON: {e}")))
        .and_then(|b| parse(headers, b.as_bytes()));
    match parsed {
        Ok(request) => {
            let kind = crate::tokens::estimate::TokenizerKind::for_model(&request.prompt.model);
            let n = crate::tokens::estimate::count_chat_prompt(kind, &request.prompt.messages);
            axum::Json(json!({ "input_tokens": n })).into_response()
        }
        Err((status, kind, message)) => {
            let body = json!({"type": "error", "error": {"type": kind, "message": message}});
            (status, axum::Json(body)).into_response()
        }
    }
}

struct Request {
    prompt: Prompt,
    stream: bool,
    /// Some block asked for caching: the earlier turns are reported as cache reads.
    cached_prefix: bool,
}

type Refusal = (StatusCode, &'static str, String);

fn bad(message: &str) -> Refusal {
    (
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message.to_owned(),
    )
}

fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Request, Refusal> {
    if headers.get("anthropic-version").is_none() {
        return Err(bad("anthropic-version: header is required"));
    }
    let body: Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("invalid JSON: {e}")))?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("model: Field required"))?
        .to_owned();
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("max_tokens: Field required"))?;
    let turns = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("messages: at least one message is required"))?;
    // The reply is composed from a chat-shaped prompt: system first, blocks as text.
    let mut messages = Vec::with_capacity(turns.len() + 1);
    if let Some(system) = body.get("system").filter(|s| !s.is_null()) {
        messages.push(json!({"role": "system", "content": text(system)}));
    }
    for turn in turns {
        let content = turn.get("content").unwrap_or(&Value::Null);
        messages.push(json!({"role": turn.get("role"), "content": text(content)}));
    }
    let messages = Value::Array(messages);
    let seed = fnv1a(format!("{model}\u{0}{messages}").as_bytes());
    Ok(Request {
        prompt: Prompt {
            model,
            messages,
            max_tokens: Some(max_tokens),
            seed,
        },
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        cached_prefix: body.to_string().contains("\"cache_control\""),
    })
}

/// A string, or the text of content blocks.
fn text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn respond(opts: MockOptions, request: &Request) -> Response {
    let mut reply = reply::compose(FLAVOR, &request.prompt);
    if request.cached_prefix {
        // Everything but the last turn was written to the cache by an earlier call.
        let last = request
            .prompt
            .messages
            .as_array()
            .and_then(|m| m.last())
            .map(|m| text(m.get("content").unwrap_or(&Value::Null)).len() as u64 / 4)
            .unwrap_or(0);
        reply.counts.cached = reply.counts.prompt.saturating_sub(last + 8);
    }
    let meta = Meta::new(FLAVOR, &request.prompt.model);
    let stop_reason = match reply.finish_reason {
        "length" => "max_tokens",
        _ => "end_turn",
    };
    if request.stream {
        return paced_response(
            FLAVOR,
            "text/event-stream; charset=utf-8",
            events(opts, &meta, &reply, stop_reason),
        );
    }
    let body = json!({
        "id": meta.id, "type": "message", "role": "assistant", "model": meta.model,
        "content": [{"type": "text", "text": reply.content_chunks.concat()}],
        "stop_reason": stop_reason, "stop_sequence": null,
        "usage": wire::usage(FLAVOR, reply.counts, false),
    });
    let chunks = u32::try_from(reply.content_chunks.len()).unwrap_or(u32::MAX);
    let frames = vec![Frame {
        delay: opts.latency + opts.chunk_interval * chunks,
        text: body.to_string(),
    }];
    paced_response(FLAVOR, "application/json", frames)
}

/// The named event sequence of a streamed answer.
fn events(opts: MockOptions, meta: &Meta, reply: &Reply, stop_reason: &str) -> Vec<Frame> {
    let mut start_usage = wire::usage(FLAVOR, reply.counts, false);
    start_usage["output_tokens"] = json!(1);
    let mut out = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": meta.id, "type": "message", "role": "assistant", "content": [],
            "model": meta.model, "stop_reason": null, "stop_sequence": null,
            "usage": start_usage}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
    ];
    for text in &reply.content_chunks {
        out.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}}),
        ));
    }
    out.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push((
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": reply.counts.completion}}),
    ));
    out.push(("message_stop", json!({"type": "message_stop"})));
    out.into_iter()
        .enumerate()
        .map(|(i, (name, data))| Frame {
            delay: if i == 0 {
                opts.latency
            } else {
                opts.chunk_interval
            },
            text: format!("event: {name}\ndata: {data}\n\n"),
        })
        .collect()
}
