//! What an Anthropic Messages client sees of an Anthropic Messages stream: every event
//! byte for byte as the upstream sent it (named events, `ping`s included), except that
//! `message_delta` (the event with the final usage, just before `message_stop`)
//! carries tollgate's `tollgate` object, inserted into its text, and an upstream's own
//! `tollgate` key is removed from any event. The meter reads `message_start`'s usage
//! (input and cache counts), the text, thinking and tool-input deltas, and
//! `message_delta`'s cumulative output.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::Value;

use super::openai_chat::rewrite;
use super::{relay_as, Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::metering::summary::{insertion_point, present};
use crate::providers::sse::{self, SseEvent};

/// The relay state of one stream.
#[derive(Default)]
pub struct AnthropicRelay {
    saw_stop: bool,
}

impl AnthropicRelay {
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    message: Option<MessageView>,
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

#[derive(Deserialize)]
struct MessageView {
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
}

impl Relay for AnthropicRelay {
    fn event(&mut self, ev: SseEvent, tap: &mut Tap, out: &mut BytesMut) {
        let Ok(view) = serde_json::from_str::<EventView<'_>>(&ev.data) else {
            relay_as(&ev, rewrite(&ev.data, None, false), out);
            return;
        };
        let Some(adapter) = tap.adapter() else { return };
        let usage = view
            .usage
            .as_ref()
            .or_else(|| view.message.as_ref().and_then(|m| m.usage.as_ref()));
        if let Some(u) = usage.filter(|u| u.is_object()) {
            tap.observe(Metered::Usage(adapter.usage_from_wire(u)));
        }
        if let Some(d) = &view.delta {
            if let Some(t) = &d.text {
                tap.observe(Metered::Text(t));
            }
            if let Some(t) = &d.partial_json {
                tap.observe(Metered::Text(t));
            }
            if let Some(t) = &d.thinking {
                tap.observe(Metered::Reasoning(t));
            }
        }
        let (kind, upstream_tollgate) = (view.kind.into_owned(), view.tollgate);
        match kind.as_str() {
            "message_delta" => {
                let mut changed = None;
                tap.with_summary(|summary| {
                    changed = match insertion_point(ev.data.as_bytes()) {
                        Some(at) if !upstream_tollgate => {
                            let member = summary.member(at);
                            let (head, tail) = ev.data.split_at(at.at);
                            Some(format!("{head}{}{tail}", String::from_utf8_lossy(&member)))
                        }
                        _ => rewrite(&ev.data, Some(summary.to_value()), false),
                    };
                });
                relay_as(&ev, changed, out);
            }
            "message_stop" => {
                self.saw_stop = true;
                relay_as(
                    &ev,
                    upstream_tollgate
                        .then(|| rewrite(&ev.data, None, false))
                        .flatten(),
                    out,
                );
            }
            _ => relay_as(
                &ev,
                upstream_tollgate
                    .then(|| rewrite(&ev.data, None, false))
                    .flatten(),
                out,
            ),
        }
    }

    fn end(&mut self, _tap: &mut Tap, _out: &mut BytesMut) {}

    fn completed(&self, _tap: &Tap) -> bool {
        self.saw_stop
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        let data = error.anthropic_body(request_id).to_string();
        sse::write_fields(out, Some("error"), None, &data);
    }
}
