//! Lorem-style English for the mock's answers and chains of thought: grammatical but meaningless
//! sentences ("The careful model provides a clear answer within the system."), so token counts
//! per word look like real English. It owns wording only; lengths and limits belong to `reply`.

use rand::rngs::StdRng;
use rand::Rng;

/// Whose words these are: a final answer, or reasoning with "Hmm,"/"Wait," style openers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Voice {
    Answer,
    Thinking,
}

/// Paragraphs of 2–5 sentences, at least `words` words long, as pieces that each start at a
/// pre-tokenizer boundary (a word with its leading space, or a paragraph break with its word).
pub(super) fn paragraphs(rng: &mut StdRng, words: usize, voice: Voice) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::with_capacity(words + 32);
    let mut written = 0;
    let mut left_in_paragraph: u32 = rng.random_range(2..=5);
    while written < words {
        let mut sentence = sentence(rng, voice);
        written += sentence.len();
        let separator = if pieces.is_empty() {
            ""
        } else if left_in_paragraph == 0 {
            left_in_paragraph = rng.random_range(2..=5);
            "\n\n"
        } else {
            " "
        };
        left_in_paragraph = left_in_paragraph.saturating_sub(1);
        if let Some(first) = sentence.first_mut() {
            first.insert_str(0, separator);
        }
        pieces.append(&mut sentence);
    }
    pieces
}

const THINKING_OPENERS: &[&str] = &[
    "Okay, so",
    "Hmm, maybe",
    "Wait,",
    "Let me check whether",
    "First,",
    "So",
    "Alternatively,",
    "But",
    "Right, so",
    "I think",
    "Actually,",
];
const DETERMINERS: &[&str] = &["the", "the", "a", "this", "each", "every", "that", "one"];
const ADJECTIVES: &[&str] = &[
    "careful",
    "clear",
    "small",
    "large",
    "common",
    "useful",
    "simple",
    "final",
    "original",
    "practical",
    "natural",
    "reasonable",
    "typical",
    "consistent",
    "important",
    "general",
    "exact",
    "main",
    "direct",
    "early",
    "whole",
    "better",
    "specific",
    "different",
    "particular",
    "overall",
    "quick",
    "short",
    "long",
    "stable",
];
const NOUNS: &[&str] = &[
    "model",
    "system",
    "request",
    "answer",
    "value",
    "process",
    "result",
    "example",
    "question",
    "method",
    "approach",
    "context",
    "detail",
    "pattern",
    "structure",
    "language",
    "number",
    "response",
    "idea",
    "point",
    "reason",
    "step",
    "part",
    "case",
    "rule",
    "limit",
    "source",
    "price",
    "token",
    "record",
    "stream",
    "message",
    "region",
    "provider",
    "budget",
    "user",
    "table",
];
const VERBS: &[&str] = &[
    "provides",
    "requires",
    "depends on",
    "includes",
    "suggests",
    "shows",
    "allows",
    "makes",
    "uses",
    "gives",
    "explains",
    "follows",
    "describes",
    "changes",
    "needs",
    "supports",
    "limits",
    "affects",
    "matches",
    "returns",
    "reaches",
    "keeps",
    "builds",
    "checks",
];
const PREPOSITIONS: &[&str] = &[
    "within", "for", "in", "from", "with", "across", "behind", "under", "after", "before", "beyond",
];
/// Punctuation glued to the previous word, then the joining word(s).
const CONNECTORS: &[(&str, &str)] = &[
    (",", "and"),
    (",", "but"),
    (",", "because"),
    (",", "so"),
    (",", "while"),
    (";", "however,"),
];

/// One sentence as words; every word after the first carries its leading space.
fn sentence(rng: &mut StdRng, voice: Voice) -> Vec<String> {
    let mut words: Vec<String> = Vec::with_capacity(26);
    if voice == Voice::Thinking && rng.random_bool(0.6) {
        words.extend(pick(rng, THINKING_OPENERS).split(' ').map(str::to_owned));
    }
    clause(rng, &mut words);
    if rng.random_ratio(1, 3) {
        let (punctuation, joiner) = CONNECTORS
            .get(rng.random_range(0..CONNECTORS.len()))
            .copied()
            .unwrap_or((",", "and"));
        if let Some(last) = words.last_mut() {
            last.push_str(punctuation);
        }
        words.push(joiner.to_owned());
        clause(rng, &mut words);
    }
    fix_articles(&mut words);
    if let Some(first) = words.first_mut() {
        *first = capitalize(first);
    }
    if let Some(last) = words.last_mut() {
        last.push('.');
    }
    for word in words.iter_mut().skip(1) {
        word.insert(0, ' ');
    }
    words
}

/// "the careful model provides a clear answer within the system": at most 10 words.
fn clause(rng: &mut StdRng, words: &mut Vec<String>) {
    noun_phrase(rng, words, true);
    words.extend(pick(rng, VERBS).split(' ').map(str::to_owned));
    noun_phrase(rng, words, true);
    if rng.random_bool(0.4) {
        words.push(pick(rng, PREPOSITIONS).to_owned());
        noun_phrase(rng, words, false);
    }
}

fn noun_phrase(rng: &mut StdRng, words: &mut Vec<String>, may_describe: bool) {
    words.push(pick(rng, DETERMINERS).to_owned());
    if may_describe && rng.random_bool(0.5) {
        words.push(pick(rng, ADJECTIVES).to_owned());
    }
    words.push(pick(rng, NOUNS).to_owned());
}

fn pick(rng: &mut StdRng, list: &[&'static str]) -> &'static str {
    list.get(rng.random_range(0..list.len()))
        .copied()
        .unwrap_or("the")
}

/// "a" becomes "an" before a vowel sound (no word in the lists starts with a silent "h", and
/// "u" words here start with a "you" sound).
fn fix_articles(words: &mut [String]) {
    for i in 1..words.len() {
        let next_is_vowel = words
            .get(i)
            .and_then(|w| w.chars().next())
            .is_some_and(|c| "aeio".contains(c));
        if let Some(article) = words.get_mut(i - 1) {
            if next_is_vowel && article == "a" {
                *article = "an".to_owned();
            }
        }
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
