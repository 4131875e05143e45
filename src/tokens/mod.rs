//! Tokens: how many a request used and how tollgate counts them itself. `usage` is the
//! one shape every provider's report is normalised to, `estimate` the tokenizers and
//! constant-time estimates, `wire` the rule for reading one count off a wire. No I/O,
//! and nothing here depends on the rest of tollgate.

pub mod estimate;
mod usage;
mod wire;

pub use usage::{ServiceTier, TokenCounts, Usage};
pub use wire::{wire_count, NotACount};
