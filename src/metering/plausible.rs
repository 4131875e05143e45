//! Plausibility of provider-reported usage: the rules a report must pass before it is
//! billed as reported. A report that fails any of them is not trusted at all (not
//! even its plausible fields); `finalize::Meter::settle` prices the request from
//! tollgate's own count instead and marks it `implausible`.
//!
//! This module only judges; it does not count tokens, price, or record metrics.

use crate::tokens::Usage;

/// The most tokens any one usage field may plausibly hold. The price catalog knows no
/// context windows, so this is an absolute cap well above every current model's
/// context (the largest are around 2M tokens), and far below the values that break
/// arithmetic or storage (2^63).
pub const MAX_PLAUSIBLE_TOKENS: u64 = 10_000_000;

/// Why a report was not believed; `as_str` is a closed set for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implausibility {
    /// A field was negative, fractional, not a number, or the report's own
    /// `total_tokens` disagreed with its parts (set by the wire reader).
    Malformed,
    /// A field exceeded [`MAX_PLAUSIBLE_TOKENS`].
    TooLarge,
    /// Cached (or cache-write) input exceeded the input it is a part of.
    CachedExceedsInput,
    /// Reasoning exceeded the output it is a part of.
    ReasoningExceedsOutput,
    /// Visible output (output minus reported reasoning) exceeded the request's own
    /// `max_completion_tokens` / `max_tokens`.
    OutputExceedsLimit,
    /// Input exceeded what the request's own input can hold (embeddings: a token per
    /// byte of text at most; see `api::embeddings`).
    InputExceedsRequest,
}

impl Implausibility {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::CachedExceedsInput => "cached_exceeds_input",
            Self::ReasoningExceedsOutput => "reasoning_exceeds_output",
            Self::OutputExceedsLimit => "output_exceeds_limit",
            Self::InputExceedsRequest => "input_exceeds_request",
        }
    }
}

/// Check the fields `usage` holds (absent fields are not judged). `max_output` is the
/// request's output limit, when it set one.
pub fn check(usage: &Usage, max_output: Option<u64>) -> Result<(), Implausibility> {
    if usage.malformed {
        return Err(Implausibility::Malformed);
    }
    let fields = [
        usage.input,
        usage.cached_input,
        usage.cache_write,
        usage.output,
        usage.reasoning,
    ];
    if fields.iter().flatten().any(|n| *n > MAX_PLAUSIBLE_TOKENS) {
        return Err(Implausibility::TooLarge);
    }
    if let Some(input) = usage.input {
        let cached = usage.cached_input.unwrap_or(0);
        let written = usage.cache_write.unwrap_or(0);
        if cached.saturating_add(written) > input {
            return Err(Implausibility::CachedExceedsInput);
        }
    }
    if let (Some(output), Some(reasoning)) = (usage.output, usage.reasoning) {
        if reasoning > output {
            return Err(Implausibility::ReasoningExceedsOutput);
        }
    }
    // Only the visible part is held to the limit: OpenAI's o-series count reasoning
    // against `max_completion_tokens`, but DeepSeek's reasoner bounds only the final
    // answer with `max_tokens`, its chain of thought coming on top.
    if let (Some(output), Some(limit)) = (usage.output, max_output) {
        if output.saturating_sub(usage.reasoning.unwrap_or(0)) > limit {
            return Err(Implausibility::OutputExceedsLimit);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input: Some(input),
            output: Some(output),
            ..Usage::default()
        }
    }

    #[test]
    fn ordinary_reports_pass() {
        let u = Usage {
            cached_input: Some(1024),
            reasoning: Some(256),
            ..usage(1200, 300)
        };
        assert_eq!(check(&u, Some(300)), Ok(()));
        assert_eq!(check(&usage(0, 0), None), Ok(()));
        // Partial reports are judged on what they hold.
        let partial = Usage {
            input: Some(9),
            ..Usage::default()
        };
        assert_eq!(check(&partial, Some(1)), Ok(()));
    }

    #[test]
    fn malformed_reports_fail() {
        let u = Usage {
            malformed: true,
            ..usage(1, 1)
        };
        assert_eq!(check(&u, None), Err(Implausibility::Malformed));
    }

    #[test]
    fn counts_beyond_the_cap_fail() {
        assert_eq!(
            check(&usage(u64::MAX, 1), None),
            Err(Implausibility::TooLarge)
        );
        assert_eq!(
            check(&usage(1, MAX_PLAUSIBLE_TOKENS + 1), None),
            Err(Implausibility::TooLarge)
        );
        let u = Usage {
            reasoning: Some(u64::MAX),
            ..usage(1, 1)
        };
        assert_eq!(check(&u, None), Err(Implausibility::TooLarge));
        assert_eq!(check(&usage(MAX_PLAUSIBLE_TOKENS, 0), None), Ok(()));
    }

    #[test]
    fn cached_or_written_beyond_input_fails() {
        let u = Usage {
            cached_input: Some(11),
            ..usage(10, 1)
        };
        assert_eq!(check(&u, None), Err(Implausibility::CachedExceedsInput));
        let u = Usage {
            cached_input: Some(6),
            cache_write: Some(5),
            ..usage(10, 1)
        };
        assert_eq!(check(&u, None), Err(Implausibility::CachedExceedsInput));
    }

    #[test]
    fn reasoning_beyond_output_fails() {
        let u = Usage {
            reasoning: Some(3),
            ..usage(10, 2)
        };
        assert_eq!(check(&u, None), Err(Implausibility::ReasoningExceedsOutput));
    }

    #[test]
    fn output_beyond_the_requests_limit_fails() {
        assert_eq!(
            check(&usage(10, 101), Some(100)),
            Err(Implausibility::OutputExceedsLimit)
        );
        assert_eq!(check(&usage(10, 100), Some(100)), Ok(()));
        // DeepSeek's reasoner: the chain of thought is not bounded by max_tokens.
        let r1 = Usage {
            reasoning: Some(900),
            ..usage(10, 1000)
        };
        assert_eq!(check(&r1, Some(100)), Ok(()));
        let over = Usage {
            reasoning: Some(800),
            ..usage(10, 1000)
        };
        assert_eq!(
            check(&over, Some(100)),
            Err(Implausibility::OutputExceedsLimit)
        );
    }
}
