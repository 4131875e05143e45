//! Neutral stream events: what every upstream dialect's stream is decoded into, and
//! what every client dialect's translated stream is encoded from
//! (`metering::stream::encode`). With them a translation is one decoder per upstream
//! dialect plus one encoder per client dialect, not one relay per pair; and the meter
//! sees the same events whatever the pair, so two dialects cannot be metered
//! differently. Streams whose client and upstream speak the same dialect do not pass
//! through here: they are relayed byte for byte (`metering::stream::passthrough`).

use serde_json::Value;

use super::sse::SseEvent;
use crate::tokens::ServiceTier;

/// One step of an answer, in no dialect's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer's identity, before its content. Only the first counts.
    Start {
        id: String,
        model: String,
        /// Unix seconds, when the upstream says.
        created: Option<i64>,
    },
    /// Visible output text.
    Text(String),
    /// Reasoning text the upstream shows (DeepSeek's `reasoning_content`, Claude's
    /// thinking).
    Reasoning(String),
    /// A tool call begins. `index` numbers the answer's calls from 0.
    ToolCall {
        index: u64,
        id: String,
        name: String,
    },
    /// A piece of a tool call's JSON arguments.
    ToolArguments { index: u64, arguments: String },
    /// The upstream's usage object as sent; the adapter that answered reads it
    /// (`ProviderAdapter::usage_from_wire`), so provider-specific counts are kept.
    Usage(Value),
    /// The processing tier the upstream says served the answer (OpenAI's top-level
    /// `service_tier`, outside `usage`): it chooses the price row, so the meter must
    /// see it even though no client dialect's encoder writes it.
    ServiceTier(ServiceTier),
    /// Why the answer stopped.
    Finish(FinishReason),
    /// An error the upstream reported inside its stream.
    Error { kind: String, message: String },
    /// The dialect's documented end of stream (`[DONE]`, `message_stop`): after it the
    /// answer is complete, whatever the connection does.
    End,
}

/// Why an answer stopped, in no dialect's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The output limit cut the answer.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The provider's filter or the model refused.
    ContentFilter,
}

impl FinishReason {
    /// From OpenAI's `finish_reason`; anything unknown is a natural stop.
    pub fn from_chat(reason: &str) -> Self {
        match reason {
            "length" => Self::Length,
            "tool_calls" | "function_call" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            _ => Self::Stop,
        }
    }

    /// OpenAI's `finish_reason`.
    pub fn as_chat(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// Decodes one upstream dialect's stream. One per stream; stateful (a dialect may
/// number tool calls by content block, say).
pub trait StreamDecoder: Send + Unpin {
    /// Decode one upstream event into `out`. An event the decoder cannot read, or that
    /// carries nothing (a keep-alive), adds nothing.
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>);
}

/// A decoder whose `Start` names `model` when the upstream's stream names none
/// (Bedrock's ConverseStream names no model): clients are told what served them.
pub struct NamingModel {
    inner: Box<dyn StreamDecoder>,
    model: String,
}

impl NamingModel {
    pub fn wrap(inner: Box<dyn StreamDecoder>, model: String) -> Box<dyn StreamDecoder> {
        Box::new(Self { inner, model })
    }
}

impl StreamDecoder for NamingModel {
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        let from = out.len();
        self.inner.decode(event, out);
        for decoded in out.iter_mut().skip(from) {
            if let StreamEvent::Start { model, .. } = decoded {
                if model.is_empty() {
                    model.clone_from(&self.model);
                }
            }
        }
    }
}

/// OpenAI chat completion chunks (every OpenAI-compatible upstream).
#[derive(Debug, Default)]
pub struct ChatChunkDecoder {
    started: bool,
    /// The tier last told: every chunk names it, the meter needs it once.
    tier: Option<ServiceTier>,
}

impl StreamDecoder for ChatChunkDecoder {
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if event.is_done() {
            out.push(StreamEvent::End);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<chunk::Chunk>(&event.data) else {
            return;
        };
        if let Some(error) = chunk.error {
            let text = |field: &str| {
                error
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let kind = Some(text("type"))
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "api_error".into());
            out.push(StreamEvent::Error {
                kind,
                message: text("message"),
            });
            return;
        }
        let tier = ServiceTier::from_wire(chunk.service_tier.as_ref());
        if tier.is_some() && tier != self.tier {
            self.tier = tier;
            out.extend(tier.map(StreamEvent::ServiceTier));
        }
        let choices = chunk.choices.unwrap_or_default();
        let usage = chunk.usage.filter(Value::is_object);
        // Azure's first chunk (`"object": ""`, empty `choices`,
        // `prompt_filter_results`) carries nothing a client of another dialect reads.
        if choices.is_empty() && usage.is_none() {
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.unwrap_or_default(),
                created: chunk.created,
            });
        }
        for choice in choices {
            if let Some(d) = choice.delta {
                if let Some(t) = d.reasoning_content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Reasoning(t));
                }
                if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Text(t));
                }
                for call in d.tool_calls.into_iter().flatten() {
                    let (name, arguments) = call
                        .function
                        .map_or((None, None), |f| (f.name, f.arguments));
                    // A call's first delta carries its id (and name); the rest only
                    // arguments.
                    if call.id.is_some() || name.is_some() {
                        out.push(StreamEvent::ToolCall {
                            index: call.index,
                            id: call.id.unwrap_or_default(),
                            name: name.unwrap_or_default(),
                        });
                    }
                    if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolArguments {
                            index: call.index,
                            arguments,
                        });
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                out.push(StreamEvent::Finish(FinishReason::from_chat(&reason)));
            }
        }
        if let Some(u) = usage {
            out.push(StreamEvent::Usage(u));
        }
    }
}

/// The parts of a chat completion chunk the decoder reads.
mod chunk {
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Deserialize)]
    pub(super) struct Chunk {
        #[serde(default)]
        pub id: Option<String>,
        #[serde(default)]
        pub created: Option<i64>,
        #[serde(default)]
        pub model: Option<String>,
        #[serde(default)]
        pub choices: Option<Vec<Choice>>,
        #[serde(default)]
        pub usage: Option<Value>,
        #[serde(default)]
        pub service_tier: Option<Value>,
        #[serde(default)]
        pub error: Option<Value>,
    }

    #[derive(Deserialize)]
    pub(super) struct Choice {
        #[serde(default)]
        pub delta: Option<Delta>,
        #[serde(default)]
        pub finish_reason: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Delta {
        #[serde(default)]
        pub content: Option<String>,
        #[serde(default)]
        pub reasoning_content: Option<String>,
        #[serde(default)]
        pub tool_calls: Option<Vec<ToolCall>>,
    }

    #[derive(Deserialize)]
    pub(super) struct ToolCall {
        #[serde(default)]
        pub index: u64,
        #[serde(default)]
        pub id: Option<String>,
        #[serde(default)]
        pub function: Option<Function>,
    }

    #[derive(Deserialize)]
    pub(super) struct Function {
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub arguments: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(data: &str) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        let mut d = ChatChunkDecoder::default();
        let ev = SseEvent {
            event: None,
            data: data.into(),
            id: None,
        };
        d.decode(&ev, &mut out);
        out
    }

    #[test]
    fn a_chunk_decodes_into_start_reasoning_text_tool_call_finish_and_usage() {
        let got = decode(
            r#"{"id":"c1","created":7,"model":"m","choices":[{"index":0,"delta":{
            "reasoning_content":"hm","content":"Hi","tool_calls":[{"index":0,"id":"t1",
            "function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":3}}"#,
        );
        assert_eq!(
            got,
            vec![
                StreamEvent::Start {
                    id: "c1".into(),
                    model: "m".into(),
                    created: Some(7)
                },
                StreamEvent::Reasoning("hm".into()),
                StreamEvent::Text("Hi".into()),
                StreamEvent::ToolCall {
                    index: 0,
                    id: "t1".into(),
                    name: "f".into()
                },
                StreamEvent::ToolArguments {
                    index: 0,
                    arguments: "{\"a\"".into()
                },
                StreamEvent::Finish(FinishReason::ToolCalls),
                StreamEvent::Usage(serde_json::json!({"prompt_tokens": 3})),
            ]
        );
    }

    #[test]
    fn the_served_tier_is_told_once_and_again_only_when_it_changes() {
        let mut d = ChatChunkDecoder::default();
        let mut out = Vec::new();
        for data in [
            r#"{"id":"c","model":"m","service_tier":"flex","choices":[{"delta":{"content":"a"}}]}"#,
            r#"{"id":"c","model":"m","service_tier":"flex","choices":[{"delta":{"content":"b"}}]}"#,
            r#"{"id":"c","model":"m","service_tier":"nonsense","choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"id":"c","model":"m","service_tier":"priority","choices":[]}"#,
        ] {
            let ev = SseEvent {
                event: None,
                data: data.into(),
                id: None,
            };
            d.decode(&ev, &mut out);
        }
        let tiers: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ServiceTier(t) => Some(*t),
                _ => None,
            })
            .collect();
        assert_eq!(tiers, [ServiceTier::Flex, ServiceTier::Priority]);
        // A chunk naming no tier tells none.
        assert!(!decode(r#"{"choices":[{"delta":{"content":"x"}}]}"#)
            .iter()
            .any(|e| matches!(e, StreamEvent::ServiceTier(_))));
    }

    #[test]
    fn azure_prompt_filter_chunk_done_and_errors() {
        let azure = r#"{"choices":[],"created":0,"id":"","model":"","object":"",
            "prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#;
        assert!(decode(azure).is_empty());
        assert_eq!(decode("[DONE]"), vec![StreamEvent::End]);
        assert_eq!(
            decode(r#"{"error":{"message":"overloaded"}}"#),
            vec![StreamEvent::Error {
                kind: "api_error".into(),
                message: "overloaded".into()
            }]
        );
    }
}
