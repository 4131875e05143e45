//! Incremental Server-Sent-Events framing for upstream streams.
//!
//! Owns the byte-level SSE grammar (WHATWG HTML "server-sent events"): splitting arbitrary
//! network chunks into lines, fields, comments and dispatched events, plus the inverse encoding
//! used when re-emitting events to the client. It enforces a per-event size limit so memory stays
//! bounded no matter how long the stream runs. It does not interpret `data` payloads (JSON
//! decoding, usage extraction and `[DONE]` handling belong to the provider decoders) and it does
//! no I/O.
//!
//! Hand-written rather than `eventsource-stream` (the well-kept crate for this), because the
//! relay needs three things that crate does not give: comments surfaced as frames (DeepSeek's
//! `: keep-alive` lines must reach the client while a request queues), a cap on one event's
//! size (that crate buffers an unterminated event without bound, which a hostile upstream
//! would turn into unbounded memory, and copies the rest of its buffer after every line it
//! consumes, quadratic in a chunk of many lines), and a synchronous push API that
//! `MeteredBody`'s `poll_frame` drives directly instead of through a second `Stream` layer
//! (read in eventsource-stream 0.2.3's `event_stream.rs`). The grammar is covered by the
//! property tests in tests/fuzz_sse.rs.

use bytes::{Bytes, BytesMut};

/// One parsed SSE frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseFrame {
    /// A dispatched event: `event:` name if any, joined `data:` lines (joined with '\n'), `id:` if any.
    Event(SseEvent),
    /// A comment line (text after the leading ':' with one optional leading space removed),
    /// e.g. "keep-alive".
    Comment(String),
}

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `None` means the event had no name (the spec's default "message").
    pub event: Option<String>,
    /// All `data:` lines of the event joined with '\n' (no trailing newline).
    pub data: String,
    /// The `id:` field seen within this event; `None` means the event carried no id.
    pub id: Option<String>,
}

impl SseEvent {
    /// True when `data` is the OpenAI-style end-of-stream sentinel `[DONE]`.
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }
}

/// Why an SSE stream could not be parsed. After an error the parser's buffers are cleared and the
/// stream should be abandoned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    /// One event (or one unterminated line) buffered more than `limit` bytes.
    #[error("SSE event exceeds the limit of {limit} bytes")]
    EventTooLarge {
        /// The configured `max_event_bytes`.
        limit: usize,
    },
    /// A line was not valid UTF-8.
    #[error("SSE line is not valid UTF-8")]
    InvalidUtf8,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Push-based SSE parser: feed it chunks as they arrive, collect the frames they complete.
///
/// Split-independent by construction: any way of chunking the same bytes yields the same frames
/// and the same error, which is what lets upstream TCP segmentation stay invisible to decoders.
#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// Bytes of the current unterminated line; reused across lines to avoid allocation. Only used
    /// when a line straddles chunks; lines wholly inside a chunk are parsed in place.
    line: Vec<u8>,
    data: String,
    /// Distinguishes "no data line" from one empty `data:` line, which must still dispatch.
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    /// The previous chunk ended in '\r', so a '\n' opening the next chunk is the same terminator.
    pending_cr: bool,
    /// Still inside the first three bytes of the stream, where a BOM may sit (possibly split).
    at_start: bool,
    bom_matched: usize,
}

impl SseParser {
    /// A parser that rejects any event (or unterminated line) buffering more than
    /// `max_event_bytes` bytes.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
            pending_cr: false,
            at_start: true,
            bom_matched: 0,
        }
    }

    /// Feed the next chunk of bytes (any split, even mid-UTF-8-codepoint or mid-"\r\n"); append
    /// every frame completed by it to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        let result = self.push_inner(chunk, out);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// End of input: dispatch a pending event that lacked its trailing blank line (if it has
    /// data or a name), as if the stream had ended with a blank line. The parser is then reset
    /// and may be reused for a new stream.
    pub fn finish(&mut self, out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        let result = self.finish_inner(out);
        self.reset();
        result
    }

    fn push_inner(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        let mut rest = self.skip_bom(chunk);
        if self.pending_cr {
            if let Some((&first, tail)) = rest.split_first() {
                self.pending_cr = false;
                if first == b'\n' {
                    rest = tail;
                }
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            let Some((&terminator, after)) = tail.split_first() else {
                break;
            };
            self.complete_line(head, out)?;
            rest = after;
            if terminator == b'\r' {
                match rest.split_first() {
                    Some((b'\n', after_lf)) => rest = after_lf,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
        }
        if !rest.is_empty() {
            self.check_size(self.line.len().saturating_add(rest.len()))?;
            self.line.extend_from_slice(rest);
        }
        Ok(())
    }

    fn finish_inner(&mut self, out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        self.flush_partial_bom();
        if !self.line.is_empty() {
            self.complete_line(&[], out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    /// Consumes BOM bytes at stream start; a partial match that turns out not to be a BOM is
    /// real content and goes back into the line buffer.
    fn skip_bom<'a>(&mut self, mut chunk: &'a [u8]) -> &'a [u8] {
        while self.at_start {
            let Some((&byte, tail)) = chunk.split_first() else {
                break;
            };
            if BOM.get(self.bom_matched) == Some(&byte) {
                self.bom_matched += 1;
                chunk = tail;
                if self.bom_matched == BOM.len() {
                    self.at_start = false;
                }
            } else {
                self.flush_partial_bom();
            }
        }
        chunk
    }

    fn flush_partial_bom(&mut self) {
        if self.at_start {
            self.at_start = false;
            self.line
                .extend_from_slice(BOM.get(..self.bom_matched).unwrap_or_default());
        }
    }

    /// Handles a line whose terminator has been seen; `head` is its tail in the current chunk.
    fn complete_line(&mut self, head: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if self.line.is_empty() {
            self.check_size(head.len())?;
            return self.process_line(head, out);
        }
        self.check_size(self.line.len().saturating_add(head.len()))?;
        self.line.extend_from_slice(head);
        let line = std::mem::take(&mut self.line);
        let result = self.process_line(&line, out);
        self.line = line;
        self.line.clear();
        result
    }

    /// Counts the whole line against the event budget before it is parsed, so a line is rejected
    /// at the same point whether it arrived whole or byte by byte.
    fn check_size(&self, line_len: usize) -> Result<(), SseError> {
        let buffered = self.data.len()
            + self.event.as_ref().map_or(0, String::len)
            + self.id.as_ref().map_or(0, String::len);
        if buffered.saturating_add(line_len) > self.max_event_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        // A complete line never ends mid-codepoint because '\r' and '\n' cannot occur inside a
        // multi-byte UTF-8 sequence.
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "" => out.push(SseFrame::Comment(value.to_owned())),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // The spec ignores ids containing NUL so they can't truncate C-string consumers.
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseFrame>) {
        if self.has_data || self.event.is_some() {
            out.push(SseFrame::Event(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
                id: self.id.take(),
            }));
        } else {
            self.id = None;
        }
        self.has_data = false;
    }

    fn reset(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event = None;
        self.id = None;
        self.pending_cr = false;
        self.at_start = true;
        self.bom_matched = 0;
    }
}

/// Encode an event back to wire bytes: optional "event: x\n", optional "id: x\n",
/// "data: <line>\n" per data line, then "\n".
///
/// `event` and `id` must not contain line breaks (the parser never produces such values). Line
/// breaks inside `data` (`\n`, `\r\n` or `\r`) become separate `data:` lines, so the parser
/// reads `data` back with '\n' separators.
pub fn encode_event(event: &SseEvent) -> Bytes {
    let mut buf = BytesMut::new();
    write_event(&mut buf, event);
    buf.freeze()
}

/// [`encode_event`], appended to `out` (a relay writes many events into one buffer).
pub fn write_event(out: &mut BytesMut, event: &SseEvent) {
    write_fields(
        out,
        event.event.as_deref(),
        event.id.as_deref(),
        &event.data,
    );
}

/// [`write_event`] from an event's parts, so a changed `data` needs no new event.
pub fn write_fields(out: &mut BytesMut, event: Option<&str>, id: Option<&str>, data: &str) {
    let extra = event.map_or(0, |e| e.len() + 8) + id.map_or(0, |i| i.len() + 5);
    out.reserve(data.len() + extra + 16);
    if let Some(name) = event {
        push_field(out, b"event: ", name);
    }
    if let Some(id) = id {
        push_field(out, b"id: ", id);
    }
    for line in wire_lines(data) {
        push_field(out, b"data: ", line);
    }
    out.extend_from_slice(b"\n");
}

/// Encode a comment as ": text\n\n" (one ": " line per line of a multi-line `text`).
pub fn encode_comment(text: &str) -> Bytes {
    let mut buf = BytesMut::new();
    write_comment(&mut buf, text);
    buf.freeze()
}

/// [`encode_comment`], appended to `out`.
pub fn write_comment(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 8);
    for line in wire_lines(text) {
        push_field(out, b": ", line);
    }
    out.extend_from_slice(b"\n");
}

fn push_field(buf: &mut BytesMut, prefix: &[u8], value: &str) {
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(value.as_bytes());
    buf.extend_from_slice(b"\n");
}

/// Splits on the same terminators the parser recognises; an empty text is one empty line.
fn wire_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        // A byte scan: both terminators are ASCII, so no char decoding is needed.
        let Some(pos) = current.bytes().position(|b| b == b'\r' || b == b'\n') else {
            rest = None;
            return Some(current);
        };
        let (line, tail) = current.split_at(pos);
        let terminator_len = if tail.starts_with("\r\n") { 2 } else { 1 };
        rest = Some(tail.get(terminator_len..).unwrap_or_default());
        Some(line)
    })
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
