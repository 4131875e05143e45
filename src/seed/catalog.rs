//! What synthetic traffic is drawn from: the configured models with their offers (and the
//! offers they are compared with), and twenty synthetic app keys in four teams, each with a
//! residency (some EU-only) and a few models it uses. Built once from `Settings`.

use rand::distr::weighted::WeightedIndex;
use serde_json::{json, Value};

use crate::config::Settings;
use crate::pricing::compare::{self, Candidate};

/// `(team, key)`: twenty keys in four teams, most used first.
const KEYS: [(&str, &str); 20] = [
    ("search", "search-api"),
    ("support", "support-bot"),
    ("growth", "growth-emails"),
    ("research", "research-notebooks"),
    ("search", "search-rerank"),
    ("support", "support-triage"),
    ("growth", "growth-ads-copy"),
    ("research", "research-evals"),
    ("search", "search-summaries"),
    ("support", "support-translate"),
    ("growth", "growth-seo"),
    ("research", "research-agents"),
    ("search", "search-autocomplete"),
    ("support", "support-qa"),
    ("growth", "growth-experiments"),
    ("research", "research-batch"),
    ("search", "search-offline"),
    ("support", "support-voice"),
    ("growth", "growth-internal"),
    ("research", "research-sandbox"),
];

/// The team of a synthetic key (for records that carry their key's team).
pub fn team_of(key: &str) -> Option<&'static str> {
    KEYS.iter().find(|(_, k)| *k == key).map(|(team, _)| *team)
}

/// One offer a synthetic request may be served by.
#[derive(Debug, Clone)]
pub(super) struct Offer {
    pub provider: String,
    pub upstream_model: String,
    pub price: Option<String>,
    pub region: String,
    pub jurisdiction: String,
    pub scope: &'static str,
    /// Whether the model spends reasoning tokens (o1, R1-style models).
    pub reasons: bool,
}

/// A logical model: its offers in configured order and everything it is compared with.
#[derive(Debug, Clone)]
pub(super) struct Model {
    pub name: String,
    pub offers: Vec<Offer>,
    pub candidates: Vec<Candidate>,
}

/// A synthetic app key.
#[derive(Debug, Clone)]
pub(super) struct Key {
    pub name: &'static str,
    /// Only offers in the EU (the key's residency policy).
    pub eu_only: bool,
    /// `(model index, its offers this key may use)`, most used first.
    pub models: Vec<(usize, Vec<usize>)>,
    pub model_pick: WeightedIndex<f64>,
    /// The policy decision as its records carry it.
    pub policy: Value,
}

/// Everything the generator draws from.
#[derive(Debug, Clone)]
pub(super) struct Catalog {
    pub models: Vec<Model>,
    pub keys: Vec<Key>,
    pub key_pick: WeightedIndex<f64>,
}

/// Why no synthetic traffic can be drawn from a configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the configuration has no model with an offer to draw synthetic traffic from")]
pub struct EmptyCatalog;

impl Catalog {
    pub(super) fn new(settings: &Settings) -> Result<Self, EmptyCatalog> {
        let models: Vec<Model> = settings
            .models
            .iter()
            .map(|m| Model {
                name: m.name.clone(),
                offers: m
                    .offers
                    .iter()
                    .filter_map(|o| {
                        let p = settings.providers.get(o.provider)?;
                        let lower = o.upstream_model.to_ascii_lowercase();
                        Some(Offer {
                            provider: p.id.clone(),
                            upstream_model: o.upstream_model.clone(),
                            price: o.price.clone(),
                            region: p.residency.region.clone(),
                            jurisdiction: p.residency.jurisdiction.clone(),
                            scope: p.residency.scope.as_str(),
                            reasons: ["o1", "o3", "r1", "reasoner"]
                                .iter()
                                .any(|r| lower.contains(r)),
                        })
                    })
                    .collect(),
                candidates: compare::candidates(settings, &m.name).unwrap_or_default(),
            })
            .filter(|m| !m.offers.is_empty())
            .collect();
        let keys: Vec<Key> = KEYS
            .iter()
            .enumerate()
            .filter_map(|(rank, (team, name))| key(rank, team, name, &models))
            .collect();
        // Zipf-like: the busiest key sends several times what the quietest does.
        let weights = (1..=keys.len()).map(|rank| 1.0 / (rank as f64).powf(0.8));
        let key_pick = WeightedIndex::new(weights).map_err(|_| EmptyCatalog)?;
        Ok(Self {
            models,
            keys,
            key_pick,
        })
    }
}

/// The key of this rank, or `None` if its residency leaves it no model.
fn key(rank: usize, team: &'static str, name: &'static str, models: &[Model]) -> Option<Key> {
    // Research and support keep data in the EU (as the example config's research key does).
    let eu_only = matches!(team, "research" | "support");
    let usable: Vec<(usize, Vec<usize>)> = models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let offers: Vec<usize> = m
                .offers
                .iter()
                .enumerate()
                .filter(|(_, o)| !eu_only || o.jurisdiction == "EU")
                .map(|(j, _)| j)
                .collect();
            (!offers.is_empty()).then_some((i, offers))
        })
        .collect();
    if usable.is_empty() {
        return None;
    }
    // Each key leans on one model (a different one by rank) and uses the others less.
    let first = rank % usable.len();
    let mut ordered = usable;
    ordered.rotate_left(first);
    ordered.truncate(3);
    let weights = (0..ordered.len()).map(|i| [0.75, 0.2, 0.05].get(i).copied().unwrap_or(0.05));
    let model_pick = WeightedIndex::new(weights).ok()?;
    let policy = json!({
        "allow_jurisdictions": if eu_only { json!(["EU"]) } else { Value::Null },
        "deny_jurisdictions": ["CN"],
        "allow_regions": null,
        "allow_scopes": null,
        "requested_jurisdictions": null,
        "allowed_offers": ordered.first().map(|(_, offers)| offers.clone()).unwrap_or_default(),
        "excluded": [],
    });
    Some(Key {
        name,
        eu_only,
        models: ordered,
        model_pick,
        policy,
    })
}
