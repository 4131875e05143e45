//! The streamed answer: open the upstream's event stream, check that it is one, and
//! hand it to `MeteredBody`, which relays, meters and finalizes it. The non-streamed
//! counterpart is `answer`; choosing between them and failing over is `attempts`'.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::Response;

use super::AppState;
use crate::api::responses::ResponsesRequest;
use crate::metering::facts::RequestFacts;
use crate::metering::stream::anthropic::AnthropicRelay;
use crate::metering::stream::encode::anthropic::MessagesEncoder;
use crate::metering::stream::encode::chat::ChatEncoder;
use crate::metering::stream::encode::responses::ResponsesEncoder;
use crate::metering::stream::openai_chat::OpenAiChatRelay;
use crate::metering::stream::responses::ResponsesRelay;
use crate::metering::stream::translate::Translate;
use crate::metering::stream::{MeteredBody, StreamSetup, TapSetup};
use crate::providers::stream::NamingModel;
use crate::providers::{Dialect, ProviderAdapter};
use crate::upstream::AttemptError;

/// The dialect the client streams in, and what it asked of the stream.
#[derive(Debug, Clone, Copy)]
pub(super) enum ClientDialect<'a> {
    /// OpenAI chat completions; `stream_options.include_usage` as the client set it.
    Chat { wants_usage_chunk: bool },
    /// Anthropic Messages.
    Messages,
    /// OpenAI Responses served by a chat-completions upstream; the request's settings
    /// are repeated in each `response` the stream carries.
    Responses(&'a ResponsesRequest),
    /// OpenAI Responses relayed from an upstream that serves the Responses API.
    ResponsesNative,
}

/// Open the upstream stream for one attempt. An answer that is not an event stream is
/// an attempt failure (so another offer may be tried); after this returns `Ok`, the
/// request is committed.
pub(super) async fn open_stream(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: crate::providers::UpstreamRequest,
    client: ClientDialect<'_>,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let opened = app.upstream.open_stream(upstream_req).await?;
    let framing = adapter.framing();
    let is_stream = opened
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with(framing.content_type()));
    if !is_stream {
        return Err(AttemptError::Protocol(
            "the upstream did not answer with an event stream",
        ));
    }
    let setup = StreamSetup {
        tap: TapSetup {
            meter: app.meter.clone(),
            facts: facts.clone(),
            adapter,
            ttfb: facts.started.elapsed(),
            upstream_started,
        },
        framing,
        idle_timeout: app.settings.idle_timeout,
        shutdown: app.shutdown.cut_token(),
    };
    let (first, rest) = (opened.first_chunk, opened.rest);
    // The upstream's decoder, naming the served model when its stream does not.
    let decoder = || {
        let served = facts.served.as_ref();
        let model = served.map(|s| s.upstream_model.clone()).unwrap_or_default();
        NamingModel::wrap(adapter.stream_decoder(), model)
    };
    let body = match (client, adapter.answers_in()) {
        // The same dialect on both sides: relayed byte for byte.
        (ClientDialect::ResponsesNative, _) => {
            Body::new(MeteredBody::new(first, rest, setup, ResponsesRelay::new()))
        }
        (ClientDialect::Chat { wants_usage_chunk }, Dialect::OpenAiChat) => {
            let relay = OpenAiChatRelay::new(wants_usage_chunk);
            Body::new(MeteredBody::new(first, rest, setup, relay))
        }
        (ClientDialect::Messages, Dialect::AnthropicMessages) => {
            Body::new(MeteredBody::new(first, rest, setup, AnthropicRelay::new()))
        }
        // Different dialects: decoded into neutral events and encoded again.
        (ClientDialect::Chat { wants_usage_chunk }, _) => {
            let encoder = ChatEncoder::new(wants_usage_chunk, facts.created_at.timestamp());
            let relay = Translate::new(decoder(), encoder);
            Body::new(MeteredBody::new(first, rest, setup, relay))
        }
        (ClientDialect::Messages, _) => {
            let relay = Translate::new(decoder(), MessagesEncoder::new());
            Body::new(MeteredBody::new(first, rest, setup, relay))
        }
        (ClientDialect::Responses(req), _) => {
            let encoder = ResponsesEncoder::new(req.echo(), facts.created_at.timestamp());
            let relay = Translate::new(decoder(), encoder);
            Body::new(MeteredBody::new(first, rest, setup, relay))
        }
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    super::residency_headers(h, facts);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
