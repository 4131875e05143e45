//! Neutral events as an Anthropic Messages stream, for Messages clients served by an
//! upstream of another dialect. The start opens the message (`message_start`);
//! reasoning becomes a `thinking` block, text a `text` block and each tool call a
//! `tool_use` block (its arguments as `input_json_delta`s), each block opened and
//! closed as Anthropic's sequence has it; the end closes the last block and sends
//! `message_delta` (the `stop_reason`, the usage the Anthropic way and the `tollgate`
//! object) and `message_stop`.

use bytes::BytesMut;
use serde_json::{json, Value};

use super::super::Tap;
use super::Encoder;
use crate::api::error::GatewayError;
use crate::providers::anthropic::from_chat::messages_usage;
use crate::providers::anthropic::stream::stop_reason;
use crate::providers::sse;
use crate::providers::stream::{FinishReason, StreamEvent};

/// The content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    /// A tool call, by its neutral index.
    Tool(u64),
}

/// The encoder state of one stream.
#[derive(Default)]
pub struct MessagesEncoder {
    started: bool,
    /// The open block and its Anthropic index.
    open: Option<(Open, usize)>,
    blocks: usize,
    finish: Option<FinishReason>,
}

fn write(out: &mut BytesMut, event: &str, data: &Value) {
    sse::write_fields(out, Some(event), None, &data.to_string());
}

impl MessagesEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, id: &str, model: &str, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        write(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": null, "stop_sequence": null,
            // Other dialects report usage at the end: see message_delta.
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
    }

    /// Make `kind` the open block (closing another), opened with `block`.
    fn open(&mut self, kind: Open, block: Value, out: &mut BytesMut) -> usize {
        self.start("", "", out);
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some((kind, index));
        write(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((_, index)) = self.open.take() {
            write(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn delta(out: &mut BytesMut, index: usize, delta: Value) {
        write(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }
}

impl Encoder for MessagesEncoder {
    fn event(&mut self, event: StreamEvent, _tap: &Tap, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { id, model, .. } => self.start(&id, &model, out),
            StreamEvent::Reasoning(t) => {
                let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                let i = self.open(Open::Thinking, block, out);
                Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
            }
            StreamEvent::Text(t) => {
                let i = self.open(Open::Text, json!({"type": "text", "text": ""}), out);
                Self::delta(out, i, json!({"type": "text_delta", "text": t}));
            }
            StreamEvent::ToolCall { index, id, name } => {
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                self.open(Open::Tool(index), block, out);
            }
            StreamEvent::ToolArguments { index, arguments } => {
                // Arguments of a call whose start was not seen open a nameless block.
                let block = json!({"type": "tool_use", "id": "", "name": "", "input": {}});
                let i = self.open(Open::Tool(index), block, out);
                Self::delta(
                    out,
                    i,
                    json!({"type": "input_json_delta", "partial_json": arguments}),
                );
            }
            StreamEvent::Finish(reason) => self.finish = Some(reason),
            StreamEvent::Error { kind, message } => write(
                out,
                "error",
                &json!({"type": "error", "error": {"type": kind, "message": message}}),
            ),
            StreamEvent::Usage(_) | StreamEvent::ServiceTier(_) | StreamEvent::End => {}
        }
    }

    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        self.start("", "", out);
        self.close(out);
        let stop = stop_reason(self.finish.unwrap_or(FinishReason::Stop));
        let mut delta = json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": messages_usage(&tap.reported_usage())});
        tap.with_summary(|s| delta["tollgate"] = s.to_value());
        write(out, "message_delta", &delta);
        write(out, "message_stop", &json!({"type": "message_stop"}));
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        write(out, "error", &error.anthropic_body(request_id));
    }
}
