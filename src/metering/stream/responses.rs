//! What a Responses client sees of a Responses stream from an upstream that serves
//! the Responses API itself (OpenAI, Azure OpenAI): every `response.*` event byte for
//! byte as the upstream sent it, except that the final event (`response.completed`,
//! `response.incomplete` or `response.failed`, which carries the usage) gets
//! tollgate's `tollgate` object inserted into its `response` object's text, and an
//! upstream's own `tollgate` key is removed from any event (and from any event's
//! `response`). The meter reads the text, refusal and function-argument deltas, the
//! reasoning and reasoning-summary deltas, and the final event's `response.usage`.
//! There is no `[DONE]`: the stream has completed once `response.completed` or
//! `response.incomplete` arrived; `response.failed` ends it as an upstream failure.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::openai_chat::rewrite;
use super::{relay_as, Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::metering::summary::{insertion_point, present, Summary};
use crate::providers::responses_api_usage;
use crate::providers::sse::{self, SseEvent};

/// The relay state of one stream.
#[derive(Default)]
pub struct ResponsesRelay {
    /// `response.completed` or `response.incomplete` arrived.
    completed: bool,
    /// The number the next event would carry (for tollgate's own final error event).
    next_sequence: u64,
}

impl ResponsesRelay {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The parts of an event the relay reads; borrowed, so text is not copied.
#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    sequence_number: Option<u64>,
    /// A delta's text, decoded only for the events the meter reads (an audio delta
    /// is base64, not text).
    #[serde(default, borrow)]
    delta: Option<&'a RawValue>,
    /// The `response` object of lifecycle events, as its text within the event.
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

/// What the relay reads of a `response` object.
#[derive(Deserialize)]
struct ResponseView {
    #[serde(default)]
    usage: Option<Value>,
    /// The tier that served the request (top level, beside `usage`): it picks the price row.
    #[serde(default)]
    service_tier: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

/// A JSON string, borrowed unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// How the meter counts a delta event's text, if it does.
fn metered<'a>(kind: &str, text: &'a str) -> Option<Metered<'a>> {
    match kind {
        "response.output_text.delta"
        | "response.refusal.delta"
        | "response.function_call_arguments.delta" => Some(Metered::Text(text)),
        "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
            Some(Metered::Reasoning(text))
        }
        _ => None,
    }
}

/// The byte offset of `inner` within `outer`, when `inner` is a slice of it.
fn offset_in(outer: &str, inner: &str) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start + inner.len() <= outer.len()).then_some(start)
}

/// The final event's data with the `tollgate` object in its `response`: inserted into
/// the text when nothing needs removing, otherwise the event re-encoded without the
/// upstream's `tollgate` keys.
fn with_summary(data: &str, response: &RawValue, spoofed: bool, summary: &Summary<'_>) -> String {
    let text = response.get();
    let at = offset_in(data, text).zip(insertion_point(text.as_bytes()));
    if let (Some((start, at)), false) = (at, spoofed) {
        let member = summary.member(at);
        let (head, tail) = data.split_at(start + at.at);
        return format!("{head}{}{tail}", String::from_utf8_lossy(&member));
    }
    let Ok(Value::Object(mut event)) = serde_json::from_str::<Value>(data) else {
        return data.to_owned();
    };
    event.remove("tollgate");
    if let Some(Value::Object(r)) = event.get_mut("response") {
        r.insert("tollgate".into(), summary.to_value());
    }
    serde_json::to_string(&event).unwrap_or_else(|_| data.to_owned())
}

/// The event's data without the upstream's `tollgate` keys (top level and in its
/// `response`); `None` when nothing changed or the data is no JSON object.
fn without_tollgate(data: &str) -> Option<String> {
    let Ok(Value::Object(mut event)) = serde_json::from_str::<Value>(data) else {
        return None;
    };
    event.remove("tollgate");
    if let Some(Value::Object(r)) = event.get_mut("response") {
        r.remove("tollgate");
    }
    serde_json::to_string(&event).ok()
}

impl Relay for ResponsesRelay {
    fn event(&mut self, ev: SseEvent, tap: &mut Tap, out: &mut BytesMut) {
        let Ok(view) = serde_json::from_str::<EventView<'_>>(&ev.data) else {
            relay_as(&ev, rewrite(&ev.data, None, false), out);
            return;
        };
        if let Some(n) = view.sequence_number {
            self.next_sequence = n.saturating_add(1);
        }
        if let Some(delta) = view.delta {
            if let Ok(Text(text)) = serde_json::from_str::<Text<'_>>(delta.get()) {
                if let Some(m) = metered(&view.kind, &text) {
                    tap.observe(m);
                }
            }
        }
        let response = view
            .response
            .map(|r| (r, serde_json::from_str::<ResponseView>(r.get()).ok()));
        let spoofed = view.tollgate
            || response
                .as_ref()
                .is_some_and(|(_, r)| r.as_ref().is_some_and(|r| r.tollgate));
        let is_final = matches!(
            view.kind.as_ref(),
            "response.completed" | "response.incomplete" | "response.failed"
        );
        match response {
            Some((raw, parsed)) if is_final => {
                let (usage, tier) = parsed.map_or((None, None), |r| (r.usage, r.service_tier));
                if let Some(u) = usage.filter(Value::is_object) {
                    let u = responses_api_usage(&u).served_by(tier.as_ref());
                    tap.observe(Metered::Usage(u));
                }
                self.completed |= view.kind != "response.failed";
                let mut changed = None;
                tap.with_summary(|summary| {
                    changed = Some(with_summary(&ev.data, raw, spoofed, summary));
                });
                relay_as(&ev, changed, out);
            }
            _ => relay_as(
                &ev,
                spoofed.then(|| without_tollgate(&ev.data)).flatten(),
                out,
            ),
        }
    }

    fn end(&mut self, _tap: &mut Tap, _out: &mut BytesMut) {}

    fn completed(&self, _tap: &Tap) -> bool {
        self.completed
    }

    /// OpenAI's stream `error` event: `code`, `message`, `param`, numbered after the
    /// upstream's last event.
    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        let mut body = error.body(request_id)["error"].clone();
        body["type"] = "error".into();
        body["sequence_number"] = self.next_sequence.into();
        sse::write_fields(out, Some("error"), None, &body.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_of_a_borrowed_slice_is_found_and_a_foreign_one_is_not() {
        let outer = String::from(r#"{"response":{"id":"r"}}"#);
        let view: EventView<'_> = serde_json::from_str(&outer).unwrap();
        let inner = view.response.unwrap().get();
        assert_eq!(offset_in(&outer, inner), Some(12));
        assert_eq!(offset_in(&outer, "elsewhere"), None);
    }

    #[test]
    fn a_final_response_names_the_tier_that_served_it() {
        let r: ResponseView = serde_json::from_str(
            r#"{"id":"r","service_tier":"flex","usage":{"input_tokens":1,"output_tokens":2}}"#,
        )
        .unwrap();
        let u = responses_api_usage(r.usage.as_ref().unwrap()).served_by(r.service_tier.as_ref());
        assert_eq!(u.service_tier, Some(crate::tokens::ServiceTier::Flex));
    }

    #[test]
    fn an_upstream_tollgate_is_removed_from_the_event_and_its_response() {
        let out = without_tollgate(
            r#"{"type":"response.created","tollgate":1,"response":{"id":"r","tollgate":{}}}"#,
        );
        assert_eq!(
            out.unwrap(),
            r#"{"type":"response.created","response":{"id":"r"}}"#
        );
        assert_eq!(without_tollgate("not json"), None);
    }
}
