//! Writing imported prices into a catalog file as ordinary `[[prices]]` rows with
//! provenance (`source` = the file and the entry's key, `as_of` = the import day or the
//! one given), keeping the file's own rows, comments and order.
//!
//! Conflict rule: an offer (and service tier) the file already prices keeps its own rows
//! and the imported row is left out; with `overwrite` the imported row is added and
//! replaces any row of the same offer, service tier and `effective_from` (an older own
//! row stays as history). The result is validated as a whole
//! catalog before it is returned, so a merge never produces a file tollgate refuses.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;

use super::{Format, ImportRow};
use crate::catalog::{PriceBook, PriceRow, PriceTier, PricingError};

/// How to merge.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The imported file's name, for `source`.
    pub file_label: String,
    /// The imported file's format, for `source` and ids.
    pub format: Format,
    /// The day the figures were read (`as_of`).
    pub as_of: NaiveDate,
    /// The day the imported rows take effect.
    pub effective_from: NaiveDate,
    /// Replace existing rows of the same offer and `effective_from`.
    pub overwrite: bool,
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// New rows appended.
    pub added: usize,
    /// Existing rows replaced (only with `overwrite`).
    pub replaced: usize,
    /// Imported rows left out because the file already prices that offer.
    pub kept_existing: Vec<String>,
}

/// Merge `rows` into the catalog `existing` (its text); returns the new text.
pub fn merge(
    existing: &str,
    rows: &[ImportRow],
    opts: &MergeOptions,
) -> Result<(String, MergeSummary), PricingError> {
    let book = PriceBook::from_toml_str(existing)?;
    let from = opts.effective_from.and_time(NaiveTime::MIN).and_utc();
    let mut segments = split_rows(existing);
    let mut summary = MergeSummary::default();
    let mut remove = vec![false; book.rows().len()];
    let mut added = String::new();
    for row in rows {
        // tollgate's own figures win: an offer the file already prices is left alone, so an
        // import never silently takes over from a checked row (from `effective_from` on).
        let same = |r: &PriceRow| r.offer == row.offer && r.service_tier == row.service_tier;
        if !opts.overwrite && book.rows().iter().any(same) {
            summary.kept_existing.push(match row.service_tier {
                Some(tier) => format!("{} ({})", row.offer, tier.as_str()),
                None => row.offer.clone(),
            });
            continue;
        }
        let clashes: Vec<usize> = book
            .rows()
            .iter()
            .enumerate()
            .filter(|(_, r)| same(r) && r.effective_from == from)
            .map(|(i, _)| i)
            .collect();
        for i in clashes {
            if let Some(flag) = remove.get_mut(i) {
                if !*flag {
                    summary.replaced += 1;
                }
                *flag = true;
            }
        }
        write_row(&mut added, row, opts);
        summary.added += 1;
    }
    // Rows are removed only when the text splits cleanly into one segment per row.
    if segments.rows.len() == remove.len() {
        for (segment, gone) in segments.rows.iter_mut().zip(&remove) {
            if *gone {
                *segment = trailing_comments(segment).to_owned();
            }
        }
    }
    let mut text = segments.head;
    for segment in segments.rows {
        text.push_str(&segment);
    }
    if !added.is_empty() {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = write!(
            text,
            "\n# Imported from {} ({}) on {}.\n{added}",
            opts.file_label,
            opts.format.tag(),
            opts.as_of
        );
    }
    PriceBook::from_toml_str(&text)?;
    Ok((text, summary))
}

struct Segments {
    head: String,
    rows: Vec<String>,
}

/// The text before the first `[[prices]]`, then one segment per row from its header.
fn split_rows(text: &str) -> Segments {
    let mut head = String::new();
    let mut rows: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.trim() == "[[prices]]" {
            rows.push(String::new());
        }
        match rows.last_mut() {
            Some(row) => row.push_str(line),
            None => head.push_str(line),
        }
    }
    Segments { head, rows }
}

/// The comment and blank lines ending a segment: they introduce the next row.
fn trailing_comments(segment: &str) -> &str {
    let mut cut = segment.len();
    for line in segment.split_inclusive('\n').rev() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            cut -= line.len();
        } else {
            break;
        }
    }
    segment.get(cut..).unwrap_or_default()
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn price(d: Decimal) -> String {
    quoted(&d.normalize().to_string())
}

/// `tiers = [ { above_input_tokens = N, input_per_mtok = "…", … } ]` on one line.
fn tiers_line(tiers: &[PriceTier]) -> String {
    let tier = |t: &PriceTier| {
        let mut fields = vec![
            format!("above_input_tokens = {}", t.above_input_tokens),
            format!("input_per_mtok = {}", price(t.input_per_mtok)),
        ];
        if let Some(c) = t.cached_input_per_mtok {
            fields.push(format!("cached_input_per_mtok = {}", price(c)));
        }
        if let Some(c) = t.cache_write_per_mtok {
            fields.push(format!("cache_write_per_mtok = {}", price(c)));
        }
        fields.push(format!("output_per_mtok = {}", price(t.output_per_mtok)));
        format!("{{ {} }}", fields.join(", "))
    };
    let all: Vec<String> = tiers.iter().map(tier).collect();
    format!("tiers = [ {} ]", all.join(", "))
}

fn write_row(out: &mut String, row: &ImportRow, opts: &MergeOptions) {
    let tier = row
        .service_tier
        .map_or(String::new(), |t| format!("{}/", t.as_str()));
    let id = format!(
        "{}/{tier}{}-{}",
        row.offer,
        opts.effective_from,
        opts.format.tag()
    );
    let source = format!(
        "{} {} ({})",
        opts.file_label,
        row.source_key,
        opts.format.tag()
    );
    let _ = writeln!(out, "\n[[prices]]");
    let _ = writeln!(out, "id = {}", quoted(&id));
    let _ = writeln!(out, "offer = {}", quoted(&row.offer));
    if let Some(tier) = row.service_tier {
        let _ = writeln!(out, "service_tier = {}", quoted(tier.as_str()));
    }
    let _ = writeln!(out, "currency = \"USD\"");
    let _ = writeln!(out, "input_per_mtok = {}", price(row.input_per_mtok));
    if let Some(c) = row.cached_input_per_mtok {
        let _ = writeln!(out, "cached_input_per_mtok = {}", price(c));
    }
    if let Some(c) = row.cache_write_per_mtok {
        let _ = writeln!(out, "cache_write_per_mtok = {}", price(c));
    }
    let _ = writeln!(out, "output_per_mtok = {}", price(row.output_per_mtok));
    if !row.tiers.is_empty() {
        let _ = writeln!(out, "{}", tiers_line(&row.tiers));
    }
    let _ = writeln!(out, "effective_from = \"{}\"", opts.effective_from);
    let _ = writeln!(out, "source = {}", quoted(&source));
    let _ = writeln!(out, "as_of = \"{}\"", opts.as_of);
}
