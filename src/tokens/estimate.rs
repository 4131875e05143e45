//! Local token counting: the estimate used when an upstream reports no usage (stream cut short,
//! client gone, provider omits it) and the cross-check of provider-reported counts.
//!
//! This module owns tokenizer choice per upstream model and the counting rules (plain text, the
//! OpenAI chat-prompt recipe, and a bounded-memory counter for streamed output). It does not decide
//! when an estimate replaces reported usage, and it never touches the network: both vocabularies
//! are compiled into their crates, and each is loaded on its first use, once per process
//! (`vocab`).

use serde_json::Value;

pub mod vocab;

/// Which BPE vocabulary approximates an upstream model's tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// OpenAI's o200k_base (gpt-4o, o1, o3-mini); also the fallback for unknown models.
    O200kBase,
    /// DeepSeek V3 / R1 byte-level BPE (~128K vocabulary).
    DeepSeekV3,
}

impl TokenizerKind {
    /// Pick by upstream model name: DeepSeek models (any spelling containing "deepseek", plus
    /// Microsoft's `MAI-DS-R1` and Perplexity's `r1-1776`, which are R1 fine-tunes) get
    /// [`TokenizerKind::DeepSeekV3`]; everything else gets [`TokenizerKind::O200kBase`].
    pub fn for_model(model: &str) -> Self {
        let lower = model.to_ascii_lowercase();
        if lower.contains("deepseek") || lower.contains("mai-ds-r1") || lower.contains("r1-1776") {
            Self::DeepSeekV3
        } else {
            Self::O200kBase
        }
    }

    /// The vocabulary's conventional name: `"o200k_base"` or `"deepseek_v3"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::DeepSeekV3 => "deepseek_v3",
        }
    }
}

/// Tokens in plain text. Special-token strings inside `text` count as ordinary text, as they do
/// when a user sends them to a provider. Never quadratic, whatever `text` holds (O(n log n) on
/// one long pre-token), and allocates no token vector (see `vocab`).
pub fn count_text(kind: TokenizerKind, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    u64::try_from(vocab::count(kind, text)).unwrap_or(u64::MAX)
}

/// Bytes per token assumed by [`prompt_estimate`]: English prose and code run 4 to 5 bytes
/// per token in both vocabularies, so a quarter of the bytes is close for them and high for
/// JSON syntax; unspaced base64 (~1.5) and CJK (~3) are undercounted, by at most 3x.
const ESTIMATE_BYTES_PER_TOKEN: u64 = 4;

/// The cheap prompt estimate decisions use before the answer (token rate limits and quotas,
/// budgets, `cheapest` routing): a quarter of the `messages` JSON text's bytes, rounded up.
///
/// Constant time, where counting costs about 0.2 ms per 100 KB of prose and up to a second
/// for a pathological 4 MiB blob (see `benches/tokenize.rs`), on the async workers. Close enough for those decisions: every offer of a request gets
/// the same figure, so `cheapest` orders offers by price alone; a budget check is a
/// pre-flight check that the real cost then replaces; an offer's tokens-per-minute quota only
/// guards against the provider's own limit. The bill never uses it.
pub fn prompt_estimate(messages_json: &str) -> u64 {
    u64::try_from(messages_json.len())
        .unwrap_or(u64::MAX)
        .div_ceil(ESTIMATE_BYTES_PER_TOKEN)
}

/// Fixed cost of every message in OpenAI's recipe: `<|start|>{role/name}\n{content}<|end|>\n`.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra cost when a message carries a `name`.
const TOKENS_PER_NAME: u64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMER: u64 = 3;

/// Prompt tokens of an OpenAI chat request's `messages` array, following OpenAI's counting recipe
/// (3 per message, plus role, name and content tokens, plus 3 for the reply primer).
///
/// Content may be a string or an array of parts; only `text` parts count (images have their own
/// pricing and are ignored here). Tool calls' function names and arguments count as text. A value
/// that is not an array counts as an empty conversation (just the primer).
pub fn count_chat_prompt(kind: TokenizerKind, messages: &Value) -> u64 {
    let items = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|message| count_message(kind, message))
        .sum::<u64>()
        + REPLY_PRIMER
}

fn count_message(kind: TokenizerKind, message: &Value) -> u64 {
    let text = |key: &str| message.get(key).and_then(Value::as_str).unwrap_or_default();
    let mut total = TOKENS_PER_MESSAGE + count_text(kind, text("role"));
    if let Some(name) = message.get("name").and_then(Value::as_str) {
        total += count_text(kind, name) + TOKENS_PER_NAME;
    }
    total += match message.get("content") {
        Some(Value::String(s)) => count_text(kind, s),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|s| count_text(kind, s))
            .sum(),
        _ => 0,
    };
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        total += calls
            .iter()
            .filter_map(|call| call.get("function"))
            .map(|function| {
                let field = |key: &str| function.get(key).and_then(Value::as_str);
                count_text(kind, field("name").unwrap_or_default())
                    + count_text(kind, field("arguments").unwrap_or_default())
            })
            .sum::<u64>();
    }
    total
}

/// Buffered bytes above which the counter tokenizes everything up to the last whitespace run.
const SOFT_LIMIT: usize = 1024;
/// Without any whitespace (long URL, CJK prose) the whole buffer is flushed past this size, so
/// memory stays bounded whatever the text looks like.
const HARD_LIMIT: usize = 4 * SOFT_LIMIT;

/// Counts streamed output incrementally with bounded memory.
///
/// Deltas are buffered up to about 1 KiB; past that, the text before the last whitespace run is
/// tokenized and dropped. Cutting just before whitespace keeps the cut on a pre-tokenizer boundary
/// (both vocabularies attach a leading space to the following word), so the total matches counting
/// the whole text within a fraction of a percent.
#[derive(Debug, Clone)]
pub struct OutputTokenCounter {
    kind: TokenizerKind,
    buffer: String,
    counted: u64,
    saw_text: bool,
    /// Whether reasoning was part of the visible text (DeepSeek's `reasoning_content`, R1's
    /// `<think>` on Azure); when it was not, reported reasoning cannot be verified.
    saw_reasoning: bool,
}

impl OutputTokenCounter {
    /// An empty counter for the given vocabulary.
    pub fn new(kind: TokenizerKind) -> Self {
        Self {
            kind,
            buffer: String::new(),
            counted: 0,
            saw_text: false,
            saw_reasoning: false,
        }
    }

    /// Adds one streamed text delta.
    pub fn push(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        self.saw_text = true;
        // R1 on Azure streams its reasoning inside `content`, opened by `<think>`.
        if !self.saw_reasoning && delta.contains("<think>") {
            self.saw_reasoning = true;
        }
        self.buffer.push_str(delta);
        if self.buffer.len() <= SOFT_LIMIT {
            return;
        }
        match split_point(&self.buffer) {
            Some(cut) => {
                self.counted += count_text(self.kind, &self.buffer[..cut]);
                self.buffer.drain(..cut);
            }
            None if self.buffer.len() > HARD_LIMIT => self.flush(),
            None => {}
        }
    }

    /// Adds one delta of visible reasoning text (`reasoning_content`).
    pub fn push_reasoning(&mut self, delta: &str) {
        if !delta.is_empty() {
            self.saw_reasoning = true;
        }
        self.push(delta);
    }

    /// Whether any reasoning text was visible.
    pub fn saw_reasoning(&self) -> bool {
        self.saw_reasoning
    }

    /// Tokens pushed so far; flushes the buffer, so later pushes start a new pre-token.
    pub fn total(&mut self) -> u64 {
        self.flush();
        self.counted
    }

    /// Whether no text has been pushed yet.
    pub fn is_empty(&self) -> bool {
        !self.saw_text
    }

    fn flush(&mut self) {
        self.counted += count_text(self.kind, &self.buffer);
        self.buffer.clear();
    }
}

/// Byte index where the last whitespace run starts, if there is text before it.
fn split_point(buffer: &str) -> Option<usize> {
    let last_ws = buffer.rfind(char::is_whitespace)?;
    let run_start = buffer[..last_ws]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_whitespace())
        .last()
        .map_or(last_ws, |(i, _)| i);
    (run_start > 0).then_some(run_start)
}

#[cfg(test)]
mod tests;
