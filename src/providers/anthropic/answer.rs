//! An Anthropic Messages answer as an OpenAI chat completion: text blocks joined into
//! `content`, thinking into `reasoning_content` (DeepSeek's spelling, which OpenAI
//! clients already meet), `tool_use` blocks into `tool_calls`, `stop_reason` into
//! `finish_reason`, and `usage` into OpenAI's (`prompt_tokens` counts every input
//! token, cached or not; `prompt_tokens_details.cached_tokens` the cache reads).

use serde::Deserialize;
use serde_json::{json, Value};

use super::stream::finish_reason;
use super::usage::anthropic_usage;
pub use crate::providers::ChatAnswer;
use crate::tokens::Usage;

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

/// OpenAI's `usage` object for a neutral report.
pub fn chat_usage(u: &Usage) -> Value {
    let (input, output) = (u.input.unwrap_or(0), u.output.unwrap_or(0));
    json!({
        "prompt_tokens": input,
        "completion_tokens": output,
        "total_tokens": input.saturating_add(output),
        "prompt_tokens_details": {"cached_tokens": u.cached_input.unwrap_or(0)},
    })
}

/// Translate an answer; `None` when it is not a Messages answer.
pub fn to_chat_completion(bytes: &[u8], created: i64) -> Option<ChatAnswer> {
    let message: Message = serde_json::from_slice(bytes).ok()?;
    let usage = message
        .usage
        .as_ref()
        .map(anthropic_usage)
        .unwrap_or_default();
    let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    for block in message.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::Thinking { thinking } => reasoning.push_str(&thinking),
            Block::ToolUse { id, name, input } => calls.push(json!({
                "id": id, "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            Block::Other => {}
        }
    }
    let mut reply = json!({"role": "assistant", "content": (!text.is_empty()).then_some(&text)});
    if !reasoning.is_empty() {
        reply["reasoning_content"] = Value::from(reasoning.as_str());
    }
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(calls);
    }
    let body = json!({
        "id": message.id,
        "object": "chat.completion",
        "created": created,
        "model": message.model,
        "choices": [{
            "index": 0,
            "message": reply,
            "finish_reason": finish_reason(message.stop_reason.as_deref().unwrap_or("end_turn")).as_chat(),
        }],
        "usage": chat_usage(&usage),
    });
    Some(ChatAnswer {
        body: serde_json::to_vec(&body).ok()?,
        usage,
        text,
        reasoning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_answer_becomes_a_chat_completion_with_all_input_in_prompt_tokens() {
        let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"text","text":"Hello"},
                       {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":6}}"#;
        let out = to_chat_completion(answer, 1_700_000_000).unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({"id": "msg_1", "object": "chat.completion", "created": 1_700_000_000,
                "model": "claude-sonnet-4-5",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Hello", "reasoning_content": "hmm",
                    "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
                "usage": {"prompt_tokens": 1112, "completion_tokens": 6, "total_tokens": 1118,
                    "prompt_tokens_details": {"cached_tokens": 1000}}})
        );
        assert_eq!(
            (
                out.usage.input,
                out.usage.cached_input,
                out.usage.cache_write,
                out.usage.output
            ),
            (Some(1112), Some(1000), Some(100), Some(6))
        );
        assert_eq!(
            (out.text.as_str(), out.reasoning.as_str()),
            ("Hello", "hmm")
        );
        assert!(to_chat_completion(b"[1]", 0).is_none());
    }
}
