//! An Anthropic Messages stream decoded into neutral events: `message_start` → the
//! answer's identity and its first usage report, text and thinking deltas → text and
//! reasoning, a `tool_use` block and its `input_json_delta`s → a tool call and its
//! arguments (numbered from 0 in block order, as OpenAI numbers them),
//! `message_delta` → its usage and `stop_reason`, `message_stop` → the end, an `error`
//! event → an error. `ping`, `content_block_stop`, `signature_delta` and anything
//! newer carry nothing another dialect reads.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::providers::sse::SseEvent;
use crate::providers::stream::{FinishReason, StreamDecoder, StreamEvent};

/// Decoder state of one stream.
#[derive(Debug, Default)]
pub struct MessagesDecoder {
    /// Anthropic content block index → tool call index.
    tool_calls: HashMap<u64, u64>,
}

/// The parts of an Anthropic event the decoder reads.
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

fn text(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The neutral reason for Anthropic's `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => FinishReason::Stop,
    }
}

/// Anthropic's `stop_reason` for a neutral one.
pub fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

impl StreamDecoder for MessagesDecoder {
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let Ok(view) = serde_json::from_str::<EventView>(&event.data) else {
            return;
        };
        match view.kind.as_str() {
            "message_start" => {
                let Some(m) = view.message else { return };
                out.push(StreamEvent::Start {
                    id: m.id,
                    model: m.model,
                    created: None,
                });
                if let Some(u) = m.usage.filter(Value::is_object) {
                    out.push(StreamEvent::Usage(u));
                }
            }
            "content_block_start" => {
                let block = view.content_block.unwrap_or_default();
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let next = self.tool_calls.len() as u64;
                    let index = *self
                        .tool_calls
                        .entry(view.index.unwrap_or(0))
                        .or_insert(next);
                    out.push(StreamEvent::ToolCall {
                        index,
                        id: text(&block, "id"),
                        name: text(&block, "name"),
                    });
                }
            }
            "content_block_delta" => {
                let delta = view.delta.unwrap_or_default();
                let piece = match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => StreamEvent::Text(text(&delta, "text")),
                    Some("thinking_delta") => StreamEvent::Reasoning(text(&delta, "thinking")),
                    Some("input_json_delta") => {
                        let block = view.index.unwrap_or(0);
                        StreamEvent::ToolArguments {
                            index: self.tool_calls.get(&block).copied().unwrap_or(0),
                            arguments: text(&delta, "partial_json"),
                        }
                    }
                    _ => return,
                };
                out.push(piece);
            }
            "message_delta" => {
                if let Some(u) = view.usage.filter(Value::is_object) {
                    out.push(StreamEvent::Usage(u));
                }
                let stop = view
                    .delta
                    .as_ref()
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                if let Some(stop) = stop {
                    out.push(StreamEvent::Finish(finish_reason(stop)));
                }
            }
            "message_stop" => out.push(StreamEvent::End),
            "error" => {
                let error = view.error.unwrap_or_default();
                let kind = Some(text(&error, "type"))
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| "api_error".into());
                out.push(StreamEvent::Error {
                    kind,
                    message: text(&error, "message"),
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(events: &[&str]) -> Vec<StreamEvent> {
        let mut d = MessagesDecoder::default();
        let mut out = Vec::new();
        for data in events {
            let ev = SseEvent {
                event: None,
                data: (*data).into(),
                id: None,
            };
            d.decode(&ev, &mut out);
        }
        out
    }

    /// The event sequence of Anthropic's streaming documentation, with a tool call
    /// after a thinking and a text block.
    #[test]
    fn the_documented_sequence_decodes_into_neutral_events() {
        let got = decode_all(&[
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":25,"output_tokens":1}}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\""}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        assert_eq!(
            got,
            vec![
                StreamEvent::Start {
                    id: "msg_1".into(),
                    model: "claude-sonnet-4-5".into(),
                    created: None
                },
                StreamEvent::Usage(serde_json::json!({"input_tokens":25,"output_tokens":1})),
                StreamEvent::Reasoning("Let me".into()),
                StreamEvent::Text("Hi".into()),
                StreamEvent::ToolCall {
                    index: 0,
                    id: "toolu_1".into(),
                    name: "get_weather".into()
                },
                StreamEvent::ToolArguments {
                    index: 0,
                    arguments: "{\"city\"".into()
                },
                StreamEvent::Usage(serde_json::json!({"output_tokens":15})),
                StreamEvent::Finish(FinishReason::ToolCalls),
                StreamEvent::End,
            ]
        );
    }

    #[test]
    fn an_error_event_keeps_its_type() {
        let got = decode_all(&[
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ]);
        assert_eq!(
            got,
            vec![StreamEvent::Error {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            }]
        );
    }

    #[test]
    fn stop_reasons_round_trip_through_the_neutral_reason() {
        for stop in ["end_turn", "max_tokens", "tool_use", "refusal"] {
            assert_eq!(stop_reason(finish_reason(stop)), stop);
        }
    }
}
