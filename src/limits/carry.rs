//! Reloads keep the limits' state: a new configuration's [`Limits`] takes over the
//! previous one's rate-limit cells, quota windows and budget spend for the keys, teams
//! and offers that still exist. Keys and teams are matched by name, offers by model
//! name and identity (provider id and upstream model), never by index, since indexes
//! shift when entries are added or removed.
//!
//! A limit that did not change keeps the previous limiter itself, so a request still
//! finishing on the previous configuration charges the state now in force. A changed
//! limit starts from the previous state: the cells in use this minute (requests or
//! tokens) count against the new limit, up to its whole burst, any over-use debt
//! carries, and both come back at the new rate (so rpm 2 -> 4 after two requests
//! leaves two; rpm 4 -> 2 after four leaves none, the next one a refill away); a day
//! quota keeps its admissions (the newest ones when the limit went down); a budget
//! keeps its spend, the very same sums, judged against the new amounts.
//! Keys, teams and offers new to the configuration start fresh (budgets from the
//! ledger). This file only moves state; it decides nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::budget::Account;
use super::gcra::Gcra;
use super::quota::OfferQuota;
use super::Limits;
use crate::config::{ModelSettings, Settings};

/// Each offer's identity within `model`: `<provider id>/<upstream model>`, and
/// `#<n>` appended to the n-th repeat of the same pair.
pub(super) fn offer_identities(settings: &Settings, model: &ModelSettings) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    model
        .offers
        .iter()
        .map(|o| {
            let provider = settings
                .providers
                .get(o.provider)
                .map_or("", |p| p.id.as_str());
            let base = format!("{provider}/{}", o.upstream_model);
            let repeat = seen.entry(base.clone()).or_insert(0);
            let identity = match *repeat {
                0 => base,
                n => format!("{base}#{n}"),
            };
            *repeat += 1;
            identity
        })
        .collect()
}

impl Limits {
    /// Take over `previous`'s state (see the module docs). Call on limits freshly
    /// built for the new configuration, after [`Limits::rebuild_from_ledger`] (the
    /// spend carried over is newer than the ledger's, which may still be queued) and
    /// before serving with them.
    pub fn carry_over(&mut self, previous: &Limits) {
        for key in &mut self.keys {
            let Some(old) = previous.keys.iter().find(|k| k.name == key.name) else {
                continue;
            };
            carry_gcra(
                &mut key.requests_per_minute,
                old.requests_per_minute.as_ref(),
            );
            carry_gcra(&mut key.tokens_per_minute, old.tokens_per_minute.as_ref());
            carry_account(&mut key.budget, old.budget.as_ref());
        }
        for team in &mut self.teams {
            if let Some(old) = previous.teams.iter().find(|t| t.name == team.name) {
                carry_account(&mut team.budget, old.budget.as_ref());
            }
        }
        for model in &mut self.models {
            let Some(old) = previous.models.iter().find(|m| m.name == model.name) else {
                continue;
            };
            for offer in &mut model.offers {
                let old_quota = old
                    .offers
                    .iter()
                    .find(|o| o.identity == offer.identity)
                    .and_then(|o| o.quota.as_ref());
                carry_quota(&mut offer.quota, old_quota);
            }
        }
    }
}

fn carry_gcra(new: &mut Option<Arc<Gcra>>, old: Option<&Arc<Gcra>>) {
    let (Some(fresh), Some(old)) = (new.as_ref(), old) else {
        return;
    };
    if fresh.limit() == old.limit() {
        *new = Some(old.clone());
    } else {
        fresh.carry_from(old);
    }
}

fn carry_quota(new: &mut Option<Arc<OfferQuota>>, old: Option<&Arc<OfferQuota>>) {
    let (Some(fresh), Some(old)) = (new.as_ref(), old) else {
        return;
    };
    if fresh.limits() == old.limits() {
        *new = Some(old.clone());
    } else {
        fresh.carry_from(old);
    }
}

fn carry_account(new: &mut Option<Arc<Account>>, old: Option<&Arc<Account>>) {
    let (Some(fresh), Some(old)) = (new.as_ref(), old) else {
        return;
    };
    *new = Some(fresh.sharing_spend(old));
}
