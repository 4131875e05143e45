//! The tokenizers behind `estimate`: one encoder per vocabulary, built on first use and
//! shared by the whole process, neither of them superlinear on any input.
//!
//! o200k_base is GitHub's `bpe-openai` (backtracking BPE: linear in the input, counts without
//! building a token vector). tiktoken-rs, used before, merged each pre-token in quadratic time,
//! so one 120,000-character unspaced prompt took seconds.
//!
//! DeepSeek V3 stays on the `tiktoken` crate: it is the exact reference (checked against
//! Hugging Face ids in the tests), counts without a token vector, and merges pre-tokens longer
//! than 32 bytes with a heap, O(n log n) (measured in `benches/tokenize.rs`). Moving it onto
//! `bpe` is not exact: `bpe` needs every merged token to rank after its parts, which holds for
//! OpenAI's vocabularies but not for DeepSeek's (converted from Hugging Face ids), and a `bpe`
//! build of it splits common CJK words ("深度" into two tokens). This module only loads and
//! hands out encoders; counting rules are the parent's.

use std::sync::LazyLock;

use super::TokenizerKind;

/// Built on first DeepSeek count. `None` only if the crate was built without
/// `vocab-deepseek_v3`; o200k_base then stands in (an approximate count, not a failed request).
static DEEPSEEK_V3: LazyLock<Option<&'static tiktoken::CoreBpe>> =
    LazyLock::new(|| tiktoken::get_encoding("deepseek_v3"));

/// Tokens of `text` by `kind`'s encoder, loading it on first use.
pub(super) fn count(kind: TokenizerKind, text: &str) -> usize {
    match kind {
        TokenizerKind::O200kBase => bpe_openai::o200k_base().count(text),
        TokenizerKind::DeepSeekV3 => match *DEEPSEEK_V3 {
            Some(bpe) => bpe.count(text),
            None => bpe_openai::o200k_base().count(text),
        },
    }
}

/// Load `kind`'s encoder now if it is not loaded yet (start-up for configured vocabularies,
/// RSS measurements); later counts then never pay for loading.
pub fn load(kind: TokenizerKind) {
    let _ = count(kind, " ");
}
