//! ConverseStream's binary framing (`application/vnd.amazon.eventstream`): each
//! message is a prelude (total length, headers length, prelude CRC32), headers, a
//! payload and a message CRC32. Decoding and both CRC checks are
//! `aws-smithy-eventstream`'s; this module only buffers network chunks until a whole
//! message is there and names each message as an SSE event, so the relay drives it
//! like [`crate::providers::sse::SseParser`] (the same push API and frames).
//!
//! The one thing read here by hand is the prelude's first field, the message's total
//! length, to refuse a message over `max_message_bytes` before buffering it: the
//! crate's streaming decoder would wait for any length a prelude announces, which a
//! hostile upstream would turn into unbounded memory.

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::BytesMut;

use crate::providers::sse::{SseEvent, SseFrame};

/// A prelude and a message CRC: the smallest message.
const MIN_MESSAGE_BYTES: usize = 16;

/// Why an eventstream could not be decoded. After an error the framer's buffer is
/// cleared and the stream should be abandoned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    /// A message announced more than `limit` bytes.
    #[error("eventstream message exceeds the limit of {limit} bytes")]
    MessageTooLarge { limit: usize },
    /// A message the crate refused: a CRC mismatch, bad lengths or headers.
    #[error("invalid eventstream message: {0}")]
    Invalid(String),
    /// A message without the headers that name it.
    #[error("eventstream message without :message-type and its type header")]
    Unnamed,
    /// The stream ended inside a message.
    #[error("eventstream ended inside a message ({0} bytes buffered)")]
    Truncated(usize),
}

/// Push-based eventstream decoder: feed it chunks as they arrive, collect the events
/// they complete. Any split of the same bytes yields the same events.
#[derive(Debug)]
pub struct EventStreamFramer {
    max_message_bytes: usize,
    buf: BytesMut,
}

impl EventStreamFramer {
    /// A framer that rejects any message longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            buf: BytesMut::new(),
        }
    }

    /// Feed the next chunk (split anywhere); append every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) -> Result<(), FramingError> {
        self.buf.extend_from_slice(chunk);
        let result = self.drain(out);
        if result.is_err() {
            self.buf.clear();
        }
        result
    }

    /// End of input: an error if a message was left unfinished. The framer is then
    /// empty and may be reused.
    pub fn finish(&mut self, out: &mut Vec<SseFrame>) -> Result<(), FramingError> {
        let result = self.drain(out);
        let left = self.buf.len();
        self.buf.clear();
        result?;
        match left {
            0 => Ok(()),
            n => Err(FramingError::Truncated(n)),
        }
    }

    fn drain(&mut self, out: &mut Vec<SseFrame>) -> Result<(), FramingError> {
        while let Some(prelude) = self.buf.get(..4) {
            let mut total = [0u8; 4];
            total.copy_from_slice(prelude);
            let total = u32::from_be_bytes(total) as usize;
            if total > self.max_message_bytes {
                return Err(FramingError::MessageTooLarge {
                    limit: self.max_message_bytes,
                });
            }
            if total < MIN_MESSAGE_BYTES {
                return Err(FramingError::Invalid(format!(
                    "a message of {total} bytes is shorter than its prelude and CRC"
                )));
            }
            if self.buf.len() < total {
                return Ok(());
            }
            let message = self.buf.split_to(total).freeze();
            let message =
                read_message_from(message).map_err(|e| FramingError::Invalid(e.to_string()))?;
            out.push(SseFrame::Event(event(&message)?));
        }
        Ok(())
    }
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// A message as an event named by its type: `:event-type` for an event,
/// `:exception-type` for a modelled exception (its payload is the JSON with
/// `message`), `:error-code` for an unmodelled error (its text is in
/// `:error-message`, made the `message` of a JSON payload here).
fn event(message: &Message) -> Result<SseEvent, FramingError> {
    let payload = || String::from_utf8_lossy(message.payload()).into_owned();
    let (name, data) = match header(message, ":message-type") {
        Some("event") => (header(message, ":event-type"), payload()),
        Some("exception") => (header(message, ":exception-type"), payload()),
        Some("error") => (
            header(message, ":error-code"),
            serde_json::json!({"message": header(message, ":error-message").unwrap_or_default()})
                .to_string(),
        ),
        _ => (None, String::new()),
    };
    let name = name.ok_or(FramingError::Unnamed)?;
    Ok(SseEvent {
        event: Some(name.to_owned()),
        data,
        id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::Header;

    fn message(kind: &str, type_header: &'static str, name: &str, payload: &str) -> Vec<u8> {
        let m = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                type_header,
                HeaderValue::String(name.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        let mut out = Vec::new();
        write_message_to(&m, &mut out).unwrap();
        out
    }

    fn named(name: &str, data: &str) -> SseFrame {
        SseFrame::Event(SseEvent {
            event: Some(name.into()),
            data: data.into(),
            id: None,
        })
    }

    #[test]
    fn two_messages_decode_the_same_at_every_split_point() {
        let start = r#"{"p":"abcd","role":"assistant"}"#;
        let delta = r#"{"contentBlockIndex":0,"delta":{"text":"Hé"},"p":"abcdefgh"}"#;
        let mut stream = message("event", ":event-type", "messageStart", start);
        stream.extend(message("event", ":event-type", "contentBlockDelta", delta));
        let want = vec![
            named("messageStart", start),
            named("contentBlockDelta", delta),
        ];
        for at in 0..=stream.len() {
            let mut framer = EventStreamFramer::new(1 << 20);
            let mut out = Vec::new();
            framer.push(&stream[..at], &mut out).unwrap();
            framer.push(&stream[at..], &mut out).unwrap();
            framer.finish(&mut out).unwrap();
            assert_eq!(out, want, "split at {at}");
        }
        // Byte by byte too.
        let mut framer = EventStreamFramer::new(1 << 20);
        let mut out = Vec::new();
        for b in &stream {
            framer.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out, want);
    }

    #[test]
    fn exceptions_and_errors_are_named_by_their_type() {
        let mut out = Vec::new();
        let mut framer = EventStreamFramer::new(1 << 20);
        let body = r#"{"message":"Too many requests, please wait before trying again."}"#;
        let bytes = message("exception", ":exception-type", "throttlingException", body);
        framer.push(&bytes, &mut out).unwrap();
        let error = Message::new(Vec::new())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("error".into()),
            ))
            .add_header(Header::new(
                ":error-code",
                HeaderValue::String("InternalFailure".into()),
            ))
            .add_header(Header::new(
                ":error-message",
                HeaderValue::String("boom".into()),
            ));
        let mut bytes = Vec::new();
        write_message_to(&error, &mut bytes).unwrap();
        framer.push(&bytes, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                named("throttlingException", body),
                named("InternalFailure", r#"{"message":"boom"}"#)
            ]
        );
    }

    #[test]
    fn a_bad_crc_an_oversized_message_and_a_cut_stream_are_errors() {
        let good = message(
            "event",
            ":event-type",
            "messageStop",
            r#"{"stopReason":"end_turn"}"#,
        );
        let mut out = Vec::new();
        // The payload's last byte changed: the message CRC no longer matches.
        let mut bad = good.clone();
        let at = bad.len() - 5;
        bad[at] ^= 1;
        let err = EventStreamFramer::new(1 << 20)
            .push(&bad, &mut out)
            .unwrap_err();
        assert!(matches!(err, FramingError::Invalid(_)), "{err}");
        // A changed length: the prelude CRC no longer matches.
        let mut bad = good.clone();
        bad[3] -= 1;
        let err = EventStreamFramer::new(1 << 20)
            .push(&bad, &mut out)
            .unwrap_err();
        assert!(matches!(err, FramingError::Invalid(_)), "{err}");
        assert_eq!(
            EventStreamFramer::new(good.len() - 1).push(&good, &mut out),
            Err(FramingError::MessageTooLarge {
                limit: good.len() - 1
            })
        );
        let mut framer = EventStreamFramer::new(1 << 20);
        framer.push(&good[..good.len() - 1], &mut out).unwrap();
        assert_eq!(
            framer.finish(&mut out),
            Err(FramingError::Truncated(good.len() - 1))
        );
        assert!(out.is_empty());
    }
}
