//! Azure OpenAI classic deployments API:
//! `{base}/openai/deployments/{deployment}/chat/completions?api-version=...` with
//! the `api-key` header. The deployment in the path picks the model (the body's
//! `model` is ignored by Azure). Reasoning deployments need `max_completion_tokens`.
//! Azure's first stream chunk carries `prompt_filter_results` and empty `choices`;
//! the stream relay treats it like any chunk without choices.
//!
//! The Responses API is served natively through Azure's v1 API
//! (`{base}/openai/v1/responses`, see [`AzureOpenAi::responses_request`]).

use bytes::Bytes;

use super::wire::{api_key_header, chat_body, json_request, json_request_bytes};
use super::{embeddings, ProviderAdapter, Target, UpstreamRequest};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;
use crate::api::responses::ResponsesRequest;

/// The `azure_openai` kind.
pub struct AzureOpenAi;

impl ProviderAdapter for AzureOpenAi {
    fn takes_reasoning_effort(&self) -> bool {
        true
    }

    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let mut body = chat_body(req, target);
        body.rename_max_tokens_for_reasoning_models();
        let url = format!(
            "{}/openai/deployments/{}/chat/completions?api-version={}",
            target.provider.base_url,
            target.upstream_model,
            target
                .provider
                .api_version
                .as_deref()
                .unwrap_or("2024-10-21"),
        );
        json_request(url, api_key_header(target), &body)
    }

    fn serves_responses(&self) -> bool {
        true
    }

    /// `{base}/openai/v1/responses`, `api-key`, the deployment name as the body's
    /// `model`. Microsoft documents the Responses API on the v1 API (learn.microsoft.com,
    /// "Azure OpenAI Responses API" and "API version lifecycle": `POST
    /// https://{resource}.openai.azure.com/openai/v1/responses`, GA since August 2025),
    /// which "removes the need for dated api-version parameters": without one, traffic
    /// goes to the latest GA version. The provider's `api_version` is the dated version
    /// the deployments API above needs, which the v1 API does not take, so none is sent.
    fn responses_request(
        &self,
        req: &ResponsesRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!("{}/openai/v1/responses", target.provider.base_url);
        let body = Bytes::from(req.upstream_body(target.upstream_model));
        Some(json_request_bytes(url, api_key_header(target), body))
    }

    /// `{base}/openai/deployments/{deployment}/embeddings?api-version=...`, `api-key`:
    /// the deployment (the offer's upstream model) picks the model, as for chat.
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let url = format!(
            "{}/openai/deployments/{}/embeddings?api-version={}",
            target.provider.base_url,
            target.upstream_model,
            target
                .provider
                .api_version
                .as_deref()
                .unwrap_or("2024-10-21"),
        );
        let body = embeddings::body(req, target.upstream_model);
        Some(json_request_bytes(url, api_key_header(target), body))
    }
}
