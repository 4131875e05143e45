//! Chat's `reasoning_effort` as a thinking budget in tokens, for the upstreams whose
//! switch is a budget (Gemini's `thinkingBudget`, Claude's `thinking.budget_tokens` on
//! Bedrock): one table, so two translations cannot think differently for one effort.
//! The table is Google's own OpenAI compatibility layer's
//! (ai.google.dev/gemini-api/docs/openai#thinking); its smallest budget, 1,024, is also
//! Claude's documented minimum.

use serde_json::Value;

use crate::api::error::Unsupported;

/// The budget for `effort`: `None` for `none` (no thinking), an error naming
/// `reasoning_effort` for anything OpenAI does not document.
pub fn thinking_budget(effort: &Value) -> Result<Option<u64>, Unsupported> {
    match effort.as_str() {
        Some("none") => Ok(None),
        Some("minimal" | "low") => Ok(Some(1024)),
        Some("medium") => Ok(Some(8192)),
        Some("high") => Ok(Some(24576)),
        _ => Err(Unsupported::new(
            "reasoning_effort",
            "must be none, minimal, low, medium or high",
        )),
    }
}
