//! DeepSeek's own API (`https://api.deepseek.com`): Bearer auth; reasoning arrives
//! as `reasoning_content` beside `content` and must never be sent back upstream
//! (R1 answers 400; `ChatRequest::parse` strips it); input usage is split into cache
//! hits and misses; usage rides on the `finish_reason` chunk of a stream; the
//! server sends `: keep-alive` comments while queueing, which the SSE parser skips.

use serde_json::Value;

use super::wire::{bearer, chat_body, json_request, openai_usage};
use super::{ProviderAdapter, Target, UpstreamRequest};
use crate::api::openai::ChatRequest;
use crate::tokens::wire_count;
use crate::tokens::Usage;

/// The `deepseek` kind.
pub struct DeepSeek;

impl ProviderAdapter for DeepSeek {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let body = chat_body(req, target);
        let url = format!("{}/chat/completions", target.provider.base_url);
        json_request(url, bearer(target), &body)
    }

    /// `prompt_cache_hit_tokens` is the cached part of `prompt_tokens`; older
    /// responses lack `prompt_tokens_details`, newer ones mirror it there.
    fn usage_from_wire(&self, usage: &Value) -> Usage {
        let mut u = openai_usage(usage);
        let hit = wire_count(usage.get("prompt_cache_hit_tokens"));
        let miss = wire_count(usage.get("prompt_cache_miss_tokens"));
        let (Ok(hit), Ok(miss)) = (hit, miss) else {
            u.malformed = true;
            return u;
        };
        if let Some(hit) = hit {
            u.cached_input = Some(hit);
        }
        if u.input.is_none() {
            u.input = match (u.cached_input, miss) {
                // An overflowing sum is no count: the report is not believed.
                (Some(h), Some(m)) => h.checked_add(m).or_else(|| {
                    u.malformed = true;
                    None
                }),
                _ => None,
            };
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ProviderAdapter;

    #[test]
    fn cache_hits_are_the_cached_part_of_input() {
        let usage: Value = serde_json::from_str(
            r#"{"prompt_tokens":6,"completion_tokens":92,"total_tokens":98,"completion_tokens_details":{"reasoning_tokens":81},"prompt_cache_hit_tokens":4,"prompt_cache_miss_tokens":2}"#,
        )
        .unwrap();
        let u = DeepSeek.usage_from_wire(&usage);
        assert_eq!(
            (u.input, u.cached_input, u.output, u.reasoning),
            (Some(6), Some(4), Some(92), Some(81))
        );
        assert!(!u.malformed);
    }

    #[test]
    fn overflowing_or_negative_cache_counts_mark_the_report_malformed() {
        let usage: Value = serde_json::from_str(
            r#"{"completion_tokens":1,"prompt_cache_hit_tokens":18446744073709551615,"prompt_cache_miss_tokens":1}"#,
        )
        .unwrap();
        let u = DeepSeek.usage_from_wire(&usage);
        assert!(u.malformed);
        assert_eq!(u.input, None);
        let usage: Value =
            serde_json::from_str(r#"{"prompt_tokens":3,"prompt_cache_hit_tokens":-1}"#).unwrap();
        assert!(DeepSeek.usage_from_wire(&usage).malformed);
    }
}
