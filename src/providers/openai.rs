//! OpenAI's own API (`api.openai.com/v1`, or a regional host such as
//! `eu.api.openai.com/v1`): Bearer auth; o-series models take
//! `max_completion_tokens` instead of `max_tokens`. Serves the Responses API itself
//! (`{base}/responses`): a Responses client's body is relayed there natively.

use bytes::Bytes;

use super::wire::{bearer, chat_body, json_request, json_request_bytes};
use super::{embeddings, ProviderAdapter, Target, UpstreamRequest};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;
use crate::api::responses::ResponsesRequest;

/// The `openai` kind.
pub struct OpenAi;

impl ProviderAdapter for OpenAi {
    fn takes_reasoning_effort(&self) -> bool {
        true
    }

    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let mut body = chat_body(req, target);
        body.rename_max_tokens_for_reasoning_models();
        let url = format!("{}/chat/completions", target.provider.base_url);
        json_request(url, bearer(target), &body)
    }

    fn serves_responses(&self) -> bool {
        true
    }

    /// `{base}/responses`, Bearer: the client's body with only `model` changed.
    fn responses_request(
        &self,
        req: &ResponsesRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!("{}/responses", target.provider.base_url);
        let body = Bytes::from(req.upstream_body(target.upstream_model));
        Some(json_request_bytes(url, bearer(target), body))
    }

    /// `{base}/embeddings`, Bearer.
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
