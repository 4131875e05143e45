use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;
use crate::pricing::PriceBook;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn litellm_per_token_prices_become_exact_per_million() {
    let text = r#"{
      "sample_spec": {"input_cost_per_token": 0.0},
      "deepseek/deepseek-reasoner": {"input_cost_per_token": 5.5e-07, "output_cost_per_token": 2.19e-06,
        "cache_read_input_token_cost": 1.4e-07, "litellm_provider": "deepseek", "mode": "chat"},
      "o1": {"input_cost_per_token": 0.000015, "output_cost_per_token": 0.00006, "litellm_provider": "openai"},
      "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation"}
    }"#;
    let parsed = parse(Format::Litellm, text).unwrap();
    assert_eq!(parsed.rows.len(), 2);
    let r = &parsed.rows[0];
    assert_eq!(r.offer, "deepseek/deepseek-reasoner");
    assert_eq!(r.input_per_mtok, d("0.55"));
    assert_eq!(r.output_per_mtok, d("2.19"));
    assert_eq!(r.cached_input_per_mtok, Some(d("0.14")));
    assert_eq!(parsed.rows[1].offer, "openai/o1");
    assert_eq!(parsed.rows[1].input_per_mtok, d("15"));
    assert_eq!(parsed.skipped.len(), 1);
}

#[test]
fn genai_prices_plain_prices_import_and_tiered_ones_are_skipped() {
    let text = r#"[{"id": "deepseek", "name": "DeepSeek", "models": [
        {"id": "deepseek-reasoner", "prices": {"input_mtok": 0.55, "cache_read_mtok": 0.14, "output_mtok": 2.19}},
        {"id": "tiered", "prices": {"input_mtok": {"base": 1, "tiers": []}, "output_mtok": 2}},
        {"id": "dated", "prices": [{"constraint": {}, "prices": {"input_mtok": 1, "output_mtok": 2}}]}
    ]}]"#;
    let parsed = parse(Format::GenaiPrices, text).unwrap();
    assert_eq!(parsed.rows.len(), 1);
    assert_eq!(parsed.rows[0].offer, "deepseek/deepseek-reasoner");
    assert_eq!(parsed.rows[0].cached_input_per_mtok, Some(d("0.14")));
    assert_eq!(parsed.skipped.len(), 2);
}

fn opts(overwrite: bool) -> MergeOptions {
    MergeOptions {
        file_label: "prices.json".into(),
        format: Format::Litellm,
        as_of: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
        effective_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        overwrite,
    }
}

const OWN: &str = r#"# own catalog
[[prices]]
id = "a/x/2025-01-01"
offer = "a/x"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-01-01"
source = "own"
as_of = "2025-01-01"

# second row
[[prices]]
id = "b/y/2025-01-01"
offer = "b/y"
currency = "USD"
input_per_mtok = "3"
output_per_mtok = "4"
effective_from = "2025-01-01"
source = "own"
as_of = "2025-01-01"
"#;

fn row(offer: &str, input: &str) -> ImportRow {
    ImportRow {
        offer: offer.into(),
        source_key: offer.into(),
        input_per_mtok: d(input),
        cached_input_per_mtok: None,
        cache_write_per_mtok: None,
        output_per_mtok: d("9"),
    }
}

#[test]
fn own_rows_win_unless_overwrite() {
    let rows = [row("a/x", "7"), row("c/z", "0.5")];
    let (text, summary) = merge(OWN, &rows, &opts(false)).unwrap();
    assert_eq!(summary.added, 1);
    assert_eq!(summary.kept_existing, ["a/x"]);
    let book = PriceBook::from_toml_str(&text).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(book.lookup("a/x", at).unwrap().input_per_mtok, d("1"));
    let imported = book.lookup("c/z", at).unwrap();
    assert_eq!(imported.input_per_mtok, d("0.5"));
    assert_eq!(imported.source, "prices.json c/z (litellm)");
    assert!(text.starts_with(OWN));

    let (text, summary) = merge(OWN, &rows, &opts(true)).unwrap();
    assert_eq!((summary.added, summary.replaced), (2, 1));
    let book = PriceBook::from_toml_str(&text).unwrap();
    assert_eq!(book.lookup("a/x", at).unwrap().input_per_mtok, d("7"));
    assert_eq!(book.lookup("b/y", at).unwrap().input_per_mtok, d("3"));
    assert!(text.contains("# second row"));
}

#[test]
fn a_genai_prices_yaml_provider_file_imports_with_its_exact_digits() {
    let text = include_str!("../../../tests/fixtures/catalogs/genai-prices-deepseek.yml");
    let parsed = parse(Format::GenaiPrices, text).unwrap();
    assert_eq!(parsed.rows.len(), 2);
    let r1 = &parsed.rows[0];
    assert_eq!(r1.offer, "deepseek/deepseek-reasoner");
    assert_eq!(
        (
            r1.input_per_mtok,
            r1.cached_input_per_mtok,
            r1.output_per_mtok
        ),
        (d("0.55"), Some(d("0.14")), d("2.19"))
    );
    assert_eq!(parsed.rows[1].output_per_mtok, d("1.1"));
    assert!(
        parse(Format::Litellm, text).is_err(),
        "LiteLLM files are JSON only"
    );
}

#[test]
fn float_noise_is_rounded_to_the_places_a_catalog_accepts() {
    let text = r#"{
      "x/third": {"input_cost_per_token": 3.3333333333333335e-07, "output_cost_per_token": 1e-06,
        "litellm_provider": "x", "mode": "chat"}
    }"#;
    let parsed = parse(Format::Litellm, text).unwrap();
    assert_eq!(parsed.rows[0].input_per_mtok, d("0.333333333"));
}
