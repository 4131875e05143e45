//! Neutral events as a Responses stream, for Responses clients served by an upstream
//! of another dialect. The start opens the response (`response.created`,
//! `response.in_progress`); reasoning becomes a `reasoning` item
//! (`response.reasoning_text.delta`), text a `message` item
//! (`response.content_part.added`, `response.output_text.delta`) and each tool call a
//! `function_call` item (`response.function_call_arguments.delta`), each item opened
//! with `response.output_item.added` and closed with its `*.done` events and
//! `response.output_item.done`, as OpenAI's sequence has it; every event carries its
//! `sequence_number`. The end closes the last item and sends `response.completed` (or
//! `response.incomplete` when the output limit cut the answer) whose `response`
//! carries every output item, the usage the Responses way and the `tollgate` object.
//!
//! Unlike the other encoders this one holds the answer's text: the documented `*.done`
//! events and the final `response` repeat each item whole, so memory grows with the
//! answer (never with the prompt).

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::super::Tap;
use super::Encoder;
use crate::api::error::GatewayError;
use crate::api::responses::from_chat::{
    ending, function_call_item, message_item, output_text, reasoning_item, responses_usage,
    Envelope,
};
use crate::providers::sse;
use crate::providers::stream::{FinishReason, StreamEvent};

/// The output item being streamed.
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    /// A tool call, by its index in the chat stream.
    Tool {
        index: u64,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// The encoder state of one stream.
pub struct ResponsesEncoder {
    /// The request's settings, repeated in every `response`.
    echo: Map<String, Value>,
    /// Stands in for an upstream that sends no `created`.
    created_at: i64,
    envelope: Option<Envelope>,
    sequence: u64,
    /// Closed items, in output order.
    done: Vec<Value>,
    open: Option<Open>,
    finish_reason: Option<FinishReason>,
}

impl ResponsesEncoder {
    /// `echo` is the request's settings (`ResponsesRequest::echo`); `created_at` the
    /// request's time, for an upstream that sends none.
    pub fn new(echo: Map<String, Value>, created_at: i64) -> Self {
        Self {
            echo,
            created_at,
            envelope: None,
            sequence: 0,
            done: Vec::new(),
            open: None,
            finish_reason: None,
        }
    }

    /// Write one event: its `type` and `sequence_number` set here.
    fn emit(&mut self, out: &mut BytesMut, kind: &str, mut data: Value) {
        data["type"] = kind.into();
        data["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        sse::write_fields(out, Some(kind), None, &data.to_string());
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    fn start(&mut self, envelope: Envelope, out: &mut BytesMut) {
        if self.envelope.is_some() {
            return;
        }
        let response = envelope.response(&self.echo, "in_progress", Vec::new());
        self.envelope = Some(envelope);
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn item_id(&self, prefix: &str) -> String {
        self.envelope
            .as_ref()
            .map_or_else(String::new, |e| e.item_id(prefix))
    }

    /// Make `next` the open item (closing another) unless the same one is open.
    fn open(&mut self, next: Open, out: &mut BytesMut) {
        let same = match (&self.open, &next) {
            (Some(Open::Reasoning { .. }), Open::Reasoning { .. })
            | (Some(Open::Message { .. }), Open::Message { .. }) => true,
            (Some(Open::Tool { index: a, .. }), Open::Tool { index: b, .. }) => a == b,
            _ => false,
        };
        if same {
            return;
        }
        self.close(out);
        let output_index = self.output_index();
        let (item, part) = match &next {
            Open::Reasoning { id, .. } => (
                json!({"type": "reasoning", "id": id, "summary": [], "status": "in_progress"}),
                Some((id.clone(), json!({"type": "reasoning_text", "text": ""}))),
            ),
            Open::Message { id, .. } => (
                message_item(id, Vec::new(), "in_progress"),
                Some((id.clone(), output_text(""))),
            ),
            Open::Tool { call_id, name, .. } => {
                (function_call_item(call_id, name, "", "in_progress"), None)
            }
        };
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        if let Some((item_id, part)) = part {
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": output_index,
                    "content_index": 0, "part": part}),
            );
        }
        self.open = Some(next);
    }

    /// Close the open item: its `*.done` events, then `response.output_item.done`.
    fn close(&mut self, out: &mut BytesMut) {
        let Some(open) = self.open.take() else { return };
        let output_index = self.output_index();
        let at = |item_id: &str| json!({"item_id": item_id, "output_index": output_index});
        let item = match open {
            Open::Reasoning { id, text } => {
                let mut done = at(&id);
                done["content_index"] = 0.into();
                done["text"] = text.as_str().into();
                self.emit(out, "response.reasoning_text.done", done.clone());
                done["part"] = json!({"type": "reasoning_text", "text": text});
                self.emit(out, "response.content_part.done", without_text(done));
                reasoning_item(&id, &text, "completed")
            }
            Open::Message { id, text } => {
                let status = ending(self.finish_reason.map(FinishReason::as_chat)).0;
                let mut done = at(&id);
                done["content_index"] = 0.into();
                done["text"] = text.as_str().into();
                done["logprobs"] = json!([]);
                self.emit(out, "response.output_text.done", done.clone());
                done["part"] = output_text(&text);
                self.emit(out, "response.content_part.done", without_text(done));
                message_item(&id, vec![output_text(&text)], status)
            }
            Open::Tool {
                call_id,
                name,
                arguments,
                ..
            } => {
                let item = function_call_item(&call_id, &name, &arguments, "completed");
                let mut done = at(item["id"].as_str().unwrap_or_default());
                done["arguments"] = arguments.into();
                self.emit(out, "response.function_call_arguments.done", done);
                item
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
        self.done.push(item);
    }

    /// The last events: the open item closed, then `response.completed` (or
    /// `response.incomplete`) with every item, the usage and the `tollgate` object.
    fn complete(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        self.start(self.fallback_envelope(tap), out);
        self.close(out);
        let (status, incomplete) = ending(self.finish_reason.map(FinishReason::as_chat));
        let Some(envelope) = &self.envelope else {
            return;
        };
        let mut response = envelope.response(&self.echo, status, std::mem::take(&mut self.done));
        response.insert("incomplete_details".into(), incomplete);
        response.insert("usage".into(), responses_usage(&tap.reported_usage()));
        tap.with_summary(|s| {
            response.insert("tollgate".into(), s.to_value());
        });
        let kind = match status {
            "completed" => "response.completed",
            _ => "response.incomplete",
        };
        self.emit(out, kind, json!({"response": response}));
    }

    /// The envelope when the upstream's chunks carry no id: the request's.
    fn fallback_envelope(&self, tap: &Tap) -> Envelope {
        Envelope {
            id: tap.request_id().to_owned(),
            created_at: self.created_at,
            model: String::new(),
        }
    }

    fn reasoning(&mut self, t: &str, out: &mut BytesMut) {
        let id = self.item_id("rs");
        self.open(
            Open::Reasoning {
                id,
                text: String::new(),
            },
            out,
        );
        let output_index = self.output_index();
        let Some(Open::Reasoning { id, text }) = &mut self.open else {
            return;
        };
        text.push_str(t);
        let ev = json!({"item_id": id, "output_index": output_index,
            "content_index": 0, "delta": t});
        self.emit(out, "response.reasoning_text.delta", ev);
    }

    fn text(&mut self, t: &str, out: &mut BytesMut) {
        let id = self.item_id("msg");
        self.open(
            Open::Message {
                id,
                text: String::new(),
            },
            out,
        );
        let output_index = self.output_index();
        let Some(Open::Message { id, text }) = &mut self.open else {
            return;
        };
        text.push_str(t);
        let ev = json!({"item_id": id, "output_index": output_index,
            "content_index": 0, "delta": t, "logprobs": []});
        self.emit(out, "response.output_text.delta", ev);
    }

    fn tool_call(&mut self, index: u64, id: String, name: String, out: &mut BytesMut) {
        let call_id = Some(id)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("call_{}_{index}", self.output_index()));
        let next = Open::Tool {
            index,
            call_id,
            name,
            arguments: String::new(),
        };
        self.open(next, out);
    }

    fn tool_arguments(&mut self, index: u64, args: &str, out: &mut BytesMut) {
        let open = matches!(&self.open, Some(Open::Tool { index: i, .. }) if *i == index);
        if !open {
            // Arguments of a call whose start was not seen open a nameless call.
            self.tool_call(index, String::new(), String::new(), out);
        }
        let output_index = self.output_index();
        let Some(Open::Tool {
            call_id, arguments, ..
        }) = &mut self.open
        else {
            return;
        };
        arguments.push_str(args);
        let ev = json!({"item_id": format!("fc_{call_id}"),
            "output_index": output_index, "delta": args});
        self.emit(out, "response.function_call_arguments.delta", ev);
    }
}

/// `content_part.done` carries the part, not the text beside it.
fn without_text(mut done: Value) -> Value {
    if let Some(m) = done.as_object_mut() {
        m.remove("text");
        m.remove("logprobs");
    }
    done
}

impl Encoder for ResponsesEncoder {
    fn event(&mut self, event: StreamEvent, tap: &Tap, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { id, model, created } => {
                let envelope = match Some(id).filter(|id| !id.is_empty()) {
                    Some(id) => Envelope {
                        id,
                        created_at: created.unwrap_or(self.created_at),
                        model,
                    },
                    None => self.fallback_envelope(tap),
                };
                self.start(envelope, out);
            }
            StreamEvent::Error { message, .. } => {
                let ev = json!({"code": "upstream_error", "message": message, "param": null});
                self.emit(out, "error", ev);
            }
            event => {
                self.start(self.fallback_envelope(tap), out);
                match event {
                    StreamEvent::Reasoning(t) => self.reasoning(&t, out),
                    StreamEvent::Text(t) => self.text(&t, out),
                    StreamEvent::ToolCall { index, id, name } => {
                        self.tool_call(index, id, name, out);
                    }
                    StreamEvent::ToolArguments { index, arguments } => {
                        self.tool_arguments(index, &arguments, out);
                    }
                    StreamEvent::Finish(reason) => self.finish_reason = Some(reason),
                    _ => {}
                }
            }
        }
    }

    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        self.complete(tap, out);
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        let mut body = error.body(request_id)["error"].clone();
        body["type"] = "error".into();
        body["sequence_number"] = self.sequence.into();
        sse::write_fields(out, Some("error"), None, &body.to_string());
    }
}
