//! Neutral events as OpenAI chat completion chunks, for chat clients served by an
//! upstream of another dialect: the start → the first chunk (`role`), text and
//! reasoning → `content` and `reasoning_content` deltas, tool calls and their
//! arguments → `tool_calls` deltas, the finish → `finish_reason`, the end → the usage
//! chunk (for clients that asked for usage, carrying the `tollgate` object) and
//! `[DONE]`, an upstream error → an OpenAI error event.

use bytes::BytesMut;
use serde_json::{json, Value};

use super::super::openai_chat::write_error;
use super::super::Tap;
use super::Encoder;
use crate::api::error::GatewayError;
use crate::providers::anthropic::answer::chat_usage;
use crate::providers::sse;
use crate::providers::stream::StreamEvent;

/// The encoder state of one stream.
pub struct ChatEncoder {
    wants_usage_chunk: bool,
    created: i64,
    id: String,
    model: String,
    started: bool,
}

impl ChatEncoder {
    /// `created`: the chunks' `created` when the upstream gives none (the request's
    /// start, Unix seconds).
    pub fn new(wants_usage_chunk: bool, created: i64) -> Self {
        Self {
            wants_usage_chunk,
            created,
            id: String::new(),
            model: String::new(),
            started: false,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices,
        });
        if let (Some(usage), Some(o)) = (usage, chunk.as_object_mut()) {
            o.insert("usage".into(), usage);
        }
        chunk
    }

    fn delta(&mut self, delta: Value, finish_reason: Option<&str>, out: &mut BytesMut) {
        self.start(out);
        let choice = json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]);
        sse::write_fields(out, None, None, &self.chunk(choice, None).to_string());
    }

    /// The first chunk, once: the assistant's role.
    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            self.delta(json!({"role": "assistant", "content": ""}), None, out);
        }
    }
}

impl Encoder for ChatEncoder {
    fn event(&mut self, event: StreamEvent, _tap: &Tap, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { id, model, created } => {
                if !self.started {
                    self.id = id;
                    self.model = model;
                    self.created = created.unwrap_or(self.created);
                    self.start(out);
                }
            }
            StreamEvent::Text(t) => self.delta(json!({"content": t}), None, out),
            StreamEvent::Reasoning(t) => self.delta(json!({"reasoning_content": t}), None, out),
            StreamEvent::ToolCall { index, id, name } => {
                let call = json!({"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}});
                self.delta(json!({"tool_calls": [call]}), None, out);
            }
            StreamEvent::ToolArguments { index, arguments } => {
                let call = json!({"index": index, "function": {"arguments": arguments}});
                self.delta(json!({"tool_calls": [call]}), None, out);
            }
            StreamEvent::Finish(reason) => self.delta(json!({}), Some(reason.as_chat()), out),
            StreamEvent::Error { kind, message } => {
                let data = json!({"error": {"message": message, "type": kind,
                    "param": null, "code": kind}});
                sse::write_fields(out, None, None, &data.to_string());
            }
            StreamEvent::Usage(_) | StreamEvent::ServiceTier(_) | StreamEvent::End => {}
        }
    }

    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        if self.wants_usage_chunk {
            let mut chunk = self.chunk(json!([]), Some(chat_usage(&tap.reported_usage())));
            tap.with_summary(|s| chunk["tollgate"] = s.to_value());
            sse::write_fields(out, None, None, &chunk.to_string());
        }
        sse::write_fields(out, None, None, "[DONE]");
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        write_error(error, request_id, out);
    }
}
