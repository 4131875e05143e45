//! Property-based fuzzing of usage extraction: `usage_from_wire` of every provider
//! kind on arbitrary JSON, and on usage-shaped objects whose counts are huge,
//! negative, fractional, strings or nested wrongly. Extraction never panics, and a
//! count it returns is one the upstream sent as a non-negative integer (or, for
//! DeepSeek's input, the exact sum of its cache hits and misses): never a wrapped
//! sum, never a number read out of a float or a string. Bounded: 256 cases each.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tollgate::config::ProviderKind;
use tollgate::providers::adapter_for;

/// Every kind; the `match` stops compiling when a kind is added without being fuzzed.
fn all_kinds() -> Vec<ProviderKind> {
    let kinds = [
        ProviderKind::Openai,
        ProviderKind::AzureOpenai,
        ProviderKind::AzureAiInference,
        ProviderKind::GithubModels,
        ProviderKind::Deepseek,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Anthropic,
        ProviderKind::Mock,
    ];
    for kind in &kinds {
        match kind {
            ProviderKind::Openai
            | ProviderKind::AzureOpenai
            | ProviderKind::AzureAiInference
            | ProviderKind::GithubModels
            | ProviderKind::Deepseek
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Anthropic
            | ProviderKind::Mock => {}
            // Bedrock's and Gemini's usage objects have their own camelCase shapes
            // (`inputTokens`, `promptTokenCount`), which this OpenAI-shaped property
            // does not generate; Vertex reads Gemini's, Anthropic's or OpenAI's by model.
            ProviderKind::Bedrock | ProviderKind::Vertex | ProviderKind::Gemini => {}
            // Extensions bring their own readers; none is built in.
            ProviderKind::Extension(_) => {}
        }
    }
    kinds.to_vec()
}

/// The kinds whose usage is DeepSeek's superset (cache hits and misses).
fn is_deepseek_dialect(kind: &ProviderKind) -> bool {
    matches!(kind, ProviderKind::Deepseek | ProviderKind::Mock)
}

/// The kinds whose usage is Anthropic's (input excludes cache reads and writes).
fn is_anthropic_dialect(kind: &ProviderKind) -> bool {
    matches!(kind, ProviderKind::Anthropic)
}

/// Numbers and near-numbers an upstream might send where a count belongs.
fn nasty_count() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(u64::MAX - 1)),
        Just(json!(1_u64 << 63)),
        Just(json!(0)),
        any::<i64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1.5)),
        Just(json!(2.0)),
        Just(json!(1e300)),
        // Beyond u64: serde_json reads it as a float.
        Just(Value::from(18_446_744_073_709_551_616.0_f64)),
        "[0-9]{1,25}".prop_map(Value::from),
        Just(json!("-5")),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!([12])),
        Just(json!({"tokens": 12})),
    ]
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![nasty_count(), ".{0,12}".prop_map(Value::from)];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
    ]
}

/// A usage object shaped like the real ones, every count drawn from `nasty_count`.
fn usage_shaped() -> impl Strategy<Value = Value> {
    let count = || proptest::option::of(nasty_count());
    (
        (count(), count(), count()),
        (count(), count(), count()),
        (count(), count()),
    )
        .prop_map(
            |((prompt, completion, total), (cached, write, reasoning), (hit, miss))| {
                let mut usage = Map::new();
                let put = |obj: &mut Map<String, Value>, k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        obj.insert(k.to_owned(), v);
                    }
                };
                put(&mut usage, "prompt_tokens", prompt);
                put(&mut usage, "completion_tokens", completion);
                put(&mut usage, "total_tokens", total);
                put(&mut usage, "prompt_cache_hit_tokens", hit);
                put(&mut usage, "prompt_cache_miss_tokens", miss);
                let mut details = Map::new();
                put(&mut details, "cached_tokens", cached);
                put(&mut details, "cache_write_tokens", write);
                usage.insert("prompt_tokens_details".into(), Value::Object(details));
                let mut details = Map::new();
                put(&mut details, "reasoning_tokens", reasoning);
                usage.insert("completion_tokens_details".into(), Value::Object(details));
                Value::Object(usage)
            },
        )
}

/// An Anthropic usage object, every count drawn from `nasty_count`.
fn anthropic_shaped() -> impl Strategy<Value = Value> {
    let count = || proptest::option::of(nasty_count());
    (count(), count(), count(), count()).prop_map(|(input, write, read, output)| {
        let mut usage = Map::new();
        for (k, v) in [
            ("input_tokens", input),
            ("cache_creation_input_tokens", write),
            ("cache_read_input_tokens", read),
            ("output_tokens", output),
        ] {
            if let Some(v) = v {
                usage.insert(k.to_owned(), v);
            }
        }
        Value::Object(usage)
    })
}

/// Every non-negative integer anywhere in `v`.
fn integers(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Number(n) => out.extend(n.as_u64()),
        Value::Array(items) => items.iter().for_each(|i| integers(i, out)),
        Value::Object(map) => map.values().for_each(|i| integers(i, out)),
        _ => {}
    }
}

/// Extract with `kind` and check every count against what `usage` holds.
fn check(kind: ProviderKind, usage: &Value) -> Result<(), TestCaseError> {
    let Some(adapter) = adapter_for(&kind, "m") else {
        return Err(TestCaseError::fail(format!(
            "{kind:?} has no built-in adapter"
        )));
    };
    let u = adapter.usage_from_wire(usage);
    let mut sent = Vec::new();
    integers(usage, &mut sent);
    let fields = [
        ("input", u.input),
        ("cached_input", u.cached_input),
        ("cache_write", u.cache_write),
        ("output", u.output),
        ("reasoning", u.reasoning),
    ];
    for (name, count) in fields {
        let Some(count) = count else { continue };
        // DeepSeek's input is its cached part (the hit count, or the mirrored
        // `cached_tokens` when hits are absent) plus its cache misses.
        let cached_plus_miss = || {
            let miss = usage
                .get("prompt_cache_miss_tokens")
                .and_then(Value::as_u64)?;
            u.cached_input?.checked_add(miss)
        };
        // Anthropic's input is its uncached input plus cache writes plus cache reads.
        let uncached_plus_cache = || {
            let n = |f: &str| usage.get(f).and_then(Value::as_u64);
            n("input_tokens")?
                .checked_add(n("cache_creation_input_tokens").unwrap_or(0))?
                .checked_add(n("cache_read_input_tokens").unwrap_or(0))
        };
        let derived = name == "input"
            && ((is_deepseek_dialect(&kind) && cached_plus_miss() == Some(count))
                || (is_anthropic_dialect(&kind) && uncached_plus_cache() == Some(count)));
        prop_assert!(
            sent.contains(&count) || derived,
            "{kind:?} read {name} = {count}, which the upstream never sent: {usage}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn openai_dialect_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), usage_shaped()],
    ) {
        for kind in all_kinds()
            .into_iter()
            .filter(|k| !is_deepseek_dialect(k) && !is_anthropic_dialect(k))
        {
            check(kind, &usage)?;
        }
    }

    #[test]
    fn deepseek_dialect_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), usage_shaped()],
    ) {
        for kind in all_kinds().into_iter().filter(is_deepseek_dialect) {
            check(kind, &usage)?;
        }
    }

    #[test]
    fn anthropic_dialect_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), anthropic_shaped()],
    ) {
        for kind in all_kinds().into_iter().filter(is_anthropic_dialect) {
            check(kind, &usage)?;
        }
    }
}

/// Regression: the minimal input the property above found (an unchecked hit + miss sum).
#[test]
fn deepseek_cache_counts_that_overflow_are_not_summed() {
    let usage = json!({"completion_tokens": 1, "prompt_cache_hit_tokens": u64::MAX, "prompt_cache_miss_tokens": 1});
    for kind in [ProviderKind::Deepseek, ProviderKind::Mock] {
        let adapter = adapter_for(&kind, "m").expect("a built-in kind");
        let u = adapter.usage_from_wire(&usage);
        // Not believed (None) or saturated; a wrapped sum would read 0.
        assert!(
            u.input.is_none_or(|i| i == u64::MAX),
            "{kind:?}: {:?}",
            u.input
        );
    }
}
