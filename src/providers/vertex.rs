//! The `vertex` kind: Google Cloud's Vertex AI in one project and location, which
//! serves three model families in three dialects, so its adapter is chosen per offer
//! by the upstream model id ([`adapter_for_model`]):
//! - Gemini (publisher `google`): `generateContent` / `streamGenerateContent?alt=sse`,
//!   the Gemini body ([`VertexGemini`]);
//! - Claude (publisher `anthropic`, ids `claude-*` such as `claude-sonnet-4-5@20250929`):
//!   `rawPredict` / `streamRawPredict` with the Anthropic Messages body, except that the
//!   model is named by the URL, not the body, and `anthropic_version` is in the body
//!   (`vertex-2023-10-16`), not a header (Anthropic's "Claude on Vertex AI") ([`VertexClaude`]);
//! - open models served as a managed API ("MaaS": DeepSeek-R1 as
//!   `deepseek-ai/deepseek-r1-0528-maas`, Llama, Qwen, ...): the OpenAI-compatible
//!   `endpoints/openapi/chat/completions`, the model named in the body ([`VertexOpenModels`]).
//!
//! Every request leaves here without credentials: the server adds the bearer token of
//! the provider's Google credentials (`ProviderAuth`) before sending it.

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::anthropic::Anthropic;
use super::embeddings::{self, Vectors};
use super::gemini::{embed, generate_content_request, url, Gemini};
use super::wire::{chat_body, json_request, json_request_bytes};
use super::{ChatAnswer, Dialect, ProviderAdapter, Target, UpstreamRequest};
use crate::api::anthropic::MessagesRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::Unsupported;
use crate::api::openai::ChatRequest;
use crate::tokens::Usage;

/// The `anthropic_version` Claude on Vertex AI takes, in the body.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The adapter for `upstream_model` on Vertex AI: `claude-*` is Anthropic's publisher
/// model; an id with a publisher path (`deepseek-ai/...`) or the `-maas` suffix is an
/// open model on the OpenAI-compatible endpoint; anything else is Google's (Gemini).
pub fn adapter_for_model(upstream_model: &str) -> &'static dyn ProviderAdapter {
    if upstream_model.starts_with("claude-") {
        &VertexClaude
    } else if upstream_model.contains('/') || upstream_model.ends_with("-maas") {
        &VertexOpenModels
    } else {
        &VertexGemini
    }
}

/// `{base}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`
/// for the target.
fn publisher_url(target: Target<'_>, publisher: &str, method: &str) -> String {
    let cloud = &target.provider.cloud;
    url::vertex_url(
        &target.provider.base_url,
        cloud.gcp_project.as_deref().unwrap_or_default(),
        cloud.gcp_location.as_deref().unwrap_or_default(),
        publisher,
        target.upstream_model,
        method,
    )
}

/// Gemini on Vertex AI: the Gemini API's dialect at Vertex's URL.
pub struct VertexGemini;

impl ProviderAdapter for VertexGemini {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let method = if req.is_streaming {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        generate_content_request(req, publisher_url(target, "google", method))
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        Gemini.usage_from_wire(usage)
    }

    fn answers_in(&self) -> Dialect {
        Gemini.answers_in()
    }

    fn stream_decoder(&self) -> Box<dyn super::stream::StreamDecoder> {
        Gemini.stream_decoder()
    }

    fn chat_answer(&self, body: &[u8], created: i64) -> Option<ChatAnswer> {
        Gemini.chat_answer(body, created)
    }

    fn cannot_serve(&self, req: &ChatRequest, upstream_model: &str) -> Option<Unsupported> {
        Gemini.cannot_serve(req, upstream_model)
    }

    /// Google's text embedding models (`text-embedding-005`, `gemini-embedding-001`,
    /// `text-multilingual-embedding-002`) through the publisher model's `predict`.
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        // Checked before the attempt (`cannot_embed`).
        let body = embed::predict_body(req).unwrap_or_default();
        Some(json_request_bytes(
            publisher_url(target, "google", "predict"),
            None,
            body,
        ))
    }

    /// Text only; and Vertex's `gemini-embedding-*` models take one instance per
    /// `predict` call (the `text-embedding-*` models take a batch).
    fn cannot_embed(&self, req: &EmbeddingsRequest, upstream_model: &str) -> Option<Unsupported> {
        let texts = match embeddings::texts(req) {
            Ok(texts) => texts,
            Err(refused) => return Some(refused),
        };
        (upstream_model.starts_with("gemini-embedding") && texts.len() > 1).then(|| {
            Unsupported::new(
                "input",
                format!(
                    "{upstream_model} on Vertex AI embeds one text per request; send one string"
                ),
            )
        })
    }

    fn embeddings_answer(&self, body: &[u8]) -> Option<Result<Vectors, &'static str>> {
        Some(embed::read_predict(body))
    }
}

/// Claude on Vertex AI: Anthropic's Messages dialect, reached through `rawPredict`.
pub struct VertexClaude;

impl VertexClaude {
    /// A Messages body as Vertex takes it: no `model`, `anthropic_version` added.
    fn vertex_body(messages_body: &[u8]) -> Bytes {
        let mut body: Map<String, Value> =
            serde_json::from_slice(messages_body).unwrap_or_default();
        body.remove("model");
        body.insert("anthropic_version".into(), VERTEX_ANTHROPIC_VERSION.into());
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    fn request(target: Target<'_>, stream: bool, messages_body: &[u8]) -> UpstreamRequest {
        let method = if stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        UpstreamRequest {
            url: publisher_url(target, "anthropic", method),
            headers,
            body: Self::vertex_body(messages_body),
        }
    }
}

impl ProviderAdapter for VertexClaude {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        // Checked before routing (`cannot_serve`), as for Anthropic's own API.
        let body = Anthropic::body(req, target.upstream_model).unwrap_or_default();
        Self::request(target, req.is_streaming, &body)
    }

    fn messages_request(
        &self,
        req: &MessagesRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        let body = req.upstream_body(target.upstream_model);
        Some(Self::request(target, req.is_streaming, &body))
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        Anthropic.usage_from_wire(usage)
    }

    fn answers_in(&self) -> Dialect {
        Anthropic.answers_in()
    }

    fn stream_decoder(&self) -> Box<dyn super::stream::StreamDecoder> {
        Anthropic.stream_decoder()
    }

    fn chat_answer(&self, body: &[u8], created: i64) -> Option<ChatAnswer> {
        Anthropic.chat_answer(body, created)
    }

    fn cannot_serve(&self, req: &ChatRequest, upstream_model: &str) -> Option<Unsupported> {
        Anthropic.cannot_serve(req, upstream_model)
    }
}

/// Open models on Vertex AI's OpenAI-compatible endpoint: the chat dialect as it is.
pub struct VertexOpenModels;

impl ProviderAdapter for VertexOpenModels {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let cloud = &target.provider.cloud;
        let url = url::vertex_openai_url(
            &target.provider.base_url,
            cloud.gcp_project.as_deref().unwrap_or_default(),
            cloud.gcp_location.as_deref().unwrap_or_default(),
        );
        json_request(url, None, &chat_body(req, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_id_chooses_the_dialect() {
        let dialect = |m: &str| adapter_for_model(m).answers_in();
        assert_eq!(
            dialect("claude-sonnet-4-5@20250929"),
            Dialect::AnthropicMessages
        );
        assert_eq!(
            dialect("deepseek-ai/deepseek-r1-0528-maas"),
            Dialect::OpenAiChat
        );
        assert_eq!(
            dialect("llama-4-maverick-17b-128e-instruct-maas"),
            Dialect::OpenAiChat
        );
        assert_eq!(dialect("gemini-2.5-pro"), Dialect::Other);
    }

    #[test]
    fn claude_bodies_name_no_model_and_carry_the_vertex_version() {
        let body =
            VertexClaude::vertex_body(br#"{"model":"claude-x","max_tokens":5,"messages":[]}"#);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("model").is_none());
        assert_eq!(v["anthropic_version"], VERTEX_ANTHROPIC_VERSION);
        assert_eq!(v["max_tokens"], 5);
    }
}
