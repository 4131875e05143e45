//! ConverseStream events as neutral stream events. Each event arrives from
//! [`super::eventstream::EventStreamFramer`] named by its `:event-type` header (or, for
//! an exception, its `:exception-type`), its JSON payload as `data`.
//!
//! The order is AWS's (API_runtime_ConverseStream and ConverseStreamOutput):
//! `messageStart`, then per content block `contentBlockStart` (tool use only),
//! `contentBlockDelta`s and `contentBlockStop`, then `messageStop` with the
//! `stopReason`, and last `metadata` with `usage` and `metrics`. The answer is
//! complete only after `metadata`, since usage comes after the stop reason: a stream
//! cut between `messageStop` and `metadata` has no usage to meter, so [`StreamEvent::End`]
//! follows `metadata`, not `messageStop`. An exception event
//! (`throttlingException`, `validationException`, `modelStreamErrorException`,
//! `internalServerException`, `serviceUnavailableException`) ends the stream in error.

use std::collections::HashMap;

use serde_json::Value;

use super::answer::finish_reason;
use crate::providers::sse::SseEvent;
use crate::providers::stream::{StreamDecoder, StreamEvent};

/// Decodes one ConverseStream. Tool calls are numbered from 0 in the order their
/// blocks start; Bedrock numbers every content block (`contentBlockIndex`), text
/// and reasoning included, so the decoder keeps the map from one to the other.
#[derive(Debug, Default)]
pub struct ConverseStreamDecoder {
    started: bool,
    tool_calls: HashMap<u64, u64>,
}

impl ConverseStreamDecoder {
    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            // Converse names neither the answer nor the model in its stream.
            out.push(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                created: None,
            });
        }
    }
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl StreamDecoder for ConverseStreamDecoder {
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let Some(name) = event.event.as_deref() else {
            return;
        };
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        let block = data.get("contentBlockIndex").and_then(Value::as_u64);
        match name {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                let (Some(block), Some(id), Some(name)) = (
                    block,
                    text(&data, "/start/toolUse/toolUseId"),
                    text(&data, "/start/toolUse/name"),
                ) else {
                    return;
                };
                self.start(out);
                let index = self.tool_calls.len() as u64;
                self.tool_calls.insert(block, index);
                out.push(StreamEvent::ToolCall { index, id, name });
            }
            "contentBlockDelta" => {
                let Some(delta) = data.get("delta") else {
                    return;
                };
                if let Some(t) = text(delta, "/text").filter(|t| !t.is_empty()) {
                    self.start(out);
                    out.push(StreamEvent::Text(t));
                } else if let Some(t) =
                    text(delta, "/reasoningContent/text").filter(|t| !t.is_empty())
                {
                    self.start(out);
                    out.push(StreamEvent::Reasoning(t));
                } else if let Some(arguments) =
                    text(delta, "/toolUse/input").filter(|a| !a.is_empty())
                {
                    if let Some(&index) = block.and_then(|b| self.tool_calls.get(&b)) {
                        out.push(StreamEvent::ToolArguments { index, arguments });
                    }
                }
            }
            "messageStop" => {
                if let Some(stop) = data.get("stopReason").and_then(Value::as_str) {
                    self.start(out);
                    out.push(StreamEvent::Finish(finish_reason(stop)));
                }
            }
            "metadata" => {
                if let Some(usage) = data.get("usage").filter(|u| u.is_object()) {
                    out.push(StreamEvent::Usage(usage.clone()));
                }
                out.push(StreamEvent::End);
            }
            // contentBlockStop carries nothing a client reads.
            "contentBlockStop" => {}
            exception if exception.ends_with("Exception") => out.push(StreamEvent::Error {
                kind: exception.to_owned(),
                message: text(&data, "/message")
                    .or_else(|| text(&data, "/Message"))
                    .unwrap_or_default(),
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::stream::FinishReason;
    use serde_json::json;

    fn decode_all(events: &[(&str, Value)]) -> Vec<StreamEvent> {
        let mut d = ConverseStreamDecoder::default();
        let mut out = Vec::new();
        for (name, data) in events {
            let ev = SseEvent {
                event: Some((*name).into()),
                data: data.to_string(),
                id: None,
            };
            d.decode(&ev, &mut out);
        }
        out
    }

    #[test]
    fn a_documented_stream_decodes_in_order_with_end_after_metadata() {
        let got = decode_all(&[
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"delta": {"reasoningContent": {"text": "Thinking"}}, "contentBlockIndex": 0}),
            ),
            (
                "contentBlockDelta",
                json!({"delta": {"reasoningContent": {"signature": "abc"}}, "contentBlockIndex": 0}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "contentBlockDelta",
                json!({"delta": {"text": "Hello"}, "contentBlockIndex": 1}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 1})),
            (
                "contentBlockStart",
                json!({"start": {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song"}}, "contentBlockIndex": 2}),
            ),
            (
                "contentBlockDelta",
                json!({"delta": {"toolUse": {"input": "{\"sign\": "}}, "contentBlockIndex": 2}),
            ),
            (
                "contentBlockDelta",
                json!({"delta": {"toolUse": {"input": "\"WZPZ\"}"}}, "contentBlockIndex": 2}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 2})),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 375, "outputTokens": 56, "totalTokens": 431}, "metrics": {"latencyMs": 1463}}),
            ),
        ]);
        assert_eq!(
            got,
            vec![
                StreamEvent::Start {
                    id: String::new(),
                    model: String::new(),
                    created: None
                },
                StreamEvent::Reasoning("Thinking".into()),
                StreamEvent::Text("Hello".into()),
                StreamEvent::ToolCall {
                    index: 0,
                    id: "tooluse_1".into(),
                    name: "top_song".into()
                },
                StreamEvent::ToolArguments {
                    index: 0,
                    arguments: "{\"sign\": ".into()
                },
                StreamEvent::ToolArguments {
                    index: 0,
                    arguments: "\"WZPZ\"}".into()
                },
                StreamEvent::Finish(FinishReason::ToolCalls),
                StreamEvent::Usage(
                    json!({"inputTokens": 375, "outputTokens": 56, "totalTokens": 431})
                ),
                StreamEvent::End,
            ]
        );
    }

    #[test]
    fn two_tool_blocks_are_numbered_from_zero_and_exceptions_are_errors() {
        let got = decode_all(&[
            (
                "contentBlockStart",
                json!({"start": {"toolUse": {"toolUseId": "a", "name": "f"}}, "contentBlockIndex": 1}),
            ),
            (
                "contentBlockStart",
                json!({"start": {"toolUse": {"toolUseId": "b", "name": "g"}}, "contentBlockIndex": 2}),
            ),
            (
                "contentBlockDelta",
                json!({"delta": {"toolUse": {"input": "{}"}}, "contentBlockIndex": 2}),
            ),
            (
                "throttlingException",
                json!({"message": "Too many requests, please wait before trying again."}),
            ),
        ]);
        assert_eq!(
            got[1..],
            [
                StreamEvent::ToolCall {
                    index: 0,
                    id: "a".into(),
                    name: "f".into()
                },
                StreamEvent::ToolCall {
                    index: 1,
                    id: "b".into(),
                    name: "g".into()
                },
                StreamEvent::ToolArguments {
                    index: 1,
                    arguments: "{}".into()
                },
                StreamEvent::Error {
                    kind: "throttlingException".into(),
                    message: "Too many requests, please wait before trying again.".into()
                },
            ]
        );
        assert!(
            !decode_all(&[("messageStop", json!({"stopReason": "end_turn"}))])
                .contains(&StreamEvent::End),
            "the stream is complete only after metadata"
        );
    }
}
