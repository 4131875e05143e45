//! The non-streaming answer: one upstream call, its usage and visible text read
//! through a borrowed view, one ledger record, and the client's body made from the
//! upstream's bytes with the `tollgate` object inserted before the closing brace.
//! Fields tollgate does not know reach the client byte for byte, and the body is
//! neither copied nor re-encoded. Only an upstream body that carries a `tollgate` key
//! of its own (in any spelling; it is replaced), or that the view cannot read (a
//! duplicated key, a non-text `content`), is parsed whole and re-encoded.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use crate::ledger::Outcome;
use crate::metering::audit::VisibleOutput;
use crate::metering::facts::{self, Priced, RequestFacts};
use crate::metering::finalize::{self, Ending, Meter};
use crate::metering::summary::{insertion_point, present, Insertion, Summary};
use crate::providers::{ChatAnswer, Dialect, ProviderAdapter};
use crate::tokens::estimate::{OutputTokenCounter, TokenizerKind};
use crate::tokens::Usage;
use crate::upstream::AttemptError;

/// Call the upstream once and answer the client with its body, metered and priced.
pub(super) async fn call(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: crate::providers::UpstreamRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let bytes = app.upstream.call(upstream_req).await?;
    let upstream_time = upstream_started.elapsed();
    let kind = tokenizer(facts);
    let (bytes, read) = match adapter.answers_in() {
        Dialect::OpenAiChat => {
            let read = read(&bytes, adapter, kind)?;
            (bytes, read)
        }
        Dialect::AnthropicMessages | Dialect::Other => translated(&bytes, adapter, facts, kind)?,
    };
    Ok(respond(app, facts, bytes, read, upstream_time))
}

/// The tokenizer of the offer that answered.
pub(super) fn tokenizer(facts: &RequestFacts) -> TokenizerKind {
    facts
        .served
        .as_ref()
        .map_or(TokenizerKind::O200kBase, |s| s.tokenizer)
}

/// Settle, price and record a non-streamed answer, and answer the client with `bytes`
/// (already in its dialect) and the `tollgate` object.
pub(super) fn respond(
    app: &AppState,
    facts: &RequestFacts,
    bytes: Bytes,
    read: Read,
    upstream_time: std::time::Duration,
) -> Response {
    let ttfb = facts.started.elapsed();
    let Read {
        reported,
        mut counter,
        edit,
    } = read;
    // Counted even when reported: tollgate records its own count beside the provider's.
    let (usage, source) = Meter::settle(facts, reported, Some(&mut counter));
    let priced = facts::price(&app.meter.prices, facts, usage, source);
    let body = client_body(bytes, &finalize::summary(facts, &priced), edit);
    let ending = Ending {
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        ttfb: Some(ttfb),
        upstream_time: Some(upstream_time),
    };
    let visible = VisibleOutput::take(&mut counter);
    app.meter
        .finish_with(facts, &priced, &ending, Some(visible));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    super::residency_headers(h, facts);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    cost_headers(h, &priced);
    resp
}

/// What the meter reads from an answer, and how the client's body is made.
pub(super) struct Read {
    pub reported: Usage,
    pub counter: OutputTokenCounter,
    pub edit: Edit,
}

/// How the `tollgate` object gets into the client's body.
pub(super) enum Edit {
    /// Inserted into the upstream's text.
    Insert(Insertion),
    /// The upstream's object, parsed whole, to be re-encoded with it.
    Reencode(Map<String, Value>),
}

impl Edit {
    /// For an upstream answer relayed in its own dialect: inserted into its text, unless
    /// the upstream put a `tollgate` key of its own in (`upstream_tollgate`), which is
    /// then removed from the parsed object before ours is added.
    pub(super) fn for_answer(bytes: &[u8], upstream_tollgate: bool) -> Self {
        match insertion_point(bytes).filter(|_| !upstream_tollgate) {
            Some(at) => Edit::Insert(at),
            None => match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(mut answer)) => {
                    answer.remove("tollgate");
                    Edit::Reencode(answer)
                }
                _ => Edit::Reencode(Map::new()),
            },
        }
    }
}

/// An answer in another dialect, as a chat completion, with what the meter reads
/// from it.
fn translated(
    bytes: &[u8],
    adapter: &dyn ProviderAdapter,
    facts: &RequestFacts,
    kind: TokenizerKind,
) -> Result<(Bytes, Read), AttemptError> {
    let answer = translate(adapter, bytes, facts)?;
    let mut counter = OutputTokenCounter::new(kind);
    counter.push(&answer.text);
    counter.push_reasoning(&answer.reasoning);
    let body = Bytes::from(answer.body);
    let at = insertion_point(&body).ok_or(AttemptError::Protocol("untranslatable answer"))?;
    Ok((
        body,
        Read {
            reported: answer.usage,
            counter,
            edit: Edit::Insert(at),
        },
    ))
}

/// The answer of an upstream in another dialect as a chat completion.
pub(super) fn translate(
    adapter: &dyn ProviderAdapter,
    bytes: &[u8],
    facts: &RequestFacts,
) -> Result<ChatAnswer, AttemptError> {
    let served = facts
        .served
        .as_ref()
        .map_or("", |s| s.upstream_model.as_str());
    adapter
        .chat_answer(bytes, facts.created_at.timestamp())
        .map(|answer| answer.naming(served))
        .ok_or(AttemptError::Protocol(
            "the upstream answered with something other than an answer of its dialect",
        ))
}

/// A chat completion's bytes and the usage its upstream reported: the body of a
/// chat-completions upstream as sent, any other's translated. What the translations
/// into other client dialects start from.
pub(super) fn chat_completion(
    adapter: &dyn ProviderAdapter,
    bytes: Bytes,
    facts: &RequestFacts,
) -> Result<(Bytes, Usage), AttemptError> {
    if adapter.answers_in() != Dialect::OpenAiChat {
        let answer = translate(adapter, &bytes, facts)?;
        return Ok((Bytes::from(answer.body), answer.usage));
    }
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
        AttemptError::Protocol("the upstream answered with something other than a chat completion")
    })?;
    let reported = answer
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| adapter.usage_from_wire(u))
        .unwrap_or_default()
        .served_by(answer.get("service_tier"));
    Ok((bytes, reported))
}

/// Read usage and visible text: through the borrowed view when the body allows it,
/// otherwise from the whole parsed object. Anything but a JSON object is refused.
fn read(
    bytes: &[u8],
    adapter: &dyn ProviderAdapter,
    kind: TokenizerKind,
) -> Result<Read, AttemptError> {
    let mut counter = OutputTokenCounter::new(kind);
    let view = serde_json::from_slice::<AnswerView<'_>>(bytes).ok();
    let at = insertion_point(bytes);
    if let (Some(view), Some(at)) = (view.filter(|v| !v.tollgate), at) {
        for message in view
            .choices
            .iter()
            .flatten()
            .filter_map(|c| c.message.as_ref())
        {
            if let Some(t) = &message.content {
                counter.push(t);
            }
            if let Some(t) = &message.reasoning_content {
                counter.push_reasoning(t);
            }
        }
        return Ok(Read {
            reported: view
                .usage
                .map(|u| adapter.usage_from_wire(&u))
                .unwrap_or_default()
                .served_by(view.service_tier.as_ref()),
            counter,
            edit: Edit::Insert(at),
        });
    }
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(AttemptError::Protocol(
            "the upstream answered with something other than a JSON object",
        ));
    };
    let choices = answer.get("choices").and_then(Value::as_array);
    for choice in choices.into_iter().flatten() {
        let text = |field: &str| choice.get("message")?.get(field)?.as_str();
        if let Some(t) = text("content") {
            counter.push(t);
        }
        if let Some(t) = text("reasoning_content") {
            counter.push_reasoning(t);
        }
    }
    Ok(Read {
        reported: answer
            .get("usage")
            .map(|u| adapter.usage_from_wire(u))
            .unwrap_or_default()
            .served_by(answer.get("service_tier")),
        counter,
        edit: Edit::Reencode(answer),
    })
}

/// The client's body: the upstream's bytes around the inserted `tollgate` member, or
/// the re-encoded object with its `tollgate` key replaced by tollgate's own.
pub(super) fn client_body(upstream: Bytes, summary: &Summary<'_>, edit: Edit) -> Body {
    match edit {
        Edit::Insert(at) => {
            let member = Bytes::from(summary.member(at));
            let head = upstream.slice(..at.at);
            let tail = upstream.slice(at.at..);
            Body::new(Spliced {
                parts: [head, member, tail],
            })
        }
        Edit::Reencode(mut answer) => {
            answer.insert("tollgate".into(), summary.to_value());
            Body::from(serde_json::to_vec(&answer).unwrap_or_default())
        }
    }
}

/// A body of a few byte slices sent in order, with its exact length known (so the
/// answer carries `content-length`).
struct Spliced {
    parts: [Bytes; 3],
}

impl http_body::Body for Spliced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.parts.iter_mut().find(|p| !p.is_empty());
        Poll::Ready(next.map(|p| Ok(Frame::data(std::mem::take(p)))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.iter().all(Bytes::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        let len = self.parts.iter().map(Bytes::len).sum::<usize>();
        SizeHint::with_exact(u64::try_from(len).unwrap_or(u64::MAX))
    }
}

/// The parts of an answer the meter reads; borrowed to avoid copying text. Serde
/// refuses a duplicated key, and a `content` that is not text: the whole body is then
/// parsed instead.
#[derive(Deserialize)]
struct AnswerView<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceView<'a>>>,
    /// `Some` whenever the key is there, even as `null` (as the whole-body read does).
    #[serde(default, deserialize_with = "some_value")]
    usage: Option<Value>,
    /// The tier that served the request (top level, beside `usage`): it picks the price row.
    #[serde(default)]
    service_tier: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    message: Option<MessageView<'a>>,
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

/// `x-tollgate-*` cost and usage headers (the same figures as the `tollgate` object).
pub(super) fn cost_headers(h: &mut HeaderMap, priced: &Priced) {
    use super::names;
    if let Some(v) = priced
        .cost_usd
        .and_then(|c| HeaderValue::from_str(&c.to_string()).ok())
    {
        h.insert(names::COST, v);
    }
    h.insert(
        names::PRICING,
        HeaderValue::from_static(priced.pricing.as_str()),
    );
    h.insert(
        names::USAGE_SOURCE,
        HeaderValue::from_static(priced.source.as_str()),
    );
    let u = &priced.usage;
    let counts = [
        (names::INPUT, u.input),
        (names::CACHED, Some(u.cached_input.unwrap_or(0))),
        (names::OUTPUT, u.output),
        (names::REASONING, u.reasoning),
    ];
    for (name, n) in counts {
        if let Some(n) = n {
            h.insert(name, HeaderValue::from(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::ServiceTier;

    #[test]
    fn the_served_tier_beside_usage_is_read_by_the_view_and_by_the_whole_body_read() {
        let adapter =
            crate::providers::adapter_for(&crate::config::ProviderKind::Openai, "gpt-4o").unwrap();
        let usage = r#""usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}"#;
        let view = format!(r#"{{"choices":[],"service_tier":"flex",{usage}}}"#);
        let read_view = read(view.as_bytes(), adapter, TokenizerKind::O200kBase).unwrap();
        assert!(matches!(read_view.edit, Edit::Insert(_)));
        assert_eq!(read_view.reported.service_tier, Some(ServiceTier::Flex));
        // An upstream `tollgate` key sends the body through the whole-body read.
        let whole = format!(r#"{{"tollgate":{{}},"service_tier":"scale",{usage}}}"#);
        let read_whole = read(whole.as_bytes(), adapter, TokenizerKind::O200kBase).unwrap();
        assert!(matches!(read_whole.edit, Edit::Reencode(_)));
        assert_eq!(read_whole.reported.service_tier, Some(ServiceTier::Scale));
        assert_eq!(read_whole.reported.input, Some(5));
    }
}
