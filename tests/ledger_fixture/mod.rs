//! A synthetic ledger for the rollup tests (SQLite and PostgreSQL alike): records from a
//! seeded RNG over several keys, teams, models, providers, jurisdictions, routes and
//! outcomes, with costs of up to 15 decimal places and latencies across every bucket;
//! and reference answers folded straight from the records, written here independently
//! of the rollup code, that the usage API, savings and budget rebuild must equal.
#![allow(
    dead_code,
    clippy::allow_attributes,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod checks;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tollgate::ledger::{Outcome, PriceAudit, PricingStatus, UsageRecord, UsageSource};

/// The first day of the synthetic traffic (UTC); it spans `DAYS` days.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}
pub const DAYS: i64 = 12;

pub const MODELS: [&str; 3] = ["m-a", "m-b", "m-c"];
/// (provider, jurisdiction, upstream model) per model, by index.
const OFFERS: [[(&str, &str, &str); 2]; 3] = [
    [("p-eu", "EU", "a-1"), ("p-us", "US", "a-2")],
    [("p-us", "US", "b-1"), ("p-cn", "CN", "b-2")],
    [("p-eu2", "EU", "c-1"), ("p-cn", "CN", "c-2")],
];
const KEYS: [(&str, Option<&str>); 6] = [
    ("k0", Some("red")),
    ("k1", Some("red")),
    ("k2", Some("blue")),
    ("k3", None),
    ("k4", None),
    ("k5", Some("blue")),
];
const ROUTES: [&str; 3] = ["chat_completions", "messages", "embeddings"];

/// `n` records, plus duplicates of some of them (same request id and start time, other
/// contents: a batch written again after a failure it did not see) that the ledger must
/// ignore; the first of each id is the one stored. The start time is kept because a
/// partitioned PostgreSQL ledger is unique per (request id, start time).
pub fn records(n: usize, seed: u64) -> Vec<UsageRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<UsageRecord> = (0..n).map(|i| record(&mut rng, i)).collect();
    for i in (0..n).step_by(97) {
        let mut dup = record(&mut rng, n + i);
        dup.request_id = out[i].request_id.clone();
        dup.created_at = out[i].created_at;
        out.push(dup);
    }
    out
}

fn record(rng: &mut StdRng, i: usize) -> UsageRecord {
    let span_ms = DAYS * 86_400_000;
    // Some on whole seconds, so several records share a millisecond (keyset ties).
    let mut offset = rng.random_range(0..span_ms);
    if rng.random_bool(0.2) {
        offset -= offset % 1000;
    }
    let created_at = start() + chrono::Duration::milliseconds(offset);
    let (key, team) = KEYS[rng.random_range(0..KEYS.len())];
    let model_i = rng.random_range(0..4);
    let logical_model = MODELS.get(model_i).map(|m| (*m).to_owned());
    let roll: f64 = rng.random();
    let outcome = match roll {
        r if r < 0.78 => Outcome::Completed,
        r if r < 0.86 => Outcome::UpstreamError,
        r if r < 0.92 => Outcome::ClientCancelled,
        _ => Outcome::Rejected,
    };
    let offer = (outcome != Outcome::Rejected && logical_model.is_some())
        .then(|| OFFERS[model_i][rng.random_range(0..2)]);
    let usage_source = match (offer, rng.random_range(0..100)) {
        (None, _) => UsageSource::None,
        (_, 0..80) => UsageSource::Reported,
        (_, 80..93) => UsageSource::Estimated,
        (_, 93..97) => UsageSource::Implausible,
        _ => UsageSource::None,
    };
    let has_usage = usage_source != UsageSource::None;
    let mut tokens =
        |max: u64, p: f64| (has_usage && rng.random_bool(p)).then(|| rng.random_range(0..max));
    let input_tokens = tokens(200_000, 0.97);
    let cached_input_tokens = tokens(50_000, 0.5);
    let cache_write_tokens = tokens(10_000, 0.2);
    let output_tokens = tokens(40_000, 0.95);
    let reasoning_tokens = tokens(20_000, 0.4);
    let pricing = match (has_usage, rng.random_range(0..100)) {
        (false, _) => PricingStatus::NotApplicable,
        (true, 0..6) => PricingStatus::Unpriced,
        _ => PricingStatus::Priced,
    };
    // Up to 15 decimal places, as a catalog with 9 places per million tokens gives.
    let money = |rng: &mut StdRng, max: i64| Decimal::new(rng.random_range(0..max), 15).normalize();
    let cost_usd = (pricing == PricingStatus::Priced).then(|| money(rng, 5_000_000_000_000_000));
    let audit = if has_usage && rng.random_bool(0.7) {
        PriceAudit {
            cheapest_allowed_cost_usd: rng
                .random_bool(0.9)
                .then(|| money(rng, 3_000_000_000_000_000)),
            cheapest_allowed_offer: Some("x/allowed".into()),
            cheapest_any_cost_usd: rng
                .random_bool(0.9)
                .then(|| money(rng, 1_000_000_000_000_000)),
            cheapest_any_offer: Some("x/any".into()),
            counted_input_tokens: rng.random_bool(0.4).then(|| rng.random_range(0..200_000)),
            counted_output_tokens: rng.random_bool(0.5).then(|| rng.random_range(0..40_000)),
            output_verifiable: Some(rng.random_bool(0.7)),
        }
    } else {
        PriceAudit::default()
    };
    // Log-uniform from 1 ms to ~17 min: every bucket, the overflow one too.
    let latency_ms = 10f64.powf(rng.random_range(0.0..6.0)) as u64;
    let ttfb_ms =
        (offer.is_some() && rng.random_bool(0.85)).then(|| rng.random_range(0..=latency_ms));
    let status = match outcome {
        Outcome::Completed => 200,
        Outcome::UpstreamError => 502,
        Outcome::ClientCancelled => [200, 499][rng.random_range(0..2)],
        Outcome::Rejected => [400, 403, 429][rng.random_range(0..3)],
    };
    UsageRecord {
        request_id: format!("r{i:07}"),
        created_at,
        key_name: key.to_owned(),
        team: team.map(str::to_owned),
        route: ROUTES[rng.random_range(0..ROUTES.len())].to_owned(),
        logical_model,
        provider: offer.map(|o| o.0.to_owned()),
        upstream_model: offer.map(|o| o.2.to_owned()),
        region: offer.map(|o| format!("{}-1", o.0)),
        jurisdiction: offer.map(|o| o.1.to_owned()),
        processing_scope: offer.map(|_| "regional".to_owned()),
        stream: rng.random_bool(0.5),
        input_tokens,
        cached_input_tokens,
        cache_write_tokens,
        cache_write_1h_tokens: None,
        output_tokens,
        reasoning_tokens,
        usage_source,
        cost_usd,
        price_id: cost_usd.map(|_| "x/price".to_owned()),
        pricing,
        latency_ms,
        ttfb_ms,
        status,
        outcome,
        error_code: (status >= 400).then(|| "upstream_error".to_owned()),
        attempts: 1,
        policy: json!({"allowed": ["x"]}).into(),
        audit,
    }
}

/// The records the ledger keeps: the first of each request id.
pub fn stored(records: &[UsageRecord]) -> Vec<UsageRecord> {
    let mut seen = HashSet::new();
    records
        .iter()
        .filter(|r| seen.insert(r.request_id.clone()))
        .cloned()
        .collect()
}

/// The documented bucket bounds (README: percentile semantics).
const BOUNDS: [u64; 23] = [
    5, 10, 25, 50, 75, 100, 150, 250, 400, 600, 1_000, 1_500, 2_500, 4_000, 6_000, 10_000, 15_000,
    25_000, 40_000, 60_000, 120_000, 300_000, 600_000,
];

/// p50, p95, p99 as the API documents them: the nearest-rank sample's bucket bound,
/// capped at the largest sample (the largest sample itself past the last bound).
fn percentiles(mut samples: Vec<u64>) -> Value {
    samples.sort_unstable();
    let Some(&max) = samples.last() else {
        return json!({"p50": null, "p95": null, "p99": null});
    };
    let at = |p: usize| {
        let rank = (p * samples.len()).div_ceil(100).max(1);
        let v = samples[rank - 1];
        BOUNDS
            .iter()
            .find(|b| **b >= v)
            .map_or(max, |b| (*b).min(max))
    };
    json!({"p50": at(50), "p95": at(95), "p99": at(99)})
}

/// One dimension of a record as the usage API shows it.
pub fn dimension(r: &UsageRecord, g: &str) -> Value {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
    match g {
        "key" => Value::from(r.key_name.clone()),
        "team" => text(&r.team),
        "model" => text(&r.logical_model),
        "provider" => text(&r.provider),
        "jurisdiction" => text(&r.jurisdiction),
        "day" => Value::from(r.created_at.format("%Y-%m-%d").to_string()),
        "hour" => Value::from(r.created_at.format("%Y-%m-%dT%H:00:00Z").to_string()),
        other => panic!("unknown group {other}"),
    }
}

/// What `/admin/usage` must answer: `(group values, stats)` per group, plus totals,
/// folded from the records in `[from, to)` matching the key and model filters.
pub fn usage(
    records: &[UsageRecord],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: &[&str],
    key: Option<&str>,
    model: Option<&str>,
) -> (BTreeMap<String, Value>, Value) {
    let picked: Vec<&UsageRecord> = records
        .iter()
        .filter(|r| r.created_at >= from && r.created_at < to)
        .filter(|r| key.is_none_or(|k| r.key_name == k))
        .filter(|r| model.is_none_or(|m| r.logical_model.as_deref() == Some(m)))
        .collect();
    let mut groups: BTreeMap<String, Vec<&UsageRecord>> = BTreeMap::new();
    for r in &picked {
        let values: Vec<Value> = group_by.iter().map(|g| dimension(r, g)).collect();
        groups
            .entry(Value::from(values).to_string())
            .or_default()
            .push(r);
    }
    let stats = groups.into_iter().map(|(k, rs)| (k, stats(&rs))).collect();
    (stats, self::stats(&picked))
}

fn stats(rs: &[&UsageRecord]) -> Value {
    let sum =
        |f: fn(&UsageRecord) -> Option<u64>| rs.iter().map(|r| f(r).unwrap_or(0)).sum::<u64>();
    let count = |f: fn(&UsageRecord) -> bool| rs.iter().filter(|r| f(r)).count() as u64;
    let cost: Decimal = rs.iter().filter_map(|r| r.cost_usd).sum();
    let requests = rs.len() as u64;
    let estimated = count(|r| {
        matches!(
            r.usage_source,
            UsageSource::Estimated | UsageSource::Implausible
        )
    });
    json!({
        "requests": requests,
        "errors": count(|r| r.status >= 400 || r.outcome == Outcome::UpstreamError),
        "input_tokens": sum(|r| r.input_tokens),
        "cached_input_tokens": sum(|r| r.cached_input_tokens),
        "cache_write_tokens": sum(|r| r.cache_write_tokens),
        "output_tokens": sum(|r| r.output_tokens),
        "reasoning_tokens": sum(|r| r.reasoning_tokens),
        "cost_usd": cost.normalize().to_string(),
        "estimated_requests": estimated,
        "unpriced_requests": count(|r| r.pricing == PricingStatus::Unpriced),
        "estimated_share": if requests > 0 { estimated as f64 / requests as f64 } else { 0.0 },
        "latency_ms": percentiles(rs.iter().map(|r| r.latency_ms).collect()),
        "ttfb_ms": percentiles(rs.iter().filter_map(|r| r.ttfb_ms).collect()),
    })
}

/// An `/admin/usage` answer in the shape of [`usage`]'s.
pub fn usage_from_api(body: &Value, group_by: &[&str]) -> (BTreeMap<String, Value>, Value) {
    let strip = |g: &Value| {
        let mut stats = g.clone();
        stats.as_object_mut().unwrap().remove("group");
        stats
    };
    let groups = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let values: Vec<Value> = group_by.iter().map(|d| g["group"][d].clone()).collect();
            (Value::from(values).to_string(), strip(g))
        })
        .collect();
    (groups, body["totals"].clone())
}

/// What `/admin/savings` must answer (its `models` and `drift`), folded per record with
/// the rules of the savings report; `groups` is the comparison groups config.
pub fn savings(
    records: &[UsageRecord],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    groups: &[(&str, &[&str])],
) -> Value {
    #[derive(Default)]
    struct Model {
        requests: u64,
        priced: u64,
        unpriced: u64,
        compared: u64,
        spend: Decimal,
        allowed: Decimal,
        any: Decimal,
        compared_spend: Decimal,
    }
    let mut models: BTreeMap<String, Model> = BTreeMap::new();
    let mut drift: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.created_at >= from && r.created_at < to)
    {
        let Some(model) = &r.logical_model else {
            continue;
        };
        if r.pricing == PricingStatus::NotApplicable {
            continue;
        }
        let m = models.entry(model.clone()).or_default();
        m.requests += 1;
        match r.cost_usd {
            Some(c) => {
                m.priced += 1;
                m.spend += c;
                if let (Some(a), Some(y)) = (
                    r.audit.cheapest_allowed_cost_usd,
                    r.audit.cheapest_any_cost_usd,
                ) {
                    m.compared += 1;
                    m.compared_spend += c;
                    m.allowed += a;
                    m.any += y;
                }
            }
            None => m.unpriced += 1,
        }
        let (Some(provider), UsageSource::Reported) = (&r.provider, r.usage_source) else {
            continue;
        };
        // The verifiable part: prompt, plus output (minus hidden reasoning) when counted.
        let (Some(counted_in), Some(reported_in)) = (r.audit.counted_input_tokens, r.input_tokens)
        else {
            continue;
        };
        let (rep_out, cnt_out) = match (r.output_tokens, r.audit.counted_output_tokens) {
            (Some(out), Some(cnt)) if r.audit.output_verifiable == Some(false) => {
                (out.saturating_sub(r.reasoning_tokens.unwrap_or(0)), cnt)
            }
            (Some(out), Some(cnt)) => (out, cnt),
            _ => (0, 0),
        };
        let d = drift.entry(provider.clone()).or_default();
        d[0] += 1;
        d[1] += reported_in + rep_out;
        d[2] += counted_in + cnt_out;
        d[3] += u64::from(r.audit.output_verifiable == Some(false));
    }
    let usd = |d: Decimal| d.normalize().to_string();
    let mut rows = Vec::new();
    for (name, m) in &models {
        let member: Vec<&str> = groups
            .iter()
            .filter(|(_, ms)| ms.contains(&name.as_str()))
            .map(|(g, _)| *g)
            .collect();
        let names: Vec<Option<&str>> = if member.is_empty() {
            vec![None]
        } else {
            member.into_iter().map(Some).collect()
        };
        for group in names {
            rows.push(json!({
                "group": group,
                "model": name,
                "requests": m.requests,
                "priced_requests": m.priced,
                "unpriced_requests": m.unpriced,
                "compared_requests": m.compared,
                "spend_usd": usd(m.spend),
                "cheapest_allowed_usd": usd(m.allowed),
                "cheapest_any_usd": usd(m.any),
                "potential_saving_usd": usd(m.compared_spend - m.allowed),
                "residency_premium_usd": usd(m.allowed - m.any),
            }));
        }
    }
    rows.sort_by(|a, b| a["group"].as_str().cmp(&b["group"].as_str()));
    let drift: Vec<Value> = drift
        .iter()
        .map(|(p, d)| {
            let ratio = (d[2] > 0).then(|| {
                (Decimal::from(d[1]) / Decimal::from(d[2]))
                    .round_dp(4)
                    .normalize()
                    .to_string()
            });
            json!({
                "provider": p,
                "requests": d[0],
                "reported_tokens": d[1],
                "counted_tokens": d[2],
                "drift_ratio": ratio,
                "requests_with_hidden_reasoning": d[3],
            })
        })
        .collect();
    json!({"models": rows, "drift": drift})
}

/// Spend per (key, UTC day start in ms) of the records in `[from, to)`: what the budget
/// rebuild reads.
pub fn daily_spend(
    records: &[UsageRecord],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<(String, i64), Decimal> {
    let mut out: BTreeMap<(String, i64), Decimal> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.created_at >= from && r.created_at < to)
    {
        let day = r
            .created_at
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        *out.entry((r.key_name.clone(), day.timestamp_millis()))
            .or_default() += r.cost_usd.unwrap_or_default();
    }
    out
}

/// The windows the tests ask about: whole days, ragged to the millisecond, inside one
/// hour, and across hours without a whole day.
pub fn windows() -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    vec![
        (
            "from=2026-03-01&to=2026-03-12".into(),
            t("2026-03-01T00:00:00Z"),
            t("2026-03-13T00:00:00Z"),
        ),
        (
            "from=2026-03-02T05:17:23.456Z&to=2026-03-09T18:42:10.001Z".into(),
            t("2026-03-02T05:17:23.456Z"),
            t("2026-03-09T18:42:10.001Z"),
        ),
        (
            "from=2026-03-05T10:10:00Z&to=2026-03-05T10:50:00Z".into(),
            t("2026-03-05T10:10:00Z"),
            t("2026-03-05T10:50:00Z"),
        ),
        (
            "from=2026-03-05T10:30:00Z&to=2026-03-06T07:15:00Z".into(),
            t("2026-03-05T10:30:00Z"),
            t("2026-03-06T07:15:00Z"),
        ),
    ]
}

/// The group-bys the tests ask about.
pub const GROUPINGS: [&str; 10] = [
    "",
    "key",
    "team",
    "model",
    "provider",
    "jurisdiction",
    "day",
    "hour",
    "model,provider,jurisdiction",
    "key,team,day",
];
