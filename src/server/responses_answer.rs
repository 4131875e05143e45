//! The non-streamed answer to a Responses client: from an upstream that serves the
//! Responses API (`native`), its `response` object as sent with the `tollgate` object
//! inserted (usage and text read through a borrowed view); from any other upstream
//! (`call`), the chat completion (as sent, or translated from the upstream's dialect)
//! translated into a `response` object
//! (`api::responses::from_chat`), with the `tollgate` object inserted. Settling,
//! pricing, the record and the headers are `answer::respond`'s, the same as for chat
//! clients.

use std::borrow::Cow;

use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::answer::{chat_completion, respond, tokenizer, Edit, Read};
use super::AppState;
use crate::api::responses::from_chat::to_response;
use crate::api::responses::ResponsesRequest;
use crate::metering::facts::RequestFacts;
use crate::metering::summary::{insertion_point, present};
use crate::providers::{responses_api_usage, ProviderAdapter, UpstreamRequest};
use crate::tokens::estimate::OutputTokenCounter;
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
    let (bytes, reported) = chat_completion(adapter, bytes, facts)?;
    let not_chat = || AttemptError::Protocol("untranslatable answer");
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

/// Call an upstream that serves the Responses API and relay its `response` object.
pub(super) async fn native(
    app: &AppState,
    upstream_req: UpstreamRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let bytes = app.upstream.call(upstream_req).await?;
    let upstream_time = upstream_started.elapsed();
    let mut counter = OutputTokenCounter::new(tokenizer(facts));
    let (reported, edit) = read_native(&bytes, &mut counter)?;
    let read = Read {
        reported,
        counter,
        edit,
    };
    Ok(respond(app, facts, bytes, read, upstream_time))
}

/// The parts of a `response` object the meter reads; borrowed to avoid copying text.
#[derive(Deserialize)]
struct ResponseView<'a> {
    #[serde(default, borrow)]
    output: Option<Vec<ItemView<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    /// The tier that served the request (top level, beside `usage`): it picks the price row.
    #[serde(default)]
    service_tier: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

/// One output item: a `message`'s text parts, a `reasoning` item's summary and
/// reasoning text, a `function_call`'s arguments.
#[derive(Deserialize)]
struct ItemView<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Vec<PartView<'a>>>,
    #[serde(default, borrow)]
    summary: Option<Vec<PartView<'a>>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PartView<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
}

/// Usage and visible text of a `response` object, and how the `tollgate` object gets
/// in: inserted into the upstream's text, unless the upstream put its own `tollgate`
/// key in (then the object is parsed and re-encoded with it replaced).
fn read_native(
    bytes: &[u8],
    counter: &mut OutputTokenCounter,
) -> Result<(crate::tokens::Usage, Edit), AttemptError> {
    let not_response = || {
        AttemptError::Protocol("the upstream answered with something other than a response object")
    };
    let view: ResponseView<'_> = serde_json::from_slice(bytes).map_err(|_| not_response())?;
    for item in view.output.iter().flatten() {
        let reasoning = item.kind.as_deref() == Some("reasoning");
        let parts = item.content.iter().chain(&item.summary).flatten();
        for t in parts.filter_map(|p| p.text.as_ref().or(p.refusal.as_ref())) {
            if reasoning {
                counter.push_reasoning(t);
            } else {
                counter.push(t);
            }
        }
        if let Some(args) = &item.arguments {
            counter.push(args);
        }
    }
    let reported = view
        .usage
        .as_ref()
        .filter(|u| u.is_object())
        .map(responses_api_usage)
        .unwrap_or_default()
        .served_by(view.service_tier.as_ref());
    let edit = Edit::for_answer(bytes, view.tollgate);
    Ok((reported, edit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::estimate::TokenizerKind;

    #[test]
    fn a_response_object_is_read_for_usage_text_and_where_the_object_goes() {
        let body = br#"{"id":"resp_1","output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"thought"}]},{"type":"message","content":[{"type":"output_text","text":"The answer is 42.","annotations":[]}]},{"type":"function_call","arguments":"{\"a\":1}"}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":30}}"#;
        let mut counter = OutputTokenCounter::new(TokenizerKind::O200kBase);
        let (usage, edit) = read_native(body, &mut counter).unwrap();
        assert_eq!(
            (
                usage.input,
                usage.cached_input,
                usage.output,
                usage.reasoning
            ),
            (Some(10), Some(4), Some(20), Some(5))
        );
        assert!(counter.total() > 0);
        assert!(matches!(edit, Edit::Insert(at) if at.at == body.len() - 1));
        assert_eq!(usage.service_tier, None);
        // The tier that served it is a member of the response, beside `usage`.
        let flex = br#"{"id":"resp_1","output":[],"service_tier":"flex","usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}"#;
        let (usage, _) = read_native(flex, &mut counter).unwrap();
        assert_eq!(usage.service_tier, Some(crate::tokens::ServiceTier::Flex));
        // An upstream's own `tollgate` key is replaced, never relayed.
        let spoofed = br#"{"id":"resp_1","tollgate":{"cost_usd":"0"},"output":[]}"#;
        let (_, edit) = read_native(spoofed, &mut counter).unwrap();
        assert!(
            matches!(edit, Edit::Reencode(m) if !m.contains_key("tollgate") && m["id"] == "resp_1")
        );
        assert!(read_native(br#""a string""#, &mut counter).is_err());
    }
}
