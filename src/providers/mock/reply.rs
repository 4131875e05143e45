//! What the mock says and what it reports: deterministic lorem-style prose, reasoning shaped per
//! flavor, truncation at the token limit, and usage counted with the real tokenizer over exactly
//! the text that will be emitted. It does not know about JSON or HTTP (see `wire`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::{prose, MockFlavor};
use crate::tokens::estimate::{count_chat_prompt, count_text, TokenizerKind};

/// What the mock needs from a chat request, already validated.
#[derive(Debug, Clone)]
pub(super) struct Prompt {
    pub model: String,
    pub messages: Value,
    /// `max_completion_tokens`, else `max_tokens`; `None` means unbounded.
    pub max_tokens: Option<u64>,
    /// Hash of model and messages, so the same conversation always gets the same reply.
    pub seed: u64,
}

/// Token figures for the usage object; each flavor's wire shape picks the fields it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub prompt: u64,
    /// Prompt prefix served from the provider's cache (OpenAI: 128-token steps from 1024;
    /// DeepSeek: 64-token units).
    pub cached: u64,
    pub completion: u64,
    /// Subset of `completion`; hidden for OpenAI o-series, `reasoning_content` for DeepSeek.
    pub reasoning: u64,
}

/// The full reply, already cut into stream chunks; non-streamed bodies join the chunks.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    /// DeepSeek's `reasoning_content` deltas; empty for other flavors.
    pub reasoning_chunks: Vec<String>,
    pub content_chunks: Vec<String>,
    pub finish_reason: &'static str,
    pub counts: Counts,
    /// Whether the upstream shows reasoning as a separate field (DeepSeek reasoner models).
    pub has_reasoning_field: bool,
}

/// Target word counts; prose stops after the sentence that reaches the target, which adds at most
/// 24 words, so answers land in 40–200 words.
const ANSWER_WORDS: std::ops::RangeInclusive<usize> = 40..=175;
const THINKING_WORDS: std::ops::RangeInclusive<usize> = 120..=320;
const HIDDEN_REASONING_TOKENS: std::ops::RangeInclusive<u64> = 192..=768;
const OPENAI_CACHE_MIN: u64 = 1024;
const OPENAI_CACHE_STEP: u64 = 128;
const DEEPSEEK_CACHE_UNIT: u64 = 64;

/// Builds the reply a given flavor would send for `prompt`.
pub(super) fn compose(flavor: MockFlavor, prompt: &Prompt) -> Reply {
    let kind = TokenizerKind::for_model(&prompt.model);
    let mut rng = StdRng::seed_from_u64(prompt.seed);
    let prompt_tokens = count_chat_prompt(kind, &prompt.messages);
    let history = history_tokens(kind, &prompt.messages);
    let draft = draft(flavor, prompt, kind, &mut rng);

    let reasoning_tokens = count_text(kind, &draft.reasoning.concat());
    let content_tokens = count_text(kind, &draft.content.concat());
    let cached = match flavor {
        MockFlavor::Openai | MockFlavor::OpenaiReasoning if history >= OPENAI_CACHE_MIN => {
            history / OPENAI_CACHE_STEP * OPENAI_CACHE_STEP
        }
        MockFlavor::Deepseek => history / DEEPSEEK_CACHE_UNIT * DEEPSEEK_CACHE_UNIT,
        _ => 0,
    };
    let content_chunks = if flavor == MockFlavor::AzureThink {
        // Azure's first content delta is exactly "<think>" (§2.3).
        let mut pieces = draft.content.into_iter();
        let head: Vec<String> = pieces.by_ref().take(1).collect();
        head.into_iter()
            .chain(group(&mut rng, pieces.collect()))
            .collect()
    } else {
        group(&mut rng, draft.content)
    };
    Reply {
        reasoning_chunks: group(&mut rng, draft.reasoning),
        content_chunks,
        finish_reason: if draft.truncated { "length" } else { "stop" },
        counts: Counts {
            prompt: prompt_tokens,
            cached: cached.min(prompt_tokens),
            completion: content_tokens + reasoning_tokens + draft.hidden,
            reasoning: reasoning_tokens + draft.hidden,
        },
        has_reasoning_field: draft.has_reasoning_field,
    }
}

/// The reply's text before it is cut into chunks.
struct Draft {
    reasoning: Vec<String>,
    content: Vec<String>,
    /// o1-style reasoning tokens that are billed but never shown.
    hidden: u64,
    truncated: bool,
    has_reasoning_field: bool,
}

fn draft(flavor: MockFlavor, prompt: &Prompt, kind: TokenizerKind, rng: &mut StdRng) -> Draft {
    let answer_len = rng.random_range(ANSWER_WORDS);
    let mut answer = prose::paragraphs(rng, answer_len, prose::Voice::Answer);
    let limit = prompt.max_tokens;
    let plain = |content: Vec<String>, truncated: bool| Draft {
        reasoning: Vec::new(),
        content,
        hidden: 0,
        truncated,
        has_reasoning_field: false,
    };
    match flavor {
        MockFlavor::Openai | MockFlavor::Anthropic => {
            let cut = truncate(kind, &mut answer, limit);
            plain(answer, cut)
        }
        MockFlavor::OpenaiReasoning => {
            let mut hidden = rng.random_range(HIDDEN_REASONING_TOKENS);
            // max_completion_tokens bounds hidden reasoning plus visible text; o1 spends the
            // budget on thinking first, so a small limit yields an empty answer.
            let cut = match limit {
                Some(l) if hidden >= l => {
                    hidden = l;
                    answer.clear();
                    true
                }
                Some(l) => truncate(kind, &mut answer, Some(l - hidden)),
                None => false,
            };
            Draft {
                hidden,
                ..plain(answer, cut)
            }
        }
        MockFlavor::Deepseek if is_deepseek_reasoner(&prompt.model) => {
            let thinking_len = rng.random_range(THINKING_WORDS);
            let reasoning = prose::paragraphs(rng, thinking_len, prose::Voice::Thinking);
            // R1-era rule: max_tokens bounds the final answer, not the chain of thought.
            let cut = truncate(kind, &mut answer, limit);
            Draft {
                reasoning,
                has_reasoning_field: true,
                ..plain(answer, cut)
            }
        }
        MockFlavor::Deepseek => {
            let cut = truncate(kind, &mut answer, limit);
            plain(answer, cut)
        }
        MockFlavor::AzureThink => {
            let thinking_len = rng.random_range(THINKING_WORDS);
            let thinking = prose::paragraphs(rng, thinking_len, prose::Voice::Thinking);
            let mut pieces = vec!["<think>".to_owned(), "\n".to_owned()];
            pieces.extend(thinking);
            pieces.push("\n</think>\n\n".to_owned());
            pieces.extend(answer);
            // Azure counts the think block as completion, so the limit covers all of it.
            let cut = truncate(kind, &mut pieces, limit);
            plain(pieces, cut)
        }
    }
}

/// `deepseek-chat` (and V3.x non-thinking aliases) answer without `reasoning_content`.
fn is_deepseek_reasoner(model: &str) -> bool {
    !model.to_ascii_lowercase().contains("chat")
}

/// Tokens of every message but the last: the prefix a provider has seen on earlier turns, which
/// is what its prompt cache can serve.
fn history_tokens(kind: TokenizerKind, messages: &Value) -> u64 {
    let items = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    let earlier = items.split_last().map(|(_, rest)| rest).unwrap_or_default();
    let primer = count_chat_prompt(kind, &Value::Array(Vec::new()));
    count_chat_prompt(kind, &Value::Array(earlier.to_vec())).saturating_sub(primer)
}

/// Drops trailing pieces until the text fits in `limit` tokens; true if anything was dropped.
fn truncate(kind: TokenizerKind, pieces: &mut Vec<String>, limit: Option<u64>) -> bool {
    let Some(limit) = limit else {
        return false;
    };
    if count_text(kind, &pieces.concat()) <= limit {
        return false;
    }
    // Per-piece counts locate the cut cheaply; the exact recount below settles the boundary.
    let mut used = 0;
    let keep = pieces
        .iter()
        .take_while(|p| {
            used += count_text(kind, p);
            used <= limit
        })
        .count();
    pieces.truncate(keep);
    while !pieces.is_empty() && count_text(kind, &pieces.concat()) > limit {
        pieces.pop();
    }
    true
}

/// Joins 1–4 pieces per stream chunk, like a provider flushing a few tokens at a time.
fn group(rng: &mut StdRng, pieces: Vec<String>) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut pieces = pieces.into_iter().peekable();
    while pieces.peek().is_some() {
        let n = rng.random_range(1..=4);
        chunks.push(pieces.by_ref().take(n).collect::<String>());
    }
    chunks
}
