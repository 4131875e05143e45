//! Normalised token usage (what every provider's report becomes) and billable counts
//! (what pricing multiplies). A leaf: every layer that reads or prices usage depends on
//! this, and it depends on nothing of tollgate's.

/// Normalised token usage. `None` means "not reported", never zero.
///
/// Invariants: `cached_input` and `cache_write` are parts of `input`; `reasoning` is a
/// part of `output`. Nothing is ever counted twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: Option<u64>,
    pub cached_input: Option<u64>,
    pub cache_write: Option<u64>,
    /// Of `cache_write`, the tokens written to a 1-hour cache (Anthropic's `ephemeral_1h`).
    pub cache_write_1h: Option<u64>,
    pub output: Option<u64>,
    pub reasoning: Option<u64>,
    /// The report carried a field that is not a count (negative, fractional, text) or
    /// a `total_tokens` that disagrees with its parts: see `plausible`.
    pub malformed: bool,
}

impl Usage {
    /// Merge another report field by field, keeping the larger value: right for a
    /// single final report and for cumulative partial reports alike.
    pub fn merge_max(&mut self, other: &Usage) {
        fn max(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, None) => x,
                (None, y) => y,
            }
        }
        self.input = max(self.input, other.input);
        self.cached_input = max(self.cached_input, other.cached_input);
        self.cache_write = max(self.cache_write, other.cache_write);
        self.cache_write_1h = max(self.cache_write_1h, other.cache_write_1h);
        self.output = max(self.output, other.output);
        self.reasoning = max(self.reasoning, other.reasoning);
        self.malformed |= other.malformed;
    }

    /// Whether nothing at all was reported (not even a malformed field).
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// Whether the provider reported the two totals billing needs.
    pub fn is_complete(&self) -> bool {
        self.input.is_some() && self.output.is_some()
    }

    /// Billable counts; unreported parts are zero here because the totals they are
    /// part of already bill them at the base rate.
    pub fn token_counts(&self) -> TokenCounts {
        TokenCounts {
            input: self.input.unwrap_or(0),
            cached_input: self.cached_input.unwrap_or(0),
            cache_write: self.cache_write.unwrap_or(0),
            cache_write_1h: self.cache_write_1h.unwrap_or(0),
            output: self.output.unwrap_or(0),
            reasoning: self.reasoning.unwrap_or(0),
        }
    }
}

/// Billable token counts; input INCLUDES cached and cache-write tokens; output INCLUDES reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// All input tokens, cached and cache-write ones included.
    pub input: u64,
    /// Input tokens read from the provider's prompt cache (a part of `input`).
    pub cached_input: u64,
    /// Input tokens written to the provider's prompt cache (a part of `input`).
    pub cache_write: u64,
    /// Of `cache_write`, the tokens written to a 1-hour cache (priced on their own).
    pub cache_write_1h: u64,
    /// All output tokens, reasoning included.
    pub output: u64,
    /// Reasoning tokens (a part of `output`); recorded, never billed on top.
    pub reasoning: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_field_wise_max_and_never_invents_zero() {
        let mut u = Usage {
            input: Some(10),
            output: Some(1),
            ..Usage::default()
        };
        u.merge_max(&Usage {
            output: Some(15),
            ..Usage::default()
        });
        assert_eq!(
            (u.input, u.output, u.cached_input),
            (Some(10), Some(15), None)
        );
    }
}
