//! Provider adapters: one translator per upstream wire dialect, chosen once per
//! provider kind in [`adapter_for`] (the only `match` on `ProviderKind`).
//!
//! Adapters are pure: they build the upstream request (URL, static auth header, body)
//! and read the provider's usage and error shapes. They do no I/O; the HTTP call,
//! timeouts and failover live in `upstream`, and the credentials that need I/O (AWS
//! SigV4, Google OAuth tokens) are applied to the finished request by [`credentials`].

pub mod anthropic;
pub mod azure_ai_inference;
pub mod azure_openai;
pub mod bedrock;
pub mod chat_content;
pub mod cloud_errors;
pub mod credentials;
pub mod deepseek;
pub mod embeddings;
pub mod gemini;
pub mod github_models;
pub mod mock;
mod mock_adapter;
pub mod openai;
pub mod openai_compatible;
pub mod reasoning;
pub mod sse;
pub mod stream;
pub mod vertex;
mod wire;

use axum::http::HeaderMap;
use bytes::Bytes;

use crate::api::anthropic::MessagesRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::openai::ChatRequest;
use crate::api::responses::ResponsesRequest;
use crate::config::{ProviderKind, ProviderSettings};
use crate::tokens::Usage;

pub use wire::{openai_usage, responses_api_usage, UpstreamFailure};

/// A request ready to send: everything but the transport.
#[derive(Debug)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An upstream's non-streamed answer translated into a chat completion (the pivot of
/// non-streamed answers: every client dialect has a translation from it), with what
/// the meter reads from it.
pub struct ChatAnswer {
    /// The chat completion's JSON.
    pub body: Vec<u8>,
    /// The usage the upstream reported.
    pub usage: Usage,
    /// Visible output text and reasoning, for tollgate's own count.
    pub text: String,
    pub reasoning: String,
}

impl ChatAnswer {
    /// Name `model` in the chat completion when the upstream's answer named none
    /// (Bedrock's Converse answer does not).
    #[must_use]
    pub fn naming(mut self, model: &str) -> Self {
        const UNNAMED: &[u8] = b"\"model\":\"\"";
        if self.body.windows(UNNAMED.len()).any(|w| w == UNNAMED) {
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&self.body) {
                if v.get("model").and_then(serde_json::Value::as_str) == Some("") {
                    v["model"] = model.into();
                    if let Ok(body) = serde_json::to_vec(&v) {
                        self.body = body;
                    }
                }
            }
        }
        self
    }
}

/// How an upstream frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (`text/event-stream`): every dialect but Bedrock's.
    Sse,
    /// AWS's binary eventstream (`application/vnd.amazon.eventstream`), Bedrock's
    /// ConverseStream: each message becomes an SSE event named by its `:event-type`.
    AwsEventStream,
}

impl Framing {
    /// The content type an upstream stream of this framing answers with.
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::AwsEventStream => "application/vnd.amazon.eventstream",
        }
    }
}

/// Where one attempt goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub provider: &'a ProviderSettings,
    pub upstream_model: &'a str,
}

/// A wire dialect. Implementations are stateless and shared.
pub trait ProviderAdapter: Send + Sync {
    /// Build the upstream request for `req` served by `target`.
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest;

    /// Normalise the provider's `usage` object.
    fn usage_from_wire(&self, usage: &serde_json::Value) -> Usage {
        openai_usage(usage)
    }

    /// The dialect the upstream answers in; the client's own dialect is translated
    /// from it when they differ.
    fn answers_in(&self) -> Dialect {
        Dialect::OpenAiChat
    }

    /// A decoder of the upstream's stream into neutral events, for a client that
    /// speaks another dialect (one per stream).
    fn stream_decoder(&self) -> Box<dyn stream::StreamDecoder> {
        Box::new(stream::ChatChunkDecoder::default())
    }

    /// How the upstream's stream is framed.
    fn framing(&self) -> Framing {
        Framing::Sse
    }

    /// The upstream request for a Messages client's own body, for an upstream that
    /// answers in Anthropic Messages (`answers_in`), which must return `Some` (such an
    /// offer gets no chat translation); `None` for the others, which get the chat
    /// translation through `build_request`.
    fn messages_request(
        &self,
        _req: &MessagesRequest,
        _target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        None
    }

    /// The upstream request that counts a Messages request's input tokens for free
    /// (Anthropic's `count_tokens`); `None` when the upstream has no such endpoint
    /// (tollgate then estimates).
    fn count_tokens_request(
        &self,
        _req: &MessagesRequest,
        _target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        None
    }

    /// The upstream's non-streamed answer as a chat completion, for an upstream that
    /// answers in another dialect than OpenAI's chat completions (`answers_in`);
    /// `None` when the body is not an answer of its dialect. Chat-completions
    /// upstreams' bodies are read as they are and never come here.
    fn chat_answer(&self, _body: &[u8], _created: i64) -> Option<ChatAnswer> {
        None
    }

    /// What in `req` this upstream cannot honour, if anything: such an offer is not
    /// tried, and when no allowed offer can serve, the client gets a 400 naming it.
    fn cannot_serve(
        &self,
        _req: &ChatRequest,
        _upstream_model: &str,
    ) -> Option<crate::api::error::Unsupported> {
        None
    }

    /// Whether the upstream takes chat's `reasoning_effort` (OpenAI's o-series and its
    /// Azure deployments do). A translated request that sets it (the Responses API's
    /// `reasoning.effort`) is not sent to an upstream that does not.
    fn takes_reasoning_effort(&self) -> bool {
        false
    }

    /// Whether the upstream serves OpenAI's Responses API itself: a Responses client's
    /// request is then relayed natively ([`ProviderAdapter::responses_request`]) rather
    /// than translated to a chat completion. Must agree with `responses_request`.
    fn serves_responses(&self) -> bool {
        false
    }

    /// The upstream request for a Responses client's own body, relayed with only
    /// `model` changed; `None` when the upstream has no Responses API (the client's
    /// request is then served through its chat-completions translation).
    fn responses_request(
        &self,
        _req: &ResponsesRequest,
        _target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        None
    }

    /// Build the upstream embeddings request for `req` served by `target`; `None` when
    /// the dialect has no embeddings API (`ProviderKind::serves_embeddings` says the
    /// same, so check-config refuses such an offer before it can be routed to).
    fn embeddings_request(
        &self,
        _req: &EmbeddingsRequest,
        _target: Target<'_>,
    ) -> Option<UpstreamRequest> {
        None
    }

    /// What in an embeddings request this upstream cannot honour (token-id inputs for
    /// a text-only API, several inputs for a one-text-per-call model), if anything.
    fn cannot_embed(
        &self,
        _req: &EmbeddingsRequest,
        _upstream_model: &str,
    ) -> Option<crate::api::error::Unsupported> {
        None
    }

    /// The upstream's embeddings answer read into vectors and usage, for an upstream
    /// whose embeddings API is not OpenAI's; `None` when its answer is already OpenAI's
    /// list (relayed as sent), `Some(Err)` when the body is not an answer of its
    /// dialect. The server writes OpenAI's list from the vectors, with the settled
    /// usage and the client's `encoding_format`.
    fn embeddings_answer(&self, _body: &[u8]) -> Option<Result<embeddings::Vectors, &'static str>> {
        None
    }
}

/// An answer's wire dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI chat completions (and every compatible upstream).
    OpenAiChat,
    /// Anthropic Messages.
    AnthropicMessages,
    /// A dialect no client speaks (e.g. one added by a [`Registry`] extension): always
    /// translated, through `stream_decoder` and `chat_answer`.
    Other,
}

/// The provider kinds a gateway can reach: the built-in dialects ([`adapter_for`])
/// plus the extensions the embedding program adds with [`Registry::with`]. An
/// extension is one type implementing [`ProviderAdapter`] and one `with` line; its
/// name is then a valid `kind` in the configuration (see
/// `config::validate_with_kinds`) and its offers are routed, metered, priced and
/// translated for every client dialect like the built-in ones.
#[derive(Clone, Default)]
pub struct Registry {
    extensions: Vec<(&'static str, &'static dyn ProviderAdapter)>,
}

impl Registry {
    /// The built-in dialects only.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Add the dialect `adapter` under the configuration name `kind`. A built-in name
    /// keeps its built-in adapter.
    #[must_use]
    pub fn with(mut self, kind: &'static str, adapter: &'static dyn ProviderAdapter) -> Self {
        self.extensions.retain(|(name, _)| *name != kind);
        self.extensions.push((kind, adapter));
        self
    }

    /// The extensions' configuration names.
    pub fn extension_kinds(&self) -> Vec<&'static str> {
        self.extensions.iter().map(|(name, _)| *name).collect()
    }

    /// The adapter for an offer of a configured provider serving `upstream_model` (a
    /// Vertex AI provider speaks a different dialect per model family); `None` only for
    /// an extension kind this registry does not have (settings validated against
    /// another registry).
    pub fn adapter(
        &self,
        p: &ProviderSettings,
        upstream_model: &str,
    ) -> Option<&'static dyn ProviderAdapter> {
        match (&p.kind, p.mock_flavor) {
            // A mock imitating Anthropic is reached through the real `anthropic`
            // adapter, as the other mock flavors are through OpenAI-dialect code.
            (ProviderKind::Mock, Some(mock::MockFlavor::Anthropic)) => Some(&anthropic::Anthropic),
            (ProviderKind::Extension(name), _) => self
                .extensions
                .iter()
                .find(|(kind, _)| **kind == **name)
                .map(|(_, adapter)| *adapter),
            (kind, _) => adapter_for(kind, upstream_model),
        }
    }
}

/// The adapter of a built-in kind serving `upstream_model`: the single place built-in
/// kinds are dispatched. Only `vertex` looks at the model ([`vertex::adapter_for_model`]).
pub fn adapter_for(
    kind: &ProviderKind,
    upstream_model: &str,
) -> Option<&'static dyn ProviderAdapter> {
    Some(match kind {
        ProviderKind::Openai => &openai::OpenAi,
        ProviderKind::AzureOpenai => &azure_openai::AzureOpenAi,
        ProviderKind::AzureAiInference => &azure_ai_inference::AzureAiInference,
        ProviderKind::GithubModels => &github_models::GithubModels,
        ProviderKind::Deepseek => &deepseek::DeepSeek,
        ProviderKind::OpenaiCompatible => &openai_compatible::OpenAiCompatible,
        ProviderKind::Anthropic => &anthropic::Anthropic,
        ProviderKind::Bedrock => &bedrock::Bedrock,
        ProviderKind::Gemini => &gemini::Gemini,
        ProviderKind::Vertex => vertex::adapter_for_model(upstream_model),
        ProviderKind::Mock => &mock_adapter::MockAdapter,
        ProviderKind::Extension(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serves_responses` is what keeps the chat translation's refusals from applying;
    /// an adapter that claimed it without building the request would fail every attempt.
    #[test]
    fn serving_the_responses_api_and_building_its_request_agree_for_every_kind() {
        let req = ResponsesRequest::parse(br#"{"model":"m","input":"hi"}"#).unwrap();
        let kinds = [
            ProviderKind::Openai,
            ProviderKind::AzureOpenai,
            ProviderKind::AzureAiInference,
            ProviderKind::GithubModels,
            ProviderKind::Deepseek,
            ProviderKind::OpenaiCompatible,
            ProviderKind::Anthropic,
            ProviderKind::Bedrock,
            ProviderKind::Vertex,
            ProviderKind::Gemini,
            ProviderKind::Mock,
        ];
        let mut native = Vec::new();
        for kind in kinds {
            let provider = ProviderSettings {
                id: "p".into(),
                kind: kind.clone(),
                base_url: "https://example.test".into(),
                api_key: Some(crate::config::secret::Secret::new("k".into())),
                api_version: Some("2024-12-01-preview".into()),
                residency: crate::config::Residency {
                    region: "r".into(),
                    jurisdiction: "US".into(),
                    scope: crate::config::Scope::Global,
                },
                mock_flavor: None,
                cloud: Default::default(),
            };
            let target = Target {
                provider: &provider,
                upstream_model: "up",
            };
            let adapter = adapter_for(&kind, "up").unwrap();
            let built = adapter.responses_request(&req, target);
            assert_eq!(adapter.serves_responses(), built.is_some(), "{kind:?}");
            if built.is_some() {
                native.push(kind);
            }
        }
        assert_eq!(native, [ProviderKind::Openai, ProviderKind::AzureOpenai]);
    }
}
