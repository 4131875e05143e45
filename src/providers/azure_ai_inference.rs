//! Azure AI Foundry Models (Azure AI Model Inference API), where DeepSeek-R1 is
//! served: `{base}/chat/completions?api-version=...` (base ends in `/models`),
//! `api-key` header, `model` = the deployment name. With api-version
//! `2024-05-01-preview` the reasoning arrives inside `content` between `<think>`
//! tags and usage has only prompt/completion totals (reasoning is inside
//! `completion_tokens`), so reasoning tokens are not reported by this provider.
//! `extra-parameters: pass-through` keeps Azure from rejecting body fields it does
//! not know, which tollgate promises to pass through untouched.

use axum::http::HeaderValue;

use super::wire::{api_key_header, chat_body, json_request, json_request_bytes};
use super::{embeddings, ProviderAdapter, Target, UpstreamRequest};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;

/// The `azure_ai_inference` kind.
pub struct AzureAiInference;

impl ProviderAdapter for AzureAiInference {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let body = chat_body(req, target);
        let url = format!(
            "{}/chat/completions?api-version={}",
            target.provider.base_url,
            target
                .provider
                .api_version
                .as_deref()
                .unwrap_or("2024-05-01-preview"),
        );
        let mut out = json_request(url, api_key_header(target), &body);
        out.headers
            .insert("extra-parameters", HeaderValue::from_static("pass-through"));
        out
    }

    /// `{base}/embeddings?api-version=...` with the deployment as the body's `model`
    /// and `api-key`, like chat; `extra-parameters: pass-through` keeps unknown fields.
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!(
            "{}/embeddings?api-version={}",
            target.provider.base_url,
            target
                .provider
                .api_version
                .as_deref()
                .unwrap_or("2024-05-01-preview"),
        );
        let body = embeddings::body(req, target.upstream_model);
        let mut out = json_request_bytes(url, api_key_header(target), body);
        out.headers
            .insert("extra-parameters", HeaderValue::from_static("pass-through"));
        Some(out)
    }
}
