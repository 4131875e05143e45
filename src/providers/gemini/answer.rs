//! A Gemini `GenerateContentResponse` as an OpenAI chat completion: each candidate a
//! choice, its `text` parts joined into `content`, its thought parts (`thought: true`,
//! the summaries `includeThoughts` asks for) into `reasoning_content` (DeepSeek's
//! spelling, which OpenAI clients already meet), its `functionCall` parts into
//! `tool_calls` with the args serialized; `finishReason` into `finish_reason`,
//! `usageMetadata` into `usage` (read by [`super::usage`]), `responseId` and
//! `modelVersion` into `id` and `model`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::usage::gemini_usage;
use crate::providers::anthropic::answer::{chat_usage, ChatAnswer};
use crate::providers::stream::FinishReason;
use crate::tokens::Usage;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Response {
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub usage_metadata: Option<Value>,
    #[serde(default)]
    pub prompt_feedback: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Content {
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: bool,
    #[serde(default)]
    pub function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
pub(super) struct FunctionCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

impl FunctionCall {
    /// The call's id: Gemini's when it sends one, else one numbered in the answer
    /// (OpenAI clients echo it back as `tool_call_id`; the request translation
    /// resolves it to the function's name, which is what Gemini matches on).
    pub(super) fn id_or(&self, index: usize) -> String {
        self.id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("call_{index}"))
    }

    /// The args as OpenAI's `arguments` string.
    pub(super) fn arguments(&self) -> String {
        self.args
            .as_ref()
            .map_or_else(|| "{}".to_owned(), Value::to_string)
    }
}

/// The neutral reason for Gemini's `finishReason`. Gemini says `STOP` after function
/// calls too, so `called_tools` turns a natural stop into `ToolCalls`.
pub fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => FinishReason::ContentFilter,
        _ if called_tools => FinishReason::ToolCalls,
        // STOP, OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, and newer.
        _ => FinishReason::Stop,
    }
}

/// A prompt refused before any candidate (`promptFeedback.blockReason`).
pub(super) fn prompt_blocked(response: &Response) -> bool {
    response.candidates.is_empty()
        && response
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.get("blockReason"))
            .is_some_and(|r| !r.is_null())
}

/// OpenAI's `usage` with the thinking as `completion_tokens_details.reasoning_tokens`.
fn usage_json(u: &Usage) -> Value {
    let mut usage = chat_usage(u);
    if let Some(reasoning) = u.reasoning {
        usage["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
    }
    usage
}

/// Translate an answer; `None` when it is not a `GenerateContentResponse`.
pub fn to_chat_completion(body: &[u8], created: i64) -> Option<ChatAnswer> {
    let response: Response = serde_json::from_slice(body).ok()?;
    if response.error.is_some() {
        return None;
    }
    let usage = response
        .usage_metadata
        .as_ref()
        .map(gemini_usage)
        .unwrap_or_default();
    let (mut all_text, mut all_reasoning, mut choices) = (String::new(), String::new(), vec![]);
    for (index, candidate) in response.candidates.iter().enumerate() {
        let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
        let parts = candidate.content.iter().flat_map(|c| &c.parts);
        for part in parts {
            match (&part.text, &part.function_call) {
                (Some(t), _) if part.thought => reasoning.push_str(t),
                (Some(t), _) => text.push_str(t),
                (None, Some(call)) => calls.push(json!({
                    "id": call.id_or(calls.len()), "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments()},
                })),
                (None, None) => {}
            }
        }
        let reason = candidate.finish_reason.as_deref().unwrap_or("STOP");
        let finish = finish_reason(reason, !calls.is_empty());
        let mut message =
            json!({"role": "assistant", "content": (!text.is_empty()).then_some(&text)});
        if !reasoning.is_empty() {
            message["reasoning_content"] = Value::from(reasoning.as_str());
        }
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        choices
            .push(json!({"index": index, "message": message, "finish_reason": finish.as_chat()}));
        all_text.push_str(&text);
        all_reasoning.push_str(&reasoning);
    }
    if prompt_blocked(&response) {
        choices.push(json!({"index": 0, "finish_reason": "content_filter",
            "message": {"role": "assistant", "content": null}}));
    }
    let body = json!({
        "id": response.response_id.unwrap_or_default(),
        "object": "chat.completion",
        "created": created,
        "model": response.model_version.unwrap_or_default(),
        "choices": choices,
        "usage": usage_json(&usage),
    });
    Some(ChatAnswer {
        body: serde_json::to_vec(&body).ok()?,
        usage,
        text: all_text,
        reasoning: all_reasoning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thinking_answer_with_a_function_call_becomes_a_chat_completion() {
        // The documented response shape (ai.google.dev/api/generate-content#response-body).
        let answer = br#"{
          "candidates": [{
            "content": {"parts": [
                {"text": "The user wants the weather.", "thought": true},
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
              "role": "model"},
            "finishReason": "STOP", "index": 0}],
          "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 15,
            "totalTokenCount": 135, "thoughtsTokenCount": 100, "cachedContentTokenCount": 8},
          "modelVersion": "gemini-2.5-flash",
          "responseId": "mVzNaKCQN9ac1dkPnrbxkAc"
        }"#;
        let out = to_chat_completion(answer, 1_700_000_000).unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({"id": "mVzNaKCQN9ac1dkPnrbxkAc", "object": "chat.completion",
                "created": 1_700_000_000, "model": "gemini-2.5-flash",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Checking.",
                    "reasoning_content": "The user wants the weather.",
                    "tool_calls": [{"id": "call_0", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 115, "total_tokens": 135,
                    "prompt_tokens_details": {"cached_tokens": 8},
                    "completion_tokens_details": {"reasoning_tokens": 100}}})
        );
        assert_eq!(
            (out.usage.input, out.usage.output, out.usage.reasoning),
            (Some(20), Some(115), Some(100))
        );
        assert_eq!(
            (out.text.as_str(), out.reasoning.as_str()),
            ("Checking.", "The user wants the weather.")
        );
    }

    #[test]
    fn finish_reasons_map_and_a_blocked_prompt_is_content_filter() {
        let answer = br#"{"candidates":[{"content":{"parts":[{"text":"Once"}],"role":"model"},
            "finishReason":"MAX_TOKENS","index":0},
            {"content":{"parts":[{"text":"Twice"}],"role":"model"},"finishReason":"SAFETY","index":1}],
            "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#;
        let body: Value =
            serde_json::from_slice(&to_chat_completion(answer, 0).unwrap().body).unwrap();
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(body["choices"][1]["finish_reason"], "content_filter");
        assert_eq!(body["choices"][1]["message"]["content"], "Twice");

        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},
            "usageMetadata":{"promptTokenCount":7,"totalTokenCount":7}}"#;
        let out = to_chat_completion(blocked, 0).unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(out.usage.input, Some(7));

        assert!(to_chat_completion(b"[1]", 0).is_none());
        assert!(to_chat_completion(br#"{"error":{"code":429}}"#, 0).is_none());
    }
}
