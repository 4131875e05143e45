use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;
use crate::catalog::PriceBook;

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
fn genai_prices_plain_and_tiered_prices_import_and_conditional_ones_are_skipped() {
    let text = r#"[{"id": "deepseek", "name": "DeepSeek", "models": [
        {"id": "deepseek-reasoner", "prices": {"input_mtok": 0.55, "cache_read_mtok": 0.14, "output_mtok": 2.19}},
        {"id": "tiered", "prices": {"input_mtok": {"base": 1, "tiers": []}, "output_mtok": 2}},
        {"id": "dated", "prices": [{"constraint": {}, "prices": {"input_mtok": 1, "output_mtok": 2}}]},
        {"id": "odd", "prices": {"input_mtok": {"base": 1, "tiers": [{"start": "many", "price": 2}]}, "output_mtok": 2}}
    ]}]"#;
    let parsed = parse(Format::GenaiPrices, text).unwrap();
    assert_eq!(parsed.rows.len(), 2);
    assert_eq!(parsed.rows[0].offer, "deepseek/deepseek-reasoner");
    assert_eq!(parsed.rows[0].cached_input_per_mtok, Some(d("0.14")));
    assert_eq!(
        (parsed.rows[1].input_per_mtok, parsed.rows[1].tiers.len()),
        (d("1"), 0)
    );
    assert_eq!(parsed.skipped.len(), 2, "{:?}", parsed.skipped);
    assert!(parsed.skipped[0].starts_with("deepseek/dated: conditional"));
    assert!(parsed.skipped[1].starts_with("deepseek/odd: a price that is neither"));
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
        tiers: Vec::new(),
        service_tier: None,
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

// ------------------------------------------------------------ tiers and service tiers

fn tier(
    above: u64,
    input: &str,
    cached: Option<&str>,
    write: Option<&str>,
    output: &str,
) -> PriceTier {
    PriceTier {
        above_input_tokens: above,
        input_per_mtok: d(input),
        cached_input_per_mtok: cached.map(d),
        cache_write_per_mtok: write.map(d),
        cache_write_1h_per_mtok: None,
        output_per_mtok: d(output),
    }
}

const LITELLM_TIERS: &str = include_str!("../../../tests/fixtures/catalogs/litellm-tiers.json");
const GENAI_TIERS: &str = include_str!("../../../tests/fixtures/catalogs/genai-prices-tiers.yml");

fn find<'a>(
    rows: &'a [ImportRow],
    offer: &str,
    service_tier: Option<ServiceTier>,
) -> &'a ImportRow {
    rows.iter()
        .find(|r| r.offer == offer && r.service_tier == service_tier)
        .unwrap_or_else(|| panic!("no {offer} {service_tier:?} in {rows:#?}"))
}

#[test]
fn litellm_above_200k_prices_become_a_tier_naming_every_price_of_the_row() {
    let parsed = parse(Format::Litellm, LITELLM_TIERS).unwrap();
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let pro = find(&parsed.rows, "gemini/gemini-2.5-pro", None);
    assert_eq!(
        (
            pro.input_per_mtok,
            pro.cached_input_per_mtok,
            pro.output_per_mtok
        ),
        (d("1.25"), Some(d("0.125")), d("10"))
    );
    assert_eq!(pro.tiers, [tier(200_000, "2.5", Some("0.25"), None, "15")]);
    let sonnet = find(
        &parsed.rows,
        "bedrock_converse/anthropic.claude-sonnet-4-5-20250929-v1:0",
        None,
    );
    assert_eq!(
        sonnet.tiers,
        [tier(200_000, "6", Some("0.6"), Some("7.5"), "22.5")]
    );
}

#[test]
fn litellm_flex_and_priority_prices_become_service_tier_rows_with_their_own_tiers() {
    let parsed = parse(Format::Litellm, LITELLM_TIERS).unwrap();
    let flex = find(&parsed.rows, "openai/gpt-5", Some(ServiceTier::Flex));
    assert_eq!(
        (
            flex.input_per_mtok,
            flex.cached_input_per_mtok,
            flex.output_per_mtok
        ),
        (d("0.625"), Some(d("0.0625")), d("5"))
    );
    let priority = find(&parsed.rows, "openai/gpt-5", Some(ServiceTier::Priority));
    assert_eq!(priority.output_per_mtok, d("20"));
    assert_eq!(
        find(&parsed.rows, "openai/gpt-5", None).input_per_mtok,
        d("1.25")
    );
    // `_above_272k_tokens_priority` is the priority row's long-context tier, and only its.
    let base = find(&parsed.rows, "openai/gpt-5.4", None);
    assert_eq!(base.tiers, [tier(272_000, "5", Some("0.5"), None, "22.5")]);
    let priority = find(&parsed.rows, "openai/gpt-5.4", Some(ServiceTier::Priority));
    assert_eq!(priority.tiers, [tier(272_000, "10", Some("1"), None, "45")]);
    assert_eq!(parsed.rows.len(), 7);
}

#[test]
fn a_half_given_service_tier_or_a_tier_price_without_its_base_is_skipped_with_the_reason() {
    let text = r#"{
      "a": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "input_cost_per_token_flex": 5e-07, "litellm_provider": "x"},
      "b": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "cache_read_input_token_cost_above_200k_tokens": 1e-07, "litellm_provider": "x"}
    }"#;
    let parsed = parse(Format::Litellm, text).unwrap();
    assert!(parsed.rows.is_empty());
    assert_eq!(
        parsed.skipped,
        [
            "a: flex tier: needs both input_cost_per_token_flex and output_cost_per_token_flex",
            "b: cache_read_input_token_cost_above_200k_tokens without a base cache_read_input_token_cost; add it by hand",
        ]
    );
}

#[test]
fn genai_prices_tiers_map_onto_row_tiers_with_untiered_classes_repeated() {
    let parsed = parse(Format::GenaiPrices, GENAI_TIERS).unwrap();
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let sonnet = find(
        &parsed.rows,
        "aws/global.anthropic.claude-sonnet-4-6-v1:0",
        None,
    );
    assert_eq!(
        (
            sonnet.input_per_mtok,
            sonnet.cached_input_per_mtok,
            sonnet.cache_write_per_mtok,
            sonnet.output_per_mtok
        ),
        (d("3"), Some(d("0.3")), Some(d("3.75")), d("15"))
    );
    assert_eq!(
        sonnet.tiers,
        [tier(200_000, "6", Some("0.6"), Some("7.5"), "22.5")]
    );
    assert!(find(&parsed.rows, "aws/deepseek.r1-v1:0", None)
        .tiers
        .is_empty());
    // Input steps at 128k and 1M, output only at 1M, the cache read never: every tier
    // names each price at what the source bills in its range.
    let two = find(&parsed.rows, "aws/two-step", None);
    assert_eq!(
        two.tiers,
        [
            tier(128_000, "2", Some("0.1"), None, "5"),
            tier(1_000_000, "4", Some("0.1"), None, "9"),
        ]
    );
}

#[test]
fn merged_tiers_and_service_tiers_price_exactly_what_the_source_bills() {
    let parsed = parse(Format::Litellm, LITELLM_TIERS).unwrap();
    let (text, summary) = merge(OWN, &parsed.rows, &opts(false)).unwrap();
    assert_eq!(summary.added, 7);
    assert!(text.contains(
        "tiers = [ { above_input_tokens = 200000, input_per_mtok = \"2.5\", cached_input_per_mtok = \"0.25\", output_per_mtok = \"15\" } ]"
    ));
    assert!(text.contains("id = \"openai/gpt-5/flex/2025-01-01-litellm\"\noffer = \"openai/gpt-5\"\nservice_tier = \"flex\""));
    let book = PriceBook::from_toml_str(&text).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let usage = |input, tier| crate::tokens::Usage {
        input: Some(input),
        output: Some(1_000),
        service_tier: tier,
        ..crate::tokens::Usage::default()
    };
    let cost = |offer, input, tier| book.apply(offer, at, &usage(input, tier)).unwrap().cost;
    // LiteLLM: 200000·1.25e-6 + 1000·1e-5 at the threshold, 200001·2.5e-6 + 1000·1.5e-5 past it.
    assert_eq!(cost("gemini/gemini-2.5-pro", 200_000, None), d("0.26"));
    assert_eq!(cost("gemini/gemini-2.5-pro", 200_001, None), d("0.5150025"));
    // gpt-5.4 priority past 272k: 272001·1e-5 + 1000·4.5e-5.
    let p = Some(ServiceTier::Priority);
    assert_eq!(cost("openai/gpt-5.4", 272_001, p), d("2.76501"));
    assert_eq!(
        cost("openai/gpt-5", 1_000, Some(ServiceTier::Flex)),
        d("0.005625")
    );

    // A second import keeps the rows it added, per offer and service tier.
    let (_, again) = merge(&text, &parsed.rows, &opts(false)).unwrap();
    assert_eq!(again.added, 0);
    assert!(again
        .kept_existing
        .contains(&"openai/gpt-5 (flex)".to_owned()));
    // With overwrite, a flex row replaces the flex row only.
    let (text, again) = merge(&text, &parsed.rows, &opts(true)).unwrap();
    assert_eq!((again.added, again.replaced), (7, 7));
    PriceBook::from_toml_str(&text).unwrap();
}
