//! The inbound OpenAI Responses request (`POST /v1/responses`), as much of it as
//! tollgate must understand: `model`, `input`, `stream`, `max_output_tokens`; every
//! other field is kept as the client's JSON. An upstream that serves the Responses API
//! itself (OpenAI, Azure OpenAI) gets that JSON with only `model` changed
//! ([`ResponsesRequest::upstream_body`]); any other gets the explicit translation to a
//! chat completion ([`to_chat`]), which names what it cannot translate, and the answer
//! and stream go back through [`from_chat`] and `metering::stream::chat_responses`.
//!
//! tollgate is stateless: it keeps no responses, so `store: true` and
//! `previous_response_id` are refused by the translation, never ignored; a native
//! upstream keeps them itself.

pub mod from_chat;
pub mod to_chat;

use serde_json::{json, Map, Value};

use super::error::{ErrorCode, GatewayError};
use super::openai::{ChatRequest, Prompt};
use crate::tokens::estimate::TokenizerKind;

/// A parsed `POST /v1/responses` body.
#[derive(Debug, Clone)]
pub struct ResponsesRequest {
    /// The client's whole body, unknown fields included.
    pub body: Map<String, Value>,
    pub model: String,
    pub is_streaming: bool,
    /// `max_output_tokens`; `None` when the client set no limit.
    pub max_output_tokens: Option<u64>,
}

fn invalid(param: &'static str, message: &str) -> GatewayError {
    GatewayError::new(ErrorCode::InvalidRequest, message.to_owned()).with_param(param)
}

impl ResponsesRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, GatewayError> {
        let body: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
            GatewayError::new(
                ErrorCode::InvalidRequest,
                format!("the request body must be a Responses JSON object with `model` and `input` ({e})"),
            )
        })?;
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            _ => {
                return Err(invalid(
                    "model",
                    "`model` must be a non-empty string; GET /v1/models lists the models your key may use",
                ))
            }
        };
        match body.get("input") {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::Array(items)) if !items.is_empty() => {}
            _ => {
                return Err(invalid(
                    "input",
                    "`input` must be a non-empty string or a non-empty array of input items",
                ))
            }
        }
        let is_streaming = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("stream", "`stream` must be a boolean")),
        };
        let max_output_tokens = match body.get("max_output_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                invalid(
                    "max_output_tokens",
                    "`max_output_tokens` must be a positive integer",
                )
            })?),
        };
        Ok(Self {
            body,
            model,
            is_streaming,
            max_output_tokens,
        })
    }

    /// The client's body for a native Responses upstream: every field as the client
    /// sent it, in its order, with only `model` replaced by `upstream_model` (Azure's
    /// v1 API reads the deployment name there). `store`, `previous_response_id`,
    /// `include`, built-in tools and fields tollgate does not know all pass through.
    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prompt_bytes() + 256);
        out.push(b'{');
        for (k, v) in &self.body {
            if out.len() > 1 {
                out.push(b',');
            }
            // Writing strings and values into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            if k == "model" {
                let _ = serde_json::to_writer(&mut out, upstream_model);
            } else {
                let _ = serde_json::to_writer(&mut out, v);
            }
        }
        // `parse` requires `model`, so it was written above.
        out.push(b'}');
        out
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

    /// The prompt's text for a bytes/4 estimate: `instructions` and `input`.
    pub fn prompt_bytes(&self) -> usize {
        let len = |key: &str| {
            self.body.get(key).map_or(0, |v| match v {
                Value::String(s) => s.len(),
                other => other.to_string().len(),
            })
        };
        len("instructions") + len("input")
    }

    /// The request's settings as a `response` object repeats them (OpenAI echoes
    /// them in every `response`, streamed or not), with the defaults OpenAI reports
    /// for fields the client left out.
    pub fn echo(&self) -> Map<String, Value> {
        let b = &self.body;
        let or = |key: &str, default: Value| {
            b.get(key)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let effort = b.get("reasoning").and_then(|r| r.get("effort")).cloned();
        let mut out = Map::new();
        out.insert("instructions".into(), or("instructions", Value::Null));
        out.insert(
            "max_output_tokens".into(),
            or("max_output_tokens", Value::Null),
        );
        out.insert("metadata".into(), or("metadata", json!({})));
        out.insert(
            "parallel_tool_calls".into(),
            or("parallel_tool_calls", json!(true)),
        );
        out.insert("previous_response_id".into(), Value::Null);
        out.insert(
            "reasoning".into(),
            json!({"effort": effort, "summary": null}),
        );
        out.insert("store".into(), json!(false));
        out.insert("temperature".into(), or("temperature", Value::Null));
        out.insert(
            "text".into(),
            or("text", json!({"format": {"type": "text"}})),
        );
        out.insert("tool_choice".into(), or("tool_choice", json!("auto")));
        out.insert("tools".into(), or("tools", json!([])));
        out.insert("top_p".into(), or("top_p", Value::Null));
        out.insert("truncation".into(), or("truncation", json!("disabled")));
        out.insert("user".into(), or("user", Value::Null));
        out
    }
}

/// A Responses client's prompt is counted when its upstream reports no usage, whether
/// or not a chat translation was made to serve it.
impl Prompt for ResponsesRequest {
    fn prompt_tokens(&self, kind: TokenizerKind) -> u64 {
        self.translated_prompt_tokens(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_responses_body_is_read_with_its_fields_kept() {
        let req = ResponsesRequest::parse(
            br#"{"model":"o1","input":"Hi","max_output_tokens":50,"stream":true,"future":1}"#,
        )
        .unwrap();
        assert_eq!(
            (req.model.as_str(), req.is_streaming, req.max_output_tokens),
            ("o1", true, Some(50))
        );
        assert_eq!(req.body["future"], 1);
        assert_eq!(req.echo()["tool_choice"], "auto");
        assert_eq!(req.echo()["max_output_tokens"], 50);
    }

    #[test]
    fn a_native_upstream_gets_the_clients_body_with_only_the_model_changed() {
        let client = r#"{"model":"o1","store":true,"previous_response_id":"resp_1","input":"Hi","include":["reasoning.encrypted_content"],"tools":[{"type":"web_search"}],"future":{"x":[1]}}"#;
        let req = ResponsesRequest::parse(client.as_bytes()).unwrap();
        let sent = String::from_utf8(req.upstream_body("o1-2024-12-17")).unwrap();
        assert_eq!(sent, client.replacen(r#""o1""#, r#""o1-2024-12-17""#, 1));
    }

    #[test]
    fn what_the_responses_api_requires_is_checked_by_name() {
        let param = |b: &[u8]| ResponsesRequest::parse(b).unwrap_err().param.unwrap();
        assert_eq!(param(br#"{"input":"x"}"#), "model");
        assert_eq!(param(br#"{"model":"m"}"#), "input");
        assert_eq!(param(br#"{"model":"m","input":[]}"#), "input");
        assert_eq!(param(br#"{"model":"m","input":"x","stream":1}"#), "stream");
        assert_eq!(
            param(br#"{"model":"m","input":"x","max_output_tokens":-1}"#),
            "max_output_tokens"
        );
    }
}
