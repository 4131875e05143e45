//! The relay of a stream whose client speaks another dialect than its upstream: the
//! upstream's decoder (`ProviderAdapter::stream_decoder`) turns each event into
//! neutral events, the meter is told about each here (so every pair of dialects is
//! metered by the same code), and the client's encoder writes them in its dialect.
//! Nothing of the upstream's JSON reaches the client verbatim, so no upstream
//! `tollgate` key can either.

use bytes::BytesMut;

use super::encode::Encoder;
use super::{Metered, Relay, Tap};
use crate::api::error::GatewayError;
use crate::providers::sse::SseEvent;
use crate::providers::stream::{StreamDecoder, StreamEvent};
use crate::tokens::Usage;

/// A decoder and an encoder joined; see the module docs.
pub struct Translate<E: Encoder> {
    decoder: Box<dyn StreamDecoder>,
    encoder: E,
    /// Decoded events of the current upstream event; kept for its capacity.
    events: Vec<StreamEvent>,
    finished: bool,
}

impl<E: Encoder> Translate<E> {
    pub fn new(decoder: Box<dyn StreamDecoder>, encoder: E) -> Self {
        Self {
            decoder,
            encoder,
            events: Vec::new(),
            finished: false,
        }
    }

    /// The answer is complete: the encoder's last events, once.
    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        if !self.finished {
            self.finished = true;
            self.encoder.finish(tap, out);
        }
    }
}

/// Tell the meter what `event` carries.
fn meter(event: &StreamEvent, tap: &mut Tap) {
    match event {
        StreamEvent::Text(t) => tap.observe(Metered::Text(t)),
        StreamEvent::Reasoning(t) => tap.observe(Metered::Reasoning(t)),
        // Arguments are generated output like text.
        StreamEvent::ToolArguments { arguments, .. } => tap.observe(Metered::Text(arguments)),
        StreamEvent::Usage(wire) => {
            if let Some(adapter) = tap.adapter() {
                tap.observe(Metered::Usage(adapter.usage_from_wire(wire)));
            }
        }
        // A report of the tier alone: merged, it prices the counts reported before or
        // after it, and counts nothing itself (`Usage::is_empty`).
        StreamEvent::ServiceTier(tier) => tap.observe(Metered::Usage(Usage {
            service_tier: Some(*tier),
            ..Usage::default()
        })),
        _ => {}
    }
}

impl<E: Encoder> Relay for Translate<E> {
    fn event(&mut self, ev: SseEvent, tap: &mut Tap, out: &mut BytesMut) {
        let mut events = std::mem::take(&mut self.events);
        self.decoder.decode(&ev, &mut events);
        for event in events.drain(..) {
            if self.finished {
                // Anything after the documented end is not part of the answer.
                break;
            }
            meter(&event, tap);
            match event {
                StreamEvent::End => self.finish(tap, out),
                // For the meter only: no client dialect's stream carries them here.
                StreamEvent::Usage(_) | StreamEvent::ServiceTier(_) => {}
                event => self.encoder.event(event, tap, out),
            }
        }
        self.events = events;
    }

    fn end(&mut self, tap: &mut Tap, out: &mut BytesMut) {
        // An upstream that closes after reporting full usage but without its end event
        // (some do; Gemini has none) still completed its answer.
        if tap.has_complete_usage() {
            self.finish(tap, out);
        }
    }

    fn completed(&self, _tap: &Tap) -> bool {
        self.finished
    }

    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut) {
        self.encoder.error_event(error, request_id, out);
    }
}
