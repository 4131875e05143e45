//! What-if repricing: recorded traffic priced as if it had gone to another offer (a
//! catalog offer key) or another logical model (its cheapest offer at each record's
//! time), totalled per model and day beside the recorded cost.
//!
//! Pure: records folded in one at a time ([`Repricer`]), totals out, exact `Decimal` sums
//! of per-record costs, so the ledger streams records through it and memory holds only
//! the (model, day) lines. Not from rollups: the price of a record depends on its own
//! token mix (a model target picks the cheapest offer per record), on prices that may
//! change at any minute (time-of-day windows) and on per-record saturation, none of
//! which survives summing tokens first. It reuses each record's token counts as they
//! are, which is where the comparison is approximate (see [`Repricer::caveats`]).
//! Reading the ledger is `ledger::LedgerStore::fold_records`; the command is
//! `tollgate reprice`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::compare::{self, Candidate};
use crate::catalog::{cost, PriceBook, TokenCounts};
use crate::ledger::{PricingStatus, UsageRecord};
use crate::tokens::estimate::TokenizerKind;

/// Where the traffic is imagined to go.
#[derive(Debug, Clone)]
pub enum Target {
    /// One catalog offer key, e.g. `openai/o1`.
    Offer(String),
    /// A logical model: the cheapest of its candidates at each record's time.
    Model {
        /// The model's name.
        name: String,
        /// Its offers (and its comparison groups' when wanted).
        candidates: Vec<Candidate>,
    },
}

impl Target {
    /// The name to print.
    pub fn name(&self) -> &str {
        match self {
            Target::Offer(key) => key,
            Target::Model { name, .. } => name,
        }
    }
}

/// Totals of one (model, day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// Requests with usage.
    pub requests: u64,
    /// Sum of recorded costs (priced records only).
    pub recorded: Decimal,
    /// Records recorded without a cost.
    pub recorded_unpriced: u64,
    /// Sum of what the records would have cost on the target.
    pub repriced: Decimal,
    /// Records the target has no price for at their time.
    pub repriced_unpriced: u64,
}

/// The record's billable tokens; `None` when it carries no usage.
fn tokens(r: &UsageRecord) -> Option<TokenCounts> {
    if r.pricing == PricingStatus::NotApplicable {
        return None;
    }
    Some(TokenCounts {
        input: r.input_tokens?,
        cached_input: r.cached_input_tokens.unwrap_or(0),
        cache_write: r.cache_write_tokens.unwrap_or(0),
        cache_write_1h: r.cache_write_1h_tokens.unwrap_or(0),
        output: r.output_tokens?,
        reasoning: r.reasoning_tokens.unwrap_or(0),
    })
}

/// What one record would have cost on `target`; `None` when it has no usage or the target
/// no price at its time.
pub fn reprice_record(prices: &PriceBook, target: &Target, r: &UsageRecord) -> Option<Decimal> {
    let t = tokens(r)?;
    match target {
        Target::Offer(key) => prices.lookup(key, r.created_at).map(|row| cost(&t, row)),
        Target::Model { candidates, .. } => {
            compare::cheapest(prices, candidates.iter(), &t, r.created_at).map(|(c, _)| c)
        }
    }
}

/// Totals per (logical model, UTC day), summing [`reprice_record`] exactly, and what
/// makes the comparison approximate; fed one record at a time.
#[derive(Debug, Clone)]
pub struct Repricer {
    prices: PriceBook,
    target: Target,
    target_kinds: Vec<TokenizerKind>,
    /// The totals so far.
    pub lines: BTreeMap<(String, NaiveDate), Line>,
    tokenizer_differs: bool,
    other_model: bool,
    reasoning: bool,
}

impl Repricer {
    /// Nothing folded yet.
    pub fn new(prices: PriceBook, target: Target) -> Self {
        let target_kinds = match &target {
            Target::Offer(key) => vec![TokenizerKind::for_model(key)],
            Target::Model { candidates, .. } => candidates
                .iter()
                .map(|c| TokenizerKind::for_model(&c.upstream_model))
                .collect(),
        };
        Self {
            prices,
            target,
            target_kinds,
            lines: BTreeMap::new(),
            tokenizer_differs: false,
            other_model: false,
            reasoning: false,
        }
    }

    /// Fold in one record.
    pub fn add(&mut self, r: &UsageRecord) {
        let kind = TokenizerKind::for_model(r.upstream_model.as_deref().unwrap_or(""));
        self.tokenizer_differs |= self.target_kinds.iter().any(|k| *k != kind);
        self.other_model |= match &self.target {
            Target::Model { name, .. } => r.logical_model.as_deref() != Some(name.as_str()),
            Target::Offer(_) => true,
        };
        self.reasoning |= r.reasoning_tokens.unwrap_or(0) > 0;
        if tokens(r).is_none() {
            return;
        }
        let model = r.logical_model.clone().unwrap_or_else(|| "-".into());
        let line = self
            .lines
            .entry((model, r.created_at.date_naive()))
            .or_default();
        line.requests += 1;
        match r.cost_usd {
            Some(c) => line.recorded += c,
            None => line.recorded_unpriced += 1,
        }
        match reprice_record(&self.prices, &self.target, r) {
            Some(c) => line.repriced += c,
            None => line.repriced_unpriced += 1,
        }
    }

    /// Where the comparison is approximate, as sentences to print under the totals.
    pub fn caveats(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.tokenizer_differs {
            out.push("approximate: the target counts tokens with a different tokenizer than the recorded offers; the same text would be a different number of tokens there.".to_owned());
        }
        if self.other_model && self.reasoning {
            out.push("approximate: reasoning volume differs between models; recorded reasoning tokens are billed as if the target had thought exactly as long.".to_owned());
        }
        out
    }
}

/// Totals per (logical model, UTC day) of `records`: a [`Repricer`] over them.
pub fn reprice<'a>(
    prices: &PriceBook,
    target: &Target,
    records: impl IntoIterator<Item = &'a UsageRecord>,
) -> BTreeMap<(String, NaiveDate), Line> {
    let mut fold = Repricer::new(prices.clone(), target.clone());
    for r in records {
        fold.add(r);
    }
    fold.lines
}

/// The totals as a table: one line per model and day, then the total and the caveats.
pub fn render(
    target: &Target,
    lines: &BTreeMap<(String, NaiveDate), Line>,
    caveats: &[String],
) -> String {
    let mut out = String::new();
    let header = format!("as {}", target.name());
    let w = header.len().max(16);
    let _ = writeln!(
        out,
        "{:<24} {:<10} {:>8} {:>16} {header:>w$} {:>16}",
        "model", "day", "requests", "recorded_usd", "difference_usd"
    );
    let mut total = Line::default();
    for ((model, day), l) in lines {
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:>8} {:>16} {:>w$} {:>16}",
            model,
            day.to_string(),
            l.requests,
            l.recorded.normalize().to_string(),
            l.repriced.normalize().to_string(),
            (l.repriced - l.recorded).normalize().to_string()
        );
        total.requests += l.requests;
        total.recorded += l.recorded;
        total.repriced += l.repriced;
        total.recorded_unpriced += l.recorded_unpriced;
        total.repriced_unpriced += l.repriced_unpriced;
    }
    let _ = writeln!(
        out,
        "{:<24} {:<10} {:>8} {:>16} {:>w$} {:>16}",
        "total",
        "",
        total.requests,
        total.recorded.normalize().to_string(),
        total.repriced.normalize().to_string(),
        (total.repriced - total.recorded).normalize().to_string()
    );
    if total.recorded_unpriced > 0 || total.repriced_unpriced > 0 {
        let _ = writeln!(
            out,
            "unpriced (left out of the sums): {} recorded, {} on the target",
            total.recorded_unpriced, total.repriced_unpriced
        );
    }
    for c in caveats {
        let _ = writeln!(out, "note: {c}");
    }
    out
}
