//! Anthropic's `usage` in tollgate's terms. Anthropic's `input_tokens` excludes the
//! cache: the three input counts add up, so tollgate's input (every prompt token) is
//! their sum, with cache reads as its cached part and cache writes as its cache-write
//! part, of which the 1-hour writes (`cache_creation.ephemeral_1h_input_tokens`) are
//! kept apart, since they are priced on their own. Thinking is part of
//! `output_tokens`, which in a stream's `message_delta` is cumulative.

use serde_json::Value;

use crate::tokens::wire_count;
use crate::tokens::Usage;

/// Read one `usage` object (an answer's, `message_start`'s or `message_delta`'s).
pub fn anthropic_usage(usage: &Value) -> Usage {
    let mut malformed = false;
    let mut n = |v: Option<&Value>| {
        wire_count(v).unwrap_or_else(|_| {
            malformed = true;
            None
        })
    };
    let uncached = n(usage.get("input_tokens"));
    let write = n(usage.get("cache_creation_input_tokens"));
    let read = n(usage.get("cache_read_input_tokens"));
    let output = n(usage.get("output_tokens"));
    // Later API versions split the writes by TTL; the 1-hour ones cost more.
    let write_1h = n(usage.pointer("/cache_creation/ephemeral_1h_input_tokens"));
    let input = uncached.and_then(|u| {
        let sum = u
            .checked_add(write.unwrap_or(0))
            .and_then(|s| s.checked_add(read.unwrap_or(0)));
        // An overflowing sum is no count: the report is not believed.
        malformed |= sum.is_none();
        sum
    });
    Usage {
        input,
        cached_input: read,
        cache_write: write,
        cache_write_1h: write_1h.filter(|w| *w <= write.unwrap_or(0)),
        output,
        reasoning: None,
        malformed,
        service_tier: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_is_the_sum_of_uncached_cache_writes_and_cache_reads() {
        let u = anthropic_usage(
            &json!({"input_tokens": 25, "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000, "output_tokens": 1}),
        );
        assert_eq!(
            (
                u.input,
                u.cached_input,
                u.cache_write,
                u.output,
                u.malformed
            ),
            (Some(1125), Some(1000), Some(100), Some(1), false)
        );
        let split = anthropic_usage(
            &json!({"input_tokens": 5, "cache_creation_input_tokens": 400,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 300},
            "output_tokens": 2}),
        );
        assert_eq!(
            (split.input, split.cache_write, split.cache_write_1h),
            (Some(405), Some(400), Some(300))
        );
        let delta = anthropic_usage(&json!({"output_tokens": 15}));
        assert_eq!((delta.input, delta.output), (None, Some(15)));
    }

    #[test]
    fn negative_or_overflowing_counts_mark_the_report_malformed() {
        assert!(anthropic_usage(&json!({"input_tokens": -1})).malformed);
        let u = anthropic_usage(&json!({"input_tokens": u64::MAX, "cache_read_input_tokens": 1}));
        assert!(u.malformed);
        assert_eq!(u.input, None);
    }
}
