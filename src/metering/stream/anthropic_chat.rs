//! An Anthropic Messages stream as an OpenAI chat completion stream, for chat clients
//! served by Claude. Each Anthropic event is decoded into what the meter needs
//! ([`Metered`]) and encoded as the chunk an OpenAI client expects:
//! `message_start` → the first chunk (`role`), text and thinking deltas → `content`
//! and `reasoning_content` deltas, `tool_use` blocks and their `input_json_delta`s →
//! `tool_calls` deltas, `message_delta`'s `stop_reason` → `finish_reason`,
//! `message_stop` → the usage chunk (for clients that asked for usage, carrying the
//! `tollgate` object) and `[DONE]`; `ping` is dropped; an `error` event becomes an
//! OpenAI error event. Nothing of the upstream's JSON reaches the client verbatim, so
//! no upstream `tollgate` key can either.

use std::collections::HashMap;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{json, Value};

use super::openai_chat::write_error;
use super::{Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::providers::anthropic::answer::{chat_usage, finish_reason};
use crate::providers::sse::{self, SseEvent};

/// The relay state of one stream.
pub struct AnthropicChatRelay {
    wants_usage_chunk: bool,
    created: i64,
    id: String,
    model: String,
    /// Anthropic content block index → OpenAI `tool_calls` index.
    tool_calls: HashMap<u64, usize>,
    saw_stop: bool,
}

impl AnthropicChatRelay {
    /// `created`: the chunks' `created` (the request's start, Unix seconds).
    pub fn new(wants_usage_chunk: bool, created: i64) -> Self {
        Self {
            wants_usage_chunk,
            created,
            id: String::new(),
            model: String::new(),
            tool_calls: HashMap::new(),
            saw_stop: false,
        }
    }

    /// Write one chunk with `choices` (and the rest of `extra`).
    fn chunk(&self, choices: Value, extra: Option<(&str, Value)>, out: &mut BytesMut) {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices,
        });
        if let (Some((key, value)), Some(o)) = (extra, chunk.as_object_mut()) {
            o.insert(key.to_owned(), value);
        }
        sse::write_fields(out, None, None, &chunk.to_string());
    }

    fn delta(&self, delta: Value, finish_reason: Option<&str>, out: &mut BytesMut) {
        let choice = json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]);
        self.chunk(choice, None, out);
    }

    /// `message_stop`: the usage chunk the client asked for, then `[DONE]`.
    fn stop(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        self.saw_stop = true;
        if self.wants_usage_chunk {
            let usage = chat_usage(&tap.reported_usage());
            let mut tollgate = None;
            tap.with_summary(|s| tollgate = Some(s.to_value()));
            let mut chunk = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage,
            });
            if let (Some(t), Some(o)) = (tollgate, chunk.as_object_mut()) {
                o.insert("tollgate".into(), t);
            }
            sse::write_fields(out, None, None, &chunk.to_string());
        }
        sse::write_fields(out, None, None, "[DONE]");
    }
}

/// The parts of an Anthropic event the relay reads.
#[derive(Deserialize)]
struct EventView {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: Option<MessageView>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct MessageView {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<Value>,
}

impl Relay for AnthropicChatRelay {
    fn event(&mut self, ev: SseEvent, tap: &mut Tap, out: &mut BytesMut) {
        let Ok(view) = serde_json::from_str::<EventView>(&ev.data) else {
            return;
        };
        let Some(adapter) = tap.adapter() else { return };
        let text = |d: &Value, field: &str| d.get(field).and_then(Value::as_str).map(str::to_owned);
        match view.kind.as_str() {
            "message_start" => {
                if let Some(m) = view.message {
                    if let Some(u) = &m.usage {
                        tap.observe(Metered::Usage(adapter.usage_from_wire(u)));
                    }
                    self.id = m.id;
                    self.model = m.model;
                }
                self.delta(json!({"role": "assistant", "content": ""}), None, out);
            }
            "content_block_start" => {
                let block = view.content_block.unwrap_or_default();
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let next = self.tool_calls.len();
                    let k = *self
                        .tool_calls
                        .entry(view.index.unwrap_or(0))
                        .or_insert(next);
                    let call = json!({"index": k, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}});
                    self.delta(json!({"tool_calls": [call]}), None, out);
                }
            }
            "content_block_delta" => {
                let delta = view.delta.unwrap_or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = text(&delta, "text").unwrap_or_default();
                        tap.observe(Metered::Text(&t));
                        self.delta(json!({"content": t}), None, out);
                    }
                    Some("thinking_delta") => {
                        let t = text(&delta, "thinking").unwrap_or_default();
                        tap.observe(Metered::Reasoning(&t));
                        self.delta(json!({"reasoning_content": t}), None, out);
                    }
                    Some("input_json_delta") => {
                        let t = text(&delta, "partial_json").unwrap_or_default();
                        tap.observe(Metered::Text(&t));
                        let k = self.tool_calls.get(&view.index.unwrap_or(0)).copied();
                        let call = json!({"index": k.unwrap_or(0), "function": {"arguments": t}});
                        self.delta(json!({"tool_calls": [call]}), None, out);
                    }
                    // signature_delta and anything newer carry nothing a chat client reads.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = &view.usage {
                    tap.observe(Metered::Usage(adapter.usage_from_wire(u)));
                }
                let stop = view
                    .delta
                    .as_ref()
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                if let Some(stop) = stop {
                    self.delta(json!({}), Some(finish_reason(stop)), out);
                }
            }
            "message_stop" => self.stop(tap, out),
            "error" => {
                let error = view.error.unwrap_or_default();
                let message = text(&error, "message").unwrap_or_default();
                let kind = text(&error, "type").unwrap_or_else(|| "api_error".into());
                let data = json!({"error": {"message": message, "type": kind,
                    "param": null, "code": kind}});
                sse::write_fields(out, None, None, &data.to_string());
            }
            // ping, content_block_stop and anything newer.
            _ => {}
        }
    }

    fn end(&mut self, _tap: &mut Tap, _out: &mut BytesMut) {}

    fn completed(&self, _tap: &Tap) -> bool {
        self.saw_stop
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        write_error(error, request_id, out);
    }
}
