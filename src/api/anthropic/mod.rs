//! The inbound Anthropic Messages request (`POST /v1/messages`), as much of it as
//! tollgate must understand: `model`, `stream`, `max_tokens`; everything else is kept
//! as the client's JSON, relayed untouched to an Anthropic upstream (only `model`
//! changes) or translated explicitly for a chat-completions upstream ([`to_chat`]).

pub mod to_chat;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::{ErrorCode, GatewayError};
use super::openai::{ChatRequest, Prompt};
use crate::tokens::estimate::TokenizerKind;

/// A parsed `POST /v1/messages` body.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// The client's body without `messages`: every other field, unknown ones included.
    pub body: Map<String, Value>,
    /// `messages`, as the client's JSON text of a non-empty array.
    messages: Box<RawValue>,
    pub model: String,
    pub is_streaming: bool,
    pub max_tokens: u64,
}

#[derive(serde::Deserialize)]
struct Top {
    #[serde(flatten)]
    body: Map<String, Value>,
    messages: Option<Box<RawValue>>,
}

fn invalid(param: &'static str, message: &str) -> GatewayError {
    GatewayError::new(ErrorCode::InvalidRequest, message.to_owned()).with_param(param)
}

impl MessagesRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, GatewayError> {
        Self::parse_with(bytes, true)
    }

    /// A `POST /v1/messages/count_tokens` body: a Messages body without `max_tokens`.
    pub fn parse_for_count(bytes: &[u8]) -> Result<Self, GatewayError> {
        Self::parse_with(bytes, false)
    }

    fn parse_with(bytes: &[u8], needs_max_tokens: bool) -> Result<Self, GatewayError> {
        let Top { body, messages } = serde_json::from_slice(bytes).map_err(|e| {
            GatewayError::new(
                ErrorCode::InvalidRequest,
                format!("the request body must be a Messages JSON object with `model`, `max_tokens` and `messages` ({e})"),
            )
        })?;
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            _ => return Err(invalid("model", "`model` must be a non-empty string")),
        };
        let max_tokens = match body.get("max_tokens").and_then(Value::as_u64) {
            Some(n) if n > 0 => n,
            None if !needs_max_tokens && body.get("max_tokens").is_none() => 1,
            _ => {
                return Err(invalid(
                    "max_tokens",
                    "`max_tokens` must be a positive integer",
                ))
            }
        };
        let messages = messages
            .filter(|m| m.get().trim_start().starts_with('[') && m.get() != "[]")
            .ok_or_else(|| invalid("messages", "`messages` must be a non-empty array"))?;
        let is_streaming = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("stream", "`stream` must be a boolean")),
        };
        Ok(Self {
            body,
            messages,
            model,
            is_streaming,
            max_tokens,
        })
    }

    /// `messages` as the client's JSON text.
    pub fn messages_json(&self) -> &RawValue {
        &self.messages
    }

    /// The prompt's text for a bytes/4 estimate: `system` and `messages`.
    pub fn prompt_bytes(&self) -> usize {
        let system = self.body.get("system").map_or(0, |s| match s {
            Value::String(s) => s.len(),
            other => other.to_string().len(),
        });
        self.messages.get().len() + system
    }

    /// The prompt's tokens counted as its chat translation's (the same count a
    /// chat-completions upstream's prompt gets); bytes/4 when it has none.
    fn translated_prompt_tokens(&self, kind: TokenizerKind) -> u64 {
        to_chat::chat_body(self)
            .ok()
            .and_then(|bytes| ChatRequest::parse(&bytes, None).ok())
            .map_or_else(
                || u64::try_from(self.prompt_bytes() / 4).unwrap_or(u64::MAX),
                |chat| chat.prompt_tokens(kind),
            )
    }

    /// The body for an Anthropic upstream: the client's, with `upstream_model`.
    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.messages.get().len() + 256);
        out.push(b'{');
        let mut wrote_model = false;
        for (k, v) in &self.body {
            if out.len() > 1 {
                out.push(b',');
            }
            // Writing strings and values into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            if k == "model" {
                wrote_model = true;
                let _ = serde_json::to_writer(&mut out, upstream_model);
            } else {
                let _ = serde_json::to_writer(&mut out, v);
            }
        }
        if !wrote_model {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"\"model\":");
            let _ = serde_json::to_writer(&mut out, upstream_model);
        }
        out.extend_from_slice(b",\"messages\":");
        out.extend_from_slice(self.messages.get().as_bytes());
        out.push(b'}');
        out
    }
}

/// A Messages client's prompt is counted when its upstream reports no usage, whether or
/// not a chat translation was made to serve it.
impl Prompt for MessagesRequest {
    fn prompt_tokens(&self, kind: TokenizerKind) -> u64 {
        self.translated_prompt_tokens(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_body_is_read_and_relayed_with_only_the_model_changed() {
        let req = MessagesRequest::parse(
            br#"{"model":"claude","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}],"metadata":{"user_id":"u"},"future_field":[1]}"#,
        )
        .unwrap();
        assert_eq!(
            (req.model.as_str(), req.max_tokens, req.is_streaming),
            ("claude", 100, false)
        );
        let body: Value = serde_json::from_slice(&req.upstream_body("claude-sonnet-4-5")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model":"claude-sonnet-4-5","max_tokens":100,"system":"Be brief.",
                "messages":[{"role":"user","content":"Hi"}],"metadata":{"user_id":"u"},"future_field":[1]})
        );
    }

    #[test]
    fn what_anthropic_requires_is_checked_by_name() {
        let param = |b: &[u8]| MessagesRequest::parse(b).unwrap_err().param.unwrap();
        assert_eq!(
            param(br#"{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#),
            "model"
        );
        assert_eq!(
            param(br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#),
            "max_tokens"
        );
        assert_eq!(
            param(br#"{"model":"m","max_tokens":1,"messages":[]}"#),
            "messages"
        );
        assert_eq!(
            param(br#"{"model":"m","max_tokens":1,"stream":"yes","messages":[{"role":"user","content":"x"}]}"#),
            "stream"
        );
    }
}
