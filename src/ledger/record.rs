//! The ledger record: one `UsageRecord` per request, success or failure, and the closed
//! enums it carries. This file owns the record's shape and the text form of its enums
//! (shared by JSON and the SQLite columns); it does not build records (that is
//! `metering::finalize`) and does not store them (that is the sink).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::LedgerError;

/// Everything tollgate knows about one finished request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The id returned to the client in `x-tollgate-request-id`; unique per request.
    pub request_id: String,
    /// When the request started; prices are chosen by this instant. Stored to the millisecond.
    pub created_at: DateTime<Utc>,
    /// The tollgate key's configured name, never its secret.
    pub key_name: String,
    /// The team the key belonged to when the request was made (`[[keys]] team`);
    /// `None` for a key in no team, and in records written before teams were recorded.
    #[serde(default)]
    pub team: Option<String>,
    /// `chat_completions` or `azure_chat_completions`.
    pub route: String,
    /// `None` when the request never named a valid model.
    pub logical_model: Option<String>,
    /// The provider entry that served the request (or was tried last); `None` if none was.
    pub provider: Option<String>,
    /// The provider's model name; `None` when no provider was reached.
    pub upstream_model: Option<String>,
    /// The serving region; `None` when no provider was reached.
    pub region: Option<String>,
    /// The serving jurisdiction; `None` when no provider was reached.
    pub jurisdiction: Option<String>,
    /// `regional`, `datazone` or `global`; `None` when no provider was reached.
    pub processing_scope: Option<String>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// `None` = unknown, never coerced to 0.
    pub input_tokens: Option<u64>,
    /// `None` = unknown.
    pub cached_input_tokens: Option<u64>,
    /// `None` = unknown.
    pub cache_write_tokens: Option<u64>,
    /// Of `cache_write_tokens`, those written to a 1-hour cache (priced on their own);
    /// `None` = none reported (and in records written before the split was kept).
    #[serde(default)]
    pub cache_write_1h_tokens: Option<u64>,
    /// `None` = unknown.
    pub output_tokens: Option<u64>,
    /// `None` = unknown.
    pub reasoning_tokens: Option<u64>,
    /// Where the token counts came from.
    pub usage_source: UsageSource,
    /// Exact cost in USD; `None` when unpriced or nothing was billable.
    pub cost_usd: Option<Decimal>,
    /// The catalog price entry used; `None` when not priced.
    pub price_id: Option<String>,
    /// Whether a price was found and applied.
    pub pricing: PricingStatus,
    /// Wall time from request start to the end of the response.
    pub latency_ms: u64,
    /// Time to the first response byte; `None` when no byte was sent.
    pub ttfb_ms: Option<u64>,
    /// The HTTP status tollgate returned.
    pub status: u16,
    /// How the request ended.
    pub outcome: Outcome,
    /// tollgate's error code (e.g. `invalid_request`); `None` on success.
    pub error_code: Option<String>,
    /// Upstream attempts made, counting failover.
    pub attempts: u32,
    /// The policy decision: the allowed set, excluded offers and why.
    pub policy: super::PolicyJson,
    /// Cheapest-alternative costs and tollgate's own token counts.
    #[serde(flatten, default)]
    pub audit: super::PriceAudit,
}

/// Where a record's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The provider reported them.
    Reported,
    /// tollgate counted them with the model's tokenizer.
    Estimated,
    /// The provider reported usage that could not be true (see
    /// `metering::plausible`); tollgate counted them with the model's tokenizer instead.
    Implausible,
    /// No usage exists (no provider was reached).
    None,
}

impl UsageSource {
    /// Every variant, for parsing and tests.
    pub const ALL: [Self; 4] = [
        Self::Reported,
        Self::Estimated,
        Self::Implausible,
        Self::None,
    ];

    /// The snake_case name, as serialized and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::Estimated => "estimated",
            Self::Implausible => "implausible",
            Self::None => "none",
        }
    }
}

impl FromStr for UsageSource {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_text(s, "usage_source", &Self::ALL, Self::as_str)
    }
}

/// Whether the request's cost is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingStatus {
    /// A catalog price applied; `cost_usd` is set.
    Priced,
    /// Billable usage but no catalog price for it.
    Unpriced,
    /// Nothing billable (e.g. rejected before any provider).
    NotApplicable,
}

impl PricingStatus {
    /// Every variant, for parsing and tests.
    pub const ALL: [Self; 3] = [Self::Priced, Self::Unpriced, Self::NotApplicable];

    /// The snake_case name, as serialized and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priced => "priced",
            Self::Unpriced => "unpriced",
            Self::NotApplicable => "not_applicable",
        }
    }
}

impl FromStr for PricingStatus {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_text(s, "pricing", &Self::ALL, Self::as_str)
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The response was delivered in full.
    Completed,
    /// The provider failed, before or during the response.
    UpstreamError,
    /// The client went away before the end.
    ClientCancelled,
    /// tollgate refused the request (auth, validation, policy).
    Rejected,
}

impl Outcome {
    /// Every variant, for parsing and tests.
    pub const ALL: [Self; 4] = [
        Self::Completed,
        Self::UpstreamError,
        Self::ClientCancelled,
        Self::Rejected,
    ];

    /// The snake_case name, as serialized and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::UpstreamError => "upstream_error",
            Self::ClientCancelled => "client_cancelled",
            Self::Rejected => "rejected",
        }
    }
}

impl FromStr for Outcome {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_text(s, "outcome", &Self::ALL, Self::as_str)
    }
}

/// The variant whose `as_str` is `s`; `column` names the field in the error.
fn parse_text<T: Copy>(
    s: &str,
    column: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, LedgerError> {
    all.iter()
        .copied()
        .find(|v| name(*v) == s)
        .ok_or_else(|| LedgerError::InvalidValue {
            column,
            value: s.to_owned(),
        })
}

impl UsageRecord {
    /// (reported, counted) tokens of the part of a record tollgate can verify: the prompt, plus
    /// the output when all of it was visible, or the output minus hidden reasoning otherwise.
    pub fn verifiable_pair(&self) -> Option<(u64, u64)> {
        let r = self;
        let counted_in = r.audit.counted_input_tokens?;
        let reported_in = r.input_tokens?;
        let (reported_out, counted_out) = match (r.output_tokens, r.audit.counted_output_tokens) {
            (Some(out), Some(counted)) => {
                let visible_part = if r.audit.output_verifiable == Some(false) {
                    out.saturating_sub(r.reasoning_tokens.unwrap_or(0))
                } else {
                    out
                };
                (visible_part, counted)
            }
            _ => (0, 0),
        };
        Some((
            reported_in.saturating_add(reported_out),
            counted_in.saturating_add(counted_out),
        ))
    }
}
