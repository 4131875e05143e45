use super::*;
use proptest::prelude::*;

const LIMIT: usize = 64 * 1024;

/// OpenAI Chat Completions with `stream_options.include_usage` (providers.md §1.3).
const OPENAI: &str = concat!(
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1738300000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1738300000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1738300000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1738300000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// Azure OpenAI: a leading `prompt_filter_results` chunk with empty choices (providers.md §0.2).
const AZURE: &str = concat!(
    r#"data: {"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1738300001,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null,"content_filter_results":{}}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1738300001,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// DeepSeek: keep-alive comments while queueing, usage on the finish chunk (providers.md §4.3).
const DEEPSEEK: &str = concat!(
    "\n: keep-alive\n\n: keep-alive\n\n",
    r#"data: {"id":"0e96","object":"chat.completion.chunk","created":1764042665,"model":"deepseek-reasoner","system_fingerprint":"fp_ffc7281d48_prod0820_fp8_kvcache","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"0e96","object":"chat.completion.chunk","created":1764042665,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"好的"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n: keep-alive\n\n",
    r#"data: {"id":"0e96","object":"chat.completion.chunk","created":1764042665,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"纱","reasoning_content":null},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"0e96","object":"chat.completion.chunk","created":1764042665,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":6,"completion_tokens":1552,"total_tokens":1558,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":199},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":6}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// Anthropic Messages named events (providers.md §5).
const ANTHROPIC: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-3-7-sonnet-20250219","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    "\n\nevent: ping\n",
    r#"data: {"type": "ping"}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\nevent: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
    "\n\nevent: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

const FIXTURES: [&str; 4] = [OPENAI, AZURE, DEEPSEEK, ANTHROPIC];

/// Every fixture with each of the three legal line endings.
fn fixture_variants() -> Vec<Vec<u8>> {
    FIXTURES
        .iter()
        .flat_map(|f| ["\n", "\r\n", "\r"].map(|eol| f.replace('\n', eol).into_bytes()))
        .collect()
}

/// Feeds `pieces` then `finish`, stopping at the first error; returns frames seen and the outcome.
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

fn whole(bytes: &[u8]) -> Vec<SseFrame> {
    let (frames, result) = feed([bytes], LIMIT);
    assert_eq!(result, Ok(()));
    frames
}

fn split_at_points(bytes: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.iter_mut().for_each(|p| *p %= bytes.len() + 1);
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points {
        pieces.push(&bytes[start..p]);
        start = p;
    }
    pieces.push(&bytes[start..]);
    pieces
}

fn events(frames: &[SseFrame]) -> Vec<&SseEvent> {
    frames
        .iter()
        .filter_map(|f| match f {
            SseFrame::Event(e) => Some(e),
            SseFrame::Comment(_) => None,
        })
        .collect()
}

fn data_event(data: &str) -> SseFrame {
    SseFrame::Event(SseEvent {
        data: data.to_owned(),
        ..SseEvent::default()
    })
}

#[test]
fn openai_stream_yields_chunks_then_usage_chunk_then_done() {
    let frames = whole(OPENAI.as_bytes());
    let evs = events(&frames);
    assert_eq!(frames.len(), 5);
    assert!(evs[3]
        .data
        .contains(r#""choices":[],"usage":{"prompt_tokens":9"#));
    assert!(evs[4].is_done());
    assert!(evs[..4].iter().all(|e| !e.is_done() && e.event.is_none()));
}

#[test]
fn azure_stream_starts_with_prompt_filter_chunk() {
    let frames = whole(AZURE.as_bytes());
    let evs = events(&frames);
    assert_eq!(evs.len(), 4);
    assert!(evs[0]
        .data
        .starts_with(r#"{"id":"","object":"","created":0"#));
    assert!(evs[0].data.contains("prompt_filter_results"));
}

#[test]
fn deepseek_keep_alives_are_emitted_as_comments_in_stream_order() {
    let frames = whole(DEEPSEEK.as_bytes());
    let keep_alive = SseFrame::Comment("keep-alive".to_owned());
    assert_eq!(frames[..2], [keep_alive.clone(), keep_alive.clone()]);
    assert_eq!(frames[4], keep_alive);
    let evs = events(&frames);
    assert_eq!(evs.len(), 5);
    assert!(evs[1].data.contains("好的"));
    assert!(evs[3].data.contains(r#""finish_reason":"stop"}],"usage""#));
    assert!(evs[4].is_done());
}

#[test]
fn anthropic_events_carry_their_names() {
    let frames = whole(ANTHROPIC.as_bytes());
    let names: Vec<_> = events(&frames)
        .iter()
        .map(|e| e.event.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events(&frames)[2].data, r#"{"type": "ping"}"#);
}

#[test]
fn line_ending_style_does_not_change_frames() {
    for fixture in FIXTURES {
        let lf = whole(fixture.as_bytes());
        for eol in ["\r\n", "\r"] {
            assert_eq!(whole(fixture.replace('\n', eol).as_bytes()), lf);
        }
    }
}

#[test]
fn every_fixture_split_at_every_byte_boundary_matches_whole_feed() {
    for bytes in fixture_variants() {
        let expected = whole(&bytes);
        for at in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(at);
            assert_eq!(feed([head, tail], LIMIT), (expected.clone(), Ok(())));
        }
    }
}

#[test]
fn every_fixture_fed_one_byte_at_a_time_matches_whole_feed() {
    for bytes in fixture_variants() {
        assert_eq!(feed(bytes.chunks(1), LIMIT), (whole(&bytes), Ok(())));
    }
}

#[test]
fn crlf_split_between_cr_and_lf_does_not_make_a_blank_line() {
    let (frames, result) = feed([&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"], LIMIT);
    assert_eq!(result, Ok(()));
    assert_eq!(frames, [data_event("a\nb")]);
}

#[test]
fn lone_cr_terminates_lines_and_blank_cr_dispatches() {
    assert_eq!(
        whole(b"data: a\rdata: b\r\rdata: c\r\r"),
        [data_event("a\nb"), data_event("c")]
    );
}

#[test]
fn several_events_in_one_chunk_with_multi_line_data() {
    let frames = whole(b"data: {\ndata:  \"k\": 1\ndata: }\n\ndata: x\n\n");
    assert_eq!(frames, [data_event("{\n \"k\": 1\n}"), data_event("x")]);
}

#[test]
fn field_parsing_follows_spec() {
    let frames = whole(b"data\ndata:x\nretry: 10\nfoo: bar\nevent:  two\nid: 7\n\n");
    let expected = SseEvent {
        event: Some(" two".to_owned()),
        data: "\nx".to_owned(),
        id: Some("7".to_owned()),
    };
    assert_eq!(frames, [SseFrame::Event(expected)]);
}

#[test]
fn id_belongs_to_its_own_event_only() {
    let frames = whole(b"id: 1\ndata: a\n\ndata: b\n\nid: 9\n\n");
    assert_eq!(frames[0], data_event_with_id("a", Some("1")));
    assert_eq!(frames[1], data_event("b"));
    assert_eq!(frames.len(), 2, "an id-only block is not an event");
}

fn data_event_with_id(data: &str, id: Option<&str>) -> SseFrame {
    SseFrame::Event(SseEvent {
        data: data.to_owned(),
        id: id.map(str::to_owned),
        event: None,
    })
}

#[test]
fn comments_strip_one_space_and_dispatch_nothing() {
    let frames = whole(b"\n\n:  two\n:\n:keep-alive\n\n");
    let comments = [" two", "", "keep-alive"].map(|c| SseFrame::Comment(c.to_owned()));
    assert_eq!(frames, comments);
}

#[test]
fn comment_is_emitted_before_the_event_it_interrupts_completes() {
    let mut parser = SseParser::new(LIMIT);
    let mut out = Vec::new();
    parser.push(b"data: a\n: ping\n", &mut out).unwrap();
    assert_eq!(out, [SseFrame::Comment("ping".to_owned())]);
    parser.push(b"\n", &mut out).unwrap();
    assert_eq!(out[1], data_event("a"));
}

#[test]
fn empty_data_line_or_bare_event_name_still_dispatch() {
    let frames = whole(b"data:\n\nevent: ping\n\n");
    let ping = SseEvent {
        event: Some("ping".to_owned()),
        ..SseEvent::default()
    };
    assert_eq!(frames, [data_event(""), SseFrame::Event(ping)]);
}

#[test]
fn leading_bom_is_skipped_even_when_split_but_later_bom_is_data() {
    let stream = b"\xEF\xBB\xBFdata: \xEF\xBB\xBFx\n\n";
    for at in 0..=4 {
        let (head, tail) = stream.split_at(at);
        let (frames, result) = feed([head, tail], LIMIT);
        assert_eq!(result, Ok(()));
        assert_eq!(frames, [data_event("\u{FEFF}x")]);
    }
}

#[test]
fn truncated_bom_at_start_is_kept_as_content_not_dropped() {
    let (frames, result) = feed([&b"\xEF\xBB"[..], b"data: x\n\n"], LIMIT);
    assert_eq!((frames, result), (vec![], Err(SseError::InvalidUtf8)));
}

#[test]
fn codepoint_split_across_chunks_is_reassembled() {
    let bytes = "data: 纱\n\n".as_bytes();
    assert_eq!(
        feed(bytes.chunks(1), LIMIT),
        (vec![data_event("纱")], Ok(()))
    );
}

#[test]
fn invalid_utf8_line_is_an_error() {
    assert_eq!(
        feed([&b"data: \xFF\n"[..]], LIMIT).1,
        Err(SseError::InvalidUtf8)
    );
}

#[test]
fn accumulated_event_over_limit_is_an_error() {
    let (frames, result) = feed([&b"data: 1234\n\ndata: 12345\ndata: 12345\n"[..]], 15);
    assert_eq!(frames, [data_event("1234")], "earlier events survive");
    assert_eq!(result, Err(SseError::EventTooLarge { limit: 15 }));
}

#[test]
fn unterminated_line_over_limit_errors_without_buffering_past_limit() {
    let mut parser = SseParser::new(100);
    let mut out = Vec::new();
    let mut fed = 0;
    let result = loop {
        if let Err(e) = parser.push(b"x", &mut out) {
            break e;
        }
        fed += 1;
        assert!(parser.line.len() <= 100);
    };
    assert_eq!(result, SseError::EventTooLarge { limit: 100 });
    assert_eq!(fed, 100);
    assert!(
        parser.line.is_empty(),
        "buffers are released after an error"
    );
}

#[test]
fn limit_is_per_event_not_per_stream() {
    let stream = b"data: 0123456789\n\n".repeat(10_000);
    let (frames, result) = feed(stream.chunks(7), 32);
    assert_eq!(result, Ok(()));
    assert_eq!(frames.len(), 10_000);
}

#[test]
fn finish_flushes_an_unterminated_final_event() {
    assert_eq!(
        feed([&b"data: a\n\ndata: [DONE]"[..]], LIMIT).0,
        [data_event("a"), data_event("[DONE]")]
    );
    assert_eq!(feed([&b"data: x\r"[..]], LIMIT).0, [data_event("x")]);
    assert_eq!(
        feed([&b"data: x\n\n: bye\n"[..]], LIMIT).0.len(),
        2,
        "nothing pending"
    );
}

#[test]
fn finish_resets_the_parser_for_reuse() {
    let mut parser = SseParser::new(LIMIT);
    let mut out = Vec::new();
    parser.push(b"data: a", &mut out).unwrap();
    parser.finish(&mut out).unwrap();
    parser.push(b"\xEF\xBB\xBFdata: b\n\n", &mut out).unwrap();
    assert_eq!(out, [data_event("a"), data_event("b")]);
}

#[test]
fn encode_event_writes_documented_wire_format() {
    let ev = SseEvent {
        event: Some("delta".to_owned()),
        data: "a\nb".to_owned(),
        id: None,
    };
    assert_eq!(
        &encode_event(&ev)[..],
        b"event: delta\ndata: a\ndata: b\n\n"
    );
    assert_eq!(&encode_comment("keep-alive")[..], b": keep-alive\n\n");
}

#[test]
fn encoded_fixture_events_round_trip_through_parser() {
    for fixture in FIXTURES {
        let frames = whole(fixture.as_bytes());
        let mut wire = Vec::new();
        for frame in &frames {
            match frame {
                SseFrame::Event(e) => wire.extend_from_slice(&encode_event(e)),
                SseFrame::Comment(c) => wire.extend_from_slice(&encode_comment(c)),
            }
        }
        assert_eq!(whole(&wire), frames);
    }
}

proptest! {
    #[test]
    fn fixtures_split_at_random_points_match_whole_feed(
        which in 0..12usize,
        points in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let bytes = &fixture_variants()[which];
        let pieces = split_at_points(bytes, points);
        prop_assert_eq!(feed(pieces, LIMIT), (whole(bytes), Ok(())));
    }

    #[test]
    fn arbitrary_streams_parse_identically_under_any_split(
        tokens in proptest::collection::vec(prop::sample::select(vec![
            &b"data"[..], b"event", b"id", b":", b" ", b"\r", b"\n", b"\r\n", b"x",
            "纱".as_bytes(), b"\xEF\xBB\xBF", b"\xEF", b"\xFF", b"[DONE]",
        ]), 0..60),
        points in proptest::collection::vec(any::<usize>(), 0..20),
        limit in 0..48usize,
    ) {
        let bytes = tokens.concat();
        let expected = || feed([&bytes[..]], limit);
        prop_assert_eq!(feed(split_at_points(&bytes, points), limit), expected());
        prop_assert_eq!(feed(bytes.chunks(1), limit), expected());
    }

    #[test]
    fn encode_event_round_trips(
        event in proptest::option::of("[a-z_.]{0,12}"),
        id in proptest::option::of("[0-9a-z]{0,8}"),
        data in "[ -~é纱\n]{0,40}",
    ) {
        let ev = SseEvent { event, data, id };
        let frames = whole(&encode_event(&ev));
        prop_assert_eq!(frames, vec![SseFrame::Event(ev)]);
    }
}
