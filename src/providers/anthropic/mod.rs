//! Anthropic's Messages API (`{base_url}/v1/messages`, `x-api-key` and
//! `anthropic-version` headers; `api_version` sets the latter, default
//! [`ANTHROPIC_VERSION`]). OpenAI chat clients are served by translating the request
//! ([`request`]), the answer ([`answer`]) and the stream
//! ([`stream`], decoded into neutral events); usage is read by [`usage`].

pub mod answer;
pub mod from_chat;
pub mod request;
pub mod stream;
pub mod usage;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use serde_json::Value;

use super::{Dialect, ProviderAdapter, Target, UpstreamRequest};
use crate::api::anthropic::MessagesRequest;
use crate::api::openai::ChatRequest;
use crate::tokens::Usage;
pub use request::Unsupported;

/// The API version sent when the provider sets no `api_version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The `anthropic` kind.
pub struct Anthropic;

impl Anthropic {
    /// The Messages body for a chat request, or what in it cannot be translated (also
    /// Claude's body on Vertex AI, `vertex::VertexClaude`).
    pub(crate) fn body(req: &ChatRequest, upstream_model: &str) -> Result<Vec<u8>, Unsupported> {
        let messages: Value =
            serde_json::from_str(req.messages_json().get()).map_err(|_| Unsupported {
                param: "messages".into(),
                why: "must be an array of messages".into(),
            })?;
        let body = request::messages_body(&req.body, &messages, upstream_model)?;
        serde_json::to_vec(&body).map_err(|e| Unsupported {
            param: "messages".into(),
            why: e.to_string(),
        })
    }
}

/// The upstream request for a Messages `body`: `x-api-key` and `anthropic-version`.
fn messages_request(target: Target<'_>, body: Vec<u8>) -> UpstreamRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let version = target
        .provider
        .api_version
        .as_deref()
        .unwrap_or(ANTHROPIC_VERSION);
    if let Ok(v) = HeaderValue::from_str(version) {
        headers.insert(HeaderName::from_static("anthropic-version"), v);
    }
    if let Some(key) = &target.provider.api_key {
        if let Ok(mut v) = HeaderValue::from_str(key.expose()) {
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), v);
        }
    }
    UpstreamRequest {
        url: format!("{}/v1/messages", target.provider.base_url),
        headers,
        body: Bytes::from(body),
    }
}

/// A Messages client's own request, relayed with only the model changed.
pub fn native_request(req: &MessagesRequest, target: Target<'_>) -> UpstreamRequest {
    messages_request(target, req.upstream_body(target.upstream_model))
}

/// The same body to `{base_url}/v1/messages/count_tokens` (free; answers `input_tokens`).
pub fn count_tokens_request(req: &MessagesRequest, target: Target<'_>) -> UpstreamRequest {
    let mut out = native_request(req, target);
    out.url = format!("{}/v1/messages/count_tokens", target.provider.base_url);
    out
}

impl ProviderAdapter for Anthropic {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        // Checked before routing (`cannot_serve`): an offer that cannot translate the
        // request is never tried, so the fallback body is never sent.
        let body = Self::body(req, target.upstream_model).unwrap_or_default();
        messages_request(target, body)
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        usage::anthropic_usage(usage)
    }

    fn stream_decoder(&self) -> Box<dyn super::stream::StreamDecoder> {
        Box::new(stream::MessagesDecoder::default())
    }

    fn chat_answer(&self, body: &[u8], created: i64) -> Option<super::ChatAnswer> {
        answer::to_chat_completion(body, created)
    }

    fn answers_in(&self) -> Dialect {
        Dialect::AnthropicMessages
    }

    fn messages_request(
        &self,
        req: &MessagesRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        Some(native_request(req, target))
    }

    fn count_tokens_request(
        &self,
        req: &MessagesRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        Some(count_tokens_request(req, target))
    }

    fn cannot_serve(&self, req: &ChatRequest, _upstream_model: &str) -> Option<Unsupported> {
        Self::body(req, "").err()
    }
}
