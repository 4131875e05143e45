//! The `bedrock` kind: the pieces of this module joined into a [`ProviderAdapter`].
//! The request goes to Converse or ConverseStream (by `stream`) with the Converse body;
//! it leaves here unauthorized, since credentials are resolved per request by the
//! server (`ProviderAuth`), which signs the finished request (SigV4 covers the body
//! and headers, so nothing may change after it).

use axum::http::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::{answer, embed, request, stream, usage};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::Unsupported;
use crate::api::openai::ChatRequest;
use crate::providers::embeddings::Vectors;
use crate::providers::{ChatAnswer, Dialect, Framing, ProviderAdapter, Target, UpstreamRequest};
use crate::tokens::Usage;

/// The `bedrock` kind.
pub struct Bedrock;

impl ProviderAdapter for Bedrock {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        // Checked before routing (`cannot_serve`): an offer that cannot translate the
        // request is never tried, so the fallback body is never sent.
        let body = request::converse_body(req, Some(target.upstream_model)).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let accept = if req.is_streaming {
            Framing::AwsEventStream.content_type()
        } else {
            "application/json"
        };
        headers.insert("accept", HeaderValue::from_static(accept));
        UpstreamRequest {
            url: request::converse_url(
                &target.provider.base_url,
                target.upstream_model,
                req.is_streaming,
            ),
            headers,
            body,
        }
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        usage::bedrock_usage(usage)
    }

    fn answers_in(&self) -> Dialect {
        Dialect::Other
    }

    fn stream_decoder(&self) -> Box<dyn crate::providers::stream::StreamDecoder> {
        Box::new(stream::ConverseStreamDecoder::default())
    }

    /// Claude models take it (as extended thinking); `cannot_serve` refuses it, by
    /// name, for the model families that do not.
    fn takes_reasoning_effort(&self) -> bool {
        true
    }

    fn framing(&self) -> Framing {
        Framing::AwsEventStream
    }

    fn chat_answer(&self, body: &[u8], created: i64) -> Option<ChatAnswer> {
        answer::to_chat_completion(body, created)
    }

    fn cannot_serve(&self, req: &ChatRequest, upstream_model: &str) -> Option<Unsupported> {
        // The model decides, e.g. whether its family takes `reasoning_effort`.
        request::converse_body(req, Some(upstream_model)).err()
    }

    /// Titan Text Embeddings V2 through InvokeModel, signed like Converse.
    fn embeddings_request(
        &self,
        req: &EmbeddingsRequest,
        target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        // Checked before the attempt (`cannot_embed`), so the fallback is never sent.
        let body = embed::titan_body(req).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        Some(UpstreamRequest {
            url: embed::invoke_url(&target.provider.base_url, target.upstream_model),
            headers,
            body,
        })
    }

    fn cannot_embed(&self, req: &EmbeddingsRequest, _upstream_model: &str) -> Option<Unsupported> {
        embed::cannot_embed(req)
    }

    fn embeddings_answer(&self, body: &[u8]) -> Option<Result<Vectors, &'static str>> {
        Some(embed::read_titan(body))
    }
}
