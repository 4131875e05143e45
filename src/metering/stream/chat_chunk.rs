//! The parts of an OpenAI chat completion chunk that a translating relay reads (to
//! Anthropic events, to Responses events): owned, because the relay keeps pieces of it.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(super) struct ChunkView {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Option<Vec<ChoiceView>>,
    #[serde(default)]
    pub usage: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct ChoiceView {
    #[serde(default)]
    pub delta: Option<DeltaView>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DeltaView {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallView>>,
}

#[derive(Deserialize)]
pub(super) struct ToolCallView {
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionView>,
}

#[derive(Deserialize)]
pub(super) struct FunctionView {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}
