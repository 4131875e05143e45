//! A chat completion answer as a Responses `response` object, for a Responses client
//! served by a chat-completions upstream: `reasoning_content` → a `reasoning` item
//! (its text as `reasoning_text` content), `content` → a `message` item with one
//! `output_text` part, `tool_calls` → `function_call` items; `finish_reason: length`
//! → `status: "incomplete"` with `incomplete_details.reason = "max_output_tokens"`;
//! usage in the Responses shape. The item builders are shared with the streamed
//! translation (`metering::stream::chat_responses`), so both say the same.

use serde_json::{json, Map, Value};

use crate::tokens::Usage;

/// A translated answer: the `response` JSON and the visible text and reasoning.
pub struct ResponsesAnswer {
    pub body: Vec<u8>,
    pub text: String,
    pub reasoning: String,
}

/// The Responses `usage` object for a neutral report: `input_tokens` includes the
/// cached ones; `output_tokens` includes reasoning.
pub fn responses_usage(u: &Usage) -> Value {
    let (input, output) = (u.input.unwrap_or(0), u.output.unwrap_or(0));
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": u.cached_input.unwrap_or(0),
            "cache_write_tokens": u.cache_write.unwrap_or(0)},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning.unwrap_or(0)},
        "total_tokens": input.saturating_add(output),
    })
}

/// The response's `status` and `incomplete_details` for a chat `finish_reason`.
pub fn ending(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// What identifies one answer: its ids derive from the upstream's completion id.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The upstream's completion id.
    pub id: String,
    pub created_at: i64,
    /// The upstream's model, as OpenAI reports the model that answered.
    pub model: String,
}

impl Envelope {
    /// The `response` id.
    pub fn response_id(&self) -> String {
        format!("resp_{}", self.id)
    }

    /// An output item's id (`rs`, `msg`).
    pub fn item_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.id)
    }

    /// The `response` object: the request's echoed settings (`echo`), then the
    /// answer's own fields.
    pub fn response(
        &self,
        echo: &Map<String, Value>,
        status: &str,
        output: Vec<Value>,
    ) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("id".into(), self.response_id().into());
        r.insert("object".into(), "response".into());
        r.insert("created_at".into(), self.created_at.into());
        r.insert("status".into(), status.into());
        r.insert("error".into(), Value::Null);
        r.insert("incomplete_details".into(), Value::Null);
        r.insert("model".into(), self.model.clone().into());
        r.insert("output".into(), Value::Array(output));
        r.extend(echo.iter().map(|(k, v)| (k.clone(), v.clone())));
        r.insert("usage".into(), Value::Null);
        r
    }
}

/// A `reasoning` item with the upstream's visible reasoning.
pub fn reasoning_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [], "status": status,
        "content": [{"type": "reasoning_text", "text": text}]})
}

/// An `output_text` content part.
pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// An assistant `message` item.
pub fn message_item(id: &str, content: Vec<Value>, status: &str) -> Value {
    json!({"type": "message", "id": id, "role": "assistant", "status": status, "content": content})
}

/// A `function_call` item.
pub fn function_call_item(call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
        "name": name, "arguments": arguments, "status": status})
}

/// Translate a chat completion whose usage reads as `usage`; `None` when `bytes` is
/// not one. `created_at` stands in when the upstream sent no `created`.
pub fn to_response(
    bytes: &[u8],
    usage: &Usage,
    echo: &Map<String, Value>,
    created_at: i64,
) -> Option<ResponsesAnswer> {
    let answer: Value = serde_json::from_slice(bytes).ok()?;
    let choice = answer.get("choices")?.as_array()?.first()?;
    let message = choice.get("message")?;
    let text_of = |field: &str| {
        message
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (text, reasoning) = (text_of("content"), text_of("reasoning_content"));
    let (status, incomplete) = ending(choice.get("finish_reason").and_then(Value::as_str));
    let envelope = Envelope {
        id: answer
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        created_at: answer
            .get("created")
            .and_then(Value::as_i64)
            .unwrap_or(created_at),
        model: answer
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    };
    let mut output = Vec::new();
    if !reasoning.is_empty() {
        output.push(reasoning_item(
            &envelope.item_id("rs"),
            &reasoning,
            "completed",
        ));
    }
    if !text.is_empty() {
        output.push(message_item(
            &envelope.item_id("msg"),
            vec![output_text(&text)],
            status,
        ));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |pointer: &str| {
            call.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        output.push(function_call_item(
            field("/id"),
            field("/function/name"),
            field("/function/arguments"),
            "completed",
        ));
    }
    let mut body = envelope.response(echo, status, output);
    body.insert("incomplete_details".into(), incomplete);
    body.insert("usage".into(), responses_usage(usage));
    Some(ResponsesAnswer {
        body: serde_json::to_vec(&body).ok()?,
        text,
        reasoning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reasoning_chat_answer_becomes_a_response_with_responses_usage() {
        let chat = br#"{"id":"c1","object":"chat.completion","created":7,"model":"deepseek-reasoner",
            "choices":[{"index":0,"finish_reason":"length","message":{"role":"assistant",
              "content":"Let me check.","reasoning_content":"The user wants...",
              "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],
            "usage":{"prompt_tokens":100,"completion_tokens":20}}"#;
        let usage = Usage {
            input: Some(100),
            cached_input: Some(64),
            output: Some(20),
            reasoning: Some(12),
            ..Usage::default()
        };
        let out = to_response(chat, &usage, &Map::new(), 0).unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({"id": "resp_c1", "object": "response", "created_at": 7, "status": "incomplete",
                "error": null, "incomplete_details": {"reason": "max_output_tokens"},
                "model": "deepseek-reasoner",
                "output": [
                    {"type": "reasoning", "id": "rs_c1", "summary": [], "status": "completed",
                        "content": [{"type": "reasoning_text", "text": "The user wants..."}]},
                    {"type": "message", "id": "msg_c1", "role": "assistant", "status": "incomplete",
                        "content": [{"type": "output_text", "text": "Let me check.",
                            "annotations": [], "logprobs": []}]},
                    {"type": "function_call", "id": "fc_call_1", "call_id": "call_1", "name": "f",
                        "arguments": "{\"a\":1}", "status": "completed"}],
                "usage": {"input_tokens": 100,
                    "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
                    "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 12},
                    "total_tokens": 120}})
        );
        assert_eq!(
            (out.text.as_str(), out.reasoning.as_str()),
            ("Let me check.", "The user wants...")
        );
    }
}
