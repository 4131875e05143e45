//! An OpenAI chat completion stream as an Anthropic Messages stream, for a Messages
//! client served by a chat-completions upstream. The first chunk opens the message
//! (`message_start`); `reasoning_content` deltas become a `thinking` block, `content`
//! deltas a `text` block and each tool call a `tool_use` block (its argument pieces as
//! `input_json_delta`s), each block opened and closed as Anthropic's sequence has it;
//! the end (`[DONE]`, or the upstream closing after complete usage) closes the last
//! block and sends `message_delta` (the `stop_reason`, the usage the Anthropic way and
//! tollgate's `tollgate` object) and `message_stop`. Nothing of the upstream's JSON
//! reaches the client verbatim, so no upstream `tollgate` key can either.

use bytes::BytesMut;
use serde_json::{json, Value};

use super::chat_chunk::ChunkView;
use super::{Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::providers::anthropic::from_chat::{messages_usage, stop_reason};
use crate::providers::sse::{self, SseEvent};

/// The content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    /// A tool call, by its index in the chat stream.
    Tool(u64),
}

/// The relay state of one stream.
#[derive(Default)]
pub struct ChatAnthropicRelay {
    started: bool,
    /// The open block and its Anthropic index.
    open: Option<(Open, usize)>,
    blocks: usize,
    stop_reason: Option<&'static str>,
    finished: bool,
}

fn write(out: &mut BytesMut, event: &str, data: &Value) {
    sse::write_fields(out, Some(event), None, &data.to_string());
}

impl ChatAnthropicRelay {
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
            // A chat upstream reports usage at the end: see message_delta.
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
    }

    /// Make `kind` the open block (closing another), opened with `block`.
    fn open(&mut self, kind: Open, block: Value, out: &mut BytesMut) -> usize {
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
            &json!({"type": "content_block_start",
            "index": index, "content_block": block}),
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
            &json!({"type": "content_block_delta",
            "index": index, "delta": delta}),
        );
    }

    /// The last events: the open block closed, `message_delta` with the usage and the
    /// `tollgate` object, `message_stop`.
    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start("", "", out);
        self.close(out);
        let mut delta = json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": messages_usage(&tap.reported_usage())});
        tap.with_summary(|s| delta["tollgate"] = s.to_value());
        write(out, "message_delta", &delta);
        write(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

impl Relay for ChatAnthropicRelay {
    fn event(&mut self, ev: SseEvent, tap: &mut Tap, out: &mut BytesMut) {
        if ev.is_done() {
            self.finish(tap, out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkView>(&ev.data) else {
            return;
        };
        let Some(adapter) = tap.adapter() else { return };
        if let Some(error) = chunk.error {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            write(
                out,
                "error",
                &json!({"type": "error",
                "error": {"type": "api_error", "message": message}}),
            );
            return;
        }
        self.start(
            chunk.id.as_deref().unwrap_or_default(),
            chunk.model.as_deref().unwrap_or_default(),
            out,
        );
        if let Some(u) = chunk.usage.as_ref().filter(|u| u.is_object()) {
            tap.observe(Metered::Usage(adapter.usage_from_wire(u)));
        }
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(d) = choice.delta {
                if let Some(t) = d.reasoning_content.filter(|t| !t.is_empty()) {
                    tap.observe(Metered::Reasoning(&t));
                    let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                    let i = self.open(Open::Thinking, block, out);
                    Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
                }
                if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                    tap.observe(Metered::Text(&t));
                    let i = self.open(Open::Text, json!({"type": "text", "text": ""}), out);
                    Self::delta(out, i, json!({"type": "text_delta", "text": t}));
                }
                for call in d.tool_calls.into_iter().flatten() {
                    let f = call.function;
                    let block = json!({"type": "tool_use", "id": call.id,
                        "name": f.as_ref().and_then(|f| f.name.clone()), "input": {}});
                    let i = self.open(Open::Tool(call.index), block, out);
                    if let Some(args) = f.and_then(|f| f.arguments).filter(|a| !a.is_empty()) {
                        tap.observe(Metered::Text(&args));
                        Self::delta(
                            out,
                            i,
                            json!({"type": "input_json_delta", "partial_json": args}),
                        );
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.stop_reason = Some(stop_reason(&reason));
            }
        }
    }

    fn end(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        // An upstream that closes after reporting full usage but without `[DONE]`
        // (some do) still completed its answer.
        if tap.has_complete_usage() {
            self.finish(tap, out);
        }
    }

    fn completed(&self, _tap: &Tap) -> bool {
        self.finished
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        write(out, "error", &error.anthropic_body(request_id));
    }
}
