//! `MeteredBody`: the client-facing body of a streamed response. Its `poll_frame`
//! pulls the upstream byte stream, splits it into SSE events, reads usage and text
//! deltas from each, and relays each event as soon as it is parsed: no spawned
//! task, no channel, no buffering beyond one event, and the client's backpressure
//! reaches the upstream read. It finalizes exactly once, at the end of the stream,
//! on an upstream error, or on `Drop` when the client goes away.
//!
//! Relay rules: chunks with empty `choices` (OpenAI's usage-only chunk, Azure's
//! leading `prompt_filter_results` chunk) are hidden from clients that did not ask
//! for usage. For clients that did, a chunk carrying usage is held back (one event at
//! most) until the next event shows whether it was the last one: the last, followed
//! only by `[DONE]` or the end of the stream, carries tollgate's own `tollgate`
//! object, priced exactly as the ledger record is. For clients that did not ask, any
//! `usage` (there only because tollgate asked the upstream for it) is removed. An
//! upstream's own `tollgate` key is removed from every chunk. A chunk that needs none
//! of this is relayed byte for byte as the upstream sent it, and tollgate's object is
//! inserted into the last usage chunk's text: only chunks that lose a key are
//! re-encoded. Events are written into one buffer per upstream read.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use serde::Deserialize;
use serde_json::Value;

use super::audit::VisibleOutput;
use super::estimate::OutputTokenCounter;
use super::facts::{self, RequestFacts};
use super::finalize::{self, Ending, Meter};
use super::summary::{insertion_point, present, Insertion};
use super::Usage;
use crate::ledger::{Outcome, UsageSource};
use crate::providers::sse::{self, SseEvent, SseFrame, SseParser};
use crate::providers::ProviderAdapter;
use crate::upstream::ByteStream;

/// Largest single SSE event accepted from an upstream.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Everything the relay needs besides the byte stream.
pub struct StreamSetup {
    pub meter: Meter,
    pub facts: RequestFacts,
    pub adapter: &'static dyn ProviderAdapter,
    pub wants_usage_chunk: bool,
    pub idle_timeout: std::time::Duration,
    pub ttfb: std::time::Duration,
    /// When the answering attempt was sent; the upstream's time runs to its last byte.
    pub upstream_started: tokio::time::Instant,
    /// Cancelled at the shutdown deadline: the stream then ends with a final
    /// `shutting_down` error event and is recorded.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The relaying, metering body. See the module docs.
pub struct MeteredBody {
    first: Option<Bytes>,
    upstream: ByteStream,
    parser: SseParser,
    frames: Vec<SseFrame>,
    usage: Usage,
    output: OutputTokenCounter,
    saw_done: bool,
    /// A usage chunk waiting to learn whether it is the last (clients that asked for usage).
    held: Option<Held>,
    /// Usage settled once, for the held chunk's object and the record alike.
    settled: Option<(Usage, UsageSource)>,
    /// Set when the upstream's stream ended (or broke): the end of the upstream's time.
    upstream_ended: Option<tokio::time::Instant>,
    idle: Pin<Box<tokio::time::Sleep>>,
    shutdown: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    setup: Option<StreamSetup>,
}

impl MeteredBody {
    /// Relay `rest` after `first`, metering both.
    pub fn new(first: Bytes, rest: ByteStream, setup: StreamSetup) -> Self {
        let tokenizer = setup
            .facts
            .served
            .as_ref()
            .map_or(super::estimate::TokenizerKind::O200kBase, |s| s.tokenizer);
        Self {
            first: Some(first),
            upstream: rest,
            parser: SseParser::new(MAX_EVENT_BYTES),
            frames: Vec::new(),
            usage: Usage::default(),
            output: OutputTokenCounter::new(tokenizer),
            saw_done: false,
            held: None,
            settled: None,
            upstream_ended: None,
            idle: Box::pin(tokio::time::sleep(setup.idle_timeout)),
            // A child token: polling it never contends with other streams.
            shutdown: Box::pin(setup.shutdown.child_token().cancelled_owned()),
            setup: Some(setup),
        }
    }

    /// Relay the frames parsed so far into `out`.
    fn relay_frames(&mut self, out: &mut BytesMut) {
        let mut frames = std::mem::take(&mut self.frames);
        for frame in frames.drain(..) {
            match frame {
                SseFrame::Comment(text) => sse::write_comment(out, &text),
                SseFrame::Event(ev) if ev.is_done() => {
                    self.saw_done = true;
                    self.release_held(out, true);
                    sse::write_event(out, &ev);
                }
                SseFrame::Event(ev) => self.relay_event(ev, out),
            }
        }
        // Kept for its capacity: no allocation per poll.
        self.frames = frames;
    }

    fn relay_event(&mut self, ev: SseEvent, out: &mut BytesMut) {
        let Ok(view) = serde_json::from_str::<ChunkView<'_>>(&ev.data) else {
            // Not a chat chunk (an upstream error event, or one serde refuses, e.g. with
            // a duplicated key): relayed in order, minus any `tollgate` object.
            self.release_held(out, false);
            relay(&ev, rewrite(&ev.data, None, false), out);
            return;
        };
        for choice in view.choices.iter().flatten() {
            if let Some(delta) = &choice.delta {
                if let Some(text) = &delta.content {
                    self.output.push(text);
                }
                if let Some(text) = &delta.reasoning_content {
                    self.output.push_reasoning(text);
                }
            }
        }
        let usage = view.usage.as_ref().filter(|u| u.is_object());
        let Some(setup) = &self.setup else { return };
        let wants_usage_chunk = setup.wants_usage_chunk;
        if let Some(u) = usage {
            self.usage.merge_max(&setup.adapter.usage_from_wire(u));
        }
        let has_no_choices = view.choices.as_ref().is_some_and(Vec::is_empty);
        let has_usage = usage.is_some();
        let upstream_tollgate = view.tollgate;
        drop(view);
        if wants_usage_chunk && has_usage {
            self.release_held(out, false);
            self.held = Some(Held {
                event: ev,
                upstream_tollgate,
            });
            return;
        }
        self.release_held(out, false);
        if wants_usage_chunk || !has_no_choices {
            // Usage the client did not ask for exists only because tollgate asked the
            // upstream for it (DeepSeek puts it on the finish chunk): it is removed.
            let changed = (upstream_tollgate || has_usage)
                .then(|| rewrite(&ev.data, None, has_usage))
                .flatten();
            relay(&ev, changed, out);
        }
    }

    /// Relay the held usage chunk, if any: with tollgate's object when it proved to be
    /// the last (inserted into the upstream's text unless the upstream put its own
    /// `tollgate` key in, which is then replaced), stripped of any upstream
    /// `tollgate` key otherwise.
    fn release_held(&mut self, out: &mut BytesMut, is_last: bool) {
        let Some(held) = self.held.take() else { return };
        let ev = &held.event;
        let strip = || {
            held.upstream_tollgate
                .then(|| rewrite(&ev.data, None, false))
                .flatten()
        };
        let settled = if is_last { self.settle() } else { None };
        let changed = match (settled, self.setup.as_ref()) {
            (Some((usage, source)), Some(setup)) => {
                let priced = facts::price(&setup.meter.prices, &setup.facts, usage, source);
                let summary = finalize::summary(&setup.facts, &priced);
                match insertion_point(ev.data.as_bytes()).filter(|_| !held.upstream_tollgate) {
                    Some(at) => Some(spliced(&ev.data, at, &summary.member(at))),
                    None => rewrite(&ev.data, Some(summary.to_value()), false),
                }
            }
            _ => strip(),
        };
        relay(ev, changed, out);
    }

    /// Settle usage once; later calls return the same answer.
    fn settle(&mut self) -> Option<(Usage, UsageSource)> {
        if self.settled.is_none() {
            let setup = self.setup.as_ref()?;
            self.settled = Some(Meter::settle(
                &setup.facts,
                self.usage,
                Some(&mut self.output),
            ));
        }
        self.settled
    }

    /// Write the record, once.
    fn finish(&mut self, outcome: Outcome, error_code: Option<&'static str>) {
        let Some((usage, source)) = self.settle() else {
            return;
        };
        let Some(setup) = self.setup.take() else {
            return;
        };
        let priced = facts::price(&setup.meter.prices, &setup.facts, usage, source);
        let ending = Ending {
            status: 200,
            outcome,
            error_code,
            ttfb: Some(setup.ttfb),
            upstream_time: self
                .upstream_ended
                .map(|end| end.saturating_duration_since(setup.upstream_started)),
        };
        let visible = VisibleOutput::take(&mut self.output);
        setup
            .meter
            .finish_with(&setup.facts, &priced, &ending, Some(visible));
    }

    /// A final SSE error event for a stream that broke after headers were sent.
    fn error_event(&self, message: &str) -> Bytes {
        let request_id = self
            .setup
            .as_ref()
            .map_or("", |s| s.facts.request_id.as_str());
        let data = serde_json::json!({"error": {
            "message": format!("{message} (request id {request_id})"),
            "type": "upstream_error", "param": null, "code": "upstream_error"}});
        sse::encode_event(&SseEvent {
            data: data.to_string(),
            ..SseEvent::default()
        })
    }

    /// End the stream at the shutdown deadline: a final error event, and the record.
    fn end_at_shutdown(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let request_id = self
            .setup
            .as_ref()
            .map_or("", |s| s.facts.request_id.as_str());
        let error = crate::api::error::GatewayError::new(
            crate::api::error::ErrorCode::ShuttingDown,
            "tollgate is shutting down and ended this stream at its shutdown deadline; the usage so far is recorded",
        );
        let bytes = sse::encode_event(&SseEvent {
            data: error.body(request_id).to_string(),
            ..SseEvent::default()
        });
        self.finish(Outcome::UpstreamError, Some("shutting_down"));
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn fail(&mut self, message: &str) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut out = BytesMut::new();
        self.release_held(&mut out, true);
        out.extend_from_slice(&self.error_event(message));
        self.finish(Outcome::UpstreamError, Some("upstream_error"));
        Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if this.setup.is_none() {
                return Poll::Ready(None);
            }
            if this.shutdown.as_mut().poll(cx).is_ready() {
                return this.end_at_shutdown();
            }
            let chunk = match this.first.take() {
                Some(first) => first,
                None => match this.upstream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => chunk,
                    Poll::Ready(Some(Err(_))) => {
                        this.upstream_ended = Some(tokio::time::Instant::now());
                        return this.fail("the upstream stream broke off");
                    }
                    Poll::Ready(None) => {
                        this.upstream_ended = Some(tokio::time::Instant::now());
                        let mut out = BytesMut::new();
                        if this.parser.finish(&mut this.frames).is_ok() {
                            this.relay_frames(&mut out);
                        }
                        this.release_held(&mut out, true);
                        if this.saw_done || this.usage.is_complete() {
                            this.finish(Outcome::Completed, None);
                        } else {
                            out.extend_from_slice(
                                &this.error_event("the upstream stream ended early"),
                            );
                            this.finish(Outcome::UpstreamError, Some("upstream_error"));
                        }
                        return if out.is_empty() {
                            Poll::Ready(None)
                        } else {
                            Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
                        };
                    }
                    Poll::Pending => {
                        if this.idle.as_mut().poll(cx).is_ready() {
                            return this.fail("the upstream went silent");
                        }
                        return Poll::Pending;
                    }
                },
            };
            if let Some(setup) = &this.setup {
                let deadline = tokio::time::Instant::now() + setup.idle_timeout;
                this.idle.as_mut().reset(deadline);
            }
            if this.parser.push(&chunk, &mut this.frames).is_err() {
                return this.fail("the upstream sent an oversized or malformed event");
            }
            // Relayed events are about as long as the chunk that completed them.
            let mut out = BytesMut::with_capacity(chunk.len() + 64);
            this.relay_frames(&mut out);
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
            }
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // The client went away (or the server shut down) mid-stream: still exactly one record.
        self.finish(Outcome::ClientCancelled, None);
    }
}

/// Relay `ev`, or its rewritten data when it needed a change.
fn relay(ev: &SseEvent, changed: Option<String>, out: &mut BytesMut) {
    let data = changed.as_deref().unwrap_or(&ev.data);
    sse::write_fields(out, ev.event.as_deref(), ev.id.as_deref(), data);
}

/// `data` with `member` inserted at `at`.
fn spliced(data: &str, at: Insertion, member: &[u8]) -> String {
    let (head, tail) = data.split_at(at.at);
    let mut out = String::with_capacity(data.len() + member.len());
    out.push_str(head);
    out.push_str(&String::from_utf8_lossy(member));
    out.push_str(tail);
    out
}

/// A usage chunk held back until the next event shows whether it is the last.
struct Held {
    event: SseEvent,
    /// The upstream put its own `tollgate` key in (then the chunk is re-encoded).
    upstream_tollgate: bool,
}

/// `data` without any top-level `tollgate` key (nor `usage` when `strip_usage`), with
/// `object` as its `tollgate` when given; `None` when the data is no JSON object or
/// nothing changed.
fn rewrite(data: &str, object: Option<Value>, strip_usage: bool) -> Option<String> {
    let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
        return None;
    };
    let mut removed = chunk.remove("tollgate").is_some();
    if strip_usage {
        removed |= chunk.remove("usage").is_some();
    }
    match object {
        Some(o) => {
            chunk.insert("tollgate".into(), o);
        }
        None if !removed => return None,
        None => {}
    }
    serde_json::to_string(&chunk).ok()
}

/// The parts of a chunk the meter reads; borrowed to avoid copying text.
#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceView<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    /// Whether the upstream put a `tollgate` key in (any value, even `null`; escaped
    /// spellings of the name match too, as serde compares decoded keys).
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(data: &str) -> Option<bool> {
        serde_json::from_str::<ChunkView<'_>>(data)
            .ok()
            .map(|v| v.tollgate)
    }

    #[test]
    fn an_upstream_tollgate_key_is_seen_in_any_spelling_and_with_any_value() {
        assert_eq!(view(r#"{"choices":[]}"#), Some(false));
        assert_eq!(view(r#"{"choices":[],"tollgate":null}"#), Some(true));
        assert_eq!(
            view(r#"{"choices":[],"\u0074ollgate":{"cost_usd":"0"}}"#),
            Some(true)
        );
        // A duplicated key is refused by the view: the relay then rewrites the raw JSON.
        assert_eq!(view(r#"{"tollgate":1,"tollgate":2}"#), None);
    }

    #[test]
    fn rewrite_removes_the_upstream_object_and_changes_nothing_else() {
        let out = rewrite(r#"{"a":1,"tollgate":{"x":1},"tollgate":2}"#, None, false).unwrap();
        assert_eq!(out, r#"{"a":1}"#);
        assert_eq!(
            rewrite(r#"{"a":1}"#, None, false),
            None,
            "untouched: no re-encoding"
        );
        assert_eq!(rewrite("not json", None, false), None);
        let ours = serde_json::json!({"provider": "p1"});
        let out = rewrite(
            r#"{"tollgate":{"provider":"spoofed"},"usage":{}}"#,
            Some(ours),
            false,
        );
        assert_eq!(out.unwrap(), r#"{"usage":{},"tollgate":{"provider":"p1"}}"#);
        let out = rewrite(r#"{"a":1,"usage":{"prompt_tokens":1}}"#, None, true);
        assert_eq!(out.unwrap(), r#"{"a":1}"#);
    }
}
