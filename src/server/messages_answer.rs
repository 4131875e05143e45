//! The non-streamed answer to a Messages client: from an Anthropic upstream, its bytes
//! as sent with the `tollgate` object inserted (usage and text read through a borrowed
//! view); from any other upstream, its chat completion (as sent, or translated from
//! its dialect) translated into a Messages answer (`providers::anthropic::from_chat`). Settling, pricing, the record and the
//! headers are `answer::respond`'s, the same as for chat clients.

use std::borrow::Cow;

use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::answer::{chat_completion, respond, tokenizer, Edit, Read};
use super::AppState;
use crate::metering::facts::RequestFacts;
use crate::metering::summary::{insertion_point, present};
use crate::providers::anthropic::from_chat::to_messages;
use crate::providers::{Dialect, ProviderAdapter, UpstreamRequest};
use crate::tokens::estimate::OutputTokenCounter;
use crate::upstream::AttemptError;

/// Call the upstream once and answer the Messages client.
pub(super) async fn call(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: UpstreamRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let bytes = app.upstream.call(upstream_req).await?;
    let upstream_time = upstream_started.elapsed();
    let mut counter = OutputTokenCounter::new(tokenizer(facts));
    let (bytes, read) = match adapter.answers_in() {
        Dialect::AnthropicMessages => {
            let (reported, edit) = native(&bytes, adapter, &mut counter)?;
            let read = Read {
                reported,
                counter,
                edit,
            };
            (bytes, read)
        }
        Dialect::OpenAiChat | Dialect::Other => {
            let (bytes, reported) = chat_completion(adapter, bytes, facts)?;
            let translated = to_messages(&bytes, &reported).ok_or_else(not_chat)?;
            counter.push(&translated.text);
            counter.push_reasoning(&translated.reasoning);
            let body = Bytes::from(translated.body);
            let at = insertion_point(&body).ok_or_else(not_chat)?;
            let read = Read {
                reported,
                counter,
                edit: Edit::Insert(at),
            };
            (body, read)
        }
    };
    Ok(respond(app, facts, bytes, read, upstream_time))
}

fn not_chat() -> AttemptError {
    AttemptError::Protocol("the upstream answered with something other than a chat completion")
}

/// The parts of a Messages answer the meter reads; borrowed to avoid copying text.
#[derive(Deserialize)]
struct AnswerView<'a> {
    #[serde(default, borrow)]
    content: Option<Vec<BlockView<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

#[derive(Deserialize)]
struct BlockView<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
}

/// Usage and visible text of an Anthropic answer, and how the `tollgate` object gets
/// in: inserted into the upstream's text, unless the upstream put its own `tollgate`
/// key in (then the object is parsed and re-encoded with it replaced).
fn native(
    bytes: &[u8],
    adapter: &dyn ProviderAdapter,
    counter: &mut OutputTokenCounter,
) -> Result<(crate::tokens::Usage, Edit), AttemptError> {
    let not_messages = || {
        AttemptError::Protocol("the upstream answered with something other than a Messages answer")
    };
    let view: AnswerView<'_> = serde_json::from_slice(bytes).map_err(|_| not_messages())?;
    for block in view.content.iter().flatten() {
        if let Some(t) = &block.text {
            counter.push(t);
        }
        if let Some(t) = &block.thinking {
            counter.push_reasoning(t);
        }
    }
    let reported = view
        .usage
        .as_ref()
        .filter(|u| u.is_object())
        .map(|u| adapter.usage_from_wire(u))
        .unwrap_or_default();
    let edit = Edit::for_answer(bytes, view.tollgate);
    Ok((reported, edit))
}
