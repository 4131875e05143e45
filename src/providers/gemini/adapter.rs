//! The `gemini` kind (the Gemini API with an API key) and what it shares with Gemini
//! models on Vertex AI: the `generateContent` body, the answer, the usage and the
//! stream. Only the URL and the credentials differ between the two, so Vertex's Gemini
//! adapter builds its own request with [`generate_content_request`] and delegates the
//! rest to [`Gemini`].

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::{answer, embed, request, stream, url, usage};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::Unsupported;
use crate::api::openai::ChatRequest;
use crate::providers::embeddings::{self, Vectors};
use crate::providers::wire::json_request_bytes;
use crate::providers::{ChatAnswer, Dialect, ProviderAdapter, Target, UpstreamRequest};
use crate::tokens::Usage;

/// A `generateContent` request for `req` to `url`, with the JSON content type and no
/// credentials yet.
pub fn generate_content_request(req: &ChatRequest, url: String) -> UpstreamRequest {
    // Checked before routing (`cannot_serve`): an offer that cannot translate the
    // request is never tried, so the fallback body is never sent.
    let body = request::generate_content_body(req).unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    UpstreamRequest { url, headers, body }
}

/// The `gemini` kind: `x-goog-api-key`, never the key in the URL.
pub struct Gemini;

impl ProviderAdapter for Gemini {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let url = url::gemini_url(
            &target.provider.base_url,
            target.upstream_model,
            req.is_streaming,
        );
        let mut out = generate_content_request(req, url);
        if let Some(key) = &target.provider.api_key {
            if let Ok(mut v) = HeaderValue::from_str(key.expose()) {
                v.set_sensitive(true);
                out.headers
                    .insert(HeaderName::from_static("x-goog-api-key"), v);
            }
        }
        out
    }

    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        // Checked before the attempt (`cannot_embed`), so the fallback is never sent.
        let body = embed::batch_embed_body(req, target.upstream_model).unwrap_or_default();
        let url = url::gemini_batch_embed_url(&target.provider.base_url, target.upstream_model);
        let key = target
            .provider
            .api_key
            .as_ref()
            .map(|k| ("x-goog-api-key", k.expose().to_owned()));
        Some(json_request_bytes(url, key, body))
    }

    fn cannot_embed(&self, req: &EmbeddingsRequest, _upstream_model: &str) -> Option<Unsupported> {
        embeddings::texts(req).err()
    }

    fn embeddings_answer(&self, body: &[u8]) -> Option<Result<Vectors, &'static str>> {
        Some(embed::read_batch_embed(body))
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        usage::gemini_usage(usage)
    }

    fn answers_in(&self) -> Dialect {
        Dialect::Other
    }

    fn stream_decoder(&self) -> Box<dyn crate::providers::stream::StreamDecoder> {
        Box::new(stream::GeminiStreamDecoder::default())
    }

    fn chat_answer(&self, body: &[u8], created: i64) -> Option<ChatAnswer> {
        answer::to_chat_completion(body, created)
    }

    fn cannot_serve(&self, req: &ChatRequest, _upstream_model: &str) -> Option<Unsupported> {
        request::generate_content_body(req).err()
    }
}
