//! What the client sees of an OpenAI chat completion stream (every chat-completions
//! upstream speaks it: OpenAI, Azure, Foundry, GitHub, DeepSeek, compatible hosts).
//!
//! Chunks with empty `choices` and no usage (Azure's leading `prompt_filter_results`
//! chunk, `"object": ""`) are never relayed; the usage-only chunk is hidden from
//! clients that did not ask for usage. For clients that did, a chunk carrying usage is held back (one event at most) until
//! the next event shows whether it was the last one: the last, followed only by
//! `[DONE]` or the end of the stream, carries tollgate's own `tollgate` object, priced
//! exactly as the ledger record is. For clients that did not ask, any `usage` (there
//! only because tollgate asked the upstream for it) is removed. An upstream's own
//! `tollgate` key is removed from every chunk. A chunk that needs none of this is
//! relayed byte for byte, and tollgate's object is inserted into the last usage
//! chunk's text: only chunks that lose a key are re-encoded.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::Value;

use super::{relay_as, Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::metering::summary::{insertion_point, present, Insertion};
use crate::providers::sse::{self, SseEvent};

/// The relay state of one stream.
pub struct OpenAiChatRelay {
    /// The client asked for `stream_options.include_usage`.
    wants_usage_chunk: bool,
    saw_done: bool,
    /// A usage chunk waiting to learn whether it is the last.
    held: Option<Held>,
}

impl OpenAiChatRelay {
    pub fn new(wants_usage_chunk: bool) -> Self {
        Self {
            wants_usage_chunk,
            saw_done: false,
            held: None,
        }
    }

    /// Relay the held usage chunk, if any: with tollgate's object when it proved to be
    /// the last (inserted into the upstream's text unless the upstream put its own
    /// `tollgate` key in, which is then replaced), stripped of any upstream
    /// `tollgate` key otherwise.
    fn release_held(&mut self, tap: &mut Tap, out: &mut BytesMut, is_last: bool) {
        let Some(held) = self.held.take() else { return };
        let ev = &held.event;
        let mut changed = None;
        if is_last {
            tap.with_summary(|summary| {
                changed = Some(
                    match insertion_point(ev.data.as_bytes()).filter(|_| !held.upstream_tollgate) {
                        Some(at) => spliced(&ev.data, at, &summary.member(at)),
                        None => rewrite(&ev.data, Some(summary.to_value()), false)
                            .unwrap_or_else(|| ev.data.clone()),
                    },
                );
            });
        }
        if changed.is_none() && held.upstream_tollgate {
            changed = rewrite(&ev.data, None, false);
        }
        relay_as(ev, changed, out);
    }
}

impl Relay for OpenAiChatRelay {
    fn event(&mut self, ev: SseEvent, tap: &mut Tap, out: &mut BytesMut) {
        if ev.is_done() {
            self.saw_done = true;
            self.release_held(tap, out, true);
            sse::write_event(out, &ev);
            return;
        }
        let Ok(view) = serde_json::from_str::<ChunkView<'_>>(&ev.data) else {
            // Not a chat chunk (an upstream error event, or one serde refuses, e.g. with
            // a duplicated key): relayed in order, minus any `tollgate` object.
            self.release_held(tap, out, false);
            relay_as(&ev, rewrite(&ev.data, None, false), out);
            return;
        };
        for choice in view.choices.iter().flatten() {
            if let Some(delta) = &choice.delta {
                if let Some(text) = &delta.content {
                    tap.observe(Metered::Text(text));
                }
                if let Some(text) = &delta.reasoning_content {
                    tap.observe(Metered::Reasoning(text));
                }
            }
        }
        let usage = view.usage.as_ref().filter(|u| u.is_object());
        let Some(adapter) = tap.adapter() else { return };
        if let Some(u) = usage {
            let u = adapter
                .usage_from_wire(u)
                .served_by(view.service_tier.as_ref());
            tap.observe(Metered::Usage(u));
        }
        let has_no_choices = view.choices.as_ref().is_some_and(Vec::is_empty);
        let has_usage = usage.is_some();
        let upstream_tollgate = view.tollgate;
        drop(view);
        self.release_held(tap, out, false);
        if self.wants_usage_chunk && has_usage {
            self.held = Some(Held {
                event: ev,
                upstream_tollgate,
            });
            return;
        }
        // A chunk with no choices and no usage (Azure's leading `prompt_filter_results`
        // chunk, with `"object": ""`) is not OpenAI's shape: no client sees it.
        if !has_no_choices {
            // Usage the client did not ask for exists only because tollgate asked the
            // upstream for it (DeepSeek puts it on the finish chunk): it is removed.
            let changed = (upstream_tollgate || has_usage)
                .then(|| rewrite(&ev.data, None, has_usage))
                .flatten();
            relay_as(&ev, changed, out);
        }
    }

    fn end(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        self.release_held(tap, out, true);
    }

    fn completed(&self, tap: &Tap) -> bool {
        self.saw_done || tap.has_complete_usage()
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        write_error(error, request_id, out);
    }
}

/// tollgate's own error as an OpenAI stream's final event.
pub(super) fn write_error(error: &GatewayError, request_id: &str, out: &mut BytesMut) {
    let data = error.body(request_id).to_string();
    sse::write_fields(out, None, None, &data);
}

/// `data` with `member` inserted at `at`.
fn spliced(data: &str, at: Insertion, member: &[u8]) -> String {
    let (head, tail) = data.split_at(at.at);
    let mut out = String::with_capacity(data.len() + member.len());
    out.push_str(head);
    out.push_str(&String::from_utf8_lossy(member));
    out.push_str(tail);
    out
}

/// A usage chunk held back until the next event shows whether it is the last.
struct Held {
    event: SseEvent,
    /// The upstream put its own `tollgate` key in (then the chunk is re-encoded).
    upstream_tollgate: bool,
}

/// `data` without any top-level `tollgate` key (nor `usage` when `strip_usage`), with
/// `object` as its `tollgate` when given; `None` when the data is no JSON object or
/// nothing changed.
pub(super) fn rewrite(data: &str, object: Option<Value>, strip_usage: bool) -> Option<String> {
    let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
        return None;
    };
    let mut removed = chunk.remove("tollgate").is_some();
    if strip_usage {
        removed |= chunk.remove("usage").is_some();
    }
    match object {
        Some(o) => {
            chunk.insert("tollgate".into(), o);
        }
        None if !removed => return None,
        None => {}
    }
    serde_json::to_string(&chunk).ok()
}

/// The parts of a chunk the meter reads; borrowed to avoid copying text.
#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceView<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    /// The tier that served the request (top level, beside `usage`): it picks the price row.
    #[serde(default)]
    service_tier: Option<Value>,
    /// Whether the upstream put a `tollgate` key in (any value, even `null`; escaped
    /// spellings of the name match too, as serde compares decoded keys).
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}
#[cfg(test)]
mod tests {
    use super::*;

    fn view(data: &str) -> Option<bool> {
        serde_json::from_str::<ChunkView<'_>>(data)
            .ok()
            .map(|v| v.tollgate)
    }

    #[test]
    fn an_upstream_tollgate_key_is_seen_in_any_spelling_and_with_any_value() {
        assert_eq!(view(r#"{"choices":[]}"#), Some(false));
        assert_eq!(view(r#"{"choices":[],"tollgate":null}"#), Some(true));
        assert_eq!(
            view(r#"{"choices":[],"\u0074ollgate":{"cost_usd":"0"}}"#),
            Some(true)
        );
        // A duplicated key is refused by the view: the relay then rewrites the raw JSON.
        assert_eq!(view(r#"{"tollgate":1,"tollgate":2}"#), None);
    }

    #[test]
    fn the_usage_chunk_is_metered_with_the_tier_named_beside_it() {
        let chunk = r#"{"choices":[],"service_tier":"priority","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let v: ChunkView<'_> = serde_json::from_str(chunk).unwrap();
        let u = crate::providers::openai_usage(v.usage.as_ref().unwrap())
            .served_by(v.service_tier.as_ref());
        assert_eq!((u.input, u.output), (Some(3), Some(4)));
        assert_eq!(u.service_tier, Some(crate::tokens::ServiceTier::Priority));
    }

    #[test]
    fn rewrite_removes_the_upstream_object_and_changes_nothing_else() {
        let out = rewrite(r#"{"a":1,"tollgate":{"x":1},"tollgate":2}"#, None, false).unwrap();
        assert_eq!(out, r#"{"a":1}"#);
        assert_eq!(
            rewrite(r#"{"a":1}"#, None, false),
            None,
            "untouched: no re-encoding"
        );
        assert_eq!(rewrite("not json", None, false), None);
        let ours = serde_json::json!({"provider": "p1"});
        let out = rewrite(
            r#"{"tollgate":{"provider":"spoofed"},"usage":{}}"#,
            Some(ours),
            false,
        );
        assert_eq!(out.unwrap(), r#"{"usage":{},"tollgate":{"provider":"p1"}}"#);
        let out = rewrite(r#"{"a":1,"usage":{"prompt_tokens":1}}"#, None, true);
        assert_eq!(out.unwrap(), r#"{"a":1}"#);
    }
}
