//! Any host that speaks OpenAI's Chat Completions dialect (Together, Fireworks,
//! Perplexity, vLLM, ...): base URL plus Bearer key, body passed through with only
//! the model name and usage request changed.

use super::wire::{bearer, chat_body, json_request, json_request_bytes};
use super::{embeddings, ProviderAdapter, Target, UpstreamRequest};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;

/// The `openai_compatible` kind.
pub struct OpenAiCompatible;

impl ProviderAdapter for OpenAiCompatible {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let body = chat_body(req, target);
        let url = format!("{}/chat/completions", target.provider.base_url);
        json_request(url, bearer(target), &body)
    }

    /// `{base}/embeddings`, Bearer (vLLM, Together, Fireworks, ... serve OpenAI's path).
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!("{}/embeddings", target.provider.base_url);
        let body = embeddings::body(req, target.upstream_model);
        Some(json_request_bytes(url, bearer(target), body))
    }
}
