//! A chat completion answer as an Anthropic Messages answer, for a Messages client
//! served by a chat-completions upstream: `reasoning_content` → a `thinking` block,
//! `content` → a `text` block, `tool_calls` → `tool_use` blocks (arguments parsed as
//! the JSON object Anthropic's `input` is), `finish_reason` → `stop_reason`, and usage
//! split the Anthropic way (`input_tokens` without cache reads and writes).

use serde_json::{json, Value};

use super::stream::stop_reason;
use crate::providers::stream::FinishReason;
use crate::tokens::Usage;

/// A translated answer: the Messages JSON and the visible text and reasoning.
pub struct MessagesAnswer {
    pub body: Vec<u8>,
    pub text: String,
    pub reasoning: String,
}

/// Anthropic's `usage` object for a neutral report.
pub fn messages_usage(u: &Usage) -> Value {
    let (cached, written) = (u.cached_input.unwrap_or(0), u.cache_write.unwrap_or(0));
    let uncached = u
        .input
        .unwrap_or(0)
        .saturating_sub(cached)
        .saturating_sub(written);
    json!({
        "input_tokens": uncached,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": u.output.unwrap_or(0),
    })
}

/// Translate a chat completion whose usage reads as `usage`; `None` when `bytes` is
/// not one.
pub fn to_messages(bytes: &[u8], usage: &Usage) -> Option<MessagesAnswer> {
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
    let mut content = Vec::new();
    if !reasoning.is_empty() {
        // No signature: a chat upstream signs nothing; the block is for reading.
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let input = serde_json::from_str::<Value>(arguments)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        content.push(json!({"type": "tool_use", "id": call.get("id"),
            "name": call.pointer("/function/name"), "input": input}));
    }
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    let body = json!({
        "id": answer.get("id").cloned().unwrap_or_default(),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model").cloned().unwrap_or_default(),
        "content": content,
        "stop_reason": stop_reason(FinishReason::from_chat(finish)),
        "stop_sequence": null,
        "usage": messages_usage(usage),
    });
    Some(MessagesAnswer {
        body: serde_json::to_vec(&body).ok()?,
        text,
        reasoning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reasoning_chat_answer_becomes_a_messages_answer_with_anthropic_usage() {
        let chat = br#"{"id":"c1","object":"chat.completion","model":"deepseek-reasoner",
            "choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant",
              "content":"Let me check.","reasoning_content":"The user wants...",
              "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],
            "usage":{"prompt_tokens":100,"completion_tokens":20}}"#;
        let usage = Usage {
            input: Some(100),
            cached_input: Some(64),
            output: Some(20),
            ..Usage::default()
        };
        let out = to_messages(chat, &usage).unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({"id": "c1", "type": "message", "role": "assistant", "model": "deepseek-reasoner",
                "content": [
                    {"type": "thinking", "thinking": "The user wants...", "signature": ""},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 36, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 64, "output_tokens": 20}})
        );
        assert_eq!(
            (out.text.as_str(), out.reasoning.as_str()),
            ("Let me check.", "The user wants...")
        );
    }
}
