//! Bedrock's `TokenUsage` in tollgate's terms. Bedrock's `inputTokens` excludes the
//! prompt cache, as Anthropic's `input_tokens` does: AWS's prompt-caching guide
//! (docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html, "How it works")
//! charges tokens read from the cache and tokens written to it at their own rates,
//! and every token neither read from nor written to the cache at the standard input
//! rate — the three are disjoint, and `inputTokens` is the last. So tollgate's input
//! (every prompt token) is `inputTokens + cacheReadInputTokens +
//! cacheWriteInputTokens`, with the reads as its cached part and the writes as its
//! cache-write part. Reasoning is part of `outputTokens` and not reported apart.

use serde_json::Value;

use crate::tokens::wire_count;
use crate::tokens::Usage;

/// Read one `usage` object (a Converse answer's or a ConverseStream `metadata`'s).
pub fn bedrock_usage(usage: &Value) -> Usage {
    let mut malformed = false;
    let mut n = |v: Option<&Value>| {
        wire_count(v).unwrap_or_else(|_| {
            malformed = true;
            None
        })
    };
    let uncached = n(usage.get("inputTokens"));
    let read = n(usage.get("cacheReadInputTokens"));
    let write = n(usage.get("cacheWriteInputTokens"));
    let output = n(usage.get("outputTokens"));
    let input = uncached.and_then(|u| {
        let sum = u
            .checked_add(read.unwrap_or(0))
            .and_then(|s| s.checked_add(write.unwrap_or(0)));
        // An overflowing sum is no count: the report is not believed.
        malformed |= sum.is_none();
        sum
    });
    Usage {
        input,
        cached_input: read,
        cache_write: write,
        cache_write_1h: None,
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
    fn input_is_the_sum_of_uncached_cache_reads_and_cache_writes() {
        let u = bedrock_usage(
            &json!({"inputTokens": 15, "outputTokens": 395, "totalTokens": 2410,
            "cacheReadInputTokens": 1500, "cacheWriteInputTokens": 500}),
        );
        assert_eq!(
            (
                u.input,
                u.cached_input,
                u.cache_write,
                u.output,
                u.malformed
            ),
            (Some(2015), Some(1500), Some(500), Some(395), false)
        );
        let plain =
            bedrock_usage(&json!({"inputTokens": 30, "outputTokens": 628, "totalTokens": 658}));
        assert_eq!(
            (
                plain.input,
                plain.cached_input,
                plain.cache_write,
                plain.output
            ),
            (Some(30), None, None, Some(628))
        );
    }

    #[test]
    fn negative_or_overflowing_counts_mark_the_report_malformed() {
        assert!(bedrock_usage(&json!({"inputTokens": -1})).malformed);
        let u = bedrock_usage(&json!({"inputTokens": u64::MAX, "cacheReadInputTokens": 1}));
        assert!(u.malformed);
        assert_eq!(u.input, None);
    }
}
