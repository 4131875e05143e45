//! An OpenAI chat completion stream as a Responses stream, for a Responses client
//! served by a chat-completions upstream. The first chunk with content opens the
//! response (`response.created`, `response.in_progress`); `reasoning_content` deltas
//! become a `reasoning` item (`response.reasoning_text.delta`), `content` deltas a
//! `message` item (`response.content_part.added`, `response.output_text.delta`) and
//! each tool call a `function_call` item (`response.function_call_arguments.delta`),
//! each item opened with `response.output_item.added` and closed with its `*.done`
//! events and `response.output_item.done`, as OpenAI's sequence has it; every event
//! carries its `sequence_number`. The end (`[DONE]`, or the upstream closing after
//! complete usage) closes the last item and sends `response.completed` (or
//! `response.incomplete` when the output limit cut the answer) whose `response`
//! carries every output item, the usage the Responses way and tollgate's `tollgate`
//! object. Nothing of the upstream's JSON reaches the client verbatim.
//!
//! Unlike the other relays this one holds the answer's text: the documented `*.done`
//! events and the final `response` repeat each item whole, so memory grows with the
//! answer (not with the prompt).

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::chat_chunk::{ChunkView, DeltaView};
use super::{Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::api::responses::from_chat::{
    ending, function_call_item, message_item, output_text, reasoning_item, responses_usage,
    Envelope,
};
use crate::providers::sse;

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

/// The relay state of one stream.
pub struct ChatResponsesRelay {
    /// The request's settings, repeated in every `response`.
    echo: Map<String, Value>,
    /// Stands in for an upstream that sends no `created`.
    created_at: i64,
    envelope: Option<Envelope>,
    sequence: u64,
    /// Closed items, in output order.
    done: Vec<Value>,
    open: Option<Open>,
    finish_reason: Option<String>,
    finished: bool,
}

impl ChatResponsesRelay {
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
            finished: false,
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
                let status = ending(self.finish_reason.as_deref()).0;
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
    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start(self.fallback_envelope(tap), out);
        self.close(out);
        let (status, incomplete) = ending(self.finish_reason.as_deref());
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

    fn delta(&mut self, chunk_delta: DeltaView, tap: &mut Tap, out: &mut BytesMut) {
        let output_index = self.output_index();
        if let Some(t) = chunk_delta.reasoning_content.filter(|t| !t.is_empty()) {
            tap.observe(Metered::Reasoning(&t));
            let id = self.item_id("rs");
            self.open(
                Open::Reasoning {
                    id,
                    text: String::new(),
                },
                out,
            );
            let mut ev = None;
            if let Some(Open::Reasoning { id, text }) = &mut self.open {
                text.push_str(&t);
                ev = Some(json!({"item_id": id, "output_index": self.done.len(),
                    "content_index": 0, "delta": t}));
            }
            if let Some(ev) = ev {
                self.emit(out, "response.reasoning_text.delta", ev);
            }
        }
        if let Some(t) = chunk_delta.content.filter(|t| !t.is_empty()) {
            tap.observe(Metered::Text(&t));
            let id = self.item_id("msg");
            self.open(
                Open::Message {
                    id,
                    text: String::new(),
                },
                out,
            );
            let mut ev = None;
            if let Some(Open::Message { id, text }) = &mut self.open {
                text.push_str(&t);
                ev = Some(json!({"item_id": id, "output_index": self.done.len(),
                    "content_index": 0, "delta": t, "logprobs": []}));
            }
            if let Some(ev) = ev {
                self.emit(out, "response.output_text.delta", ev);
            }
        }
        for call in chunk_delta.tool_calls.into_iter().flatten() {
            let f = call.function;
            let (name, args) = f.map_or((None, None), |f| (f.name, f.arguments));
            let call_id = call
                .id
                .unwrap_or_else(|| format!("call_{output_index}_{}", call.index));
            let next = Open::Tool {
                index: call.index,
                call_id,
                name: name.unwrap_or_default(),
                arguments: String::new(),
            };
            self.open(next, out);
            let Some(args) = args.filter(|a| !a.is_empty()) else {
                continue;
            };
            tap.observe(Metered::Text(&args));
            let mut ev = None;
            if let Some(Open::Tool {
                call_id, arguments, ..
            }) = &mut self.open
            {
                arguments.push_str(&args);
                ev = Some(json!({"item_id": format!("fc_{call_id}"),
                    "output_index": self.done.len(), "delta": args}));
            }
            if let Some(ev) = ev {
                self.emit(out, "response.function_call_arguments.delta", ev);
            }
        }
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

impl Relay for ChatResponsesRelay {
    fn event(&mut self, ev: sse::SseEvent, tap: &mut Tap, out: &mut BytesMut) {
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
            let ev = json!({"code": "upstream_error", "message": message, "param": null});
            self.emit(out, "error", ev);
            return;
        }
        let has_choices = chunk.choices.as_ref().is_some_and(|c| !c.is_empty());
        let usage = chunk.usage.filter(Value::is_object);
        // Azure's first chunk (empty `choices`, `prompt_filter_results`) says nothing
        // a Responses client reads.
        if !has_choices && usage.is_none() {
            return;
        }
        let envelope = match chunk.id.filter(|id| !id.is_empty()) {
            Some(id) => Envelope {
                id,
                created_at: chunk.created.unwrap_or(self.created_at),
                model: chunk.model.unwrap_or_default(),
            },
            None => self.fallback_envelope(tap),
        };
        self.start(envelope, out);
        if let Some(u) = &usage {
            tap.observe(Metered::Usage(adapter.usage_from_wire(u)));
        }
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(d) = choice.delta {
                self.delta(d, tap, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
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
        let mut body = error.body(request_id)["error"].clone();
        body["type"] = "error".into();
        body["sequence_number"] = self.sequence.into();
        sse::write_fields(out, Some("error"), None, &body.to_string());
    }
}
