//! The tokenizers behind `estimate`: one encoder per vocabulary, built on first use and
//! shared by the whole process (one instance per vocabulary), compact, and never quadratic.
//!
//! Both vocabularies use the `tiktoken` crate (v4), measured in `benches/tokenize.rs` against
//! the alternatives on this machine:
//! - tiktoken-rs, used before for o200k_base, merged each pre-token in quadratic time (one
//!   120,000-character unspaced prompt: 5.9 s) and took 46 MB once loaded;
//! - GitHub's `bpe-openai` is linear in the worst case (4 MiB of one letter: 33 ms) but takes
//!   59 MB once loaded and is 7x slower on ordinary prose;
//! - the `tiktoken` crate merges long pre-tokens with a heap, O(n log n) (120,000 unspaced
//!   characters: 4-17 ms; the worst input found, 4 MiB of one letter, 1.3 s), is 7x faster than
//!   `bpe-openai` on prose (200 KB: 0.4 ms), counts without building a token vector, and takes
//!   24 MB for o200k_base and 13 MB for deepseek_v3.
//!
//! With counting off the request path (see `metering::audit`), memory and ordinary-text speed
//! weigh more than the last constant factor on a pathological blob, which is also far beyond
//! any model's context window. Counts equal tiktoken-rs's exactly (tests). This module only
//! loads and hands out encoders; counting rules are the parent's.

use std::sync::LazyLock;

use super::TokenizerKind;

/// `None` only if the crate was built without the vocabulary's feature.
static O200K_BASE: LazyLock<Option<&'static tiktoken::CoreBpe>> =
    LazyLock::new(|| tiktoken::get_encoding("o200k_base"));

/// `None` only if the crate was built without `vocab-deepseek_v3`; o200k_base then stands in
/// (an approximate count, not a failed request).
static DEEPSEEK_V3: LazyLock<Option<&'static tiktoken::CoreBpe>> =
    LazyLock::new(|| tiktoken::get_encoding("deepseek_v3"));

/// Tokens of `text` by `kind`'s encoder, loading it on first use.
pub(super) fn count(kind: TokenizerKind, text: &str) -> usize {
    let encoder = match kind {
        TokenizerKind::O200kBase => *O200K_BASE,
        TokenizerKind::DeepSeekV3 => DEEPSEEK_V3.or(*O200K_BASE),
    };
    // Both features are enabled in Cargo.toml, so `None` cannot happen in a build of ours;
    // a rough figure beats failing a request if it ever did.
    encoder.map_or(text.len().div_ceil(4), |e| e.count(text))
}

/// Load `kind`'s encoder now if it is not loaded yet (RSS measurements, warming up);
/// later counts then never pay for loading.
pub fn load(kind: TokenizerKind) {
    let _ = count(kind, " ");
}
