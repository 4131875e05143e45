//! The inbound Chat Completions request, as much of it as tollgate must understand.
//!
//! The body is kept as the client's JSON so that fields tollgate does not know pass
//! through untouched; only `model`, `messages`, `stream` and `stream_options` are
//! read. `messages` stays the client's JSON text: as a `Value` tree a prompt of many
//! small messages costs tens of times its size, and the upstream body is built from
//! the text without copying the tree (see `providers::wire`). Translating the
//! request for a given upstream is the provider adapters' job.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::{ErrorCode, GatewayError};
use crate::tokens::estimate::{count_chat_prompt, TokenizerKind};

/// A parsed `POST /v1/chat/completions` body.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The client's body without `messages`: every other field, unknown ones included.
    pub body: Map<String, Value>,
    /// `messages`: the client's JSON text of a non-empty array, with assistant
    /// `reasoning_content` from earlier turns removed (DeepSeek R1 answers 400 to it,
    /// and OpenAI-style upstreams reject unknown message fields).
    messages: Box<RawValue>,
    /// The logical model asked for.
    pub model: String,
    /// Whether the client asked for an SSE stream.
    pub is_streaming: bool,
    /// Whether the client itself asked for `stream_options.include_usage`, i.e. wants
    /// the usage-only chunk that tollgate always requests upstream.
    pub wants_usage_chunk: bool,
}

/// A chat prompt whose tokens can be counted: a request, or a bare `messages` array.
pub trait Prompt: Send + Sync {
    /// Prompt tokens by `kind`'s tokenizer (see `estimate::count_chat_prompt`).
    fn prompt_tokens(&self, kind: TokenizerKind) -> u64;
}

/// Requests are not printed (they hold the client's prompt).
impl std::fmt::Debug for dyn Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prompt")
    }
}

impl Prompt for Value {
    fn prompt_tokens(&self, kind: TokenizerKind) -> u64 {
        count_chat_prompt(kind, self)
    }
}

impl Prompt for ChatRequest {
    fn prompt_tokens(&self, kind: TokenizerKind) -> u64 {
        ChatRequest::prompt_tokens(self, kind)
    }
}

impl ChatRequest {
    /// Parse a body. `path_model` is the deployment of the Azure-style route, which
    /// takes precedence over (and may replace) a `model` field.
    pub fn parse(bytes: &[u8], path_model: Option<&str>) -> Result<Self, GatewayError> {
        let Top { body, messages } = serde_json::from_slice(bytes).map_err(|e| {
            let message = if e.classify() == serde_json::error::Category::Data {
                "the request body must be a JSON object with `model` and `messages`".to_owned()
            } else {
                format!(
                    "the request body is not valid JSON ({e}); send a Chat Completions JSON object"
                )
            };
            GatewayError::new(ErrorCode::InvalidRequest, message)
        })?;
        let model = match (path_model, body.get("model")) {
            (Some(m), _) => m.to_owned(),
            (None, Some(Value::String(m))) if !m.is_empty() => m.clone(),
            (None, Some(_)) => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "`model` must be a non-empty string",
                )
                .with_param("model"))
            }
            (None, None) => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "missing `model`; GET /v1/models lists the models your key may use",
                )
                .with_param("model"))
            }
        };
        let messages = messages
            .filter(|m| count_elements(m).is_some_and(|n| n > 0))
            .ok_or_else(|| {
                GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "`messages` must be a non-empty array of chat messages",
                )
                .with_param("messages")
            })?;
        let is_streaming = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "`stream` must be a boolean",
                )
                .with_param("stream"))
            }
        };
        let wants_usage_chunk = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            body,
            messages: without_reasoning_content(messages),
            model,
            is_streaming,
            wants_usage_chunk,
        })
    }

    /// The `messages` array as the client's JSON text (validated non-empty at parse).
    pub fn messages_json(&self) -> &RawValue {
        &self.messages
    }

    /// Call `f` with each message in turn, one parsed at a time, so memory stays
    /// within one message whatever the prompt's length.
    pub fn for_each_message(&self, f: impl FnMut(Value)) {
        let mut de = serde_json::Deserializer::from_str(self.messages.get());
        // Validated at parse; nothing to report if it could fail.
        let _ = de.deserialize_seq(EachElement(f));
    }

    /// The client's output limit, whichever name it used.
    pub fn max_output_tokens(&self) -> Option<u64> {
        ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| self.body.get(*k).and_then(Value::as_u64))
    }

    /// Prompt tokens by `kind`'s tokenizer, counted message by message.
    pub fn prompt_tokens(&self, kind: TokenizerKind) -> u64 {
        let primer = count_chat_prompt(kind, &Value::Array(Vec::new()));
        let mut total = primer;
        let mut one = Value::Array(Vec::with_capacity(1));
        self.for_each_message(|m| {
            if let Value::Array(items) = &mut one {
                items.clear();
                items.push(m);
            }
            total = total.saturating_add(count_chat_prompt(kind, &one).saturating_sub(primer));
        });
        total
    }
}

/// The top-level object: `messages` kept as text, every other field as a value.
struct Top {
    body: Map<String, Value>,
    messages: Option<Box<RawValue>>,
}

impl<'de> serde::Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut top = Top {
            body: Map::new(),
            messages: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "messages" {
                top.messages = Some(map.next_value()?);
            } else {
                let value: Value = map.next_value()?;
                top.body.insert(key, value);
            }
        }
        Ok(top)
    }
}

/// Elements of a JSON array, skipped without building them; `None` if not an array.
fn count_elements(raw: &RawValue) -> Option<usize> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0usize;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    serde_json::Deserializer::from_str(raw.get())
        .deserialize_seq(Count)
        .ok()
}

/// Calls its function with each element of an array.
struct EachElement<F>(F);

impl<'de, F: FnMut(Value)> Visitor<'de> for EachElement<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            (self.0)(item);
        }
        Ok(())
    }
}

/// `messages` without any message's `reasoning_content`. Only a prompt that mentions
/// the field is parsed and rewritten; every other one is kept as it came.
fn without_reasoning_content(messages: Box<RawValue>) -> Box<RawValue> {
    if !messages.get().contains("\"reasoning_content\"") {
        return messages;
    }
    let Ok(mut parsed) = serde_json::from_str::<Value>(messages.get()) else {
        return messages;
    };
    if let Value::Array(items) = &mut parsed {
        for m in items.iter_mut() {
            if let Value::Object(m) = m {
                m.remove("reasoning_content");
            }
        }
    }
    serde_json::value::to_raw_value(&parsed).unwrap_or(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_reads_stream_options() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"x_custom":{"a":1}}"#,
            None,
        )
        .unwrap();
        assert!(r.is_streaming && r.wants_usage_chunk);
        assert_eq!(r.body["x_custom"]["a"], 1);
    }

    #[test]
    fn path_model_wins_over_body_model() {
        let r = ChatRequest::parse(
            br#"{"messages":[{"role":"user","content":"hi"}]}"#,
            Some("dep"),
        )
        .unwrap();
        assert_eq!(r.model, "dep");
    }

    #[test]
    fn messages_stay_text_without_earlier_reasoning_and_are_counted_one_by_one() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yes","reasoning_content":"secret chain"}]}"#,
            None,
        )
        .unwrap();
        assert!(!r.body.contains_key("messages"));
        let text = r.messages_json().get();
        assert!(text.contains("\"yes\"") && !text.contains("reasoning_content"));
        let mut seen = Vec::new();
        r.for_each_message(|m| seen.push(m["content"].clone()));
        assert_eq!(seen, vec![Value::from("hi"), Value::from("yes")]);
        // Counting message by message equals counting the whole array.
        let whole: Value = serde_json::from_str(text).unwrap();
        for kind in [TokenizerKind::O200kBase, TokenizerKind::DeepSeekV3] {
            assert_eq!(r.prompt_tokens(kind), count_chat_prompt(kind, &whole));
        }
    }

    #[test]
    fn rejects_empty_or_non_array_messages_and_non_objects() {
        for body in [
            &br#"{"model":"m","messages":[]}"#[..],
            br#"{"model":"m","messages":{"role":"user"}}"#,
            br#"{"model":"m","messages":"hi"}"#,
            br#"{"model":"m"}"#,
        ] {
            let e = ChatRequest::parse(body, None).unwrap_err();
            assert_eq!(
                (e.code, e.param),
                (ErrorCode::InvalidRequest, Some("messages".into()))
            );
        }
        let e = ChatRequest::parse(b"[1,2]", None).unwrap_err();
        assert!(e.message.contains("must be a JSON object"), "{}", e.message);
    }

    #[test]
    fn rejects_missing_model_and_bad_json_with_invalid_request() {
        let e = ChatRequest::parse(br#"{"messages":[{"role":"user","content":"hi"}]}"#, None)
            .unwrap_err();
        assert_eq!(
            (e.code, e.param),
            (ErrorCode::InvalidRequest, Some("model".into()))
        );
        let e = ChatRequest::parse(b"{not json", None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
