//! Streamed answers. [`MeteredBody`] is the client-facing body: its `poll_frame` pulls
//! the upstream's bytes, splits them into SSE events and hands each to the dialect's
//! [`Relay`] as soon as it is parsed: no spawned task, no channel, no buffering beyond
//! one event, and the client's backpressure reaches the upstream read. The pieces, one
//! job each:
//! - this file: the body's loop, the idle timeout, the cut at the shutdown deadline,
//!   and ending exactly once (at the end, on an upstream failure, or on `Drop` when the
//!   client goes away);
//! - [`Framer`]: the upstream's framing (SSE, or Bedrock's binary eventstream) split
//!   into events, chosen by the adapter (`ProviderAdapter::framing`);
//! - [`tap`]: metering over neutral events, the one settle/price, the one record;
//! - [`openai_chat`], [`anthropic`], [`responses`]: a stream relayed to a client of
//!   the upstream's own dialect (chat completions, Messages, Responses);
//! - [`translate`]: a stream translated for a client of another dialect, the
//!   upstream's decoder (`providers::stream`) joined to the client's [`encode`]r.
//!
//! A relay writes events into one buffer per upstream read, byte for byte as the
//! upstream sent them unless it must edit one (the `tollgate` object, an upstream's
//! spoofed one, usage the client did not ask for).

pub mod anthropic;
pub mod encode;
pub mod openai_chat;
pub mod responses;
pub mod tap;
pub mod translate;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

use crate::api::error::{ErrorCode, GatewayError};
use crate::ledger::Outcome;
use crate::providers::bedrock::eventstream::EventStreamFramer;
use crate::providers::sse::{self, SseEvent, SseFrame, SseParser};
use crate::providers::Framing;
use crate::upstream::ByteStream;
pub use tap::{Metered, Tap, TapSetup};

/// Largest single SSE event accepted from an upstream.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dialect's relay rules: what the client sees of each upstream event, and what
/// the meter is told about it.
pub trait Relay: Send + Unpin + 'static {
    /// Relay one upstream event into `out`, telling `tap` what it meters.
    fn event(&mut self, event: SseEvent, tap: &mut Tap, out: &mut BytesMut);

    /// The upstream's stream is over (ended or broke): write anything still held back,
    /// as the last event.
    fn end(&mut self, tap: &mut Tap, out: &mut BytesMut);

    /// Whether the upstream reached its dialect's documented end of stream (then an
    /// upstream that closes the connection has completed, not broken off).
    fn completed(&self, tap: &Tap) -> bool;

    /// A final error event in the client's dialect.
    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut);
}

/// Splits the upstream's bytes into events: SSE as it is, or AWS eventstream messages
/// named as SSE events (so every relay and decoder reads one shape).
#[derive(Debug)]
pub enum Framer {
    Sse(SseParser),
    EventStream(EventStreamFramer),
}

/// The framing broke: an oversized or malformed event.
#[derive(Debug)]
pub struct FramingError;

impl Framer {
    /// A framer for `framing`, refusing events over [`MAX_EVENT_BYTES`].
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Sse => Framer::Sse(SseParser::new(MAX_EVENT_BYTES)),
            Framing::AwsEventStream => Framer::EventStream(EventStreamFramer::new(MAX_EVENT_BYTES)),
        }
    }

    /// Feed the next chunk; append the events it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) -> Result<(), FramingError> {
        match self {
            Framer::Sse(p) => p.push(chunk, out).map_err(|_| FramingError),
            Framer::EventStream(f) => f.push(chunk, out).map_err(|_| FramingError),
        }
    }

    /// End of input: the last event, or an error when one was left unfinished.
    pub fn finish(&mut self, out: &mut Vec<SseFrame>) -> Result<(), FramingError> {
        match self {
            Framer::Sse(p) => p.finish(out).map_err(|_| FramingError),
            Framer::EventStream(f) => f.finish(out).map_err(|_| FramingError),
        }
    }
}

/// Everything the body needs besides the byte stream and the relay.
pub struct StreamSetup {
    pub tap: TapSetup,
    /// How the upstream frames its stream.
    pub framing: Framing,
    pub idle_timeout: Duration,
    /// Cancelled at the shutdown deadline: the stream then ends with a final
    /// `shutting_down` error event and is recorded.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The relaying, metering body. See the module docs.
pub struct MeteredBody<R: Relay> {
    first: Option<Bytes>,
    upstream: ByteStream,
    parser: Framer,
    frames: Vec<SseFrame>,
    relay: R,
    tap: Tap,
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    shutdown: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl<R: Relay> MeteredBody<R> {
    /// Relay `rest` after `first` through `relay`, metering both.
    pub fn new(first: Bytes, rest: ByteStream, setup: StreamSetup, relay: R) -> Self {
        Self {
            first: Some(first),
            upstream: rest,
            parser: Framer::new(setup.framing),
            frames: Vec::new(),
            relay,
            tap: Tap::new(setup.tap),
            idle_timeout: setup.idle_timeout,
            idle: Box::pin(tokio::time::sleep(setup.idle_timeout)),
            // A child token: polling it never contends with other streams.
            shutdown: Box::pin(setup.shutdown.child_token().cancelled_owned()),
        }
    }

    /// Relay the frames parsed so far into `out`.
    fn relay_frames(&mut self, out: &mut BytesMut) {
        let mut frames = std::mem::take(&mut self.frames);
        for frame in frames.drain(..) {
            match frame {
                SseFrame::Comment(text) => sse::write_comment(out, &text),
                SseFrame::Event(ev) => self.relay.event(ev, &mut self.tap, out),
            }
        }
        // Kept for its capacity: no allocation per poll.
        self.frames = frames;
    }

    /// End the stream with a final error event in the client's dialect, and record it.
    fn end_with_error(
        &mut self,
        mut out: BytesMut,
        code: ErrorCode,
        message: &str,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let error = GatewayError::new(code, message.to_owned());
        self.relay
            .error_event(&error, self.tap.request_id(), &mut out);
        self.tap.finish(Outcome::UpstreamError, Some(code.as_str()));
        Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
    }

    /// The upstream failed mid-stream: what was held goes out as the last event, then
    /// the error.
    fn fail(&mut self, message: &str) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.tap.upstream_ended();
        let mut out = BytesMut::new();
        self.relay.end(&mut self.tap, &mut out);
        self.end_with_error(out, ErrorCode::UpstreamError, message)
    }

    /// The upstream closed its stream.
    fn upstream_closed(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.tap.upstream_ended();
        let mut out = BytesMut::new();
        if self.parser.finish(&mut self.frames).is_ok() {
            self.relay_frames(&mut out);
        }
        self.relay.end(&mut self.tap, &mut out);
        if !self.relay.completed(&self.tap) {
            return self.end_with_error(
                out,
                ErrorCode::UpstreamError,
                "the upstream stream ended early",
            );
        }
        self.tap.finish(Outcome::Completed, None);
        if out.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
        }
    }
}

impl<R: Relay> Body for MeteredBody<R> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if this.tap.is_finished() {
                return Poll::Ready(None);
            }
            if this.shutdown.as_mut().poll(cx).is_ready() {
                return this.end_with_error(
                    BytesMut::new(),
                    ErrorCode::ShuttingDown,
                    "tollgate is shutting down and ended this stream at its shutdown deadline; the usage so far is recorded",
                );
            }
            let chunk = match this.first.take() {
                Some(first) => first,
                None => match this.upstream.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => chunk,
                    Poll::Ready(Some(Err(_))) => return this.fail("the upstream stream broke off"),
                    Poll::Ready(None) => return this.upstream_closed(),
                    Poll::Pending => {
                        if this.idle.as_mut().poll(cx).is_ready() {
                            return this.fail("the upstream went silent");
                        }
                        return Poll::Pending;
                    }
                },
            };
            let deadline = tokio::time::Instant::now() + this.idle_timeout;
            this.idle.as_mut().reset(deadline);
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

impl<R: Relay> Drop for MeteredBody<R> {
    fn drop(&mut self) {
        // The client went away (or the server shut down) mid-stream: still exactly one record.
        self.tap.finish(Outcome::ClientCancelled, None);
    }
}

/// Relay `ev`, or its rewritten data when it needed a change.
pub(crate) fn relay_as(ev: &SseEvent, changed: Option<String>, out: &mut BytesMut) {
    let data = changed.as_deref().unwrap_or(&ev.data);
    sse::write_fields(out, ev.event.as_deref(), ev.id.as_deref(), data);
}
