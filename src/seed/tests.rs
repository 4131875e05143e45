use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::TimeZone;

use super::*;

fn settings() -> Settings {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tollgate.example.toml");
    crate::check_settings_skipping_secrets(&path).unwrap()
}

fn opts(records: u64, seed: u64) -> SeedOptions {
    SeedOptions {
        records,
        end: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        days: 30,
        seed,
    }
}

#[test]
fn a_seed_always_gives_the_same_ledger() {
    let s = settings();
    let a: Vec<UsageRecord> = Generator::new(&s, &opts(500, 7)).unwrap().collect();
    let b: Vec<UsageRecord> = Generator::new(&s, &opts(500, 7)).unwrap().collect();
    let c: Vec<UsageRecord> = Generator::new(&s, &opts(500, 8)).unwrap().collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn records_fill_the_window_oldest_first_with_the_catalogs_exact_costs() {
    let s = settings();
    let o = opts(20_000, 1);
    let records: Vec<UsageRecord> = Generator::new(&s, &o).unwrap().collect();
    assert_eq!(records.len(), 20_000);
    let ids: BTreeSet<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids.len(), records.len(), "request ids are unique");
    assert!(records
        .windows(2)
        .all(|w| w[0].created_at <= w[1].created_at));
    let first = records.first().unwrap().created_at;
    let last = records.last().unwrap().created_at;
    assert!(first >= o.start() && first < o.start() + chrono::Duration::hours(1));
    assert!(last < o.end && last > o.end - chrono::Duration::hours(1));

    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        *outcomes.entry(r.outcome.as_str()).or_default() += 1;
        let Some(cost_usd) = r.cost_usd else { continue };
        // Exactly what the catalog says for these tokens at that instant.
        let offer = s
            .models
            .iter()
            .find(|m| Some(&m.name) == r.logical_model.as_ref())
            .and_then(|m| {
                m.offers.iter().find(|o| {
                    s.providers[o.provider].id == *r.provider.as_ref().unwrap()
                        && Some(&o.upstream_model) == r.upstream_model.as_ref()
                })
            })
            .unwrap();
        let row = s
            .prices
            .lookup(offer.price.as_ref().unwrap(), r.created_at)
            .unwrap();
        assert_eq!(r.price_id.as_ref(), Some(&row.id));
        let tokens = TokenCounts {
            input: r.input_tokens.unwrap(),
            cached_input: r.cached_input_tokens.unwrap(),
            cache_write: 0,
            cache_write_1h: 0,
            output: r.output_tokens.unwrap(),
            reasoning: r.reasoning_tokens.unwrap(),
        };
        assert_eq!(cost_usd, cost(&tokens, row));
        let allowed = r.audit.cheapest_allowed_cost_usd.unwrap();
        let any = r.audit.cheapest_any_cost_usd.unwrap();
        assert!(any <= allowed, "{r:?}");
    }
    let completed = outcomes["completed"];
    assert!(completed > 19_000 && completed < 20_000, "{outcomes:?}");
    for other in ["rejected", "upstream_error", "client_cancelled"] {
        assert!(
            outcomes.get(other).copied().unwrap_or(0) > 20,
            "{outcomes:?}"
        );
    }
    let keys: BTreeSet<&str> = records.iter().map(|r| r.key_name.as_str()).collect();
    assert!(keys.len() >= 15, "{keys:?}");
    let models: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.logical_model.as_deref())
        .collect();
    let configured: BTreeSet<&str> = s.models.iter().map(|m| m.name.as_str()).collect();
    assert!(
        models.is_subset(&configured) && models.len() >= 2,
        "{models:?}"
    );
    let jurisdictions: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.jurisdiction.as_deref())
        .collect();
    assert!(
        jurisdictions.contains("EU") && jurisdictions.len() >= 2,
        "{jurisdictions:?}"
    );
}
