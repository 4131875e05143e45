//! The non-streamed answer to a Responses client: the chat completion of a
//! chat-completions upstream translated into a `response` object
//! (`api::responses::from_chat`), with the `tollgate` object inserted. Settling,
//! pricing, the record and the headers are `answer::respond`'s, the same as for chat
//! clients.

use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::answer::{respond, tokenizer, Edit, Read};
use super::AppState;
use crate::api::responses::from_chat::to_response;
use crate::api::responses::ResponsesRequest;
use crate::metering::estimate::OutputTokenCounter;
use crate::metering::facts::RequestFacts;
use crate::metering::summary::insertion_point;
use crate::providers::{ProviderAdapter, UpstreamRequest};
use crate::upstream::AttemptError;

/// Call the upstream once and answer the Responses client.
pub(super) async fn call(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: UpstreamRequest,
    req: &ResponsesRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let bytes = app.upstream.call(upstream_req).await?;
    let upstream_time = upstream_started.elapsed();
    let not_chat = || {
        AttemptError::Protocol("the upstream answered with something other than a chat completion")
    };
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| not_chat())?;
    let reported = answer
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| adapter.usage_from_wire(u))
        .unwrap_or_default();
    let translated = to_response(&bytes, &reported, &req.echo(), facts.created_at.timestamp())
        .ok_or_else(not_chat)?;
    let mut counter = OutputTokenCounter::new(tokenizer(facts));
    counter.push(&translated.text);
    counter.push_reasoning(&translated.reasoning);
    let body = Bytes::from(translated.body);
    let at = insertion_point(&body).ok_or_else(not_chat)?;
    let read = Read {
        reported,
        counter,
        edit: Edit::Insert(at),
    };
    Ok(respond(app, facts, body, read, upstream_time))
}
