//! Any host that speaks OpenAI's Chat Completions dialect (Together, Fireworks,
//! Perplexity, vLLM, ...): base URL plus Bearer key, body passed through with only
//! the model name and usage request changed.

use super::wire::{bearer, chat_body, json_request};
use super::{ProviderAdapter, Target, UpstreamRequest};
use crate::api::openai::ChatRequest;

/// The `openai_compatible` kind.
pub struct OpenAiCompatible;

impl ProviderAdapter for OpenAiCompatible {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let body = chat_body(req, target);
        let url = format!("{}/chat/completions", target.provider.base_url);
        json_request(url, bearer(target), &body)
    }
}
