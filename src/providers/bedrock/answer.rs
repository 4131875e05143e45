//! A Converse answer as an OpenAI chat completion: `text` blocks joined into
//! `content`, `reasoningContent.reasoningText` into `reasoning_content` (as the
//! Anthropic translation does), `toolUse` blocks into `tool_calls`, `stopReason` into
//! `finish_reason`, and `usage` into OpenAI's (`prompt_tokens` counts every input
//! token, cached or not; `prompt_tokens_details.cached_tokens` the cache reads).
//!
//! Converse names neither the answer nor the model in its body (the request id is the
//! `x-amzn-RequestId` header, the model the request's path), so the completion's `id`
//! is minted here and its `model` left empty for the caller to set.

use serde::Deserialize;
use serde_json::{json, Value};

use super::usage::bedrock_usage;
use crate::providers::anthropic::answer::{chat_usage, ChatAnswer};
use crate::providers::stream::FinishReason;

#[derive(Deserialize)]
struct Answer {
    output: Output,
    #[serde(default, rename = "stopReason")]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Output {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Vec<Block>,
}

/// A content block: a union whose one member names its kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    reasoning_content: Option<Value>,
    #[serde(default)]
    tool_use: Option<ToolUse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Value,
}

/// The neutral finish reason for Bedrock's `stopReason` (API_runtime_Converse:
/// `end_turn | tool_use | max_tokens | stop_sequence | guardrail_intervened |
/// content_filtered | malformed_model_output | malformed_tool_use |
/// model_context_window_exceeded`).
pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, the malformed_* ends and anything newer.
        _ => FinishReason::Stop,
    }
}

/// Translate an answer; `None` when it is not a Converse answer.
pub fn to_chat_completion(body: &[u8], created: i64) -> Option<ChatAnswer> {
    let answer: Answer = serde_json::from_slice(body).ok()?;
    let usage = answer.usage.as_ref().map(bedrock_usage).unwrap_or_default();
    let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    for block in answer.output.message.content {
        if let Some(t) = block.text {
            text.push_str(&t);
        }
        // Redacted reasoning (`redactedContent`) carries no text to show or count.
        if let Some(t) = block
            .reasoning_content
            .as_ref()
            .and_then(|r| r.pointer("/reasoningText/text"))
            .and_then(Value::as_str)
        {
            reasoning.push_str(t);
        }
        if let Some(call) = block.tool_use {
            calls.push(json!({
                "id": call.tool_use_id, "type": "function",
                "function": {"name": call.name, "arguments": call.input.to_string()},
            }));
        }
    }
    let mut reply = json!({"role": "assistant", "content": (!text.is_empty()).then_some(&text)});
    if !reasoning.is_empty() {
        reply["reasoning_content"] = Value::from(reasoning.as_str());
    }
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(calls);
    }
    let finish = finish_reason(answer.stop_reason.as_deref().unwrap_or("end_turn"));
    let body = json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::now_v7().simple()),
        "object": "chat.completion",
        "created": created,
        "model": "",
        "choices": [{"index": 0, "message": reply, "finish_reason": finish.as_chat()}],
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

    /// The documented response shape (API_runtime_Converse, "Response Syntax"), with
    /// reasoning, text and a tool call, and a cache read.
    const ANSWER: &str = r#"{
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "The user wants the top song.", "signature": "EqoBCkgIARABGAIiQ"}}},
            {"text": "I'll look up the most popular song."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "input": {"sign": "WZPZ"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 375, "outputTokens": 56, "totalTokens": 1431, "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 0},
        "metrics": {"latencyMs": 1463}
    }"#;

    #[test]
    fn a_converse_answer_becomes_a_chat_completion_with_all_input_in_prompt_tokens() {
        let out = to_chat_completion(ANSWER.as_bytes(), 1_700_000_000).unwrap();
        let mut body: Value = serde_json::from_slice(&out.body).unwrap();
        let id = body["id"].take();
        assert!(id.as_str().unwrap().starts_with("chatcmpl-"), "{id}");
        assert_eq!(
            body,
            json!({"id": null, "object": "chat.completion", "created": 1_700_000_000, "model": "",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "I'll look up the most popular song.",
                    "reasoning_content": "The user wants the top song.",
                    "tool_calls": [{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function",
                        "function": {"name": "top_song", "arguments": "{\"sign\":\"WZPZ\"}"}}]}}],
                "usage": {"prompt_tokens": 1375, "completion_tokens": 56, "total_tokens": 1431,
                    "prompt_tokens_details": {"cached_tokens": 1000}}})
        );
        assert_eq!(
            (out.usage.input, out.usage.cached_input, out.usage.output),
            (Some(1375), Some(1000), Some(56))
        );
        assert_eq!(
            (out.text.as_str(), out.reasoning.as_str()),
            (
                "I'll look up the most popular song.",
                "The user wants the top song."
            )
        );
    }

    #[test]
    fn stop_reasons_map_and_other_bodies_are_refused() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("model_context_window_exceeded", "length"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            let answer = json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
                "stopReason": stop, "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
            let out = to_chat_completion(answer.to_string().as_bytes(), 0).unwrap();
            let body: Value = serde_json::from_slice(&out.body).unwrap();
            assert_eq!(body["choices"][0]["finish_reason"], finish, "{stop}");
        }
        assert!(to_chat_completion(b"[1]", 0).is_none());
        assert!(to_chat_completion(br#"{"message": "Too many requests"}"#, 0).is_none());
    }
}
