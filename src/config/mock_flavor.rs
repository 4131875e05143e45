//! Which real upstream the built-in mock imitates (`mock_flavor` in a `mock` provider
//! entry). A configuration type: the mock server (`providers::mock`) implements each
//! flavor's wire shapes.

use serde_json::Value;

/// Which real upstream the mock imitates; chosen by the first path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MockFlavor {
    /// OpenAI o1: hidden reasoning reported only as `completion_tokens_details.reasoning_tokens`,
    /// cached prompt tokens in 128-token steps once the earlier turns reach 1024 tokens.
    OpenaiReasoning,
    /// DeepSeek API: `reasoning_content` deltas then `content` (reasoner models; names containing
    /// "chat" answer plainly), usage with `prompt_cache_hit_tokens`/`miss` on the finish chunk,
    /// and a `: keep-alive` comment first.
    Deepseek,
    /// Azure AI Foundry DeepSeek-R1: content starts with `<think>\n…\n</think>\n\n`; usage has only
    /// prompt/completion/total and rides on the finish chunk.
    AzureThink,
    /// Plain OpenAI chat model (gpt-4o style).
    Openai,
    /// Anthropic's Messages API (Claude): `POST /anthropic/v1/messages` only, answered with
    /// Messages JSON or its named event stream, usage split the Anthropic way. Reached
    /// through the real `anthropic` adapter (see `providers::adapter_for_provider`).
    Anthropic,
}

impl MockFlavor {
    /// The path prefix that selects this flavor, e.g. `deepseek` in `/deepseek/v1/chat/completions`.
    pub fn path_segment(self) -> &'static str {
        match self {
            Self::OpenaiReasoning => "openai_reasoning",
            Self::Deepseek => "deepseek",
            Self::AzureThink => "azure_think",
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// The flavor a path segment names, if any.
    pub fn from_segment(segment: &str) -> Option<Self> {
        serde_json::from_value(Value::String(segment.to_owned())).ok()
    }
}
