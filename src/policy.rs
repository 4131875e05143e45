//! Residency policy: which of a model's offers a request may reach. Runs before any
//! upstream connection; offers outside the policy are removed, so neither routing
//! nor failover can ever reach them, and the decision is recorded with the request.
//!
//! The policy is the key's effective one (`[policy]` narrowed by the key's own
//! `residency` at validation), narrowed again by the request's `x-tollgate-residency`
//! header with the same rule ([`ResidencyPolicy::narrow`]), so the header can only
//! remove offers, never add them. Fails closed: an unreadable header refuses the request. Quotas, budgets
//! and health are not policy; they are `limits` and `routing`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::api::error::{ErrorCode, GatewayError};
use crate::config::residency;
use crate::config::{ModelSettings, ProviderSettings, ResidencyPolicy, Settings};

/// Why an offer was removed: a closed set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exclusion {
    /// The key's allow-list does not contain the offer's jurisdiction.
    JurisdictionNotAllowed,
    /// The key's deny-list contains it.
    JurisdictionDenied,
    /// The key's region allow-list does not contain the offer's region.
    RegionNotAllowed,
    /// The key refuses the offer's processing scope (e.g. `global`).
    ScopeNotAllowed,
    /// The request's `x-tollgate-residency` header does not include it.
    NotRequested,
}

impl Exclusion {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::JurisdictionNotAllowed => "jurisdiction_not_allowed",
            Exclusion::JurisdictionDenied => "jurisdiction_denied",
            Exclusion::RegionNotAllowed => "region_not_allowed",
            Exclusion::ScopeNotAllowed => "scope_not_allowed",
            Exclusion::NotRequested => "not_requested",
        }
    }
}

/// The offers a request may use, and why the others were removed.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Indexes into the model's offers, in configured order.
    pub allowed: Vec<usize>,
    /// The jurisdictions the request header limited it to; `None` when absent.
    pub requested: Option<BTreeSet<String>>,
    /// (offer index, provider id, reason) for each removed offer.
    pub excluded: Vec<(usize, String, Exclusion)>,
}

impl Decision {
    /// The decision as recorded in the ledger.
    pub fn to_record(&self, policy: &ResidencyPolicy) -> Value {
        json!({
            "allow_jurisdictions": policy.allow_jurisdictions,
            "deny_jurisdictions": policy.deny_jurisdictions,
            "allow_regions": policy.allow_regions,
            "allow_scopes": policy.allow_scopes.as_ref().map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
            "requested_jurisdictions": self.requested,
            "allowed_offers": self.allowed,
            "excluded": self.excluded.iter().map(|(i, p, why)| json!({"offer": i, "provider": p, "reason": why.as_str()})).collect::<Vec<_>>(),
        })
    }

    /// The distinct reasons offers were removed.
    pub fn reasons(&self) -> BTreeSet<Exclusion> {
        self.excluded.iter().map(|(_, _, r)| *r).collect()
    }
}

/// A request's decision as its ledger record carries it: typed, and encoded as
/// [`Decision::to_record`] by the ledger writer, so the request path builds no JSON.
/// It holds the configuration generation the request ran under, for the key's policy.
pub struct RecordedDecision {
    pub decision: Decision,
    settings: Arc<Settings>,
    key_index: usize,
}

impl RecordedDecision {
    /// `decision`, taken under key `key_index`'s policy in `settings`.
    pub fn new(decision: Decision, settings: Arc<Settings>, key_index: usize) -> Self {
        Self {
            decision,
            settings,
            key_index,
        }
    }
}

impl std::fmt::Debug for RecordedDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedDecision")
            .field("decision", &self.decision)
            .field("key_index", &self.key_index)
            .finish_non_exhaustive()
    }
}

impl crate::ledger::DeferredJson for RecordedDecision {
    fn to_json(&self) -> Value {
        self.settings
            .keys
            .get(self.key_index)
            .map_or(Value::Null, |k| self.decision.to_record(&k.residency))
    }
}

/// Parse `x-tollgate-residency`: `EU` or `EU,US`.
fn requested_jurisdictions(headers: &HeaderMap) -> Result<Option<BTreeSet<String>>, GatewayError> {
    let Some(raw) = headers.get("x-tollgate-residency") else {
        return Ok(None);
    };
    let text = raw.to_str().map_err(|_| bad_header())?;
    let list = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| residency::jurisdiction(s).ok_or_else(bad_header))
        .collect::<Result<BTreeSet<String>, _>>()?;
    if list.is_empty() {
        return Err(bad_header());
    }
    Ok(Some(list))
}

fn bad_header() -> GatewayError {
    GatewayError::new(
        ErrorCode::InvalidRequest,
        "x-tollgate-residency must be a comma list of jurisdictions such as \"EU\" or \"EU,US\"",
    )
}

/// Why `provider` is outside `policy` narrowed by `requested`, if it is. Offers the
/// key's policy allows but the narrowed one does not are [`Exclusion::NotRequested`].
pub fn exclusion(
    policy: &ResidencyPolicy,
    requested: Option<&BTreeSet<String>>,
    provider: &ProviderSettings,
) -> Option<Exclusion> {
    let narrowed = requested.map(|r| narrowed_by_header(policy, r));
    exclusion_narrowed(policy, narrowed.as_ref(), provider)
}

/// `policy` narrowed by the header's jurisdictions, with the same rule that narrows
/// `[policy]` by a key's own `residency`.
fn narrowed_by_header(policy: &ResidencyPolicy, requested: &BTreeSet<String>) -> ResidencyPolicy {
    policy.narrow(&ResidencyPolicy::only_jurisdictions(requested.clone()))
}

fn exclusion_narrowed(
    policy: &ResidencyPolicy,
    narrowed: Option<&ResidencyPolicy>,
    provider: &ProviderSettings,
) -> Option<Exclusion> {
    outside(policy, provider).or_else(|| {
        narrowed
            .and_then(|n| outside(n, provider))
            .map(|_| Exclusion::NotRequested)
    })
}

/// Why `provider` is outside `policy`, if it is.
fn outside(policy: &ResidencyPolicy, provider: &ProviderSettings) -> Option<Exclusion> {
    let r = &provider.residency;
    if policy.deny_jurisdictions.contains(&r.jurisdiction) {
        return Some(Exclusion::JurisdictionDenied);
    }
    if policy
        .allow_jurisdictions
        .as_ref()
        .is_some_and(|a| !a.contains(&r.jurisdiction))
    {
        return Some(Exclusion::JurisdictionNotAllowed);
    }
    if policy
        .allow_regions
        .as_ref()
        .is_some_and(|a| !a.contains(&r.region))
    {
        return Some(Exclusion::RegionNotAllowed);
    }
    if policy
        .allow_scopes
        .as_ref()
        .is_some_and(|a| !a.contains(&r.scope))
    {
        return Some(Exclusion::ScopeNotAllowed);
    }
    None
}

/// Decide which offers of `model` a request under `policy` (the key's effective
/// policy) may reach, after narrowing it by the request's `x-tollgate-residency`.
pub fn evaluate(
    policy: &ResidencyPolicy,
    model: &ModelSettings,
    providers: &[ProviderSettings],
    headers: &HeaderMap,
) -> Result<Decision, GatewayError> {
    let requested = requested_jurisdictions(headers)?;
    let narrowed = requested.as_ref().map(|r| narrowed_by_header(policy, r));
    let mut allowed = Vec::new();
    let mut excluded = Vec::new();
    for (i, offer) in model.offers.iter().enumerate() {
        // An offer whose provider cannot be found is never reachable: fail closed.
        let Some(provider) = providers.get(offer.provider) else {
            continue;
        };
        match exclusion_narrowed(policy, narrowed.as_ref(), provider) {
            None => allowed.push(i),
            Some(why) => excluded.push((i, provider.id.clone(), why)),
        }
    }
    Ok(Decision {
        allowed,
        requested,
        excluded,
    })
}

/// The 403 for a request none of whose offers is allowed: says where the model is
/// offered and what the key (and request) allow.
pub fn refusal(
    policy: &ResidencyPolicy,
    decision: &Decision,
    model: &ModelSettings,
    providers: &[ProviderSettings],
) -> GatewayError {
    let offered: BTreeSet<&str> = model
        .offers
        .iter()
        .filter_map(|o| providers.get(o.provider))
        .map(|p| p.residency.jurisdiction.as_str())
        .collect();
    let mut allows = match &policy.allow_jurisdictions {
        Some(a) => a.iter().cloned().collect::<Vec<_>>().join(", "),
        None => "any jurisdiction".to_owned(),
    };
    if !policy.deny_jurisdictions.is_empty() {
        let denied: Vec<&str> = policy
            .deny_jurisdictions
            .iter()
            .map(String::as_str)
            .collect();
        allows.push_str(&format!(" except {}", denied.join(", ")));
    }
    if let Some(scopes) = &policy.allow_scopes {
        let s: Vec<&str> = scopes.iter().map(|x| x.as_str()).collect();
        allows.push_str(&format!(" (processing scopes: {})", s.join(", ")));
    }
    let requested = decision
        .requested
        .as_ref()
        .map(|r| {
            format!(
                "; this request asked for {}",
                r.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .unwrap_or_default();
    GatewayError::new(
        ErrorCode::ResidencyViolation,
        format!(
            "model {:?} is offered in {}, but this key allows {allows}{requested}; use a model offered where your policy allows, or ask the operator to change the key's residency policy",
            model.name,
            offered.into_iter().collect::<Vec<_>>().join(", "),
        ),
    )
}

#[cfg(test)]
mod tests;
