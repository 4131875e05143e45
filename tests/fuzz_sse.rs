//! Property-based fuzzing of the SSE parser (`providers::sse`), the first code to see
//! an upstream's stream bytes: on arbitrary bytes, split arbitrarily, it never panics,
//! yields the same frames and the same error whatever the split, never holds an
//! event larger than its limit, and stops buffering an oversized event as soon as it
//! passes the limit, with the documented `EventTooLarge` error. Bounded: 256 cases
//! per property, inputs of a few KiB.

use proptest::prelude::*;
use tollgate::providers::sse::{SseError, SseFrame, SseParser};

/// Feed `pieces` in order, stopping at the first error; `finish` when none.
fn feed<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> (Vec<SseFrame>, Result<(), SseError>) {
    let mut parser = SseParser::new(limit);
    let mut out = Vec::new();
    for piece in pieces {
        if let Err(e) = parser.push(piece, &mut out) {
            return (out, Err(e));
        }
    }
    let result = parser.finish(&mut out);
    (out, result)
}

/// `bytes` cut at `points` (each taken modulo the length, duplicates allowed).
fn split_at<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        pieces.push(&bytes[start..cut]);
        start = cut;
    }
    pieces
}

/// Bytes that look like SSE often enough to reach every branch: field names, every
/// line ending, comments, a BOM (whole and cut), multi-byte and invalid UTF-8.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"data:"[..]),
        Just(&b"data: "[..]),
        Just(&b"event: "[..]),
        Just(&b"id: "[..]),
        Just(&b"retry: 5"[..]),
        Just(&b": keep-alive"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n\n"[..]),
        Just(&b"[DONE]"[..]),
        Just(&b"{\"usage\":{\"prompt_tokens\":1}}"[..]),
        Just(&b"\xEF\xBB\xBF"[..]),
        Just(&b"\xEF\xBB"[..]),
        Just("é纱🦀".as_bytes()),
        Just(&b"\xFF\xFE"[..]),
        Just(&b"\0"[..]),
    ];
    let piece = prop_oneof![
        3 => token.prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(piece, 0..80).prop_map(|p| p.concat())
}

/// The bytes one frame held in the parser: what the limit bounds.
fn held(frame: &SseFrame) -> usize {
    match frame {
        SseFrame::Event(e) => {
            e.data.len()
                + e.event.as_ref().map_or(0, String::len)
                + e.id.as_ref().map_or(0, String::len)
        }
        SseFrame::Comment(c) => c.len(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_parse_the_same_under_any_split(
        bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..2048), sse_like()],
        points in proptest::collection::vec(any::<usize>(), 0..32),
        limit in prop_oneof![0..64usize, 64..4096usize],
    ) {
        let whole = feed([&bytes[..]], limit);
        prop_assert_eq!(&feed(split_at(&bytes, &points), limit), &whole);
        prop_assert_eq!(&feed(bytes.chunks(1), limit), &whole);
        // Nothing the parser emits is larger than it may hold.
        for frame in &whole.0 {
            prop_assert!(held(frame) <= limit, "{frame:?} over {limit}");
        }
        if let Err(e) = &whole.1 {
            prop_assert!(
                *e == SseError::InvalidUtf8 || *e == SseError::EventTooLarge { limit },
                "{e:?}"
            );
        }
    }

    #[test]
    fn an_oversized_event_is_refused_as_soon_as_it_passes_the_limit(
        lines in proptest::collection::vec(0..64usize, 1..8),
        tail in 0..512usize,
        points in proptest::collection::vec(any::<usize>(), 0..32),
        limit in 1..256usize,
    ) {
        // An event of several data lines, then one more data line that never ends.
        let mut bytes = Vec::new();
        for n in &lines {
            bytes.extend_from_slice(b"data: ");
            bytes.extend(std::iter::repeat_n(b'x', *n));
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(b"data: ");
        bytes.extend(std::iter::repeat_n(b'y', tail));
        let (frames, result) = feed(split_at(&bytes, &points), limit);
        // No blank line: nothing was dispatched before the end.
        let held: usize = frames.iter().map(held).sum();
        prop_assert!(held <= limit);
        // At the end the parser would hold the data lines' values ('\n' between them)
        // plus the whole unterminated line: refused exactly when that passes the limit.
        let at_end = lines.iter().sum::<usize>() + (lines.len() - 1) + "data: ".len() + tail;
        let expected = if at_end > limit { Err(SseError::EventTooLarge { limit }) } else { Ok(()) };
        prop_assert_eq!(&result, &expected);

        // Fed byte by byte, it refuses once it would hold more than the limit: the bytes
        // it took before refusing are at most the limit plus the framing it does not
        // keep (`data: ` and the line end of each line).
        let mut parser = SseParser::new(limit);
        let mut out = Vec::new();
        let refused_at = bytes
            .iter()
            .position(|b| parser.push(std::slice::from_ref(b), &mut out).is_err());
        // Refused while pushing, not only at the end of the stream.
        prop_assert_eq!(refused_at.is_some(), expected.is_err());
        if let Some(at) = refused_at {
            prop_assert!(at <= limit + "data: \n".len() * (lines.len() + 1),
                "refused only after {at} bytes with a limit of {limit}");
            prop_assert!(out.is_empty());
        }
    }
}

#[test]
fn the_size_error_is_the_documented_one() {
    let (frames, result) = feed([&b"data: 0123456789\n\n"[..]], 8);
    assert!(frames.is_empty());
    let err = result.unwrap_err();
    assert_eq!(err, SseError::EventTooLarge { limit: 8 });
    assert_eq!(err.to_string(), "SSE event exceeds the limit of 8 bytes");
}
