//! Gemini's `usageMetadata` in tollgate's terms (the same object on the Gemini API and
//! on Vertex AI). Per Google's `UsageMetadata` reference (ai.google.dev/api/generate-content
//! #UsageMetadata; cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/
//! GenerateContentResponse#UsageMetadata):
//! - `promptTokenCount` is the whole prompt, and "when cachedContent is set, this is
//!   still the total effective prompt size": `cachedContentTokenCount` is a part of it;
//! - `toolUsePromptTokenCount` counts the prompts of tool use (search grounding, code
//!   execution results) and is not in `promptTokenCount` (`totalTokenCount` adds the
//!   two): it is input, billed at the input rate, so tollgate's input is their sum;
//! - `thoughtsTokenCount` is the model's thinking, billed as output but not in
//!   `candidatesTokenCount`: tollgate's output is their sum, its reasoning the thoughts.
//!
//! Gemini has no cache-write charge for requests (explicit caches are billed for
//! storage apart), so `cache_write` is never reported. In a stream every chunk carries
//! the counts so far, cumulative, which the meter merges by maximum.

use serde_json::Value;

use crate::tokens::{wire_count, Usage};

/// Read one `usageMetadata` object (an answer's or a stream chunk's).
pub fn gemini_usage(v: &Value) -> Usage {
    let mut malformed = false;
    let mut n = |field: &str| {
        wire_count(v.get(field)).unwrap_or_else(|_| {
            malformed = true;
            None
        })
    };
    let prompt = n("promptTokenCount");
    let tool_prompt = n("toolUsePromptTokenCount");
    let cached = n("cachedContentTokenCount");
    let candidates = n("candidatesTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let mut sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, None) => None,
        (a, b) => {
            let total = a.unwrap_or(0).checked_add(b.unwrap_or(0));
            // An overflowing sum is no count: the report is not believed.
            malformed |= total.is_none();
            total
        }
    };
    let input = sum(prompt, tool_prompt);
    let output = sum(candidates, thoughts);
    Usage {
        input,
        // A part larger than its whole is not believed as a part.
        cached_input: cached.filter(|c| *c <= input.unwrap_or(0)),
        cache_write: None,
        cache_write_1h: None,
        output,
        reasoning: thoughts,
        malformed,
        service_tier: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thoughts_are_output_and_reasoning_and_cached_tokens_are_part_of_the_prompt() {
        // The shape of Google's thinking example (ai.google.dev/gemini-api/docs/thinking).
        let u = gemini_usage(&json!({
            "promptTokenCount": 11, "candidatesTokenCount": 360, "totalTokenCount": 1679,
            "cachedContentTokenCount": 4,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}],
            "thoughtsTokenCount": 1308
        }));
        assert_eq!(
            (
                u.input,
                u.cached_input,
                u.output,
                u.reasoning,
                u.cache_write
            ),
            (Some(11), Some(4), Some(1668), Some(1308), None)
        );
        assert!(!u.malformed);
    }

    #[test]
    fn tool_use_prompt_tokens_are_input() {
        let u = gemini_usage(&json!({
            "promptTokenCount": 10, "toolUsePromptTokenCount": 90, "candidatesTokenCount": 5
        }));
        assert_eq!((u.input, u.output, u.reasoning), (Some(100), Some(5), None));
    }

    #[test]
    fn an_early_stream_chunk_reports_only_the_prompt() {
        let u = gemini_usage(&json!({"promptTokenCount": 8, "totalTokenCount": 8}));
        assert_eq!((u.input, u.output), (Some(8), None));
        assert!(gemini_usage(&json!({})).is_empty());
    }

    #[test]
    fn negative_or_overflowing_counts_mark_the_report_malformed() {
        assert!(gemini_usage(&json!({"promptTokenCount": -1})).malformed);
        let u = gemini_usage(&json!({"candidatesTokenCount": u64::MAX, "thoughtsTokenCount": 1}));
        assert!(u.malformed);
        assert_eq!(u.output, None);
    }
}
