use chrono::{DateTime, Utc};
use rust_decimal_macros::dec;

use crate::catalog::{cost, PriceBook, TokenCounts};
use crate::tokens::{ServiceTier, Usage};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The shape the catalog documents: Gemini 2.5 Pro, dearer above 200k input tokens.
const GEMINI_PRO: &str = r#"
[[prices]]
id = "gemini/gemini-2.5-pro/2025-06-17"
offer = "gemini/gemini-2.5-pro"
currency = "USD"
input_per_mtok = "1.25"
cached_input_per_mtok = "0.31"
output_per_mtok = "10.00"
tiers = [ { above_input_tokens = 200000, input_per_mtok = "2.50", cached_input_per_mtok = "0.625", output_per_mtok = "15.00" } ]
effective_from = "2025-06-17"
source = "test"
as_of = "2025-06-17"
"#;

fn tokens(input: u64, cached_input: u64, output: u64) -> TokenCounts {
    TokenCounts {
        input,
        cached_input,
        output,
        ..TokenCounts::default()
    }
}

fn book(text: &str) -> PriceBook {
    PriceBook::from_toml_str(text).unwrap()
}

fn problems(text: &str) -> Vec<String> {
    let err = PriceBook::from_toml_str(text).unwrap_err();
    err.problems().iter().map(ToString::to_string).collect()
}

// ------------------------------------------------------------ long-context tiers

#[test]
fn exactly_the_threshold_is_base_price_and_one_more_token_prices_the_whole_request_higher() {
    let book = book(GEMINI_PRO);
    let row = book
        .lookup("gemini/gemini-2.5-pro", at("2025-07-01T00:00:00Z"))
        .unwrap();
    // 200000 input + 1000 output at the base: 200000·1.25 + 1000·10 = 260000 / 1e6.
    let at_threshold = tokens(200_000, 0, 1_000);
    assert!(row.tier_for(&at_threshold).is_none());
    assert_eq!(cost(&at_threshold, row), dec!(0.26));
    // One token more and every token is at the tier: 200001·2.5 + 1000·15.
    let above = tokens(200_001, 0, 1_000);
    assert_eq!(row.tier_for(&above).unwrap().above_input_tokens, 200_000);
    assert_eq!(cost(&above, row), dec!(0.5150025));
}

#[test]
fn cached_tokens_count_toward_the_threshold_and_are_billed_at_the_tier_cache_rate() {
    let book = book(GEMINI_PRO);
    let row = book
        .lookup("gemini/gemini-2.5-pro", at("2025-07-01T00:00:00Z"))
        .unwrap();
    // Only 50001 uncached tokens, but the prompt is 200001 tokens long: Google's
    // "prompts longer than 200k tokens" counts the cached part of the prompt too.
    let t = tokens(200_001, 150_000, 1_000);
    // 50001·2.5 + 150000·0.625 + 1000·15 = 233752.5 / 1e6.
    assert_eq!(cost(&t, row), dec!(0.2337525));
    let below = tokens(200_000, 150_000, 1_000);
    // 50000·1.25 + 150000·0.31 + 1000·10 = 119000 / 1e6.
    assert_eq!(cost(&below, row), dec!(0.119));
}

#[test]
fn several_tiers_pick_the_highest_threshold_the_input_exceeds() {
    let text = r#"
[[prices]]
id = "x/1"
offer = "x"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
tiers = [
  { above_input_tokens = 128000, input_per_mtok = "3", output_per_mtok = "4" },
  { above_input_tokens = 1000000, input_per_mtok = "5", output_per_mtok = "6" },
]
effective_from = "2025-01-01"
source = "test"
as_of = "2025-01-01"
"#;
    let book = book(text);
    let row = book.lookup("x", at("2025-02-01T00:00:00Z")).unwrap();
    let one_m = dec!(1_000_000);
    assert_eq!(cost(&tokens(128_000, 0, 0), row), dec!(128_000) / one_m);
    assert_eq!(cost(&tokens(128_001, 0, 0), row), dec!(384_003) / one_m);
    assert_eq!(cost(&tokens(1_000_000, 0, 0), row), dec!(3));
    assert_eq!(cost(&tokens(1_000_001, 0, 0), row), dec!(5_000_005) / one_m);
}

#[test]
fn the_price_id_names_the_tier_that_priced_the_request() {
    let book = book(GEMINI_PRO);
    let when = at("2025-07-01T00:00:00Z");
    let usage = |input| Usage {
        input: Some(input),
        output: Some(10),
        ..Usage::default()
    };
    let base = book
        .apply("gemini/gemini-2.5-pro", when, &usage(200_000))
        .unwrap();
    assert_eq!(base.price_id(), "gemini/gemini-2.5-pro/2025-06-17");
    let long = book
        .apply("gemini/gemini-2.5-pro", when, &usage(200_001))
        .unwrap();
    assert_eq!(
        long.price_id(),
        "gemini/gemini-2.5-pro/2025-06-17#above_input_tokens=200000"
    );
    // 200001·2.5 + 10·15 = 500152.5 / 1e6.
    assert_eq!(long.cost, dec!(0.5001525));
}

#[test]
fn every_tier_problem_is_reported_with_its_path() {
    let text = r#"
[[prices]]
id = "x/1"
offer = "x"
currency = "USD"
input_per_mtok = "1"
cached_input_per_mtok = "0.5"
output_per_mtok = "2"
tiers = [
  { above_input_tokens = 200000, input_per_mtok = "2", cached_input_per_mtok = "1", output_per_mtok = "4" },
  { above_input_tokens = 200000, input_per_mtok = "3", cached_input_per_mtok = "1", output_per_mtok = "5" },
  { above_input_tokens = 100000, input_per_mtok = "3", cached_input_per_mtok = "1", output_per_mtok = "5" },
  { above_input_tokens = 0, input_per_mtok = 3, output_per_mtok = "5", cache_write_per_mtok = "9", colour = "red" },
  { above_input_tokens = "300000", input_per_mtok = "3e0", cached_input_per_mtok = "1", output_per_mtok = "5" },
]
effective_from = "2025-01-01"
source = "test"
as_of = "2025-01-01"

[[prices]]
id = "y/1"
offer = "y"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
tiers = []
effective_from = "2025-01-01"
source = "test"
as_of = "2025-01-01"
"#;
    let found = problems(text);
    let has = |path: &str, words: &str| {
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(words)),
            "no {path} problem saying {words:?} in {found:#?}"
        );
    };
    has(
        "prices[0].tiers[1].above_input_tokens",
        "not above the previous tier's 200000",
    );
    has(
        "prices[0].tiers[2].above_input_tokens",
        "not above the previous tier's 200000",
    );
    has("prices[0].tiers[3].above_input_tokens", "above 0");
    has("prices[0].tiers[3].input_per_mtok", "expected a string");
    has(
        "prices[0].tiers[3].cached_input_per_mtok",
        "the row names this price",
    );
    has(
        "prices[0].tiers[3].cache_write_per_mtok",
        "the row does not name this price",
    );
    has("prices[0].tiers[3].colour", "unknown field");
    has("prices[0].tiers[4].above_input_tokens", "found string");
    has("prices[0].tiers[4].input_per_mtok", "not a decimal");
    has("prices[1].tiers", "empty list");
    assert_eq!(found.len(), 10, "{found:#?}");
}

// ------------------------------------------------------------ service tiers

const GPT5: &str = r#"
[[prices]]
id = "openai/gpt-5/2025-08-07"
offer = "openai/gpt-5"
currency = "USD"
input_per_mtok = "1.25"
cached_input_per_mtok = "0.125"
output_per_mtok = "10"
effective_from = "2025-08-07"
source = "test"
as_of = "2025-08-07"

[[prices]]
id = "openai/gpt-5/flex/2025-08-07"
offer = "openai/gpt-5"
service_tier = "flex"
currency = "USD"
input_per_mtok = "0.625"
cached_input_per_mtok = "0.0625"
output_per_mtok = "5"
effective_from = "2025-08-07"
source = "test"
as_of = "2025-08-07"
"#;

fn served_by(tier: Option<ServiceTier>) -> Usage {
    Usage {
        input: Some(1_000_000),
        output: Some(1_000_000),
        service_tier: tier,
        ..Usage::default()
    }
}

#[test]
fn the_tier_the_answer_names_picks_the_row_not_the_tier_asked_for() {
    let book = book(GPT5);
    let when = at("2025-09-01T00:00:00Z");
    let flex = book
        .apply("openai/gpt-5", when, &served_by(Some(ServiceTier::Flex)))
        .unwrap();
    assert_eq!(flex.price_id(), "openai/gpt-5/flex/2025-08-07");
    assert_eq!(flex.cost, dec!(5.625));
    for default in [None, Some(ServiceTier::Default)] {
        let d = book
            .apply("openai/gpt-5", when, &served_by(default))
            .unwrap();
        assert_eq!(d.price_id(), "openai/gpt-5/2025-08-07");
        assert_eq!(d.cost, dec!(11.25));
    }
    // Plain lookups (routing estimates, `tollgate prices`) see the default row only.
    assert_eq!(
        book.lookup("openai/gpt-5", when).unwrap().id,
        "openai/gpt-5/2025-08-07"
    );
}

#[test]
fn a_served_tier_without_a_row_is_priced_at_the_default_row_and_says_so() {
    let book = book(GPT5);
    let when = at("2025-09-01T00:00:00Z");
    let priority = book
        .apply(
            "openai/gpt-5",
            when,
            &served_by(Some(ServiceTier::Priority)),
        )
        .unwrap();
    assert_eq!(priority.row.id, "openai/gpt-5/2025-08-07");
    assert_eq!(priority.unlisted_service_tier, Some(ServiceTier::Priority));
    assert_eq!(
        priority.price_id(),
        "openai/gpt-5/2025-08-07#service_tier=priority"
    );
    assert_eq!(priority.cost, dec!(11.25));
    // Before the flex row applies there is no flex row either.
    let early = book.apply(
        "openai/gpt-5",
        at("2025-08-01T00:00:00Z"),
        &served_by(Some(ServiceTier::Flex)),
    );
    assert!(early.is_none(), "no default row then either: unpriced");
}

#[test]
fn service_tier_rows_are_validated_and_ranked_per_tier() {
    let bad = GPT5
        .replacen("service_tier = \"flex\"", "service_tier = \"default\"", 1)
        .replace("openai/gpt-5/flex/", "openai/gpt-5/default/");
    let found = problems(&bad);
    assert!(
        found[0].starts_with("prices[1].service_tier: "),
        "{found:?}"
    );
    assert!(found[0].contains("omit service_tier"), "{found:?}");
    let unknown = GPT5.replacen("\"flex\"", "\"turbo\"", 1);
    assert!(problems(&unknown)[0].contains("expected one of: flex, priority, scale"));
    // A default and a flex row of one offer from the same day do not clash; two flex
    // rows do.
    let two_flex = format!(
        "{GPT5}{}",
        GPT5.split("[[prices]]")
            .nth(2)
            .map(|r| format!("[[prices]]{}", r.replace("flex/2025", "flex-again/2025")))
            .unwrap()
    );
    let found = problems(&two_flex);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("prices[2]: ambiguous with prices[1]"));
}

#[test]
fn a_served_tier_and_a_long_context_tier_combine_in_the_price_id() {
    let text = GPT5.replace(
        "output_per_mtok = \"5\"",
        "output_per_mtok = \"5\"\ntiers = [ { above_input_tokens = 272000, input_per_mtok = \"1.25\", cached_input_per_mtok = \"0.125\", output_per_mtok = \"7.5\" } ]",
    );
    let book = book(&text);
    let applied = book
        .apply(
            "openai/gpt-5",
            at("2025-09-01T00:00:00Z"),
            &served_by(Some(ServiceTier::Flex)),
        )
        .unwrap();
    assert_eq!(
        applied.price_id(),
        "openai/gpt-5/flex/2025-08-07#above_input_tokens=272000"
    );
    assert_eq!(applied.cost, dec!(8.75));
}

// ------------------------------------------------------------ the shipped catalog

fn shipped() -> PriceBook {
    book(include_str!("../../../config/prices.toml"))
}

fn usage(input: u64, cached: u64, output: u64, tier: Option<ServiceTier>) -> Usage {
    Usage {
        input: Some(input),
        cached_input: Some(cached),
        output: Some(output),
        service_tier: tier,
        ..Usage::default()
    }
}

#[test]
fn shipped_gemini_pro_rows_switch_tier_after_200000_prompt_tokens() {
    let book = shipped();
    let when = at("2026-01-01T00:00:00Z");
    for offer in ["gemini/gemini-2.5-pro", "vertex/gemini-2.5-pro"] {
        let base = book
            .apply(offer, when, &usage(200_000, 0, 0, None))
            .unwrap();
        assert_eq!((base.cost, base.tier), (dec!(0.25), None), "{offer}");
        let long = book
            .apply(offer, when, &usage(200_001, 0, 0, None))
            .unwrap();
        assert_eq!(long.cost, dec!(0.5000025), "{offer}");
        assert!(long.price_id().ends_with("#above_input_tokens=200000"));
    }
}

#[test]
fn shipped_geo_and_regional_claude_offers_cost_ten_percent_more_than_global() {
    let book = shipped();
    let when = at("2026-01-01T00:00:00Z");
    let u = usage(300_000, 100_000, 10_000, None);
    let pairs = [
        (
            "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "bedrock/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "bedrock/global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "bedrock/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
        ),
        (
            "bedrock/global.anthropic.claude-opus-4-5-20251101-v1:0",
            "bedrock/eu.anthropic.claude-opus-4-5-20251101-v1:0",
        ),
        (
            "vertex/claude-sonnet-4-5@20250929/global",
            "vertex/claude-sonnet-4-5@20250929/regional",
        ),
        (
            "vertex/claude-haiku-4-5@20251001/global",
            "vertex/claude-haiku-4-5@20251001/regional",
        ),
    ];
    for (global, geo) in pairs {
        let g = book.apply(global, when, &u).unwrap().cost;
        let r = book.apply(geo, when, &u).unwrap().cost;
        assert_eq!(r, g * dec!(1.1), "{geo} vs {global}");
    }
    // Sonnet 4.5 is above its long-context threshold here, on every cloud alike.
    let api = book.apply("anthropic/claude-sonnet-4-5", when, &u).unwrap();
    let bedrock = book
        .apply(
            "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            when,
            &u,
        )
        .unwrap();
    assert!(api.tier.is_some());
    assert_eq!(api.cost, bedrock.cost);
    // 200000·6 + 100000·0.6 + 10000·22.5 = 1485000 / 1e6.
    assert_eq!(api.cost, dec!(1.485));
}

#[test]
fn shipped_gpt5_is_priced_by_the_tier_that_served_it() {
    let book = shipped();
    let when = at("2026-01-01T00:00:00Z");
    let cost = |tier| {
        let a = book
            .apply("openai/gpt-5", when, &usage(1_000_000, 0, 1_000_000, tier))
            .unwrap();
        (a.price_id(), a.cost)
    };
    assert_eq!(cost(None), ("openai/gpt-5/2025-08-07".into(), dec!(11.25)));
    assert_eq!(
        cost(Some(ServiceTier::Flex)),
        ("openai/gpt-5/flex/2025-08-07".into(), dec!(5.625))
    );
    assert_eq!(
        cost(Some(ServiceTier::Priority)),
        ("openai/gpt-5/priority/2025-08-07".into(), dec!(22.5))
    );
    assert_eq!(
        cost(Some(ServiceTier::Scale)),
        (
            "openai/gpt-5/2025-08-07#service_tier=scale".into(),
            dec!(11.25)
        )
    );
}
