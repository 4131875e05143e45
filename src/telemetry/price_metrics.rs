//! Metrics of the price audit: drift between provider-reported and tollgate-counted
//! tokens per provider, and stale catalog rows. Names are consts here, described once;
//! labels are configured provider ids only.

use metrics::{counter, describe_counter, describe_gauge, gauge};

/// Provider-reported over tollgate-counted tokens (verifiable part), per provider.
pub const USAGE_DRIFT_RATIO: &str = "tollgate_usage_drift_ratio";
/// Catalog rows in force whose `as_of` is older than `[pricing] max_age`.
pub const PRICE_ROWS_STALE: &str = "tollgate_price_rows_stale";
/// Token-count audits dropped because the audit queue (`[metering] audit_queue`) was full.
pub const AUDIT_DROPPED_TOTAL: &str = "tollgate_audit_dropped_total";

/// Describe the series; call once after the recorder is installed.
pub fn describe() {
    describe_gauge!(
        USAGE_DRIFT_RATIO,
        "Provider-reported tokens over tollgate's own count since start-up (1.0 = agree), by provider; hidden reasoning excluded"
    );
    describe_gauge!(
        PRICE_ROWS_STALE,
        "Price rows in force whose as_of is older than pricing.max_age"
    );
    describe_counter!(
        AUDIT_DROPPED_TOTAL,
        "Token-count audits dropped because the audit queue was full (the record is written without counted tokens)"
    );
}

/// Set the drift gauge of `provider` from cumulative totals.
pub fn set_drift_ratio(provider: &str, reported: u64, counted: u64) {
    if counted > 0 {
        gauge!(USAGE_DRIFT_RATIO, "provider" => provider.to_owned())
            .set(reported as f64 / counted as f64);
    }
}

/// Set the stale-rows gauge.
pub fn set_stale_rows(count: usize) {
    gauge!(PRICE_ROWS_STALE).set(count as f64);
}

/// Count one audit dropped for a full queue.
pub fn record_audit_dropped() {
    counter!(AUDIT_DROPPED_TOTAL).increment(1);
}
