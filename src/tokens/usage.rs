//! Normalised token usage (what every provider's report becomes) and billable counts
//! (what pricing multiplies). A leaf: every layer that reads or prices usage depends on
//! this, and it depends on nothing of tollgate's.

/// The processing tier an upstream says served a request (OpenAI's `service_tier`:
/// a top-level member of the chat completion, of each stream chunk and of a Responses
/// `response`, never inside `usage`). It chooses the price row, so it travels with the
/// usage it prices; it is not a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceTier {
    /// Standard processing (`"default"`; `"auto"` resolves to it when echoed).
    Default,
    /// Flex processing: cheaper, slower, may be refused.
    Flex,
    /// Priority processing: faster, dearer.
    Priority,
    /// Scale Tier: prepaid capacity units.
    Scale,
}

impl ServiceTier {
    /// The tier named by an answer's `service_tier` text; `None` for a name OpenAI
    /// does not document (the request is then priced at the default row).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "default" | "auto" => Some(Self::Default),
            "flex" => Some(Self::Flex),
            "priority" => Some(Self::Priority),
            "scale" => Some(Self::Scale),
            _ => None,
        }
    }

    /// `service_tier` as the wire carries it (absent, `null` or not text: `None`).
    pub fn from_wire(v: Option<&serde_json::Value>) -> Option<Self> {
        v.and_then(serde_json::Value::as_str).and_then(Self::parse)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Flex => "flex",
            Self::Priority => "priority",
            Self::Scale => "scale",
        }
    }
}

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
    /// The tier the answer says served the request; `None` = not said (default tier).
    pub service_tier: Option<ServiceTier>,
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
        // Every chunk of a stream names the same tier; the latest one said wins.
        self.service_tier = other.service_tier.or(self.service_tier);
    }

    /// This usage with the tier an answer object names in its `service_tier` member
    /// (kept as it is when the object names none).
    pub fn served_by(self, service_tier: Option<&serde_json::Value>) -> Usage {
        Usage {
            service_tier: ServiceTier::from_wire(service_tier).or(self.service_tier),
            ..self
        }
    }

    /// Whether no count at all was reported (not even a malformed field). A service
    /// tier alone is no report of usage.
    pub fn is_empty(&self) -> bool {
        Usage {
            service_tier: None,
            ..*self
        } == Usage::default()
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

    #[test]
    fn the_served_tier_is_read_from_the_answer_and_is_no_usage_by_itself() {
        let answer = serde_json::json!({"service_tier": "flex", "usage": {}});
        let u = Usage::default().served_by(answer.get("service_tier"));
        assert_eq!(u.service_tier, Some(ServiceTier::Flex));
        assert!(u.is_empty());
        // `auto` is what was asked; an echo of it means the default tier.
        let auto = serde_json::json!("auto");
        assert_eq!(
            ServiceTier::from_wire(Some(&auto)),
            Some(ServiceTier::Default)
        );
        let unknown = serde_json::json!("on_demand");
        assert_eq!(
            u.served_by(Some(&unknown)).service_tier,
            Some(ServiceTier::Flex)
        );
        let mut merged = Usage {
            input: Some(3),
            ..Usage::default()
        };
        merged.merge_max(&u);
        merged.merge_max(&Usage::default());
        assert_eq!(merged.service_tier, Some(ServiceTier::Flex));
    }
}
