//! The `mock` kind's adapter: the simulated upstream (`providers::mock`) speaks
//! OpenAI's dialect, so this is a plain OpenAI request to the in-process mock
//! server, whose base URL (`http://127.0.0.1:PORT/<flavor>`) is filled in at start-up.
//! Usage is read with the DeepSeek reader so the DeepSeek flavour's cache fields count.

use serde_json::Value;

use super::wire::{chat_body, json_request, json_request_bytes};
use super::{embeddings, ProviderAdapter, Target, UpstreamRequest};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;
use crate::tokens::Usage;

/// The `mock` kind.
pub struct MockAdapter;

impl ProviderAdapter for MockAdapter {
    fn takes_reasoning_effort(&self) -> bool {
        true
    }

    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let body = chat_body(req, target);
        let url = format!("{}/v1/chat/completions", target.provider.base_url);
        json_request(url, None, &body)
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        super::deepseek::DeepSeek.usage_from_wire(usage)
    }

    /// The mock's `/v1/embeddings` (every flavor answers it in OpenAI's shape).
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!("{}/v1/embeddings", target.provider.base_url);
        let body = embeddings::body(req, target.upstream_model);
        Some(json_request_bytes(url, None, body))
    }
}
