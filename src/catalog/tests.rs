use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::{cost, PriceBook, PriceRow, PricingError, TimeWindow, TokenCounts};

const SHIPPED: &str = include_str!("../../config/prices.toml");

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn shipped() -> PriceBook {
    PriceBook::from_toml_str(SHIPPED).unwrap()
}

fn priced(book: &PriceBook, offer: &str, when: &str, tokens: TokenCounts) -> (String, Decimal) {
    let row = book
        .lookup(offer, at(when))
        .unwrap_or_else(|| panic!("{offer} unpriced at {when}"));
    (row.id.clone(), cost(&tokens, row))
}

fn problem_paths(text: &str) -> Vec<String> {
    let err = PriceBook::from_toml_str(text).unwrap_err();
    err.problems().iter().map(|p| p.path.clone()).collect()
}

const ROW: &str = r#"
[[prices]]
id = "x/1"
offer = "x"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-01-01"
source = "test"
as_of = "2025-01-01"
"#;

// ---------------------------------------------------------------- shipped catalog

#[test]
fn shipped_catalog_parses_and_every_row_has_provenance() {
    let book = shipped();
    assert!(book.rows().len() >= 50, "only {} rows", book.rows().len());
    for row in book.rows() {
        assert!(!row.source.trim().is_empty(), "{} has no source", row.id);
        assert!(row.as_of.to_string().starts_with("202"), "{} as_of", row.id);
        assert!(row.confidence.is_some(), "{} has no confidence", row.id);
        if row.confidence.as_deref() == Some("low") {
            assert!(
                row.notes.is_some(),
                "low-confidence {} needs a note",
                row.id
            );
        }
    }
}

#[test]
fn shipped_catalog_has_the_documented_offer_keys() {
    let book = shipped();
    for key in [
        "openai/o1",
        "openai-eu/o1",
        "azure-openai/o1/global-standard",
        "azure-openai/o1/datazone-eu",
        "azure-ai-foundry/DeepSeek-R1",
        "github-models/deepseek/DeepSeek-R1/free",
        "github-models/deepseek/DeepSeek-R1/paid",
        "deepseek/deepseek-reasoner",
        "deepseek/deepseek-chat",
        "deepseek/deepseek-v4-flash",
        "deepseek/deepseek-v4-pro",
        "deepseek/deepseek-flash",
        "together/deepseek-ai/DeepSeek-R1",
        "fireworks/accounts/fireworks/models/deepseek-r1",
        "perplexity/sonar-reasoning/low",
        "perplexity/sonar-reasoning-pro/high",
    ] {
        assert!(book.has_offer(key), "missing offer {key}");
    }
    assert!(!book.has_offer("anthropic/claude-3-7-sonnet-20250219"));
}

#[test]
fn shipped_deepseek_windows_cover_every_minute_of_the_off_peak_era() {
    let book = shipped();
    let start = at("2025-02-26T16:30:00Z");
    for minute in 0..(3 * 24 * 60) {
        let when = start + chrono::Duration::minutes(minute);
        for offer in ["deepseek/deepseek-reasoner", "deepseek/deepseek-chat"] {
            assert!(book.lookup(offer, when).is_some(), "{offer} gap at {when}");
        }
    }
}

// ---------------------------------------------------------------- cost, worked examples

#[test]
fn o1_reasoning_is_inside_output_and_cached_prompt_is_discounted() {
    // (2385-2304)·15 + 2304·7.5 + 2535·60 = 1215 + 17280 + 152100 = 170595 -> /1e6 = 0.170595.
    // The 2241 reasoning tokens are part of the 2535 and must not be added again.
    let tokens = TokenCounts {
        input: 2385,
        cached_input: 2304,
        output: 2535,
        reasoning: 2241,
        ..TokenCounts::default()
    };
    let (id, usd) = priced(&shipped(), "openai/o1", "2025-03-01T12:00:00Z", tokens);
    assert_eq!(id, "openai/o1/2024-12-17");
    assert_eq!(usd, dec!(0.170595));
    assert_eq!(usd.to_string(), "0.170595");
}

/// 1000 prompt tokens of which 600 hit DeepSeek's cache (400 miss), 2000 completion tokens of
/// which 1500 are reasoning.
fn deepseek_tokens() -> TokenCounts {
    TokenCounts {
        input: 1000,
        cached_input: 600,
        output: 2000,
        reasoning: 1500,
        ..TokenCounts::default()
    }
}

#[test]
fn deepseek_reasoner_price_follows_request_time() {
    let book = shipped();
    let reasoner = |when| priced(&book, "deepseek/deepseek-reasoner", when, deepseek_tokens());
    // Launch, all day: 400·0.55 + 600·0.14 + 2000·2.19 = 220 + 84 + 4380 = 4684 -> 0.004684.
    assert_eq!(
        reasoner("2025-02-10T12:00:00Z"),
        (
            "deepseek/deepseek-reasoner/2025-01-20".into(),
            dec!(0.004684)
        )
    );
    // Off-peak: 400·0.135 + 600·0.035 + 2000·0.55 = 54 + 21 + 1100 = 1175 -> 0.001175.
    let off_peak = (
        "deepseek/deepseek-reasoner/2025-02-26-offpeak".into(),
        dec!(0.001175),
    );
    assert_eq!(reasoner("2025-03-01T17:00:00Z"), off_peak);
    // 00:15 belongs to the window that opened at 16:30 the evening before.
    assert_eq!(reasoner("2025-03-01T00:15:00Z"), off_peak);
    assert_eq!(reasoner("2025-03-01T00:29:59Z"), off_peak);
    // Window end is exclusive: 00:30 is standard time again (same figures as launch).
    let standard = (
        "deepseek/deepseek-reasoner/2025-02-26-standard".into(),
        dec!(0.004684),
    );
    assert_eq!(reasoner("2025-03-01T00:30:00Z"), standard);
    assert_eq!(reasoner("2025-03-01T16:29:59Z"), standard);
    // V3.1 from 2025-09-05T16:00Z, night discount gone:
    // 400·0.56 + 600·0.07 + 2000·1.68 = 224 + 42 + 3360 = 3626 -> 0.003626.
    assert_eq!(
        reasoner("2025-09-05T16:00:00Z"),
        (
            "deepseek/deepseek-reasoner/2025-09-05".into(),
            dec!(0.003626)
        )
    );
    assert_eq!(reasoner("2025-09-05T23:00:00Z").1, dec!(0.003626));
    // V3.2: 400·0.28 + 600·0.028 + 2000·0.42 = 112 + 16.8 + 840 = 968.8 -> 0.0009688.
    assert_eq!(
        reasoner("2025-10-01T12:00:00Z"),
        (
            "deepseek/deepseek-reasoner/2025-09-29".into(),
            dec!(0.0009688)
        )
    );
}

#[test]
fn deepseek_reasoner_is_unpriced_outside_its_history() {
    let book = shipped();
    assert!(book
        .lookup("deepseek/deepseek-reasoner", at("2025-01-19T23:59:59Z"))
        .is_none());
    assert!(book
        .lookup("deepseek/deepseek-reasoner", at("2026-08-01T00:00:00Z"))
        .is_none());
}

#[test]
fn deepseek_chat_promo_ends_at_its_documented_instant() {
    let book = shipped();
    let chat = |when| priced(&book, "deepseek/deepseek-chat", when, deepseek_tokens());
    // Promo: 400·0.14 + 600·0.014 + 2000·0.28 = 56 + 8.4 + 560 = 624.4 -> 0.0006244.
    assert_eq!(chat("2025-02-08T15:59:59Z").1, dec!(0.0006244));
    // Standard: 400·0.27 + 600·0.07 + 2000·1.1 = 108 + 42 + 2200 = 2350 -> 0.00235.
    assert_eq!(chat("2025-02-08T16:00:00Z").1, dec!(0.00235));
}

#[test]
fn deepseek_2026_peak_hours_are_weekday_windows() {
    let book = shipped();
    let tokens = TokenCounts {
        input: 1000,
        cached_input: 500,
        output: 1000,
        ..TokenCounts::default()
    };
    let flash = |when| priced(&book, "deepseek/deepseek-flash", when, tokens);
    // Peak: 500·0.3 + 500·0.006 + 1000·1.2 = 150 + 3 + 1200 = 1353 -> 0.001353.
    assert_eq!(flash("2026-09-01T02:00:00Z").1, dec!(0.001353)); // Tuesday
    assert_eq!(flash("2026-09-01T09:59:59Z").1, dec!(0.001353));
    // Off-peak: 500·0.15 + 500·0.003 + 1000·0.6 = 75 + 1.5 + 600 = 676.5 -> 0.0006765.
    assert_eq!(flash("2026-09-01T05:00:00Z").1, dec!(0.0006765));
    assert_eq!(flash("2026-09-01T10:00:00Z").1, dec!(0.0006765));
    assert_eq!(flash("2026-09-05T02:00:00Z").1, dec!(0.0006765)); // Saturday
    assert_eq!(
        flash("2026-09-05T02:00:00Z").0,
        "deepseek/deepseek-flash/2026-08-16-offpeak"
    );
}

#[test]
fn azure_foundry_r1_bills_reported_cached_tokens_at_the_input_price() {
    // No cache price: 1000·1.35 + 3000·5.4 = 1350 + 16200 = 17550 -> 0.01755.
    let book = shipped();
    let plain = TokenCounts {
        input: 1000,
        output: 3000,
        ..TokenCounts::default()
    };
    let with_cache = TokenCounts {
        cached_input: 200,
        ..plain
    };
    let offer = "azure-ai-foundry/DeepSeek-R1";
    assert_eq!(
        priced(&book, offer, "2025-06-01T00:00:00Z", plain).1,
        dec!(0.01755)
    );
    assert_eq!(
        priced(&book, offer, "2025-06-01T00:00:00Z", with_cache).1,
        dec!(0.01755)
    );
}

#[test]
fn github_free_tier_is_priced_at_zero_not_unpriced() {
    let tokens = TokenCounts {
        input: 4000,
        output: 4000,
        ..TokenCounts::default()
    };
    let (id, usd) = priced(
        &shipped(),
        "github-models/deepseek/DeepSeek-R1/free",
        "2025-03-01T00:00:00Z",
        tokens,
    );
    assert_eq!(id, "github-models/deepseek/DeepSeek-R1/free/2025-01-29");
    assert_eq!(usd, Decimal::ZERO);
    assert_eq!(usd.to_string(), "0");
}

#[test]
fn perplexity_adds_the_request_fee_for_the_context_size() {
    // Tokens: 100·1 + 500·5 = 2600 -> 0.0026 USD, plus the per-request fee.
    let book = shipped();
    let tokens = TokenCounts {
        input: 100,
        output: 500,
        ..TokenCounts::default()
    };
    let medium = "perplexity/sonar-reasoning/medium";
    assert_eq!(
        priced(&book, medium, "2025-06-01T00:00:00Z", tokens).1,
        dec!(0.0106)
    );
    // Before 2025-04-18 every request paid the legacy $5 per 1000 searches.
    let high = "perplexity/sonar-reasoning/high";
    let (id, usd) = priced(&book, high, "2025-03-01T00:00:00Z", tokens);
    assert_eq!(id, "perplexity/sonar-reasoning/high/2025-01-29-legacy");
    assert_eq!(usd, dec!(0.0076));
    // A request with no tokens still pays the fee.
    assert_eq!(
        priced(
            &book,
            medium,
            "2025-06-01T00:00:00Z",
            TokenCounts::default()
        )
        .1,
        dec!(0.008)
    );
}

#[test]
fn unknown_offer_is_unpriced() {
    let book = shipped();
    assert!(book
        .lookup("openai/gpt-99", at("2025-06-01T00:00:00Z"))
        .is_none());
    assert!(!book.has_offer("openai/gpt-99"));
}

// ---------------------------------------------------------------- cost, edge cases

fn row(
    input: Decimal,
    cached: Option<Decimal>,
    write: Option<Decimal>,
    output: Decimal,
) -> PriceRow {
    PriceRow {
        id: "t".into(),
        offer: "t".into(),
        input_per_mtok: input,
        cached_input_per_mtok: cached,
        cache_write_per_mtok: write,
        cache_write_1h_per_mtok: None,
        output_per_mtok: output,
        per_request_fee: None,
        effective_from: at("2025-01-01T00:00:00Z"),
        effective_until: None,
        windows: Vec::new(),
        tiers: Vec::new(),
        service_tier: None,
        source: "test".into(),
        as_of: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        confidence: None,
        notes: None,
    }
}

#[test]
fn cache_write_tokens_use_their_own_price_or_fall_back_to_input() {
    // 1000 input of which 100 cache reads and 400 cache writes, 10 output:
    // 500·3 + 100·0.3 + 400·3.75 + 10·15 = 1500 + 30 + 1500 + 150 = 3180 -> 0.00318.
    let tokens = TokenCounts {
        input: 1000,
        cached_input: 100,
        cache_write: 400,
        cache_write_1h: 0,
        output: 10,
        reasoning: 0,
    };
    let anthropic_like = row(dec!(3), Some(dec!(0.3)), Some(dec!(3.75)), dec!(15));
    assert_eq!(cost(&tokens, &anthropic_like), dec!(0.00318));
    // Without a write price: 500·3 + 100·0.3 + 400·3 + 150 = 1500 + 30 + 1200 + 150 = 2880.
    let no_write_price = row(dec!(3), Some(dec!(0.3)), None, dec!(15));
    assert_eq!(cost(&tokens, &no_write_price), dec!(0.00288));
}

#[test]
fn one_hour_cache_writes_have_their_own_price_or_fall_back_to_the_write_price() {
    // 1000 input: 100 cache reads, 400 cache writes of which 300 for one hour; 10 output:
    // 500·3 + 100·0.3 + 100·3.75 + 300·6 + 10·15 = 1500 + 30 + 375 + 1800 + 150 = 3855.
    let tokens = TokenCounts {
        input: 1000,
        cached_input: 100,
        cache_write: 400,
        cache_write_1h: 300,
        output: 10,
        reasoning: 0,
    };
    let mut sonnet = row(dec!(3), Some(dec!(0.3)), Some(dec!(3.75)), dec!(15));
    sonnet.cache_write_1h_per_mtok = Some(dec!(6));
    assert_eq!(cost(&tokens, &sonnet), dec!(0.003855));
    // A row without the 1-hour price bills those writes at the write price: 0.00318.
    sonnet.cache_write_1h_per_mtok = None;
    assert_eq!(cost(&tokens, &sonnet), dec!(0.00318));
    // A split larger than the writes counts at most the writes, all at the 1-hour price:
    // 1500 + 30 + 400·6 + 150 = 4080.
    let glitch = TokenCounts {
        cache_write_1h: 900,
        ..tokens
    };
    sonnet.cache_write_1h_per_mtok = Some(dec!(6));
    assert_eq!(cost(&glitch, &sonnet), dec!(0.00408));
}

#[test]
fn cached_count_above_input_saturates_instead_of_going_negative() {
    // A provider glitch: 50 cached of 10 input. Uncached saturates at 0; the 50 cached are billed.
    let tokens = TokenCounts {
        input: 10,
        cached_input: 50,
        ..TokenCounts::default()
    };
    let r = row(dec!(2), Some(dec!(1)), None, dec!(4));
    assert_eq!(cost(&tokens, &r), dec!(0.00005));
}

#[test]
fn huge_counts_at_huge_prices_saturate_instead_of_panicking() {
    let tokens = TokenCounts {
        input: u64::MAX,
        output: u64::MAX,
        ..TokenCounts::default()
    };
    let r = row(Decimal::MAX, None, None, Decimal::MAX);
    assert_eq!(cost(&tokens, &r), Decimal::MAX);
}

fn price() -> impl Strategy<Value = Decimal> {
    (0_i64..10_000_000, 0_u32..=6).prop_map(|(m, s)| Decimal::new(m, s))
}

fn counts() -> impl Strategy<Value = TokenCounts> {
    let n = || 0_u64..1_000_000_000_000;
    (n(), n(), n(), n(), n()).prop_map(|(input, cached_input, cache_write, output, reasoning)| {
        TokenCounts {
            input,
            cached_input,
            cache_write,
            // Every 1-hour split of the writes, from none to all of them.
            cache_write_1h: cache_write / 3,
            output,
            reasoning,
        }
    })
}

fn any_row() -> impl Strategy<Value = PriceRow> {
    let opt = || proptest::option::of(price());
    (price(), opt(), opt(), price(), opt()).prop_map(|(i, c, w, o, fee)| PriceRow {
        per_request_fee: fee,
        ..row(i, c, w, o)
    })
}

proptest! {
    // "Monotonic in each token count" holds for every count that adds billable tokens. Moving
    // tokens from uncached to cached input makes a request cheaper by design, so cached and
    // cache-write tokens are grown together with the input total they are part of.
    #[test]
    fn cost_never_negative_and_never_falls_when_tokens_grow(
        r in any_row(),
        t in counts(),
        extra in 0_u64..1_000_000_000,
    ) {
        let base = cost(&t, &r);
        prop_assert!(base >= Decimal::ZERO);
        let more_input = TokenCounts { input: t.input + extra, ..t };
        let more_output = TokenCounts { output: t.output + extra, ..t };
        let more_cached = TokenCounts { input: t.input + extra, cached_input: t.cached_input + extra, ..t };
        let more_written = TokenCounts { input: t.input + extra, cache_write: t.cache_write + extra, ..t };
        prop_assert!(cost(&more_input, &r) >= base);
        prop_assert!(cost(&more_output, &r) >= base);
        prop_assert!(cost(&more_cached, &r) >= base);
        prop_assert!(cost(&more_written, &r) >= base);
        let more_reasoning = TokenCounts { reasoning: t.reasoning + extra, ..t };
        prop_assert_eq!(cost(&more_reasoning, &r), base);
    }
}

// ---------------------------------------------------------------- lookup rules

#[test]
fn windowed_row_beats_fallback_and_later_row_beats_earlier() {
    let text = format!(
        r#"{ROW}
[[prices]]
id = "x/2"
offer = "x"
currency = "USD"
input_per_mtok = "1.5"
output_per_mtok = "3"
effective_from = "2025-06-01"
source = "test"
as_of = "2025-06-01"

[[prices]]
id = "x/night"
offer = "x"
currency = "USD"
input_per_mtok = "0.5"
output_per_mtok = "1"
effective_from = "2025-01-01"
effective_until = "2025-12-01"
windows = [{{ start = "22:00", end = "02:00", days = ["fri"] }}]
source = "test"
as_of = "2025-01-01"
"#
    );
    let book = PriceBook::from_toml_str(&text).unwrap();
    let id = |when| book.lookup("x", at(when)).map(|r| r.id.as_str());
    assert_eq!(id("2024-12-31T23:59:59Z"), None);
    assert_eq!(id("2025-05-31T12:00:00Z"), Some("x/1"));
    assert_eq!(id("2025-06-01T00:00:00Z"), Some("x/2"));
    // 2025-06-06 is a Friday: its night window runs into Saturday morning.
    assert_eq!(id("2025-06-06T23:00:00Z"), Some("x/night"));
    assert_eq!(id("2025-06-07T01:59:00Z"), Some("x/night"));
    assert_eq!(id("2025-06-07T02:00:00Z"), Some("x/2"));
    // Thursday night is not a Friday window, nor is Friday 01:00 (Thursday's start).
    assert_eq!(id("2025-06-05T23:00:00Z"), Some("x/2"));
    assert_eq!(id("2025-06-06T01:00:00Z"), Some("x/2"));
    // After effective_until the window no longer applies.
    assert_eq!(id("2025-12-05T23:00:00Z"), Some("x/2"));
    assert_eq!(book.offers().collect::<Vec<_>>(), vec!["x"]);
}

#[test]
fn window_to_end_of_day_accepts_24_00() {
    let w = TimeWindow::parse("00:00", "24:00", Some(&["sat".to_owned()])).unwrap();
    assert!(w.contains(at("2025-03-01T00:00:00Z")));
    assert!(w.contains(at("2025-03-01T23:59:59Z")));
    assert!(!w.contains(at("2025-03-02T00:00:00Z")));
}

// ---------------------------------------------------------------- validation

#[test]
fn three_problems_in_three_rows_are_all_reported_with_paths() {
    let text = r#"
[[prices]]
id = "a"
offer = "a"
currency = "EUR"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-01-01"
source = "s"
as_of = "2025-01-01"

[[prices]]
id = "b"
offer = "b"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "abc"
effective_from = "2025-01-01"
source = "s"
as_of = "2025-01-01"

[[prices]]
id = "c"
offer = "c"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-02-01"
effective_until = "2025-01-01"
source = "s"
as_of = "2025-01-01"
"#;
    let err = PriceBook::from_toml_str(text).unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, PricingError::Invalid { .. }));
    assert_eq!(
        problem_paths(text),
        vec![
            "prices[0].currency",
            "prices[1].output_per_mtok",
            "prices[2].effective_until"
        ]
    );
    assert!(
        shown.starts_with("3 problem(s) in the price catalog:"),
        "{shown}"
    );
    assert!(shown.contains(
        "prices[1].output_per_mtok: not a decimal \"abc\"; expected a decimal string such as \"2.19\""
    ));
    assert!(shown.contains("prices[0].currency: unknown currency \"EUR\""));
    assert_eq!(shown.lines().count(), 4);
}

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    let text = format!(
        "colour = 1\n{}windows = [{{ start = \"01:00\", end = \"02:00\", dayz = [] }}]\nregion = \"eu\"\n",
        ROW.trim_start()
    );
    assert_eq!(
        problem_paths(&text),
        vec!["colour", "prices[0].region", "prices[0].windows[0].dayz"]
    );
}

#[test]
fn field_problems_in_one_row_are_all_reported() {
    let text = r#"
[[prices]]
id = "x"
offer = "x y"
currency = "USD"
input_per_mtok = 0.55
output_per_mtok = "-1"
per_request_fee = "1e3"
effective_from = "yesterday"
source = ""
as_of = "2025-13-01"
confidence = "certain"
windows = [{ start = "25:00", end = "16:3", days = ["monday"] }, { start = "01:00", end = "01:00" }]
"#;
    assert_eq!(
        problem_paths(text),
        vec![
            "prices[0].offer",
            "prices[0].input_per_mtok",
            "prices[0].output_per_mtok",
            "prices[0].per_request_fee",
            "prices[0].effective_from",
            "prices[0].source",
            "prices[0].as_of",
            "prices[0].confidence",
            "prices[0].windows[0].start",
            "prices[0].windows[0].end",
            "prices[0].windows[0].days",
            "prices[0].windows[1].end",
        ]
    );
    let shown = PriceBook::from_toml_str(text).unwrap_err().to_string();
    assert!(shown.contains("input_per_mtok: expected a string such as \"2.19\", found float"));
    assert!(shown.contains("output_per_mtok: negative price \"-1\""));
}

#[test]
fn missing_required_fields_are_named() {
    let text = "[[prices]]\nid = \"x\"\n";
    assert_eq!(
        problem_paths(text),
        vec![
            "prices[0].offer",
            "prices[0].currency",
            "prices[0].input_per_mtok",
            "prices[0].output_per_mtok",
            "prices[0].effective_from",
            "prices[0].source",
            "prices[0].as_of",
        ]
    );
    assert_eq!(problem_paths(""), vec!["prices"]);
}

#[test]
fn duplicate_ids_are_rejected() {
    let text = format!("{ROW}{}", ROW.replace("\"x\"", "\"y\""));
    let err = PriceBook::from_toml_str(&text).unwrap_err();
    assert_eq!(problem_paths(&text), vec!["prices[1].id"]);
    assert!(err
        .to_string()
        .contains("duplicate id \"x/1\", already used by prices[0]"));
}

#[test]
fn equal_rank_rows_that_could_both_match_are_rejected() {
    let twin = ROW.replace("x/1", "x/1b");
    assert_eq!(problem_paths(&format!("{ROW}{twin}")), vec!["prices[1]"]);

    let windowed = |id: &str, start: &str, end: &str| {
        format!(
            "{}windows = [{{ start = \"{start}\", end = \"{end}\" }}]\n",
            ROW.replace("x/1", id)
        )
    };
    let overlapping = format!(
        "{}{}",
        windowed("n1", "16:30", "00:30"),
        windowed("n2", "00:00", "01:00")
    );
    assert_eq!(problem_paths(&overlapping), vec!["prices[1]"]);
    let disjoint = format!(
        "{}{}",
        windowed("n1", "16:30", "00:30"),
        windowed("n2", "00:30", "16:30")
    );
    assert!(PriceBook::from_toml_str(&disjoint).is_ok());
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let paths = problem_paths("[[prices]]\nid = \"x\"\noffer = \n");
    assert_eq!(paths.len(), 1);
    assert!(paths[0].starts_with("line 3, column"), "{paths:?}");
}

#[test]
fn dates_accept_rfc3339_and_plain_dates_as_midnight_utc() {
    let text = ROW.replace(
        "effective_from = \"2025-01-01\"",
        "effective_from = \"2025-01-01T08:00:00+08:00\"",
    );
    let book = PriceBook::from_toml_str(&text).unwrap();
    assert_eq!(book.rows()[0].effective_from, at("2025-01-01T00:00:00Z"));
    let plain = PriceBook::from_toml_str(ROW).unwrap();
    assert_eq!(plain.rows()[0].effective_from, at("2025-01-01T00:00:00Z"));
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    std::fs::write(&path, ROW).unwrap();
    assert_eq!(PriceBook::load(&path).unwrap().rows().len(), 1);
    let missing = PriceBook::load(&dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(missing, PricingError::Read { .. }));
    assert!(missing.problems().is_empty());
}

/// A cost is tokens × price / 10^6, and the ledger's rollups keep money exact to
/// 10^-15 USD: a price with more places per million tokens would lose a fraction there.
#[test]
fn prices_finer_than_the_ledger_keeps_exactly_are_refused_with_the_reason() {
    let row = |input: &str, fee: &str| {
        ROW.replace(
            "input_per_mtok = \"1\"",
            &format!("input_per_mtok = \"{input}\"\nper_request_fee = \"{fee}\""),
        )
    };
    let fine = PriceBook::from_toml_str(&row("0.123456789", "0.000000000000001")).unwrap();
    let tokens = TokenCounts {
        input: 999_999_999,
        ..TokenCounts::default()
    };
    let cost = cost(&tokens, &fine.rows()[0]);
    assert!(cost.scale() <= 15, "{cost}");
    assert_eq!(
        problem_paths(&row("0.1234567891", "0")),
        vec!["prices[0].input_per_mtok"]
    );
    let shown = PriceBook::from_toml_str(&row("0.1234567891", "0"))
        .unwrap_err()
        .to_string();
    assert!(shown.contains("at most 9"), "{shown}");
    assert_eq!(
        problem_paths(&row("1", "0.0000000000000001")),
        vec!["prices[0].per_request_fee"]
    );
    // Trailing zeros are not places.
    PriceBook::from_toml_str(&row("2.1900000000000", "0")).unwrap();
    // The shipped catalog stays within both limits.
    assert!(!shipped().rows().is_empty());
}
