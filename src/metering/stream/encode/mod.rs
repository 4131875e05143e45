//! Client dialects' encoders of neutral stream events (see `providers::stream`): one
//! per inbound surface that can be served by an upstream of another dialect.

pub mod anthropic;
pub mod chat;
pub mod responses;

use bytes::BytesMut;

use super::Tap;
use crate::api::error::GatewayError;
use crate::providers::stream::StreamEvent;

/// Writes one client dialect's stream. The meter has already seen each event; an
/// encoder only writes (`End` and `Usage` never reach it: the end is `finish`, and
/// the usage it reports is the meter's, in `finish`).
pub trait Encoder: Send + Unpin + 'static {
    /// Write what the client sees of `event`.
    fn event(&mut self, event: StreamEvent, tap: &Tap, out: &mut BytesMut);

    /// The answer is complete: write the last events, with the usage the upstream
    /// reported and the `tollgate` object. Called once.
    fn finish(&mut self, tap: &mut Tap, out: &mut BytesMut);

    /// A final error event in the client's dialect.
    fn error_event(&self, error: &GatewayError, request_id: &str, out: &mut BytesMut);
}
