//! Gemini's `streamGenerateContent?alt=sse` stream into neutral events. Each SSE
//! event's `data` is a whole `GenerateContentResponse` chunk (ai.google.dev/api/
//! generate-content#method:-models.streamgeneratecontent): text and thought parts are
//! increments, a `functionCall` part arrives whole (so it becomes a `ToolCall` and its
//! complete `ToolArguments` at once), `usageMetadata` is the running total (the meter
//! merges by maximum), and the last chunk carries the `finishReason`.
//!
//! The end. Gemini's stream has no terminator: no `[DONE]`, no `message_stop`; the
//! server closes the connection after the last chunk. That last chunk is the one with
//! a `finishReason`, and it carries the final `usageMetadata` (Google's streaming
//! examples, and every chunk of an `alt=sse` stream carries `usageMetadata`, the
//! finishing one with the candidates' and thoughts' counts). So `End` is emitted once
//! both have been seen: the answer is complete and metered, and a connection that
//! closes after it is a completed answer. A stream cut before then has no `End`, and
//! is metered as the cut stream it is. A finish whose usage comes in a later chunk
//! (a prompt-blocked answer, or a proxy that splits them) ends at that chunk.

use serde_json::Value;

use super::answer::{finish_reason, prompt_blocked, Response};
use crate::providers::sse::SseEvent;
use crate::providers::stream::{FinishReason, StreamDecoder, StreamEvent};

/// Decodes one Gemini SSE stream (Gemini API and Vertex AI alike).
#[derive(Debug, Default)]
pub struct GeminiStreamDecoder {
    started: bool,
    /// Tool calls so far: numbers the next one, and turns `STOP` into `ToolCalls`.
    calls: u64,
    finished: bool,
    usage_seen: bool,
    ended: bool,
}

impl StreamDecoder for GeminiStreamDecoder {
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Response>(&event.data) else {
            return;
        };
        if let Some(error) = chunk.error {
            out.push(error_event(&error));
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
                created: None,
            });
        }
        // Only the first candidate: a translated stream carries one choice (the
        // request translation refuses `n` > 1 when streaming).
        if let Some(candidate) = chunk.candidates.first() {
            for part in candidate.content.iter().flat_map(|c| &c.parts) {
                match (&part.text, &part.function_call) {
                    (Some(t), _) if t.is_empty() => {}
                    (Some(t), _) if part.thought => out.push(StreamEvent::Reasoning(t.clone())),
                    (Some(t), _) => out.push(StreamEvent::Text(t.clone())),
                    (None, Some(call)) => {
                        let index = self.calls;
                        self.calls += 1;
                        out.push(StreamEvent::ToolCall {
                            index,
                            id: call.id_or(usize::try_from(index).unwrap_or(usize::MAX)),
                            name: call.name.clone(),
                        });
                        out.push(StreamEvent::ToolArguments {
                            index,
                            arguments: call.arguments(),
                        });
                    }
                    (None, None) => {}
                }
            }
            if let Some(reason) = &candidate.finish_reason {
                out.push(StreamEvent::Finish(finish_reason(reason, self.calls > 0)));
                self.finished = true;
            }
        } else if prompt_blocked(&chunk) {
            out.push(StreamEvent::Finish(FinishReason::ContentFilter));
            self.finished = true;
        }
        if let Some(usage) = chunk.usage_metadata.filter(Value::is_object) {
            out.push(StreamEvent::Usage(usage));
            self.usage_seen = true;
        }
        if self.finished && self.usage_seen {
            self.ended = true;
            out.push(StreamEvent::End);
        }
    }
}

/// Google's error object (`{"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED"}`)
/// as an in-stream error; `status` is the kind.
fn error_event(error: &Value) -> StreamEvent {
    let text = |field: &str| error.get(field).and_then(Value::as_str).unwrap_or_default();
    let kind = Some(text("status"))
        .filter(|k| !k.is_empty())
        .unwrap_or("api_error");
    StreamEvent::Error {
        kind: kind.to_owned(),
        message: text("message").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode_all(chunks: &[&str]) -> Vec<StreamEvent> {
        let mut decoder = GeminiStreamDecoder::default();
        let mut out = Vec::new();
        for data in chunks {
            let event = SseEvent {
                event: None,
                data: (*data).to_owned(),
                id: None,
            };
            decoder.decode(&event, &mut out);
        }
        out
    }

    #[test]
    fn chunks_decode_into_start_reasoning_text_usage_finish_and_end() {
        let got = decode_all(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"Thinking","thought":true}],"role":"model"},"index":0}],
                "usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},
                "modelVersion":"gemini-2.5-flash","responseId":"r1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],
                "usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},
                "modelVersion":"gemini-2.5-flash","responseId":"r1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":" world"}],"role":"model"},"finishReason":"STOP","index":0}],
                "usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2,"totalTokenCount":31,"thoughtsTokenCount":20},
                "modelVersion":"gemini-2.5-flash","responseId":"r1"}"#,
        ]);
        let usage = |v: Value| StreamEvent::Usage(v);
        assert_eq!(
            got,
            vec![
                StreamEvent::Start {
                    id: "r1".into(),
                    model: "gemini-2.5-flash".into(),
                    created: None
                },
                StreamEvent::Reasoning("Thinking".into()),
                usage(json!({"promptTokenCount": 9, "totalTokenCount": 9})),
                StreamEvent::Text("Hello".into()),
                usage(json!({"promptTokenCount": 9, "totalTokenCount": 9})),
                StreamEvent::Text(" world".into()),
                StreamEvent::Finish(FinishReason::Stop),
                usage(json!({"promptTokenCount": 9, "candidatesTokenCount": 2,
                    "totalTokenCount": 31, "thoughtsTokenCount": 20})),
                StreamEvent::End,
            ]
        );
    }

    #[test]
    fn a_whole_function_call_is_a_tool_call_with_its_arguments_and_finishes_as_tool_calls() {
        let got = decode_all(&[
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}}},
                {"functionCall":{"name":"g","args":{}}}],"role":"model"},"finishReason":"STOP","index":0}],
                "usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":4,"totalTokenCount":9},
                "responseId":"r2","modelVersion":"m"}"#,
        ]);
        assert_eq!(
            &got[1..5],
            &[
                StreamEvent::ToolCall {
                    index: 0,
                    id: "call_0".into(),
                    name: "f".into()
                },
                StreamEvent::ToolArguments {
                    index: 0,
                    arguments: "{\"a\":1}".into()
                },
                StreamEvent::ToolCall {
                    index: 1,
                    id: "call_1".into(),
                    name: "g".into()
                },
                StreamEvent::ToolArguments {
                    index: 1,
                    arguments: "{}".into()
                },
            ]
        );
        assert_eq!(got[5], StreamEvent::Finish(FinishReason::ToolCalls));
        assert_eq!(got.last(), Some(&StreamEvent::End));
    }

    #[test]
    fn no_end_without_a_finish_and_a_finish_without_usage_ends_at_the_usage() {
        let cut = decode_all(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],
                "usageMetadata":{"promptTokenCount":3}}"#,
        ]);
        assert!(!cut.contains(&StreamEvent::End));
        let split = decode_all(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"x"}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}]}"#,
            r#"{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}"#,
        ]);
        assert_eq!(
            &split[split.len() - 3..],
            &[
                StreamEvent::Finish(FinishReason::Length),
                StreamEvent::Usage(json!({"promptTokenCount": 3, "candidatesTokenCount": 1})),
                StreamEvent::End
            ]
        );
    }

    #[test]
    fn errors_and_blocked_prompts() {
        assert_eq!(
            decode_all(&[
                r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#
            ]),
            vec![StreamEvent::Error {
                kind: "UNAVAILABLE".into(),
                message: "The model is overloaded.".into()
            }]
        );
        let blocked = decode_all(&[
            r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}"#,
        ]);
        assert!(blocked.contains(&StreamEvent::Finish(FinishReason::ContentFilter)));
        assert_eq!(blocked.last(), Some(&StreamEvent::End));
        assert!(decode_all(&["not json"]).is_empty());
    }
}
