//! GitHub Models (`https://models.github.ai/inference`): Bearer token with the
//! `models:read` permission, `publisher/model` names (`deepseek/DeepSeek-R1`,
//! `openai/o1`), and GitHub's API-version header. Rate limits answer 429 with
//! `retry-after` and a "Please wait N seconds" message, read by the shared error
//! classifier.

use axum::http::HeaderValue;

use super::wire::{bearer, chat_body, json_request, json_request_bytes};
use super::{embeddings, ProviderAdapter, Target, UpstreamRequest};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;

/// The `github_models` kind.
pub struct GithubModels;

impl ProviderAdapter for GithubModels {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let mut body = chat_body(req, target);
        body.rename_max_tokens_for_reasoning_models();
        let url = format!("{}/chat/completions", target.provider.base_url);
        let mut out = json_request(url, bearer(target), &body);
        out.headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        out
    }

    /// `{base}/embeddings` (`https://models.github.ai/inference/embeddings`), Bearer,
    /// `openai/text-embedding-3-small`-style names.
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!("{}/embeddings", target.provider.base_url);
        let body = embeddings::body(req, target.upstream_model);
        let mut out = json_request_bytes(url, bearer(target), body);
        out.headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        Some(out)
    }
}
