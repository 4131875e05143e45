//! The streamed answer: open the upstream's event stream, check that it is one, and
//! hand it to `MeteredBody`, which relays, meters and finalizes it. The non-streamed
//! counterpart is `answer`; choosing between them and failing over is `attempts`'.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::Response;

use super::AppState;
use crate::api::openai::ChatRequest;
use crate::metering::body::{MeteredBody, StreamSetup};
use crate::metering::facts::RequestFacts;
use crate::providers::ProviderAdapter;
use crate::upstream::AttemptError;

/// Open the upstream stream for one attempt. An answer that is not an event stream is
/// an attempt failure (so another offer may be tried); after this returns `Ok`, the
/// request is committed.
pub(super) async fn open_stream(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: crate::providers::UpstreamRequest,
    req: &ChatRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let opened = app.upstream.open_stream(upstream_req).await?;
    let is_sse = opened
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !is_sse {
        return Err(AttemptError::Protocol(
            "the upstream did not answer with an event stream",
        ));
    }
    let setup = StreamSetup {
        shutdown: app.shutdown.cut_token(),
        meter: app.meter.clone(),
        facts: facts.clone(),
        adapter,
        wants_usage_chunk: req.wants_usage_chunk,
        idle_timeout: app.settings.idle_timeout,
        ttfb: facts.started.elapsed(),
        upstream_started,
    };
    let body = MeteredBody::new(opened.first_chunk, opened.rest, setup);
    let mut resp = Response::new(Body::new(body));
    let h = resp.headers_mut();
    super::residency_headers(h, facts);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
